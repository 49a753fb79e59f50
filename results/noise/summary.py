"""Summary of results/noise/: final test accuracy per policy and setting (mean ± sample std over
the seeds), its difference to random pruning at the same budget and seed (mean of the
per-seed differences), and to full data. Reads the compare.json of each
<labels>-budget<b>-<part> folder; `full` is shared by both budgets of a label setting."""
import glob, json, os, statistics as st, sys

HERE = os.path.dirname(os.path.abspath(__file__))
acc = {}  # (labels, budget, policy) -> {seed: acc}
for path in sorted(glob.glob(os.path.join(HERE, "*-budget*-*", "compare.json"))):
    labels, rest = os.path.basename(os.path.dirname(path)).split("-budget")
    budget = rest.split("-")[0]
    for p in json.load(open(path)):
        for r in p["runs"]:
            acc.setdefault((labels, budget, p["policy"]), {})[r["seed"]] = r["final_test_acc"]
for (labels, budget, policy), v in list(acc.items()):
    if policy == "full":
        for b in {k[1] for k in acc if k[0] == labels}:
            acc.setdefault((labels, b, "full"), v)

LABELS = {"clean": "clean", "sym20": "20 % symmetric", "pairs30": "30 % pairs"}
ORDER = ["full", "random", "infobatch", "epsilon_greedy", "ucb", "el2n", "grand", "forgetting",
         "influence"]
settings = sorted({(k[0], k[1]) for k in acc}, key=lambda s: (list(LABELS).index(s[0]), -float(s[1])))


def cell(labels, budget, policy):
    v = acc.get((labels, budget, policy))
    if not v:
        return "—"
    vals = [v[s] for s in sorted(v)]
    m = st.mean(vals)
    sd = st.stdev(vals) if len(vals) > 1 else 0.0
    out = f"{m:.2f} ± {sd:.2f}"
    if len(vals) < NSEEDS:
        out += f" [{len(vals)} seed{'s' if len(vals) > 1 else ''}]"
    extra = []
    for ref in ("random", "full"):
        r = acc.get((labels, budget, ref))
        if policy != ref and r and set(v) <= set(r):
            extra.append(f"{st.mean(v[s] - r[s] for s in v):+.2f}")
        elif policy != ref:
            extra.append("")
    if policy not in ("random", "full"):
        out += f" ({extra[0]} / {extra[1]})"
    elif policy == "random":
        out += f" (— / {extra[0]})" if extra and extra[0] else ""
    return out


print("Final test accuracy %, mean ± std over seeds "  # noqa: E501
      + ", ".join(str(s) for s in sorted({s for v in acc.values() for s in v}))
      + "; in brackets: Δ vs random at the same visits / Δ vs full (means of per-seed differences).\n")
NSEEDS = len({s for v in acc.values() for s in v})
policies = [p for p in ORDER if any(k[2] == p for k in acc)]
policies += sorted({k[2] for k in acc} - set(policies))
print("| policy | " + " | ".join(f"{LABELS.get(l, l)}, budget {b}" for l, b in settings) + " |")
print("|---|" + "---:|" * len(settings))
for p in policies:
    print(f"| {p} | " + " | ".join(cell(l, b, p) for l, b in settings) + " |")
