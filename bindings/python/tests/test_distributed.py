"""Two ranks on torch.distributed (gloo, CPU, mp.spawn) train the small CNN on a Fashion-MNIST
subset with InfoBatch: every epoch both ranks hold the same plan and ScoreBook (digests),
their shards are disjoint and cover the plan, their batch counts are equal, and the accuracy
is within noise of one process at the same global batch."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

import dist_worker  # noqa: E402

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="torch without gloo"
)

PER_RANK_BATCH = 32


def load(path):
    with open(path) as f:
        return json.load(f)


def test_two_ranks_share_one_plan_and_train_like_one(tmp_path):
    mp.spawn(dist_worker.train, args=(2, PER_RANK_BATCH, str(tmp_path / "rv"), str(tmp_path)),
             nprocs=2, join=True)
    # The same global batch (2 × 32) in one process, here.
    single_dir = tmp_path / "single"
    single_dir.mkdir()
    dist_worker.train(0, 1, 2 * PER_RANK_BATCH, "", str(single_dir))
    ranks = [load(tmp_path / f"rank{r}.json") for r in range(2)]
    single = load(single_dir / "rank0.json")

    any_padding = False
    for epoch, (e0, e1, e1p) in enumerate(zip(ranks[0]["epochs"], ranks[1]["epochs"],
                                               single["epochs"])):
        assert e0["digest"] == e1["digest"], f"epoch {epoch}"
        assert e0["digest"]["epoch"] == epoch
        assert e0["info"] == e1["info"]
        assert e0["batches"] == e1["batches"] == e0["info"]["batches"]
        samples = e0["info"]["samples"]
        assert not set(e0["ids"]) & set(e1["ids"]), f"epoch {epoch}: shards overlap"
        assert len(e0["ids"]) + len(e1["ids"]) == samples
        assert len(set(e0["ids"]) | set(e1["ids"])) == samples
        # Whole steps: every rank's batches are full, the last one padded.
        assert e0["batches"] * 2 * PER_RANK_BATCH == samples + e0["padding"] + e1["padding"]
        assert e0["fed"] == e1["fed"] == samples
        any_padding |= e0["padding"] + e1["padding"] > 0
        # One process at the same global batch delivers the same number of steps.
        assert abs(e1p["batches"] - e0["batches"]) <= 2
    assert any_padding, "no epoch needed padding: the variable-length gather went untested"
    # InfoBatch pruned (epoch 1 keeps fewer than the 4000), on both ranks alike.
    assert ranks[0]["epochs"][1]["info"]["samples"] < dist_worker.LIMIT

    two, one = ranks[0]["accuracy"], single["accuracy"]
    print(f"\ntest accuracy: 2 ranks x {PER_RANK_BATCH} {two:.4f}, 1 process x "
          f"{2 * PER_RANK_BATCH} {one:.4f}; samples per epoch "
          f"{[e['info']['samples'] for e in ranks[0]['epochs']]}, padding per epoch "
          f"{[a['padding'] + b['padding'] for a, b in zip(*(r['epochs'] for r in ranks))]}")
    assert one > 0.7 and two > 0.7, (one, two)
    assert abs(two - one) < 0.03, f"2 ranks {two:.3f} vs 1 process {one:.3f}"


def test_mismatched_fields_raise_on_every_rank(tmp_path):
    mp.spawn(dist_worker.mismatched_fields, args=(2, str(tmp_path / "rv"), str(tmp_path)),
             nprocs=2, join=True)
    for r in range(2):
        got = load(tmp_path / f"mismatch{r}.json")
        assert got["outcome"].startswith("InvalidArgument"), got
        assert "different feedback fields" in got["outcome"], got


def test_samplers_gather_feedback_across_ranks(tmp_path):
    mp.spawn(dist_worker.samplers, args=(2, str(tmp_path / "rv"), str(tmp_path)), nprocs=2,
             join=True)
    ranks = [load(tmp_path / f"sampler{r}.json") for r in range(2)]
    samples = []
    for epoch, (e0, e1) in enumerate(zip(ranks[0]["epochs"], ranks[1]["epochs"])):
        assert e0["digest"] == e1["digest"], f"epoch {epoch}"  # every rank saw all feedback
        assert e0["len"] == e1["len"] == e0["steps"] == e1["steps"]
        assert not set(e0["ids"]) & set(e1["ids"])
        assert len(e0["ids"]) + len(e1["ids"]) == e0["samples"]
        samples.append(e0["samples"])
    assert samples[0] == 600 and samples[1] < 600 and samples[2] == 600  # pruned, annealed
    for epoch, (i0, i1) in enumerate(zip(ranks[0]["infobatch"], ranks[1]["infobatch"])):
        assert i0["digest"] == i1["digest"]
        assert i0["len"] == i1["len"] == i0["seen"] == i1["seen"]
    assert ranks[0]["infobatch"][0]["len"] == 151  # 301 over 2 ranks, padded by one
    assert ranks[0]["infobatch"][1]["len"] < 151
