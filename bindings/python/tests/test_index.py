"""Index mode through the NumPy binding: batches without data, the whole-epoch plan, ending an
epoch early, advancing without building batches, and checkpoints at a consumer's position."""

from __future__ import annotations

import json

import numpy as np
import pytest

import thresher
from conftest import make_config

INFOBATCH = {"kind": "infobatch", "prune": 0.5, "epochs": 4}


def index_config(n: int = 1000, batch_size: int = 64, **more) -> dict:
    return {"source": {"kind": "index", "len": n}, "batch_size": batch_size, "seed": 11, **more}


def fake_loss(ids: np.ndarray) -> np.ndarray:
    # deterministic, spread out: below-mean ids exist for infobatch to prune
    return ((ids * 7919) % 1000 / 1000.0).astype(np.float32)


def test_index_batches_have_ids_weights_and_padding_but_no_data():
    with thresher.Loader(index_config(n=100, batch_size=32, world_size=3, rank=2)) as loader:
        assert loader.index_mode and len(loader.dataset) == 100
        batches = list(loader)
    assert len(batches) == 2  # 100 over 3 ranks, padded to whole steps of 3 × 32
    last = batches[-1]
    assert not last.has_data and last.padding > 0
    assert last.ids.dtype == np.uint64 and last.weights.dtype == np.float32
    assert (last.weights[len(last) - last.padding:] == 0).all()
    for field in ("data", "labels"):
        with pytest.raises(thresher.StateError, match="index mode"):
            getattr(last, field)
    # a data-source batch says it has data
    with thresher.Loader(make_config(limit=100)) as loader:
        b = loader.next()
        assert b.has_data and b.labels.shape == (64,)


@pytest.mark.parametrize("rank,world_size,drop_last", [(0, 1, False), (1, 3, False),
                                                       (0, 2, True)])
def test_epoch_plan_is_what_next_hands_out(rank, world_size, drop_last):
    cfg = index_config(n=1000, batch_size=64, rank=rank, world_size=world_size,
                       drop_last=drop_last, policy=INFOBATCH)
    kept = []
    with thresher.Loader(cfg) as loader:
        for epoch in range(3):
            plan = loader.epoch_plan()
            kept.append((plan.real, set(plan.weights[:plan.real].tolist())))
            assert plan.epoch == epoch and plan.batches == len(loader)
            assert plan.batch_size == 64 and len(plan) == len(plan.ids) == len(plan.weights)
            got = []
            for k, b in enumerate(loader):
                ids, weights, padding = plan.batch(k)
                assert np.array_equal(b.ids, ids) and np.array_equal(b.weights, weights)
                assert b.padding == padding
                got.append(b.ids.copy())
                real = len(b) - b.padding
                loader.feedback(b.ids[:real], fake_loss(b.ids[:real]))
            assert k + 1 == plan.batches
            assert np.array_equal(np.concatenate(got), plan.ids)
            assert (plan.weights[plan.real:] == 0).all()
    # epoch 1 of infobatch was pruned: fewer entries, weight 2 for the kept below-mean ones
    # epoch 0 keeps all: 1000 ids; rank 1 of 3 holds positions 1, 4, …, 997; with drop_last two
    # ranks hold 896 (7 whole steps of 2 × 64) between them
    share = {1: 1000, 3: 333, 2: 448}[world_size]
    assert kept[0] == (share, {1.0})
    assert kept[1][1] == {1.0, 2.0}
    # one rank of several feeds back its own share only, and with plan_ahead not its last
    # batch's: the rest is never seen and kept, and with drop_last the pruned epoch can still
    # fill as many whole steps (here 7 of 2 × 64) as the full one
    assert kept[1][0] < kept[0][0] or (drop_last and kept[1][0] == kept[0][0])


def test_epoch_plan_does_not_move_the_position():
    with thresher.Loader(index_config(n=300, batch_size=100)) as loader:
        loader.next()
        plan = loader.epoch_plan()
        assert loader.report()["delivered"] == 1
        assert np.array_equal(loader.next().ids, plan.batch(1)[0])
        with pytest.raises(IndexError):
            plan.batch(3)


