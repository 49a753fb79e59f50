"""Per policy of a cell: Δ test accuracy vs random at the same visits (random from the cell, or
from REFDIR), mean ± standard error over the paired seeds, seeds at or above random, and, when
the cell has `epsilon_greedy:explore=1`, each policy paired against those passes.
usage: python3 tab2.py CELL [REFDIR]"""
import json
import statistics as st
import sys

PASSES = 'epsilon_greedy:explore=1'


def load(d):
    out = {}
    for p in json.load(open(d + '/compare.json')):
        out[p['policy']] = {r.get('seed', i): r['epochs'][-1]['test_acc'] for i, r in enumerate(p['runs'])}
    return out


def paired(v, ref):
    dl = [v[k] - ref[k] for k in sorted(v)]
    se = st.stdev(dl) / len(dl) ** 0.5 if len(dl) > 1 else 0.0
    return sum(dl) / len(dl), se, dl


a = load(sys.argv[1])
ref = load(sys.argv[2])['random'] if len(sys.argv) > 2 else a['random']
for p, v in a.items():
    if p == 'random':
        print(f"{p:30s} acc={sum(v.values()) / len(v):.2f}")
        continue
    m, se, dl = paired(v, ref)
    line = (f"{p:30s} acc={sum(v.values()) / len(v):.2f} d={m:+.2f} se={se:.2f} "
            f"at_or_above={sum(x >= 0 for x in dl)}/{len(dl)}")
    if PASSES in a and p != PASSES:
        pm, pse, _ = paired(v, a[PASSES])
        line += f" vs_passes={pm:+.2f} se={pse:.2f}"
    print(line + " [" + ", ".join(f"{x:+.2f}" for x in dl) + "]")
