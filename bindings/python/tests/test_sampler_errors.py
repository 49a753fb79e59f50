"""Bad input to thresher.torch.Sampler, WithIds and InfoBatch: each a clear error naming the
cause, and nothing booked or consumed by a rejected call."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader, RandomSampler, TensorDataset  # noqa: E402

import thresher  # noqa: E402
import thresher.torch as tt  # noqa: E402

N = 100
POLICY = {"kind": "infobatch", "prune": 0.5, "epochs": 3}


def dataset(n: int = N):
    return TensorDataset(torch.arange(n, dtype=torch.float32).unsqueeze(1), torch.arange(n) % 3)


def started(batch_size: int = 10, **more):
    """A sampler with a DataLoader (with workers, so batches are prefetched) and its first
    batch delivered."""
    s = tt.Sampler(N, batch_size=batch_size, seed=2, policy=POLICY, **more)
    dl = DataLoader(tt.WithIds(dataset()), batch_sampler=s, num_workers=2)
    it = iter(dl)
    ids, (x, y) = next(it)
    return s, it, ids, x


def unchanged(s, digest, pending):
    assert s.digest()["scores"] == digest, "a rejected call booked feedback"
    assert s.num_pending == pending, "a rejected call consumed a batch"


def test_weighted_loss_of_the_wrong_length_or_shape():
    s, it, ids, x = started()
    digest, pending = s.digest()["scores"], s.num_pending
    assert pending > 1  # prefetched
    with pytest.raises(thresher.InvalidArgument, match=r"shape \(9,\).*has 10 samples"):
        s.weighted_loss(torch.ones(9))
    with pytest.raises(thresher.InvalidArgument, match=r"batch_sampler=sampler"):
        s.weighted_loss(torch.ones(1))  # what a DataLoader(sampler=...) batch of one would give
    with pytest.raises(thresher.InvalidArgument, match="reduction='none'"):
        s.weighted_loss(torch.ones(10).mean())
    with pytest.raises(thresher.InvalidArgument, match="reduction='none'"):
        s.weighted_loss(torch.ones(10, 2))
    with pytest.raises(thresher.InvalidArgument, match="torch.Tensor"):
        s.weighted_loss([1.0] * 10)
    with pytest.raises(thresher.InvalidArgument, match="`correct` has 3 rows"):
        s.weighted_loss(torch.ones(10), correct=torch.ones(3, dtype=torch.bool))
    with pytest.raises(thresher.InvalidArgument, match="loss"):  # the library refuses NaN
        s.weighted_loss(torch.full((10,), float("nan")))
    with pytest.raises(thresher.InvalidArgument, match="not the pending batch"):
        s.weighted_loss(torch.ones(10), ids=ids.flip(0))
    unchanged(s, digest, pending)
    # and the right call still works on the same batch
    loss = s.weighted_loss(torch.ones(10, requires_grad=True), ids=ids)
    assert loss.requires_grad and s.num_pending == pending - 1
    assert s.digest()["scores"] != digest


def test_weighted_loss_with_no_pending_batch():
    s = tt.Sampler(N, batch_size=10)
    with pytest.raises(thresher.StateError, match="no batch is pending"):
        s.weighted_loss(torch.ones(10))
    for _ in DataLoader(dataset(), batch_sampler=s):
        s.weighted_loss(torch.ones(10))
    with pytest.raises(thresher.StateError, match="no batch is pending"):
        s.weighted_loss(torch.ones(10))
    with pytest.raises(thresher.StateError, match="only 0 are pending"):
        s.consumed()
    with pytest.raises(thresher.StateError, match="no batch is pending"):
        s.feedback([0], [1.0])


def test_feedback_for_ids_not_in_the_delivered_batch():
    s, it, ids, x = started()
    next_ids, _ = next(it)  # the DataLoader delivered the next batch too (and prefetched more)
    digest, pending = s.digest()["scores"], s.num_pending
    outside = next(i for i in range(N) if i not in set(ids.tolist()))
    with pytest.raises(thresher.InvalidArgument, match=rf"ids\[1\] = {outside} is not a sample "
                                                       r"of the pending batch \(batch 0"):
        s.feedback([int(ids[0]), outside], [1.0, 1.0])
    # the next batch's ids are not the batch the trainer is on
    with pytest.raises(thresher.InvalidArgument, match="not a sample of the pending batch"):
        s.feedback(next_ids, torch.ones(len(next_ids)))
    with pytest.raises(thresher.InvalidArgument, match="integers"):
        s.feedback([0.5], [1.0])
    with pytest.raises(thresher.InvalidArgument, match="twice|duplicate|more than once"):
        s.feedback([int(ids[0]), int(ids[0])], [1.0, 1.0])  # the library refuses repeats
    unchanged(s, digest, pending)
    # by explicit ids, in two parts, then marked consumed
    s.feedback(ids[:4], torch.ones(4))
    s.feedback(ids[4:], torch.ones(6))
    s.consumed()
    assert s.num_pending == pending - 1 and s.pending.index == 1


def test_padding_ids_are_not_feedback():
    # 2 ranks, 100 samples, batches of 32: the last batch on each rank is padded
    s = tt.Sampler(N, batch_size=32, rank=0, world_size=2)
    batches = list(DataLoader(tt.WithIds(dataset()), batch_sampler=s))
    for _ in batches[:-1]:
        s.weighted_loss(torch.ones(32), gather=False)
    last = s.pending
    assert last.padding > 0
    with pytest.raises(thresher.InvalidArgument, match="without its padding"):
        s.feedback(last.ids[-1:], [1.0])
    with pytest.raises(thresher.StateError, match="not initialised"):
        s.weighted_loss(torch.ones(32))  # several ranks: the feedback must be exchanged
    s.weighted_loss(torch.ones(32), gather=False)


def test_dataloaders_built_the_wrong_way():
    s = tt.Sampler(N, batch_size=10)
    ds = dataset()
    # torch refuses these itself, naming the clash
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive with.*shuffle"):
        DataLoader(ds, batch_sampler=s, shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive with.*sampler"):
        DataLoader(ds, batch_sampler=s, sampler=RandomSampler(ds))
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive with.*batch_size"):
        DataLoader(ds, batch_sampler=s, batch_size=10)
    # the batch sampler given as a sampler: refused at the first batch, before any epoch moved
    for workers in (0, 2):
        with pytest.raises(thresher.InvalidArgument, match=r"batch_sampler=sampler\), not sampler="):
            next(iter(DataLoader(ds, batch_size=4, sampler=s, num_workers=workers)))
    assert s.report()["delivered"] == 0 and s.epoch == 0
    with pytest.raises(thresher.InvalidArgument, match="batch sampler"):
        s.check(DataLoader(ds, batch_size=4, sampler=s))
    with pytest.raises(thresher.InvalidArgument, match="in_order=False"):
        s.check(DataLoader(ds, batch_sampler=s, num_workers=2, in_order=False))
    with pytest.raises(thresher.InvalidArgument, match="does not use this Sampler"):
        s.check(DataLoader(ds, batch_size=10))
    s.check(DataLoader(ds, batch_sampler=s))

    ib = tt.InfoBatch(ds, 3)
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(ib, batch_size=8, sampler=ib.sampler, shuffle=True)
    with pytest.raises(thresher.InvalidArgument, match="one index at a time"):
        next(iter(DataLoader(ib, batch_sampler=ib.sampler)))
    with pytest.raises(thresher.InvalidArgument, match="one index at a time"):
        ib.sampler.check(DataLoader(ib, batch_sampler=ib.sampler))
    # a DataLoader that shuffles by itself instead of using the sampler: update() has nothing
    x, y = next(iter(DataLoader(ib, batch_size=8, shuffle=True)))
    with pytest.raises(thresher.StateError, match="no batch is pending"):
        ib.update(torch.ones(8))


def test_a_dataset_whose_length_does_not_match():
    s = tt.Sampler(N, batch_size=10)
    with pytest.raises(thresher.InvalidArgument, match="len\\(dataset\\) is 99 but this Sampler "
                                                       "plans N = 100"):
        tt.WithIds(dataset(99), s)
    with pytest.raises(thresher.InvalidArgument, match="is 101"):
        s.check(dataset(101))
    with pytest.raises(thresher.InvalidArgument, match="is 99"):
        s.check(DataLoader(dataset(99), batch_sampler=s))
    # a dataset that changes length later is caught when the next epoch begins
    items = list(range(N))
    s = tt.Sampler(items, batch_size=10)
    assert s.dataset_len == N
    for _ in DataLoader(items, batch_sampler=s):
        s.consumed()
    items.append(N)
    with pytest.raises(thresher.InvalidArgument, match="len\\(dataset\\) is 101"):
        next(iter(DataLoader(items, batch_sampler=s)))
    with pytest.raises(thresher.InvalidArgument, match="is 100 but this InfoBatch sampler plans "
                                                       "N = 99"):
        tt.InfoBatch(dataset(99), 3).sampler.check(dataset(100))


def test_load_state_dict_from_another_dataset_length():
    a = tt.Sampler(N, batch_size=10, seed=1)
    sd = a.state_dict()
    b = tt.Sampler(N + 1, batch_size=10, seed=1)
    with pytest.raises(thresher.InvalidArgument, match="over 100 samples; this one has N = 101 "
                                                       r"\(did the dataset change\?\)"):
        b.load_state_dict(sd)
    # the library's own check, for a state whose config says nothing of the source
    bare = {**sd, "config": {k: v for k, v in sd["config"].items() if k != "source"}}
    with pytest.raises(thresher.InvalidArgument, match="dataset size.*100 in the saved run, 101 "
                                                       "here"):
        b.load_state_dict(bare)
    with pytest.raises(thresher.InvalidArgument, match="seed 1 in the saved run, 2 here"):
        tt.Sampler(N, batch_size=10, seed=2).load_state_dict(sd)
    # other policy parameters: the key is named
    r = tt.Sampler(N, batch_size=10, seed=1, policy={"kind": "random", "prune": 0.3})
    rsd = r.state_dict()
    other = tt.Sampler(N, batch_size=10, seed=1, policy={"kind": "random", "prune": 0.5})
    with pytest.raises(thresher.InvalidArgument,
                       match=r"`policy.prune` 0.3 in the saved run, 0.5 here"):
        other.load_state_dict(rsd)
    # a refused state leaves the sampler as it was
    assert len(list(b)) == 11 and b.epoch == 0
    ib = tt.InfoBatch(dataset(), 3)
    with pytest.raises(thresher.InvalidArgument, match="over 101 samples"):
        ib.load_state_dict(tt.InfoBatch(dataset(101), 3).state_dict())


def test_bad_configs():
    with pytest.raises(thresher.InvalidArgument, match='source` must be .*"index".*got \'idx\''):
        tt.Sampler({"source": {"kind": "idx", "images": "x", "labels": "y"}})
    with pytest.raises(thresher.InvalidArgument, match="got None"):
        tt.Sampler({"batch_size": 4})
    with pytest.raises(thresher.InvalidArgument, match="batch_size"):
        tt.Sampler(N, batch_size=0)
    with pytest.raises(thresher.InvalidArgument, match="rank"):
        tt.Sampler(N, rank=2, world_size=2)
    with pytest.raises(thresher.InvalidArgument, match="expected N"):
        tt.Sampler(3.5)
    with pytest.raises(thresher.InvalidArgument, match="policy.prune"):
        tt.InfoBatch(dataset(), 3, prune_ratio=0.95)


def test_update_with_a_bad_loss():
    ib = tt.InfoBatch(dataset(), 3)
    dl = DataLoader(ib, batch_size=8, sampler=ib.sampler, num_workers=2)
    it = iter(dl)
    next(it)
    digest, pending = ib.sampler.digest()["scores"], ib.sampler.num_pending
    assert pending > 8
    with pytest.raises(thresher.InvalidArgument, match="reduction='none'"):
        ib.update(torch.ones(8).mean())
    with pytest.raises(thresher.InvalidArgument, match=rf"{N + 1} values but only {pending} "
                                                       "samples are pending"):
        ib.update(torch.ones(N + 1))
    with pytest.raises(thresher.InvalidArgument, match="loss"):
        ib.update(torch.full((8,), float("inf")))
    unchanged(ib.sampler, digest, pending)
    assert ib.update(torch.ones(8)).item() == pytest.approx(1.0)
    assert ib.sampler.num_pending == pending - 8


def test_sampler_cannot_be_pickled():
    import pickle

    with pytest.raises(TypeError, match="state_dict"):
        pickle.dumps(tt.Sampler(N))