def test_end_epoch_abandons_the_rest_and_keeps_the_feedback(tmp_path):
    report = tmp_path / "report.jsonl"
    with thresher.Loader(index_config(n=1000, batch_size=100, report=str(report),
                                      policy=INFOBATCH)) as loader:
        fed = []
        for _ in range(3):
            b = loader.next()
            loader.feedback(b.ids, fake_loss(b.ids))
            fed.append(b.ids.copy())
        before = loader.digest()["scores"]
        loader.end_epoch()
        loader.end_epoch()  # a no-op between epochs
        assert loader.digest()["scores"] == before  # feedback kept
        info = loader.epoch_info()
        assert info["epoch"] == 1
        # infobatch prunes among the 300 seen samples only: never-seen ones are always kept
        plan = loader.epoch_plan()
        unseen = np.setdiff1d(np.arange(1000), np.concatenate(fed))
        assert np.isin(unseen, plan.ids).all() and plan.real < 1000
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(r["epoch"], r["delivered"], r["batches"]) for r in lines] == [(0, 3, 10)]


def test_save_state_at_resumes_at_the_consumers_position(tmp_path):
    cfg = index_config(n=640, batch_size=64, policy=INFOBATCH)
    with thresher.Loader(cfg) as a:
        handed = [a.next() for _ in range(6)]  # a reader that fetched ahead of its trainer
        for b in handed[:2]:                    # the trainer consumed two
            a.feedback(b.ids, fake_loss(b.ids))
        a.save_state_at(tmp_path / "at2", 2)
        sd = a.state_dict(batches=2)
        with pytest.raises(thresher.InvalidArgument, match="handed out"):
            a.save_state_at(tmp_path / "at7", 7)
        with pytest.raises(thresher.InvalidArgument, match="batches must be an integer"):
            a.save_state_at(tmp_path / "neg", -1)
        assert not (tmp_path / "at7").exists()
        rest_of_epoch = [b.ids.copy() for b in handed[2:]] + [b.ids.copy() for b in iter(a.next, None)]
    with thresher.Loader({**cfg, "resume_from": str(tmp_path / "at2")}) as b:
        got = [x.ids.copy() for x in iter(b.next, None)]
    with thresher.Loader(cfg) as c:
        c.load_state_dict(sd)
        got_sd = [x.ids.copy() for x in c]  # load_state_dict: the `for` continues the epoch
    assert len(got) == len(got_sd) == len(rest_of_epoch) == 8
    for x, y, z in zip(got, got_sd, rest_of_epoch):
        assert np.array_equal(x, z) and np.array_equal(y, z)


def test_advance_moves_the_position_a_plan_reader_consumed(tmp_path):
    report = tmp_path / "report.jsonl"
    cfg = index_config(n=1000, batch_size=100)
    with thresher.Loader({**cfg, "report": str(report)}) as loader:
        plan = loader.epoch_plan()
        loader.advance(0)
        loader.advance(4)
        assert (loader.report()["epoch"], loader.report()["delivered"]) == (0, 4)
        # refused past the epoch's end, and for bad counts: the position is unchanged
        with pytest.raises(thresher.InvalidArgument, match="batches = 7"):
            loader.advance(7)
        for bad in (-1, 1.5, True, "2"):
            with pytest.raises(thresher.InvalidArgument, match="batches must be an integer"):
                loader.advance(bad)
        assert loader.report()["delivered"] == 4
        # a checkpoint and next() continue after the advanced batches
        sd = loader.state_dict()
        assert np.array_equal(loader.next().ids, plan.batch(4)[0])
        with thresher.Loader(cfg) as resumed:
            resumed.load_state_dict(sd)
            assert np.array_equal(next(iter(resumed)).ids, plan.batch(4)[0])
        loader.advance(5)  # the rest at once
        assert loader.next() is None
        r = loader.report()
        assert (r["delivered"], r["saved_fraction"]) == (10, 0.0)
        loader.advance(1)  # between epochs it begins the next one
        assert (loader.report()["epoch"], loader.report()["delivered"]) == (1, 1)
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(r["epoch"], r["delivered"], r["batches"]) for r in lines][0] == (0, 10, 10)
    with thresher.Loader(make_config(limit=100)) as data:
        with pytest.raises(thresher.StateError, match="index mode"):
            data.advance(1)


