"""thresher.torch.InfoBatch as a drop-in for the InfoBatch repository: its README's three
changed lines (wrap the dataset, take its sampler, update(loss) with a per-sample loss) in an
ordinary training loop over a torch DataLoader with workers."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

import thresher  # noqa: E402
from fmnist import FashionMNIST  # noqa: E402
from test_training import small_cnn  # noqa: E402
from thresher.torch import InfoBatch  # noqa: E402


def test_the_readme_loop_trains_and_prunes():
    num_epochs, prune_ratio, delta = 4, 0.5, 0.875
    torch.manual_seed(0)
    trainset = FashionMNIST(3000)
    net = small_cnn()
    criterion = nn.CrossEntropyLoss(reduction="none")
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)

    # --- the InfoBatch README's way -------------------------------------------------------
    trainset = InfoBatch(trainset, num_epochs, prune_ratio, delta)
    sampler = trainset.sampler
    trainloader = DataLoader(trainset, batch_size=128, sampler=sampler, num_workers=2)
    # --------------------------------------------------------------------------------------

    sizes, losses, fractions = [], [], []
    for epoch in range(num_epochs):
        expected = len(sampler)  # known before the epoch
        assert len(trainloader) == -(-expected // 128)
        seen, total = 0, 0.0
        net.train()
        for inputs, targets in trainloader:
            outputs = net(inputs)
            loss = criterion(outputs, targets)
            total += loss.sum().item()
            seen += len(targets)
            loss = trainset.update(loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert seen == expected == trainset.report()["samples"]
        sizes.append(seen)
        losses.append(total / seen)
        fractions.append(trainset.report()["prune_fraction"])
    print(f"samples per epoch {sizes}, mean loss {losses}")
    # epoch 0 full; pruned epochs until ⌊0.875 · 4⌋ = 3; then full data again
    assert sizes[0] == 3000 and sizes[3] == 3000
    assert sizes[1] < 3000 and sizes[2] < 3000 and fractions[1] > 0.1
    assert losses[-1] < losses[0] * 0.8, losses


def test_it_behaves_as_the_dataset():
    inner = FashionMNIST(100)
    ib = InfoBatch(inner, 3)
    assert len(ib) == 100 and ib.num_epochs == 3 and ib.prune_ratio == 0.5 and ib.delta == 0.875
    x, y = ib[7]
    assert torch.equal(x, inner[7][0]) and y == inner[7][1]
    assert ib.images is inner.images  # other attributes are the dataset's
    with pytest.raises(AttributeError):
        ib.no_such_attribute
    assert ib.sampler is ib.sampler  # one sampler, not a new one per access
    assert ib.stop_prune == pytest.approx(2.625)
    # a copy for a spawned DataLoader worker reads samples but has no sampler
    import pickle

    copy = pickle.loads(pickle.dumps(ib))
    assert torch.equal(copy[7][0], x)
    with pytest.raises(thresher.InvalidArgument, match="worker"):
        copy.update(torch.ones(3))


def test_state_dict_resumes_exactly_mid_epoch():
    data = FashionMNIST(500)

    def make():
        ib = InfoBatch(data, 3, 0.5, 0.875, seed=9)
        return ib, DataLoader(ib, batch_size=32, sampler=ib.sampler, num_workers=2)

    def run(ib, dl, loops, stop=None):
        out = []
        for _ in range(loops):
            for step, (x, y) in enumerate(dl):
                out.append((y.tolist(), round(x.double().sum().item(), 3)))
                ib.update(x.flatten(1).mean(1) + 1.0)
                if stop is not None and (ib.sampler.epoch, step) == stop:
                    return out
        return out

    a, la = make()
    full = run(a, la, 3)
    b, lb = make()
    head = run(b, lb, 2, stop=(1, 3))
    assert b.sampler.num_pending > 0  # the DataLoader prefetched samples the trainer never saw
    sd = b.state_dict()
    c, lc = make()
    c.load_state_dict(sd)
    assert head + run(c, lc, 2) == full
    assert c.sampler.digest() == a.sampler.digest()


def test_distributed_like_the_repository():
    # Without torch.distributed initialised rank/world_size are explicit; each rank gets an
    # equal share (per-sample padding), and update() of a rank needs the others' feedback.
    data = FashionMNIST(101)
    ranks = [InfoBatch(data, 3, rank=r, world_size=2) for r in range(2)]
    assert len(ranks[0].sampler) == len(ranks[1].sampler) == 51
    a, b = (list(r.sampler) for r in ranks)
    assert len(a) == len(b) == 51 and len(set(a) | set(b)) == 101
    with pytest.raises(thresher.StateError, match="torch.distributed is not initialised"):
        ranks[0].update(torch.ones(8))
    assert ranks[0].sampler.num_pending == 51  # nothing consumed by the refused call


def test_the_sampler_hands_out_samples_without_a_c_call_each(monkeypatch):
    # The per-sample sampler reads the epoch's plan whole; the loader hears how far the
    # DataLoader got in one Loader.advance when its position is read, not once per sample.
    from thresher import _capi

    calls = {"next": 0, "advance": 0}

    def counting(name):
        real = getattr(_capi, name)

        def call(*args):
            calls[name.rsplit("_", 1)[1]] += 1
            return real(*args)
        return call

    for name in ("thresher_loader_next", "thresher_loader_advance"):
        monkeypatch.setattr(_capi, name, counting(name))
    ib = InfoBatch(list(range(300)), 2, seed=1)
    it = iter(ib.sampler)
    handed = [next(it) for _ in range(100)]
    assert calls == {"next": 0, "advance": 0}
    assert ib.sampler.report()["delivered"] == 100 and calls["advance"] == 1
    assert ib.sampler.report()["delivered"] == 100 and calls["advance"] == 1  # nothing new
    assert ib.sampler.num_pending == 100
    ib.update(torch.ones(32))  # the trainer's first batch of 32
    sd = ib.state_dict()       # at the trainer's position, not the sampler's
    handed += list(it)
    assert sorted(handed) == list(range(300)) and calls["next"] == 0
    # the last one is told only when the trainer is on it (that makes the next epoch's plan)
    assert ib.report()["delivered"] == 299 and calls["advance"] == 2
    again = InfoBatch(list(range(300)), 2, seed=1)
    again.load_state_dict(sd)
    assert list(again.sampler) == handed[32:]
