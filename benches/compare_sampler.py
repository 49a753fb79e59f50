"""thresher.torch.Sampler against torch's BatchSampler(RandomSampler), side by side in one run.

Both drive the same DataLoader over the same trivial map-style dataset (an item is its index),
batch 256, so what differs is the sampler: the per-batch overhead of planning, handing out ids
and booking the consumption. Rounds alternate between the two, and which of the two goes first
alternates too; the figure is the median of the
per-round times; with DataLoader workers they are persistent (started once, not every epoch).
Also the feedback call from Python: `sampler.weighted_loss` on a batch of 256
losses (validation, the C call and the weighted mean), against computing the plain mean.

    .venv/bin/python benches/compare_sampler.py [--json PATH] [--quick]

Goals (the issue's): per-batch overhead ≤ 5 %; the feedback call ≤ 20 µs per batch of 256.
"""

import json
import os
import statistics
import sys
import time

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
import thresher.torch  # noqa: E402

N = 60_000
BATCH = 256


class Trivial(Dataset):
    def __len__(self):
        return N

    def __getitem__(self, i):
        return i


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def epoch_time(loader, consume):
    start = time.perf_counter()
    batches = 0
    for _ in loader:
        consume()
        batches += 1
    return (time.perf_counter() - start) / batches


def overhead(workers, rounds):
    ds = Trivial()
    sampler = thresher.torch.Sampler(N, batch_size=BATCH, seed=0, policy={"kind": "full"})
    # Persistent workers: otherwise each epoch starts its worker processes afresh, the same
    # start-up for both samplers, and its spread (tens of ms an epoch) swamps the difference
    # being measured.
    persistent = workers > 0
    ours = DataLoader(ds, batch_sampler=sampler, num_workers=workers,
                      persistent_workers=persistent)
    torch_sampler = BatchSampler(RandomSampler(ds), batch_size=BATCH, drop_last=False)
    theirs = DataLoader(ds, batch_sampler=torch_sampler, num_workers=workers,
                        persistent_workers=persistent)
    a, b = [], []
    for r in range(rounds + 1):
        # Which goes first alternates (ABBA), so that neither always runs right after the
        # other's workers went idle.
        if r % 2:
            tb = epoch_time(theirs, lambda: None)
            ta = epoch_time(ours, sampler.consumed)
        else:
            ta = epoch_time(ours, sampler.consumed)
            tb = epoch_time(theirs, lambda: None)
        if r:  # the first round warms both up (worker start, page faults)
            a.append(ta)
            b.append(tb)
    sampler.close()
    ma, mb = statistics.median(a), statistics.median(b)
    return {"workers": workers, "thresher_us": ma * 1e6, "torch_us": mb * 1e6,
            "overhead": ma / mb - 1.0, "load": load()}


def feedback(calls):
    sampler = thresher.torch.Sampler(N, batch_size=BATCH, seed=0,
                                     policy={"kind": "infobatch", "prune": 0.5, "epochs": 10})
    full = torch.rand(BATCH)
    it = iter(sampler)
    times, plain = [], []
    for _ in range(calls):
        try:
            ids = next(it)
        except StopIteration:
            it = iter(sampler)
            ids = next(it)
        loss = full[: len(ids)]  # the epoch's last batch is shorter
        t = time.perf_counter()
        sampler.weighted_loss(loss)
        times.append(time.perf_counter() - t)
        t = time.perf_counter()
        loss.mean()
        plain.append(time.perf_counter() - t)
    sampler.close()
    return {"batch": BATCH, "calls": calls, "weighted_loss_us": statistics.median(times) * 1e6,
            "plain_mean_us": statistics.median(plain) * 1e6, "load": load()}


def main():
    quick = "--quick" in sys.argv
    out = {"overhead": [overhead(w, 3 if quick else 21) for w in (0, 2)],
           "feedback": feedback(500 if quick else 3000)}
    print(json.dumps(out, indent=1))
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
            json.dump(out, f, indent=1)


def section(data, goals):
    """The page's section for benches/report.py: lines, and the goal rows appended."""
    lines = ["## Your DataLoader with thresher's Sampler\n",
             "`thresher.torch.Sampler` against torch's `BatchSampler(RandomSampler)` driving the "
             "same `DataLoader` over a trivial dataset (an item is its index), batch 256, rounds "
             "alternating (and which goes first alternating too), median per-batch time, DataLoader workers persistent (started once: "
             "their start-up every epoch, the same for both, was noise that swamped the "
             "difference) (`benches/compare_sampler.py`); and the feedback "
             "call `sampler.weighted_loss` on 256 losses against a plain `loss.mean()`.\n",
             "| DataLoader workers | thresher µs/batch | torch µs/batch | overhead | load avg |",
             "|---:|---:|---:|---:|---:|"]
    for r in data["overhead"]:
        lines.append(f"| {r['workers']} | {r['thresher_us']:.1f} | {r['torch_us']:.1f} | "
                     f"{r['overhead'] * 100:+.1f} % | {r['load']:.2f} |")
        goals.append((f"Sampler per-batch overhead ≤ 5 % ({r['workers']} DataLoader workers)",
                      f"{r['overhead'] * 100:+.1f} %", r["load"], r["overhead"] <= 0.05))
    f = data["feedback"]
    lines.append("")
    lines.append(f"`weighted_loss` on {f['batch']} losses: {f['weighted_loss_us']:.1f} µs median "
                 f"over {f['calls']} calls (a plain `loss.mean()`: {f['plain_mean_us']:.1f} µs; "
                 f"load {f['load']:.2f}).\n")
    goals.append(("feedback from Python ≤ 20 µs per batch of 256 (`Sampler.weighted_loss`)",
                  f"{f['weighted_loss_us']:.1f} µs", f["load"], f["weighted_loss_us"] <= 20))
    return lines


if __name__ == "__main__":
    main()
