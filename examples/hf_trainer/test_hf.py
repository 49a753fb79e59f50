"""The Hugging Face example end to end (`make test-hf`): transformers.Trainer with
thresher.torch.Sampler as its batch sampler and the sampler's weighted loss, on a tiny
randomly initialised BERT and a synthetic text data set, 2 epochs of InfoBatch. Nothing is
downloaded (HF_HUB_OFFLINE=1).

Checked: training runs through both epochs, every training batch's losses are booked, each
epoch has as many batches as len(sampler) said before it began and as the report says, epoch 0
is full data and epoch 1 pruned (report), and the loss falls."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

if os.environ.get("THRESHER_REQUIRE_HF"):
    import accelerate  # noqa: F401  (make test-hf installs them: fail, never skip, there)
    import datasets  # noqa: F401
    import transformers  # noqa: F401
else:
    for name in ("transformers", "datasets", "accelerate"):
        pytest.importorskip(name)
torch = pytest.importorskip("torch")

import hf_train  # noqa: E402

N, EPOCHS, BATCH = 2000, 2, 32


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        result = hf_train.train(str(tmp_path_factory.mktemp("hf-out")), n_train=N, epochs=EPOCHS,
                                batch_size=BATCH, seed=1)
        print(f"hf example: {time.perf_counter() - t0:.1f} s")
    finally:
        torch.set_num_threads(threads)
    return result


def test_trains_through_every_epoch_and_books_every_batch(run):
    epochs = run["epochs"]
    assert len(epochs) == EPOCHS
    batches = [e["report"]["batches"] for e in epochs]
    # Every optimiser step was one batch whose losses went through sampler.weighted_loss.
    assert run["global_step"] == sum(batches) == run["booked_batches"]
    assert run["pending"] == 0
    for i, e in enumerate(epochs):
        r = e["report"]
        assert r["epoch"] == i
        assert e["len"] == r["batches"] == r["delivered"], f"epoch {i}"
        ids = e["ids"]
        assert len(ids) == len(set(ids)) == r["samples"], f"epoch {i}: an id twice or missing"
        assert r["batches"] == -(-r["samples"] // BATCH)
    assert sorted(epochs[0]["ids"]) == list(range(N))


def test_pruning_shows_in_the_report(run):
    first, second = (e["report"] for e in run["epochs"])
    assert first["prune_fraction"] == 0.0 and first["mean_weight"] == 1.0
    # InfoBatch (r = 0.5, anneal 1.0): about half of the below-mean-loss samples dropped, the
    # rest weighted 2.
    assert 0.05 < second["prune_fraction"] < 0.5
    assert second["samples"] == N - round(second["prune_fraction"] * N)
    assert second["batches"] < first["batches"]
    assert 1.0 < second["mean_weight"] < 2.0
    assert second["saved_fraction"] == pytest.approx(second["prune_fraction"] / 2)


def test_loss_falls(run):
    assert run["eval_after"] < 0.7 * run["eval_before"], (run["eval_before"], run["eval_after"])
    losses = run["train_losses"]
    assert losses[-1] < losses[0], losses
