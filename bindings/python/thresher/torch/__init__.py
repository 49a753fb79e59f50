"""thresher for PyTorch.

- Loader: thresher reads the data; batches whose fields are torch tensors sharing the batch's
  memory (DLPack, no copy).
- Sampler: thresher plans, your DataLoader reads any map-style dataset
  (DataLoader(dataset, batch_sampler=sampler)); WithIds adds each item's index.
- InfoBatch: a drop-in for the InfoBatch repository's API (dataset wrapper, sampler, update).
- weighted_loss: the weighted loss the pruning policies expect.
"""

from __future__ import annotations

import torch
import torch.utils.dlpack

from .. import _batch, _dlpack, _loader
from .._errors import InvalidArgument

__all__ = ["Batch", "InfoBatch", "Loader", "PendingBatch", "Sampler", "WithIds", "weighted_loss"]


class Batch(_batch.Batch):
    """A minibatch with `.data` (in the samples' dtype: torch.uint8/float32 for images, the
    file's dtype for npy and tokens sources, torch.float16, torch.bfloat16, torch.uint16, ...),
    `.labels` (int64), `.targets` (typed targets; for token blocks x is `.data`, y `.targets`),
    `.mask` (uint8), `.ids` (uint64) and `.weights` (float32) as CPU torch tensors that point
    into the batch's memory; each tensor keeps that memory alive for as long as it exists. Move
    them with `.to(device, non_blocking=True)`."""

    def _export(self, address: int):
        return torch.utils.dlpack.from_dlpack(_dlpack.capsule(address))


class Loader(_loader.Loader):
    """thresher.Loader yielding thresher.torch.Batch, with DataLoader's conventions: `dataset`
    (len() = N), `batch_size`, `drop_last`, len(loader) = the epoch's batches, and every
    iter() a new epoch (one left early is ended first; resume_epoch() continues it)."""

    _batch_class = Batch

    def weighted_loss(self, per_sample_loss: torch.Tensor, batch, **feedback) -> torch.Tensor:
        """Feeds `per_sample_loss` (and any other feedback fields given, e.g. correct=...)
        back for `batch`, and returns mean(w · ℓ) to minimise — the one-call form of
        feedback() plus thresher.torch.weighted_loss() (InfoBatch's `update(loss)`)."""
        self.feedback(batch.ids, per_sample_loss, **feedback)
        return weighted_loss(per_sample_loss, batch)


def weighted_loss(per_sample_loss: torch.Tensor, batch) -> torch.Tensor:
    """mean(w_i · ℓ_i) over the batch, w = batch.weights: the quantity a pruning policy's loss
    weights are made for (not Σwℓ/Σw)."""
    w = batch.weights
    if not isinstance(w, torch.Tensor):
        w = torch.from_numpy(w)
    if per_sample_loss.shape != w.shape:
        raise InvalidArgument(
            f"weighted_loss: per-sample loss has shape {tuple(per_sample_loss.shape)}, "
            f"the batch's weights {tuple(w.shape)}; use reduction='none'"
        )
    dtype = per_sample_loss.dtype if per_sample_loss.is_floating_point() else torch.float32
    w = w.to(device=per_sample_loss.device, dtype=dtype, non_blocking=True)
    return (w * per_sample_loss).mean()


from ._infobatch import InfoBatch  # noqa: E402  (after weighted_loss: they import this module)
from ._pending import PendingBatch  # noqa: E402
from ._sampler import Sampler  # noqa: E402
from ._withids import WithIds  # noqa: E402

for _cls in (Batch, InfoBatch, Loader, PendingBatch, Sampler, WithIds):
    _cls.__module__ = __name__
del _cls
