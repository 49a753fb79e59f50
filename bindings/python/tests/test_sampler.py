"""thresher.torch.Sampler with an ordinary torch DataLoader over map-style datasets (Fashion-MNIST
read by a torch Dataset, a Hugging Face datasets.Dataset): training, the plan, exact resume
while workers prefetch, DataLoader's epoch semantics, several ranks."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

import thresher  # noqa: E402
import thresher.torch as tt  # noqa: E402
from fmnist import FashionMNIST  # noqa: E402
from test_training import small_cnn  # noqa: E402

EPOCHS = 3
INFOBATCH = {"kind": "infobatch", "prune": 0.5, "epochs": EPOCHS}


def fake_loss(x: torch.Tensor) -> torch.Tensor:
    """A per-sample 'loss' that depends on the sample alone: feedback is the same in every run,
    and spread out, so infobatch has below-mean samples to prune."""
    return x.flatten(1).mean(1).float() + 1.0


def test_training_through_your_dataloader_prunes_and_learns():
    torch.manual_seed(0)
    data = FashionMNIST(3000)
    sampler = tt.Sampler(len(data), batch_size=64, seed=0, policy=INFOBATCH)
    loader = DataLoader(tt.WithIds(data, sampler), batch_sampler=sampler, num_workers=2)
    # The planner driven directly, fed the same feedback: the batches the trainer sees must be
    # exactly the ones it hands out.
    twin = thresher.Loader({"source": {"kind": "index", "len": 3000}, "batch_size": 64,
                            "seed": 0, "policy": INFOBATCH})
    model = small_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    mean_loss, fractions, weights_seen = [], [], []
    for epoch in range(EPOCHS):
        batches = len(sampler)  # known before the epoch, for LR schedules
        plan = sampler.epoch_plan()
        assert plan.epoch == epoch and plan.batches == batches == len(loader)
        seen, total, weights = [], 0.0, set()
        for ids, (x, y) in loader:
            expected = twin.next()
            assert np.array_equal(ids.numpy(), expected.ids.astype(np.int64))
            assert np.array_equal(sampler.pending.weights.numpy(), expected.weights)
            weights.update(sampler.pending.weights.unique().tolist())
            per_sample = F.cross_entropy(model(x), y, reduction="none")
            loss = sampler.weighted_loss(per_sample, ids=ids)
            twin.feedback(ids, per_sample)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen.append(ids.numpy())
            total += per_sample.sum().item()
        assert twin.next() is None
        seen = np.concatenate(seen)
        report = sampler.report()
        # each kept id exactly once, in the plan's order; as many batches as len() said
        assert len(seen) == len(np.unique(seen)) == plan.real == report["samples"]
        assert np.array_equal(seen, plan.ids.astype(np.int64))
        assert report["epoch"] == epoch and report["delivered"] == report["batches"] == batches
        assert sampler.num_pending == 0
        mean_loss.append(total / len(seen))
        fractions.append(report["prune_fraction"])
        weights_seen.append(weights)
    print(f"mean loss per epoch {mean_loss}, prune fractions {fractions}")
    assert mean_loss[-1] < mean_loss[0] * 0.8, mean_loss
    assert fractions[0] == 0.0 and weights_seen[0] == {1.0}
    assert 0.1 < fractions[1] < 0.5 and weights_seen[1] == {1.0, 2.0}  # pruned, re-weighted
    assert fractions[2] == 0.0 and weights_seen[2] == {1.0}  # annealing: epoch ⌊0.875·3⌋ = 2
    test = DataLoader(FashionMNIST(1000, train=False), batch_size=500)
    with torch.no_grad():
        right = sum((model(x).argmax(1) == y).sum().item() for x, y in test)
    assert right / 1000 > 0.65


def _trace(sampler, loader, loops, stop_at=None):
    """Trains `loops` passes over `loader` with fake losses; returns what the trainer saw,
    [(epoch, batch index, ids, weights)]. Returns early right after the batch `stop_at` =
    (epoch, index) was consumed."""
    out = []
    for _ in range(loops):
        for ids, (x, _) in loader:
            p = sampler.pending
            out.append((p.epoch, p.index, ids.tolist(), p.weights.tolist()))
            sampler.weighted_loss(fake_loss(x))
            if stop_at == (p.epoch, p.index):
                return out
    return out


def test_state_dict_resumes_exactly_while_workers_prefetch():
    data = tt.WithIds(FashionMNIST(600))
    config = dict(batch_size=32, seed=3, policy=INFOBATCH)

    def make():
        s = tt.Sampler(600, **config)
        return s, DataLoader(data, batch_sampler=s, num_workers=2)

    # the uninterrupted run
    a, la = make()
    full = _trace(a, la, EPOCHS)
    assert [e for e, *_ in full] == sorted(e for e, *_ in full) and full[-1][0] == 2

    # the same run, with state dicts taken at the end of epoch 0 and in the middle of epoch 1
    b, lb = make()
    head = _trace(b, lb, 1)
    boundary = b.state_dict()
    head += _trace(b, lb, 1, stop_at=(1, 4))
    assert b.num_pending > 0, "the DataLoader did not prefetch: the test tests nothing"
    assert b.report()["delivered"] == 5 + b.num_pending
    mid = b.state_dict()
    prefetched = b.loader.state_dict()  # at the DataLoader's position: the wrong one
    assert head == full[: len(head)]

    epoch0 = len([t for t in full if t[0] == 0])
    for state, skip in ((mid, len(head)), (boundary, epoch0)):
        c, lc = make()
        c.load_state_dict(state)
        # the next iter() continues the saved epoch (or begins the next after a complete
        # one), and the run goes on exactly as the original: ids, order, weights, scores
        rest = _trace(c, lc, 2)
        assert rest == full[skip:]
        assert c.digest() == a.digest()

    # control: resuming at the DataLoader's position skips the prefetched batches
    d, ld = make()
    d.load_state_dict(prefetched)
    assert _trace(d, ld, 1)[0] != full[len(head)]


def test_a_new_iter_after_break_begins_the_next_epoch(tmp_path):
    report = tmp_path / "report.jsonl"
    s = tt.Sampler(640, batch_size=32, seed=1, report=report)
    dl = DataLoader(tt.WithIds(FashionMNIST(640)), batch_sampler=s, num_workers=2)
    for step, (ids, (x, _)) in enumerate(dl):
        s.weighted_loss(fake_loss(x))
        if step == 2:
            break
    assert s.num_pending > 0  # prefetched, never consumed
    assert len(s) == 20  # mid-epoch: the epoch under way
    second = []
    for ids, (x, _) in dl:
        assert s.pending.epoch == 1
        s.weighted_loss(fake_loss(x))
        second.append(ids)
    assert sorted(torch.cat(second).tolist()) == list(range(640))
    line = json.loads(report.read_text().splitlines()[0])
    # epoch 0 ended at the batches handed to the DataLoader (prefetch included)
    assert line["epoch"] == 0 and 3 <= line["delivered"] < 20 and line["batches"] == 20


def test_resume_epoch_continues_from_the_first_unconsumed_batch():
    s = tt.Sampler(640, batch_size=32, seed=1)
    dl = DataLoader(tt.WithIds(FashionMNIST(640)), batch_sampler=s, num_workers=2)
    first = []
    for step, (ids, (x, _)) in enumerate(dl):
        s.weighted_loss(fake_loss(x))
        first.append(ids)
        if step == 2:
            break
    assert s.num_pending > 0
    s.resume_epoch()
    rest = [ids for ids, _ in _consume(s, dl)]
    assert s.report()["epoch"] == 0
    both = torch.cat(first + rest).tolist()
    assert len(both) == 640 and sorted(both) == list(range(640))  # the prefetched ones again


def _consume(sampler, dl):
    for ids, (x, y) in dl:
        sampler.weighted_loss(fake_loss(x))
        yield ids, y


def test_end_epoch_and_len_after_break():
    policy = {"kind": "infobatch", "prune": 0.5, "epochs": 4}
    s = tt.Sampler(640, batch_size=32, seed=1, policy=policy)
    dl = DataLoader(tt.WithIds(FashionMNIST(640)), batch_sampler=s, num_workers=0)
    for step, _ in enumerate(_consume(s, dl)):
        if step == 9:
            break
    assert len(s) == 20 and s.epoch == 0
    s.end_epoch()
    # the next epoch, planned from the 320 samples seen: some of them pruned
    assert s.epoch == 1 and len(s) < 20
    n = len(s)
    assert sum(1 for _ in _consume(s, dl)) == n
    s.end_epoch()
    s.end_epoch()  # nothing begun since: a no-op
    assert s.epoch == 2


def test_persistent_workers_and_breaks():
    # persistent workers: the same DataLoader iterator is reset each epoch (iter(sampler) anew)
    s = tt.Sampler(320, batch_size=32, seed=6)
    dl = DataLoader(tt.WithIds(FashionMNIST(320)), batch_sampler=s, num_workers=2,
                    persistent_workers=True)
    for epoch in range(3):
        plan = s.epoch_plan()
        assert plan.epoch == epoch
        seen = []
        for step, (ids, (x, _)) in enumerate(dl):
            s.weighted_loss(fake_loss(x), ids=ids)
            seen.append(ids)
            if epoch == 1 and step == 4:
                break
        seen = torch.cat(seen).numpy()
        assert np.array_equal(seen, plan.ids[: len(seen)].astype(np.int64))
        assert len(seen) == (160 if epoch == 1 else 320)
        if epoch == 1:
            assert s.epoch == 1  # left early: still the epoch under way ...
            s.end_epoch()        # ... until ended (the next iter() would end it too)


def test_thresher_torch_loader_keeps_dataloader_conventions(config):
    cfg = config(limit=640, batch_size=64)
    with tt.Loader(cfg) as loader:
        assert len(loader.dataset) == 640 and loader.batch_size == 64 and not loader.drop_last
        assert len(loader) == 10
        for i, batch in enumerate(loader):
            if i == 3:
                break
        assert sum(1 for _ in loader) == 10 and loader.report()["epoch"] == 1  # a new epoch
        for i, batch in enumerate(loader):
            if i == 3:
                break
        loader.resume_epoch()
        assert sum(1 for _ in loader) == 6 and loader.report()["epoch"] == 2  # continued


def test_a_stale_iteration_raises():
    s = tt.Sampler(100, batch_size=10)
    dl = DataLoader(list(range(100)), batch_sampler=s)
    it1 = iter(dl)
    next(it1)
    it2 = iter(dl)
    assert next(it2) is not None and s.pending.epoch == 1
    with pytest.raises(thresher.StateError, match="stale"):
        next(it1)


def test_hugging_face_dataset():
    datasets = pytest.importorskip("datasets")
    fm = FashionMNIST(512)
    hf = datasets.Dataset.from_dict(
        {"pixels": fm.images.reshape(512, -1), "label": fm.labels}).with_format("torch")
    s = tt.Sampler(hf, batch_size=64, seed=0, policy={"kind": "infobatch", "epochs": 3})
    torch.manual_seed(0)
    model = nn.Linear(784, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(batch):
        x = batch["pixels"].float() / 255.0
        loss = s.weighted_loss(F.cross_entropy(model(x), batch["label"], reduction="none"))
        opt.zero_grad()
        loss.backward()
        opt.step()

    # the dataset as it is: batches of dicts
    for batch in DataLoader(hf, batch_sampler=s, num_workers=2):
        step(batch)
    # with ids (through Dataset.__getitems__): the labels are those of the ids planned
    seen = []
    for ids, batch in DataLoader(tt.WithIds(hf, s), batch_sampler=s, num_workers=2):
        assert s.pending.epoch == 1
        assert torch.equal(batch["label"], torch.from_numpy(fm.labels[ids.numpy()]).long())
        seen.append(ids)
        step(batch)
    seen = torch.cat(seen)
    assert len(seen) == len(seen.unique()) == s.report()["samples"] < 512  # pruned
    assert s.report()["prune_fraction"] > 0


def test_two_ranks_have_equal_batch_counts_and_one_plan():
    n, batch = 1000, 48
    data = tt.WithIds(FashionMNIST(n))
    samplers = [tt.Sampler(n, batch_size=batch, seed=5, rank=r, world_size=2, policy=INFOBATCH)
                for r in range(2)]
    loaders = [DataLoader(data, batch_sampler=s, num_workers=0) for s in samplers]
    paddings = []
    for epoch in range(EPOCHS):
        counts = [len(s) for s in samplers]
        assert counts[0] == counts[1]
        its = [iter(dl) for dl in loaders]
        shards, steps, padding = [[], []], 0, 0
        while True:
            got = [next(it, None) for it in its]
            assert (got[0] is None) == (got[1] is None), "one rank ran out before the other"
            if got[0] is None:
                break
            steps += 1
            pend = [s.pending for s in samplers]
            losses = [fake_loss(x) for _, (x, _) in got]
            for r, s in enumerate(samplers):
                real = len(pend[r]) - pend[r].padding
                shards[r].append(got[r][0][:real])
                assert (pend[r].weights[real:] == 0).all()
                padding += pend[r].padding
                s.weighted_loss(losses[r], gather=False)  # books this rank's real samples
                peer = pend[1 - r]
                s.loader.feedback(peer.ids[: len(peer) - peer.padding],
                                  losses[1 - r][: len(peer) - peer.padding])
        assert steps == counts[0]
        a, b = (torch.cat(x).tolist() for x in shards)
        assert not set(a) & set(b)
        assert len(a) + len(b) == len(set(a) | set(b)) == samplers[0].report()["samples"]
        assert samplers[0].digest() == samplers[1].digest()
        paddings.append(padding)
    assert any(paddings), "no epoch needed padding"
    assert samplers[0].report()["epoch"] == EPOCHS - 1


def test_samplers_take_configs_and_keywords(tmp_path):
    config = {"source": {"kind": "index", "len": 100}, "batch_size": 10, "seed": 4}
    path = tmp_path / "sampler.json"
    path.write_text(json.dumps(config))
    runs = []
    for form in (config, json.dumps(config), path, str(path)):
        s = tt.Sampler(form)
        runs.append(list(s))
    assert all(r == runs[0] for r in runs) and len(runs[0]) == 10
    s = tt.Sampler(config, batch_size=30, drop_last=True, rank=1, world_size=2)
    assert s.batch_size == 30 and s.drop_last and s.rank == 1 and s.world_size == 2
    assert len(s) == 1  # 100 over 2 ranks, whole steps of 60
    assert isinstance(tt.Sampler(100), torch.utils.data.Sampler)
    assert tt.Sampler(100).batch_size == 256


def test_total_batches_is_known_before_training_under_a_budget():
    policy = {"kind": "epsilon_greedy", "budget": 0.5, "epochs": 3}
    s = tt.Sampler(640, batch_size=32, seed=2, policy=policy)
    dl = DataLoader(tt.WithIds(FashionMNIST(640)), batch_sampler=s, num_workers=2)
    total = s.total_batches
    # 960 visits: with the noise guard epochs 0 and 1 would be full data (1,280), more than
    # the budget, so the three epochs share it, 320 each (10 batches of 32)
    assert total == 3 * 10
    steps = sum(1 for _ in range(3) for _ in _consume(s, dl))
    assert steps == total


@pytest.mark.parametrize("plan_ahead", [True, False])
def test_plans_follow_the_feedback_not_the_dataloaders_prefetch(plan_ahead):
    """The Sampler makes the plans a loader makes for a trainer that gives the same feedback,
    batch by batch: with plan_ahead (the default) the next plan is made when the trainer is on
    the epoch's last batch, however far the DataLoader prefetched and whenever the position is
    read (report() after every batch)."""
    raw = FashionMNIST(600)
    data = tt.WithIds(raw)
    policy = {"kind": "ucb", "prune": 0.5, "c": 0, "noise_guard": False}
    config = dict(batch_size=32, seed=5, policy=policy)
    s = tt.Sampler({"source": {"kind": "index", "len": 600}, "plan_ahead": plan_ahead},
                   **config)
    dl = DataLoader(data, batch_sampler=s, num_workers=2)
    got = []
    prefetched = 0
    for _ in range(EPOCHS):
        for ids, (x, _) in dl:
            p = s.pending
            prefetched = max(prefetched, s.num_pending)
            got.append((p.epoch, ids.tolist(), p.weights.tolist()))
            s.report()
            s.weighted_loss(fake_loss(x))
    assert prefetched > 1, "the DataLoader did not prefetch: the test tests nothing"

    loss = {i: float(fake_loss(raw[i][0].unsqueeze(0))[0]) for i in range(600)}
    want = []
    with thresher.Loader({"source": {"kind": "index", "len": 600}, "plan_ahead": plan_ahead,
                          **config}) as ld:
        for epoch in range(EPOCHS):
            while (b := ld.next()) is not None:
                ids = [int(i) for i in b.ids]
                want.append((epoch, ids, [float(w) for w in b.weights]))
                ld.feedback(np.array(ids, dtype=np.uint64),
                            np.array([loss[i] for i in ids], dtype=np.float32))
                b.release()
    assert [(e, i) for e, i, _ in got] == [(e, i) for e, i, _ in want]
    assert got == want
