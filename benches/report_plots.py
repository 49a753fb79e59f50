"""The plots of docs/performance.md, drawn with matplotlib by benches/report.py: plan time
against N per policy (plan_time.png) and loader throughput against PyTorch's DataLoader
(throughput.png)."""

import math
import os

from report_common import IMAGENET, POLICIES, fit_slope

def plan_plot(plan, docs, plt):
    """Left: plan time against N, log-log, with a fitted line per policy. Right: the same as
    time per id, which shows where the slope above 1 comes from (the caches, not the
    algorithms)."""
    rows = plan["rows"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(14, 6))
    slopes = {}
    markers = "os^vD<>pXh"
    for i, policy in enumerate(POLICIES):
        for dim_rows, label_suffix in split_influence(rows, policy):
            pts = sorted((r["n"], r["plan_s"]) for r in dim_rows)
            if len(pts) < 2:
                continue
            slope, icpt = fit_slope(pts)
            key = policy + label_suffix
            slopes[key] = (slope, pts)
            line, = ax.plot([p[0] for p in pts], [p[1] * 1e3 for p in pts],
                            marker=markers[i % len(markers)], linestyle="none",
                            label=f"{key}: slope {slope:.2f}")
            xs = [pts[0][0], pts[-1][0]]
            ax.plot(xs, [10 ** (icpt + slope * math.log10(x)) * 1e3 for x in xs],
                    color=line.get_color(), linewidth=1)
            if policy != "influence":
                ax2.plot([p[0] for p in pts], [p[1] / p[0] * 1e9 for p in pts],
                         marker=markers[i % len(markers)], color=line.get_color(), label=key)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(15, color="gray", linestyle="--", linewidth=1)
    ax.axvline(IMAGENET, color="gray", linestyle=":", linewidth=1)
    ax.text(1.1e4, 16.5, "goal at 1.28M: 15 ms", color="gray")
    ax.set_xlabel("N (samples in the dataset)")
    ax.set_ylabel("plan time per epoch (ms)")
    ax.set_title("Plan time per epoch, log-log, least-squares slopes")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    ax2.set_xscale("log")
    ax2.axvline(IMAGENET, color="gray", linestyle=":", linewidth=1)
    ax2.set_xlabel("N (samples in the dataset)")
    ax2.set_ylabel("plan time per id (ns)")
    ax2.set_title("The same per id: flat would be exactly linear")
    ax2.legend(fontsize=8, loc="upper left")
    ax2.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(docs, "plan_time.png"), dpi=100)
    plt.close(fig)
    return slopes


def regime_slopes(pts):
    """Slopes within the caches (N ≤ 10⁵) and beyond them (N ≥ 10⁶)."""
    small = [p for p in pts if p[0] <= 100_000]
    large = [p for p in pts if p[0] >= 1_000_000]
    return (fit_slope(small)[0] if len(small) >= 2 else float("nan"),
            fit_slope(large)[0] if len(large) >= 2 else float("nan"))


def split_influence(rows, policy):
    mine = [r for r in rows if r["policy"] == policy]
    if policy != "influence":
        return [(mine, "")]
    dims = sorted({r.get("embedding_dim", 0) for r in mine})
    return [([r for r in mine if r.get("embedding_dim", 0) == d], f" (d={d})") for d in dims]


def throughput_plot(dl, images, docs, plt):
    groups = []
    if dl:
        rows = {r["loader"]: r["samples_per_s"] for r in dl["rows"]}
        best = max(v for k, v in rows.items() if k.startswith("DataLoader"))
        groups.append(("IDX f32\n(pre-decoded)", rows.get("thresher, workers=2", 0), best))
    if images:
        for kind, label in (("png", "PNG folder\n28×28"), ("jpeg", "JPEG → RRC 224\n+ flip")):
            m = images["mean"].get(kind)
            if m:
                groups.append((label, m["thresher"], m["dataloader"]))
    if not groups:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    xs = range(len(groups))
    ax.bar([x - 0.2 for x in xs], [g[1] for g in groups], width=0.4, label="thresher, 2 workers")
    ax.bar([x + 0.2 for x in xs], [g[2] for g in groups], width=0.4,
           label="PyTorch DataLoader, num_workers=2 (fastest variant)")
    for x, g in zip(xs, groups):
        ax.text(x, max(g[1], g[2]) * 1.15, f"{g[1] / g[2]:.1f}×", ha="center")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([g[0] for g in groups])
    ax.set_yscale("log")
    ax.set_ylim(top=max(max(g[1], g[2]) for g in groups) * 4)
    ax.set_ylabel("samples/s (log)")
    ax.set_title("Loader throughput against PyTorch's DataLoader")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(os.path.join(docs, "throughput.png"), dpi=110)
    plt.close(fig)
    return True
