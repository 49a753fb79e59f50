"""Builds a thresher_feedback from NumPy arrays, torch tensors or sequences.

The C struct carries one length for all arrays, so the library cannot see mismatched lengths:
they are checked here, before any pointer crosses the boundary.
"""

from __future__ import annotations

import ctypes

import numpy as np

from . import _capi
from ._errors import InvalidArgument, check


def _numpy(value):
    # Duck-typed so the core package never imports torch.
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy"):
        value = value.detach()
        if value.device.type != "cpu":
            value = value.cpu()
        if not value.dtype.is_floating_point or value.dtype.itemsize >= 4:
            return value.numpy()
        # float16 / bfloat16: NumPy has no bfloat16, and the library reads float32 anyway.
        return value.float().numpy()
    return np.asarray(value)


def _array(name: str, value, dtype, ndim: int = 1) -> np.ndarray:
    arr = _numpy(value)
    if arr.ndim != ndim:
        raise InvalidArgument(f"feedback: `{name}` must be {ndim}-D, got shape {arr.shape}")
    if arr.size and dtype in (np.uint64, np.uint8):
        if arr.dtype == np.bool_:
            if dtype is np.uint64:
                raise InvalidArgument(f"feedback: `{name}` must hold integers, got bool")
        elif arr.dtype.kind not in "iu":
            raise InvalidArgument(f"feedback: `{name}` must hold integers, got {arr.dtype}")
        elif arr.dtype.kind == "i" and (arr < 0).any():
            i = int(np.argmax(arr < 0))
            raise InvalidArgument(f"feedback: {name}[{i}] = {arr[i]} is negative")
        if dtype is np.uint8 and arr.dtype != np.bool_ and (arr > 1).any():
            i = int(np.argmax(arr > 1))
            raise InvalidArgument(f"feedback: {name}[{i}] = {arr[i]} is not 0 or 1")
    elif arr.size and arr.dtype.kind not in "fiub":
        raise InvalidArgument(f"feedback: `{name}` must hold numbers, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _ptr(arr, ctype):
    return None if arr is None else arr.ctypes.data_as(ctypes.POINTER(ctype))


_U64 = ctypes.POINTER(ctypes.c_uint64)
_F32 = ctypes.POINTER(ctypes.c_float)


def build(ids, loss, grad_norm=None, el2n=None, correct=None, embedding=None):
    """The struct and the arrays it points into; keep both alive for the duration of the call."""
    ids = _array("ids", ids, np.uint64)
    n = ids.shape[0]
    if grad_norm is None and el2n is None and correct is None and embedding is None:
        # Loss only, the per-step case: the same checks without the optional fields' loop.
        loss = _array("loss", loss, np.float32)
        if loss.shape[0] != n:
            raise InvalidArgument(f"feedback: `loss` has {loss.shape[0]} elements but `ids` has {n}")
        fb = _capi.thresher_feedback(len=n, ids=ids.ctypes.data_as(_U64),
                                     loss=loss.ctypes.data_as(_F32), embedding_dim=0)
        return fb, (ids, loss)
    arrays = {"ids": ids, "loss": _array("loss", loss, np.float32)}
    optional = {"grad_norm": (grad_norm, np.float32), "el2n": (el2n, np.float32),
                "correct": (correct, np.uint8)}
    for name, (value, dtype) in optional.items():
        arrays[name] = None if value is None else _array(name, value, dtype)
    for name, arr in arrays.items():
        if arr is not None and arr.shape[0] != n:
            raise InvalidArgument(
                f"feedback: `{name}` has {arr.shape[0]} elements but `ids` has {n}"
            )
    dim = 0
    if embedding is not None:
        emb = _array("embedding", embedding, np.float32, ndim=2)
        if emb.shape[0] != n:
            raise InvalidArgument(
                f"feedback: `embedding` has {emb.shape[0]} rows but `ids` has {n} elements"
            )
        arrays["embedding"] = emb
        dim = emb.shape[1]
    else:
        arrays["embedding"] = None
    fb = _capi.thresher_feedback(
        len=n,
        ids=_ptr(arrays["ids"], ctypes.c_uint64),
        loss=_ptr(arrays["loss"], ctypes.c_float),
        grad_norm=_ptr(arrays["grad_norm"], ctypes.c_float),
        el2n=_ptr(arrays["el2n"], ctypes.c_float),
        correct=_ptr(arrays["correct"], ctypes.c_uint8),
        embedding=_ptr(arrays["embedding"], ctypes.c_float),
        embedding_dim=dim,
    )
    return fb, arrays


# LossOnly writes the len/ids/loss fields of thresher_feedback as size_t words: each is
# pointer-sized at a word-aligned offset in the generated layout.
_WORD = ctypes.sizeof(ctypes.c_size_t)
if ctypes.sizeof(ctypes.c_void_p) != _WORD or not all(
        getattr(_capi.thresher_feedback, f).size == _WORD
        and getattr(_capi.thresher_feedback, f).offset % _WORD == 0
        for f in ("len", "ids", "loss")):
    raise ImportError("thresher: thresher_feedback's len/ids/loss are not pointer-sized words")


class LossOnly:
    """A thresher_feedback made once and refilled for each call with raw addresses: the
    per-step case (ids and loss, nothing else) of a caller that has checked its arrays itself
    (thresher.torch.Sampler.weighted_loss: the ids of its plan, a float32 CPU tensor's data).
    The struct's len/ids/loss words are written through an overlay of size_t words, which
    costs far less than building a struct and casting two pointers per call. The caller keeps
    the arrays alive through the call and serialises the calls (one instance per lock)."""

    __slots__ = ("fb", "ref", "_words")

    LEN, IDS, LOSS = (getattr(_capi.thresher_feedback, f).offset // _WORD
                      for f in ("len", "ids", "loss"))

    def __init__(self):
        self.fb = _capi.thresher_feedback()  # every pointer NULL, embedding_dim 0
        self.ref = ctypes.byref(self.fb)
        words = ctypes.sizeof(_capi.thresher_feedback) // _WORD
        self._words = (ctypes.c_size_t * words).from_buffer(self.fb)

    def book(self, loader_ptr, n: int, ids_address: int, loss_address: int) -> None:
        """thresher_loader_feedback with `n` uint64 ids at `ids_address` and `n` float32
        losses at `loss_address`; raises as Loader.feedback does."""
        words = self._words
        words[self.LEN] = n
        words[self.IDS] = ids_address
        words[self.LOSS] = loss_address
        try:
            check(_capi.thresher_loader_feedback(loader_ptr, self.ref))
        finally:
            words[self.IDS] = words[self.LOSS] = 0  # no dangling addresses left behind
