"""The batches the sampler handed to the DataLoader that the trainer has not consumed yet.

The DataLoader's main process asks the sampler for batches ahead of the trainer (prefetch) and
delivers them in that order, so the sampler keeps the batches it handed out and the trainer has
not consumed yet: a FIFO, here the range [consumed, handed) of the epoch's batch numbers.
weighted_loss() (InfoBatch: update()) and consumed() take from its front, booking the
trainer's feedback for those batches; state_dict() is taken at its front — what the trainer
saw, not what the DataLoader prefetched (torchdata's StatefulDataLoader convention).

PendingBatch is one entry of the FIFO as the user sees it; _PendingBatches is the FIFO's
consumption and feedback, a part of _PlanSampler (_plan_sampler.py), which hands batches out.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .._errors import InvalidArgument, StateError
from .._feedback import LossOnly

_F32 = torch.float32
_STRIDED = torch.strided

__all__ = ["PendingBatch"]


class PendingBatch:
    """A batch the sampler handed to the DataLoader that the trainer has not consumed yet:
    `ids` (torch.int64, the dataset indices, in the order the DataLoader collates them),
    `weights` (torch.float32 loss weights), `padding` (trailing weight-0 repeats, several
    ranks only), `epoch` and `index` (the batch's number in the epoch). Duck-compatible with
    thresher.torch.Batch for thresher.torch.weighted_loss and all_gather_feedback."""

    __slots__ = ("epoch", "index", "padding", "_ids", "_weights")

    def __init__(self, epoch: int, index: int, ids: np.ndarray, weights: np.ndarray,
                 padding: int):
        self.epoch = epoch
        self.index = index
        self.padding = padding
        self._ids = ids
        self._weights = weights

    @property
    def ids(self) -> torch.Tensor:
        return torch.from_numpy(self._ids.astype(np.int64))

    @property
    def weights(self) -> torch.Tensor:
        return torch.from_numpy(self._weights.copy())

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return (f"<thresher.torch.PendingBatch {self.index} of epoch {self.epoch}: "
                f"{len(self)} samples, {self.padding} padding>")


def _rows(name: str, value, n: int, what: str) -> None:
    try:
        rows = len(value)
    except TypeError:
        raise InvalidArgument(f"{what}: `{name}` must hold one value per sample") from None
    if rows != n:
        raise InvalidArgument(f"{what}: `{name}` has {rows} rows but the batch has {n} samples")


class _PendingBatches:
    """The FIFO [_consumed, _handed) of _PlanSampler's C batches of `_plan`, and the feedback
    of the trainer for the batch at its front. A part of _PlanSampler, whose state it uses:
    _lock, _loader, _plan, _consumed, _handed, _what, _per_sample, _rank, _world_size."""

    def _pending(self) -> int:
        return self._handed - self._consumed if self._plan is not None else 0

    @property
    def pending(self) -> Optional[PendingBatch]:
        """The oldest batch handed to the DataLoader and not yet consumed — the batch the
        trainer is on — or None."""
        with self._lock:
            if not self._pending():
                return None
            return self._pending_batch(self._consumed)

    @property
    def num_pending(self) -> int:
        """Batches handed to the DataLoader and not yet consumed (the DataLoader's prefetch)."""
        with self._lock:
            return self._pending()

    def _pending_batch(self, k: int) -> PendingBatch:
        ids, weights, padding = self._plan.batch(k)
        return PendingBatch(self._plan.epoch, k, ids, weights, padding)

    def consumed(self, batches: int = 1) -> None:
        """Marks the oldest `batches` pending batches as consumed by the trainer (weighted_loss
        does it for you): state_dict() resumes after them."""
        with self._lock:
            if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
                raise InvalidArgument(f"consumed: batches must be an integer ≥ 1, got {batches!r}")
            if batches > self._pending():
                raise StateError(
                    f"consumed: {batches} batches marked but only {self._pending()} are pending "
                    "(handed to the DataLoader and not yet consumed)"
                )
            self._on_last(self._consumed, batches)
            self._consumed += batches

    def _no_pending(self, what: str) -> StateError:
        return StateError(
            f"{what}: no batch is pending: every batch this {self._what} handed to the "
            "DataLoader was consumed already (or a new iter(), end_epoch() or load_state_dict() "
            "dropped the rest). Call it once per batch, in delivery order, with a DataLoader "
            f"built on this {self._what}"
        )

    def _gathering(self, gather, group, what: str) -> bool:
        if gather is None and self._world_size == 1:
            return False  # the common case, decided before touching torch.distributed
        import torch.distributed as dist

        ready = dist.is_available() and dist.is_initialized()
        if gather is None:
            if not ready:
                raise StateError(
                    f"{what}: this {self._what} is rank {self._rank} of world_size "
                    f"{self._world_size}, but torch.distributed is not initialised: every "
                    "rank's feedback must reach every rank. Initialise the process group "
                    "(the feedback is then gathered), or pass gather=False and give the other "
                    "ranks' feedback to sampler.loader.feedback() yourself"
                )
            gather = True
        if gather:
            if not ready:
                raise StateError(f"{what}: gather=True needs torch.distributed initialised")
            if dist.get_world_size(group) != self._world_size:
                raise InvalidArgument(
                    f"{what}: the process group has {dist.get_world_size(group)} ranks, the "
                    f"{self._what} world_size {self._world_size}"
                )
        return bool(gather)

    def _shape_error(self, loss, n: int, k: int, what: str) -> InvalidArgument:
        shape = tuple(loss.shape)
        hint = "; use reduction='none'" if loss.dim() != 1 else ""
        if not self._per_sample and loss.dim() == 1 and loss.shape[0] < n:
            hint = ("; was the Sampler passed as DataLoader(sampler=...)? It is a batch "
                    "sampler: DataLoader(dataset, batch_sampler=sampler)")
        return InvalidArgument(
            f"{what}: the per-sample loss has shape {shape} but the pending batch "
            f"(batch {k} of epoch {self._plan.epoch}) has {n} samples{hint}"
        )

    def _step_state(self, plan) -> "_StepState":
        """The per-epoch state of _take_step for `plan`, made at its first call in the epoch."""
        state = self._step
        if state is None or state.plan is not plan:
            state = self._step = _StepState(plan)
        return state

    def _take_step(self, loss, ids, what: str) -> torch.Tensor:
        """_take(1, loss, ids, {}, gather=False) and the weighted mean, for Sampler.weighted_loss's
        common call (the loss, perhaps ids, this rank's feedback alone): the same checks in the
        same order with the same messages, and the same booking, done with less. The batch's
        ids are a span of the plan's array; a float32 CPU loss is booked straight from its data
        through a reused C struct (anything else goes through Loader.feedback); mean(w·ℓ) is
        one dot product with the plan's weights divided by their batch's length."""
        if not isinstance(loss, torch.Tensor):
            raise InvalidArgument(
                f"{what}: the per-sample loss must be a torch.Tensor, got {type(loss).__name__}"
            )
        with self._lock:
            plan = self._plan
            k = self._consumed
            if plan is None or k >= self._handed:
                raise self._no_pending(what)
            state = self._step_state(plan)
            start = k * state.batch_size
            stop = min(start + state.batch_size, state.entries)
            n = stop - start
            if loss.dim() != 1 or loss.shape[0] != n:
                raise self._shape_error(loss, n, k, what)
            if ids is not None:
                _check_ids(ids, plan.ids[start:stop], k, plan.epoch, what)
            real = max(0, min(stop, state.real) - start)
            if k + 1 >= state.batches:
                self._on_last(k, 1)
            # Booked from the tensor's memory as it is: float32 in a plain CPU layout (no
            # pending negation either). Anything else is converted by Loader.feedback.
            fast = (loss.dtype is _F32 and loss.layout is _STRIDED and loss.is_cpu
                    and loss.is_contiguous() and not loss.is_neg())
            if fast:
                self._booker.book(self._loader.ptr(), real, state.ids_address + 8 * start,
                                  loss.data_ptr())
            else:
                self._loader.feedback(plan.ids[start:start + real], loss[:real])
            self._consumed = k + 1
        if fast:
            i = k - state.first
            if not 0 <= i < len(state.views):
                i = state.cut(k)
            return torch.dot(state.views[i], loss)
        return _weighted_mean(loss, plan.weights[start:stop])

    def _take(self, count: int, loss, ids, fields: dict, gather, group, what: str):
        """Books the feedback of the oldest `count` pending C batches and marks them consumed;
        returns their weights (NumPy). Everything is checked before anything is booked."""
        if not isinstance(loss, torch.Tensor):
            raise InvalidArgument(
                f"{what}: the per-sample loss must be a torch.Tensor, got {type(loss).__name__}"
            )
        with self._lock:
            pending = self._pending()
            if not pending:
                raise self._no_pending(what)
            plan = self._plan
            k = self._consumed
            if count > pending:
                raise InvalidArgument(
                    f"{what}: the per-sample loss has {loss.shape[0] if loss.dim() else 1} "
                    f"values but only {plan.bounds(k + pending - 1)[1] - plan.bounds(k)[0]} "
                    f"samples are pending; use reduction='none'"
                )
            start = plan.bounds(k)[0]
            stop = plan.bounds(k + count - 1)[1]
            n = stop - start
            if loss.dim() != 1 or loss.shape[0] != n:
                raise self._shape_error(loss, n, k, what)
            batch_ids = plan.ids[start:stop]
            if ids is not None:
                _check_ids(ids, batch_ids, k, plan.epoch, what)
            for name, value in fields.items():
                if value is not None:
                    _rows(name, value, n, what)
            real = max(0, min(stop, plan.real) - start)
            sliced = {name: (None if v is None else v[:real]) for name, v in fields.items()}
            self._on_last(k, count)
            if self._gathering(gather, group, what):
                from .distributed import _gather_rows

                gathered = _gather_rows(batch_ids, real, loss, group=group, **sliced)
                self._loader.feedback(**gathered)
            else:
                self._loader.feedback(batch_ids[:real], loss[:real], **sliced)
            self._consumed += count
            return plan.weights[start:stop]

    def feedback(self, ids, loss, grad_norm=None, el2n=None, correct=None,
                 embedding=None) -> None:
        """Feedback by explicit ids (e.g. from thresher.torch.WithIds) for samples of the
        pending batch the trainer is on: every id must be one of its real (not padding)
        samples. Does not mark the batch consumed (call consumed() when done with it, or use
        weighted_loss). Invalid feedback raises InvalidArgument and books nothing."""
        with self._lock:
            if not self._pending():
                raise self._no_pending("feedback")
            plan = self._plan
            k = self._consumed
            start, stop = plan.bounds(k)
            real = plan.ids[start:max(start, min(stop, plan.real))]
            given = ids.detach().cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
            if given.ndim != 1:
                raise InvalidArgument(f"feedback: `ids` must be 1-D, got shape {given.shape}")
            if given.size and given.dtype.kind not in "iu":
                raise InvalidArgument(f"feedback: `ids` must hold integers, got {given.dtype}")
            inside = np.isin(given.astype(np.int64), real.astype(np.int64))
            if not inside.all():
                i = int(np.argmin(inside))
                raise InvalidArgument(
                    f"feedback: ids[{i}] = {given[i].item()!r} is not a sample of the pending batch "
                    f"(batch {k} of epoch {plan.epoch}, {len(real)} samples"
                    f"{' without its padding' if len(real) < stop - start else ''}); feedback "
                    "is for the batch the trainer is on — call consumed() after each batch"
                )
            self._on_last(k, 1)
            self._loader.feedback(given, loss, grad_norm=grad_norm, el2n=el2n,
                                  correct=correct, embedding=embedding)


def _check_ids(ids, batch_ids: np.ndarray, k: int, epoch: int, what: str) -> None:
    given = np.asarray(ids.detach().cpu() if isinstance(ids, torch.Tensor) else ids)
    if given.shape != batch_ids.shape or not np.array_equal(given.astype(np.int64),
                                                            batch_ids.astype(np.int64)):
        raise InvalidArgument(
            f"{what}: `ids` are not the pending batch's (batch {k} of epoch {epoch}); the "
            "DataLoader must deliver batches in the order the sampler hands them out (not "
            "in_order=False) and from this sampler"
        )


def _weighted_mean(loss: torch.Tensor, weights: np.ndarray) -> torch.Tensor:
    w = torch.from_numpy(np.ascontiguousarray(weights))
    if loss.dtype != torch.float32 or loss.device.type != "cpu":
        dtype = loss.dtype if loss.is_floating_point() else torch.float32
        w = w.to(device=loss.device, dtype=dtype, non_blocking=True)
    return (w * loss).mean()


class _StepState:
    """What _take_step needs of an epoch's plan, made once per plan: the address of its ids
    (uint64, contiguous: EpochPlan's own copy), and its weights each divided by the length of
    its batch, so that a batch's mean(w·ℓ) is one dot product with its span. The spans are
    views cut CHUNK batches at a time (torch.split: far cheaper per view than slicing a tensor
    per call), only the chunk in use kept."""

    CHUNK = 1024

    __slots__ = ("plan", "batch_size", "batches", "entries", "real", "ids_address", "scaled",
                 "first", "views")

    def __init__(self, plan):
        self.plan = plan
        self.batch_size = plan.batch_size
        self.batches = plan.batches
        self.entries = len(plan.ids)
        self.real = plan.real
        ids = plan.ids
        if ids.dtype != np.uint64 or not ids.flags.c_contiguous:
            raise StateError("thresher: the epoch plan's ids are not contiguous uint64; "
                             "please report this bug")
        self.ids_address = ids.ctypes.data
        # w / n in float32 as the old mean computed it: (w * ℓ).mean() = Σ (w_i / n) ℓ_i up to
        # rounding. Every batch has batch_size entries but the last, which may be shorter.
        lengths = np.full(self.entries, self.batch_size, dtype=np.float32)
        last = (self.batches - 1) * self.batch_size
        lengths[last:] = self.entries - last
        self.scaled = torch.from_numpy(plan.weights / lengths)
        self.first = 0
        self.views = ()

    def cut(self, k: int) -> int:
        """Cuts the views of the chunk of batch k; returns k's index among them."""
        self.first = k - k % self.CHUNK
        start = self.first * self.batch_size
        self.views = torch.split(self.scaled[start:start + self.CHUNK * self.batch_size],
                                 self.batch_size)
        return k - self.first
