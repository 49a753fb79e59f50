"""No memory growth: 2,000 batches through the NumPy and the torch loader, every field read
and feedback given each step, leave the resident set where it was after warm-up."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest

import thresher
from conftest import make_config

PAGE = os.sysconf("SC_PAGE_SIZE")
BATCHES = 2000
WARMUP = 300
# Allocator noise, not growth: leaking one 32-sample batch (100 KB of float32 pixels) per step
# would add ~200 MB over the run.
LIMIT_BYTES = 4 << 20


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def run(loader, steps: int, torch_mod=None) -> None:
    done = 0
    while done < steps:
        for batch in loader:
            x, y, ids, w = batch.data, batch.labels, batch.ids, batch.weights
            assert x.shape[0] == len(y) == len(ids) == len(w)
            if torch_mod is not None:
                loss = torch_mod.nn.functional.cross_entropy(
                    x.flatten(1)[:, :10], y, reduction="none")
            else:
                loss = np.abs(x.reshape(len(x), -1)[:, :10].mean(axis=1)) + 0.1
            loader.feedback(ids, loss, correct=(y == 0))
            done += 1
            if done % 7 == 0:
                batch.release()  # explicit release, mixed with release by the GC
            if done == steps:
                return


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
@pytest.mark.parametrize("flavour", ["numpy", "torch"])
def test_no_growth_over_2000_batches(flavour):
    torch_mod = None
    cls = thresher.Loader
    if flavour == "torch":
        torch_mod = pytest.importorskip("torch")
        import thresher.torch as tt

        cls = tt.Loader
    config = make_config(limit=5000, batch_size=32,
                         policy={"kind": "infobatch", "prune": 0.5, "epochs": 1000})
    with cls(config) as loader:
        run(loader, WARMUP, torch_mod)
        gc.collect()
        before = rss()
        run(loader, BATCHES, torch_mod)
        gc.collect()
        after = rss()
    growth = after - before
    assert growth < LIMIT_BYTES, f"RSS grew by {growth / 2**20:.1f} MiB over {BATCHES} batches"


def test_many_loaders_do_not_leak():
    config = make_config(limit=500, batch_size=100, workers=2)
    for _ in range(3):
        with thresher.Loader(config) as loader:
            list(loader)
    gc.collect()
    before = rss()
    for _ in range(10):
        loader = thresher.Loader(config)
        for batch in loader:
            loader.feedback(batch.ids, np.ones(len(batch)))
        loader.state_dict()
        del loader  # closed by the garbage collector, not close()
    gc.collect()
    growth = rss() - before
    assert growth < LIMIT_BYTES * 2, f"RSS grew by {growth / 2**20:.1f} MiB over 10 loaders"
