"""Batch: one minibatch lent by the loader, its fields as zero-copy NumPy arrays."""

from __future__ import annotations

import numpy as np

import ctypes

from . import _capi, _dlpack
from ._errors import StateError, check
from ._managed import Managed

FIELDS = {
    "data": _capi.THRESHER_FIELD_DATA,
    "labels": _capi.THRESHER_FIELD_LABELS,
    "ids": _capi.THRESHER_FIELD_IDS,
    "weights": _capi.THRESHER_FIELD_WEIGHTS,
    "targets": _capi.THRESHER_FIELD_TARGETS,
    "mask": _capi.THRESHER_FIELD_MASK,
}

# thresher_dtype values -> names (the config's names).
DTYPE_NAMES = {
    _capi.THRESHER_U8: "u8", _capi.THRESHER_I8: "i8", _capi.THRESHER_U16: "u16",
    _capi.THRESHER_I16: "i16", _capi.THRESHER_U32: "u32", _capi.THRESHER_I32: "i32",
    _capi.THRESHER_I64: "i64", _capi.THRESHER_F16: "f16", _capi.THRESHER_BF16: "bf16",
    _capi.THRESHER_F32: "f32", _capi.THRESHER_F64: "f64",
}


class Batch(Managed):
    """A minibatch: `.data` (images [B, C, H, W] or [B, H, W, C] as uint8 or float32; the
    samples of an npy or tokens source in their own dtype and shape), `.labels` (int64 class
    labels), `.targets` (the typed targets: an npy source's `y`, the next tokens of a token
    block), `.mask` (uint8 [B, block], ragged token documents), `.ids` (uint64, pass them back
    to Loader.feedback) and `.weights` (float32 loss weights). For token blocks x is `.data`
    and y is `.targets`.

    `.labels` raises StateError when the source has no class labels (token blocks, npy without
    `y` or with a float or multi-dimensional `y`); `.targets` and `.mask` raise StateError when
    the batch has none. `dtype` names the data's dtype ("u8", ..., "bf16", "f32", "f64").
    NumPy has no bfloat16: in this NumPy flavour bf16 data and targets are their raw bits as
    uint16 (`(a.astype(np.uint32) << 16).view(np.float32)` gives the values); the torch
    flavour gives torch.bfloat16.

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
            ptr = self._ptr
            if ptr is None:
                raise StateError(f"Batch is released: its `{name}` was not read before release()")
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
    def targets(self):
        return self._field("targets")

    @property
    def mask(self):
        return self._field("mask")

    @property
    def dtype(self) -> str:
        """The data's dtype name: "u8", "i8", "u16", "i16", "u32", "i32", "i64", "f16", "bf16",
        "f32" or "f64"."""
        if not self._has_data:
            raise StateError("Batch has no `data`: its loader is in index mode")
        ptr = self._ptr
        if ptr is None:
            raise StateError("Batch is released")
        t = _capi.thresher_tensor()
        check(_capi.thresher_batch_data(ptr, ctypes.byref(t)))
        return DTYPE_NAMES[int(t.dtype)]

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