@pytest.mark.parametrize("world_size", [1, 3])
@pytest.mark.parametrize("policy", [
    {"kind": "ucb", "budget": 0.4, "epochs": 5},
    {"kind": "infobatch", "budget": 0.6, "epochs": 5},
    {"kind": "el2n", "score_epochs": 1, "budget": 0.4, "epochs": 5},
    {"kind": "random", "budget": 0.3, "epochs": 5},
])
def test_total_batches_before_training_equals_batches_delivered(policy, world_size):
    n = 1000
    loaders = [thresher.Loader(index_config(n=n, batch_size=32, world_size=world_size, rank=r,
                                            policy=policy)) for r in range(world_size)]
    totals = [lo.total_batches for lo in loaders]
    delivered = [0] * world_size
    samples = 0
    for _ in range(5):
        samples += loaders[0].epoch_info()["samples"]
        while True:
            batches = [lo.next() for lo in loaders]
            if batches[0] is None:
                break
            for r, b in enumerate(batches):
                delivered[r] += 1
                real = np.asarray(b.ids)[: len(b.ids) - b.padding]
                for lo in loaders:
                    lo.feedback(real, fake_loss(real), el2n=fake_loss(real))
    assert totals == delivered
    assert samples == round(policy["budget"] * 5 * n)
    for lo in loaders:
        lo.close()


def test_total_batches_is_refused_when_feedback_decides_it():
    with thresher.Loader(index_config(policy={"kind": "ucb", "prune": 0.5})) as loader:
        with pytest.raises(thresher.StateError, match="policy.budget"):
            loader.total_batches


def test_unlearnable_fraction_warns_when_a_policy_keeps_misclassified_samples():
    # ids below 300 are always misclassified and have the highest loss: the paper's UCB keeps
    # them all (300 of the 500 it keeps); the guarded one ranks them last in its top share.
    # plan_ahead off: the plan of epoch 2 sees both epochs' reports of every sample.
    def run(policy):
        lo = thresher.Loader(index_config(n=1000, batch_size=100, policy=policy,
                                          plan_ahead=False))
        assert lo.unlearnable_fraction != lo.unlearnable_fraction  # NaN before any report
        for _ in range(2):
            for b in lo:
                ids = np.asarray(b.ids)
                loss = np.where(ids < 300, 5.0, 1.0 - ids / 1000.0).astype(np.float32)
                lo.feedback(ids, loss, correct=(ids >= 300).astype(np.uint8))
        return lo

    paper = run({"kind": "ucb", "prune": 0.5, "noise_guard": False})
    with pytest.warns(thresher.NoisyLabelsWarning, match="60.0%"):
        iter(paper)
    assert paper.unlearnable_fraction == pytest.approx(0.6)
    guarded = run({"kind": "ucb", "prune": 0.5})
    # the guarded top share (250 of the 500 kept) holds none of them; its random share draws
    # the other 250 from the 750 judged samples outside it, 300 of them flagged: about 100
    # come back (at weight 1), so a fifth of the kept samples still look unlearnable -- with
    # 30 % of the data never learned, the warning is due
    with pytest.warns(thresher.NoisyLabelsWarning):
        iter(guarded)
    assert 0.1 <= guarded.unlearnable_fraction <= 0.3
    assert guarded.unlearnable_fraction < paper.unlearnable_fraction / 2
    # with a share of 0.1 (and the rest by score) the warning stays quiet
    quiet = run({"kind": "ucb", "prune": 0.5, "explore": 0.1})
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        iter(quiet)
    assert 0.0 <= quiet.unlearnable_fraction <= 0.1
    quiet.close()
    with thresher.Loader(index_config(policy={"kind": "random"})) as lo:
        assert lo.unlearnable_fraction != lo.unlearnable_fraction
    paper.close()
    guarded.close()
