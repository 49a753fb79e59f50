"""Sampler.weighted_loss's per-step path (the loss alone, this rank's feedback): a float32 CPU
loss is booked straight from its data and mean(w·ℓ) is one dot product. It must return what
(w·ℓ).sum()/n is, carry the gradient w/n, book exactly what the general path books, and book
nothing from a rejected call."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import thresher  # noqa: E402
import thresher.torch as tt  # noqa: E402

N, BATCH = 1000, 96  # ten batches of 96 and a last one of 40
POLICY = {"kind": "infobatch", "prune": 0.5, "epochs": 3}


def sampler(**kw) -> tt.Sampler:
    return tt.Sampler(N, batch_size=BATCH, seed=0, policy=POLICY, **kw)


def losses(ids) -> torch.Tensor:
    """A per-sample 'loss' of the sample alone, spread out so that infobatch prunes."""
    g = torch.Generator().manual_seed(1)
    table = torch.rand(N, generator=g) * 3 + 0.1
    return table[torch.as_tensor(ids)]


def run(s: tt.Sampler, book, epochs: int = 3) -> list:
    """Drives `s` for `epochs`, booking each batch with book(s, ids, loss); returns per epoch
    the ids and weights handed out and the ScoreBook's digest at its end."""
    out = []
    for _ in range(epochs):
        seen = []
        for ids in s:
            seen.append((list(ids), s.pending.weights.tolist()))
            book(s, ids, losses(ids))
        out.append((seen, s.digest()["scores"]))
    return out


def twin(epochs: int = 3, ranks: dict = {}, **fields) -> list:
    """run() of the planner driven directly (Loader.feedback of the real samples after each
    batch)."""
    loader = thresher.Loader({"source": {"kind": "index", "len": N}, "batch_size": BATCH,
                              "seed": 0, "policy": POLICY, **ranks})
    out = []
    for _ in range(epochs):
        seen = []
        for batch in loader:
            ids = batch.ids.astype("int64")
            seen.append((ids.tolist(), batch.weights.tolist()))
            real = ids[:len(ids) - batch.padding]
            loader.feedback(real, losses(real), **{k: f(len(real)) for k, f in fields.items()})
        out.append((seen, loader.digest()["scores"]))
    loader.close()
    return out


@pytest.mark.parametrize("chunk", [None, 1, 4])
def test_returns_the_weighted_mean_and_its_gradient(chunk, monkeypatch):
    if chunk:  # the weights' views are cut this many batches at a time
        from thresher.torch import _pending

        monkeypatch.setattr(_pending._StepState, "CHUNK", chunk)
    s = sampler()
    seen = 0
    for _ in range(3):
        for ids in s:
            w = s.pending.weights.double()
            loss = losses(ids).requires_grad_()
            out = s.weighted_loss(loss)
            n = len(ids)
            ref = (w * loss.detach().double()).sum() / n
            assert out.dtype == torch.float32 and out.dim() == 0
            assert math.isclose(out.item(), ref.item(), rel_tol=1e-6), (out.item(), ref.item())
            out.backward()
            torch.testing.assert_close(loss.grad.double(), w / n, rtol=1e-6, atol=0)
            seen += 1
    assert seen > 20
    s.close()


def test_the_weighted_mean_after_a_resume_mid_chunk(monkeypatch):
    from thresher.torch import _pending

    monkeypatch.setattr(_pending._StepState, "CHUNK", 4)
    s = sampler()
    for ids in s:  # epoch 0 keeps everything at weight 1; epoch 1 prunes and re-weights
        s.weighted_loss(losses(ids))
    for i, ids in enumerate(s):
        s.weighted_loss(losses(ids))
        if i == 5:
            break
    s.resume_epoch()  # the rest of the epoch from batch 6, a new plan object: cut at batch 6
    weights = set()
    for ids in s:
        w = s.pending.weights.double()
        weights.update(w.tolist())
        out = s.weighted_loss(losses(ids))
        ref = (w * losses(ids).double()).sum() / len(ids)
        assert math.isclose(out.item(), ref.item(), rel_tol=1e-6)
    assert weights == {1.0, 2.0}
    s.close()


def fast(s, ids, loss):
    s.weighted_loss(loss)


def with_ids(s, ids, loss):
    s.weighted_loss(loss, ids=torch.tensor(ids), gather=False)


def float64(s, ids, loss):
    # Not float32: Loader.feedback converts it (exactly: these values are float32's).
    s.weighted_loss(loss.double())


def strided(s, ids, loss):
    # Not contiguous: Loader.feedback copies it.
    wide = torch.zeros(len(ids), 2)
    wide[:, 0] = loss
    s.weighted_loss(wide[:, 0])


@pytest.mark.parametrize("book", [fast, with_ids, float64, strided])
def test_books_what_the_planner_driven_directly_books(book):
    s = sampler()
    assert run(s, book) == twin()
    s.close()


def test_other_fields_take_the_general_path_and_book_the_same():
    s = sampler()
    def ones(n):
        return torch.ones(n, dtype=torch.uint8)

    assert run(s, lambda s, ids, loss: s.weighted_loss(loss, correct=ones(len(ids)))) == twin(
        correct=ones)
    s.close()


def test_padding_rows_are_left_out_with_several_ranks():
    # world_size 2 without drop_last pads the last batch; gather=False books this rank's own.
    ranks = {"rank": 1, "world_size": 2}
    s = sampler(**ranks)
    assert s.epoch_plan().padding > 0
    assert run(s, lambda s, ids, loss: s.weighted_loss(loss, gather=False)) == twin(ranks=ranks)
    s.close()


def test_a_rejected_call_books_nothing():
    s = sampler()
    it = iter(s)
    ids = next(it)
    before = s.digest()
    bad = losses(ids)
    bad[3] = float("nan")
    with pytest.raises(thresher.InvalidArgument):
        s.weighted_loss(bad)
    assert s.num_pending == 1 and s.digest() == before
    with pytest.raises(thresher.InvalidArgument, match=r"has shape \(95,\) but the pending batch"):
        s.weighted_loss(losses(ids)[:-1])
    with pytest.raises(thresher.InvalidArgument, match="must be a torch.Tensor, got list"):
        s.weighted_loss([1.0] * len(ids))
    assert s.num_pending == 1 and s.digest() == before
    s.weighted_loss(losses(ids))
    assert s.num_pending == 0 and s.digest() != before
    with pytest.raises(thresher.StateError, match="no batch is pending"):
        s.weighted_loss(losses(ids))
    ids = next(it)
    s.close()
    with pytest.raises(thresher.StateError, match="closed"):
        s.weighted_loss(losses(ids))
