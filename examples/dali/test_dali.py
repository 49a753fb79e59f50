"""The DALI example end to end (`make test-dali`): 2,000 Fashion-MNIST PNGs in a temporary
folder, read by a CPU-only DALI pipeline whose external source follows thresher's index-mode
plan, 3 epochs of InfoBatch with per-sample feedback by id.

Checked per epoch: the files read are exactly thresher's plan for that epoch (every kept id
once, in plan order) and exactly what the trainer received; batches and samples equal
epoch_info (known before batch 0) and the report; the epochs after the first are pruned as
InfoBatch's rule says, recomputed here from the losses that were fed back; the loss falls.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

if os.environ.get("THRESHER_REQUIRE_DALI"):
    import nvidia.dali  # noqa: F401  (make test-dali installs it: fail, never skip, there)
else:
    pytest.importorskip("nvidia.dali")
torch = pytest.importorskip("torch")

import dali_train  # noqa: E402

N, EPOCHS, BATCH, PRUNE = 2000, 3, 64, 0.5


def _round_half_up(x: float) -> int:
    # docs/policies.md, infobatch step 3: round(x + 1e-12|x| + 1e-9), halves up.
    return math.floor(x + 1e-12 * abs(x) + 1e-9 + 0.5)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    if not (dali_train.FMNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST not found at {dali_train.FMNIST} (run `make setup`)")
    root = tmp_path_factory.mktemp("fmnist-png")
    t0 = time.perf_counter()
    labels = dali_train.prepare_dataset(root, N, "png")
    print(f"prepare {time.perf_counter() - t0:.1f} s")
    assert len(list(root.glob("*.png"))) == N
    return root, labels


def _train(root, prefetch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        result = dali_train.train(root, epochs=EPOCHS, batch_size=BATCH, seed=3, prune=PRUNE,
                                  anneal=1.0, prefetch=prefetch)
        print(f"train (prefetch {prefetch}) {time.perf_counter() - t0:.1f} s")
    finally:
        torch.set_num_threads(threads)
    return result


@pytest.fixture(scope="module")
def run(images):
    root, labels = images
    result = _train(root, prefetch=2)
    result["labels"] = labels
    return result


def test_every_planned_id_is_read_once_and_delivered(run):
    for e, rec in enumerate(run["epochs"]):
        plan = rec["plan"]  # thresher.EpochPlan, taken before the epoch's batch 0
        assert plan.epoch == e and plan.batches == rec["steps"] and plan.padding == 0
        plan_ids, plan_weights = plan.ids.astype(np.int64), plan.weights
        reads = np.asarray(rec["reads"])
        assert len(np.unique(reads)) == len(reads), f"epoch {e}: an id was read twice"
        # The files read are this epoch's plan, in order, and nothing else.
        np.testing.assert_array_equal(reads, plan_ids, err_msg=f"epoch {e}")
        # The trainer got exactly those samples, with the plan's weights (DALI's prefetch
        # reordered nothing and lost nothing).
        np.testing.assert_array_equal(rec["ids"], plan_ids, err_msg=f"epoch {e}")
        np.testing.assert_array_equal(rec["weights"], plan_weights, err_msg=f"epoch {e}")


def test_epoch_lengths_match_epoch_info_and_report(run):
    for e, rec in enumerate(run["epochs"]):
        info, report = rec["info"], rec["report"]
        assert info["epoch"] == e and report["epoch"] == e
        assert rec["steps"] == info["batches"] == report["batches"] == report["delivered"]
        assert len(rec["ids"]) == info["samples"] == report["samples"]
        assert info["batches"] == math.ceil(info["samples"] / BATCH)
        assert info["dataset_len"] == N
        assert report["prune_fraction"] == pytest.approx(1 - info["samples"] / N)


def test_pruning_follows_infobatch(run):
    epochs = run["epochs"]
    first = epochs[0]
    # Epoch 0: nothing seen yet, so every id at weight 1.
    assert sorted(first["ids"].tolist()) == list(range(N))
    assert np.all(first["weights"] == 1.0)
    assert first["report"]["prune_fraction"] == 0.0

    last_loss = np.full(N, np.nan, dtype=np.float32)
    saved_visits = N - len(first["ids"])
    for e in range(1, EPOCHS):
        prev = epochs[e - 1]
        last_loss[prev["ids"]] = prev["losses"]  # the ScoreBook's loss_last (f32)
        rec = epochs[e]
        # InfoBatch (anneal 1.0: every epoch before E is pruned): W = ids strictly below the
        # mean loss; D = round(r |W|) of them dropped; kept members of W weigh 1/(1 - r).
        mu = float(np.mean(last_loss.astype(np.float64)))
        below = last_loss < mu
        dropped = _round_half_up(PRUNE * int(below.sum()))
        kept = np.zeros(N, dtype=bool)
        kept[rec["ids"]] = True
        assert kept.sum() == len(rec["ids"]) == N - dropped, f"epoch {e}"
        assert not np.any(~kept & ~below), f"epoch {e}: an id at or above the mean was dropped"
        expected_w = np.where(below[rec["ids"]], 1.0 / (1.0 - PRUNE), 1.0).astype(np.float32)
        np.testing.assert_allclose(rec["weights"], expected_w, rtol=1e-6)
        report = rec["report"]
        assert report["prune_fraction"] == pytest.approx(dropped / N)
        assert 0.1 < report["prune_fraction"] < PRUNE
        assert report["mean_weight"] == pytest.approx(float(expected_w.mean()), rel=1e-6)
        assert report["score_mean"] == pytest.approx(mu, rel=1e-5)
        saved_visits += N - len(rec["ids"])
        assert report["saved_fraction"] == pytest.approx(saved_visits / ((e + 1) * N))


def test_labels_travel_with_their_ids(run):
    # The label DALI delivered beside each decoded image is that id's label.
    for e, rec in enumerate(run["epochs"]):
        np.testing.assert_array_equal(rec["labels"], run["labels"][rec["ids"]],
                                      err_msg=f"epoch {e}")


def test_loss_falls(run):
    held = run["held_out"]
    assert held[-1][0] < 0.5 * held[0][0], held  # cross-entropy on 1,000 test images
    assert held[-1][1] > 0.55, held  # their accuracy; chance is 0.1
    train_losses = [rec["train_loss"] for rec in run["epochs"]]
    assert train_losses[-1] < train_losses[0], train_losses


def test_prefetch_depth_changes_nothing(run, images):
    # The callback runs 3 batches ahead instead of 2: feedback arrives later within each epoch,
    # but all of it is in before the next plan, so every epoch's plan is the same.
    other = _train(images[0], prefetch=3)
    for e, (a, b) in enumerate(zip(run["epochs"], other["epochs"])):
        np.testing.assert_array_equal(a["plan"].ids, b["plan"].ids, err_msg=f"epoch {e}")
        np.testing.assert_array_equal(a["plan"].weights, b["plan"].weights,
                                      err_msg=f"epoch {e}")
