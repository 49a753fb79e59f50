"""Batch: one minibatch lent by the loader, its fields as zero-copy NumPy arrays."""

from __future__ import annotations

import numpy as np

from . import _capi, _dlpack
from ._errors import StateError
from ._managed import Managed

FIELDS = {
    "data": _capi.THRESHER_FIELD_DATA,
    "labels": _capi.THRESHER_FIELD_LABELS,
    "ids": _capi.THRESHER_FIELD_IDS,
    "weights": _capi.THRESHER_FIELD_WEIGHTS,
}


class Batch(Managed):
    """A minibatch: `.data` ([B, C, H, W] or [B, H, W, C], uint8 or float32), `.labels` (int64),
    `.ids` (uint64, pass them back to Loader.feedback) and `.weights` (float32 loss weights).

    A batch of a loader in index mode (config source `{"kind": "index", "len": N}`) has ids,
    weights and padding only: `has_data` is False and `.data`/`.labels` raise StateError.

    The fields are views onto the batch's own memory, made on first access. Each view holds a
    reference to the batch's memory in the library, so it stays valid for as long as it exists,
    also after release(). The handle is released by release(), by a `with` block, or when the
    Batch is garbage; release it promptly when you keep views around, so the loader can reuse
    the slot as soon as the views go too.
    """

    _what = "Batch"

    def __init__(self, ptr):
        self._take(ptr)
        self._len = int(_capi.thresher_batch_len(ptr))
        self._padding = int(_capi.thresher_batch_padding(ptr))
        self._has_data = bool(_capi.thresher_batch_has_data(ptr))
        self._views: dict[int, object] = {}

    def _delete(self, ptr) -> None:
        _capi.thresher_batch_release(ptr)

    def release(self) -> None:
        """Gives the handle back to the loader (idempotent). Views already taken stay valid."""
        self.close()

    def _export(self, address: int):
        return np.asarray(_dlpack.NumpyLease(address))

    def _field(self, name: str):
        field = FIELDS[name]
        view = self._views.get(field)
        if view is None:
            if not self._has_data and name in ("data", "labels"):
                raise StateError(
                    f"Batch has no `{name}`: its loader is in index mode (source kind \"index\"), "
                    "which plans batches of ids and loss weights only; read the samples by "
                    "batch.ids from your own dataset"
                )
            if self._ptr is None:
                raise StateError(f"Batch is released: its `{name}` was not read before release()")
            ptr = self.ptr()  # raises in a child made by os.fork()
            view = self._export(_dlpack.export(ptr, field))
            self._views[field] = view
        return view

    @property
    def data(self):
        return self._field("data")

    @property
    def labels(self):
        return self._field("labels")

    @property
    def ids(self):
        return self._field("ids")

    @property
    def weights(self):
        return self._field("weights")

    @property
    def has_data(self) -> bool:
        """False for a batch of a loader in index mode: it has ids, weights and padding only."""
        return self._has_data

    @property
    def padding(self) -> int:
        """How many trailing samples are padding (config `world_size` > 1 without `drop_last`:
        the epoch's last batch is filled up with repeats of weight 0 so every rank has as many
        full batches). Their feedback is not needed: the first len(batch) - padding are real."""
        return self._padding

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        state = "released" if self.closed else "live"
        return f"<{type(self).__module__}.{type(self).__name__} of {self._len} samples, {state}>"
