"""EpochPlan: this rank's whole epoch (thresher_loader_epoch_plan) as NumPy arrays."""

from __future__ import annotations

import ctypes

import numpy as np

from . import _capi
from ._errors import check


class EpochPlan:
    """This rank's epoch from its batch 0: what Loader.next() hands out batch by batch, in one
    piece. `ids` (uint64) and `weights` (float32) hold one entry per sample in delivery order,
    `padding` trailing entries are padding (weight 0; several ranks without drop_last).
    Batch k is entries [k·batch_size, (k+1)·batch_size) (the last may be shorter); `batch(k)`
    cuts it out. The arrays are copies: the plan owes nothing to the loader."""

    __slots__ = ("epoch", "batches", "batch_size", "padding", "ids", "weights")

    def __init__(self, epoch: int, batches: int, batch_size: int, padding: int,
                 ids: np.ndarray, weights: np.ndarray):
        self.epoch = epoch
        self.batches = batches
        self.batch_size = batch_size
        self.padding = padding
        self.ids = ids
        self.weights = weights

    @classmethod
    def _read(cls, loader_ptr, batch_size: int) -> "EpochPlan":
        out = ctypes.POINTER(_capi.thresher_epoch_plan)()
        check(_capi.thresher_loader_epoch_plan(loader_ptr, ctypes.byref(out)))
        try:
            n = int(_capi.thresher_epoch_plan_len(out))
            if n:
                ids = np.ctypeslib.as_array(_capi.thresher_epoch_plan_ids(out), (n,)).copy()
                weights = np.ctypeslib.as_array(_capi.thresher_epoch_plan_weights(out),
                                                (n,)).copy()
            else:
                ids, weights = np.empty(0, np.uint64), np.empty(0, np.float32)
            return cls(int(_capi.thresher_epoch_plan_epoch(out)),
                       int(_capi.thresher_epoch_plan_batches(out)), batch_size,
                       int(_capi.thresher_epoch_plan_padding(out)), ids, weights)
        finally:
            _capi.thresher_epoch_plan_free(out)

    def __len__(self) -> int:
        """Entries, padding included."""
        return len(self.ids)

    @property
    def real(self) -> int:
        """Entries that are not padding (the first len(plan) − padding)."""
        return len(self.ids) - self.padding

    def bounds(self, k: int) -> tuple[int, int]:
        """[start, stop) of batch k's entries."""
        if not 0 <= k < self.batches:
            raise IndexError(f"batch {k} of an epoch of {self.batches} batches")
        start = k * self.batch_size
        return start, min(start + self.batch_size, len(self.ids))

    def batch(self, k: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(ids, weights, padding) of batch k: views into the plan's arrays."""
        start, stop = self.bounds(k)
        return self.ids[start:stop], self.weights[start:stop], max(0, stop - max(start, self.real))

    def __repr__(self) -> str:
        return (f"<thresher.EpochPlan epoch {self.epoch}: {self.batches} batches, {len(self)} "
                f"entries ({self.padding} padding)>")
