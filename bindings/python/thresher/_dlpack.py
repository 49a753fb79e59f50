"""DLPack: the DLManagedTensor layout (DLPack 0.8, which thresher_batch_dlpack hands out as a
void*), a NumPy view that owns one such tensor, and the PyCapsule protocol torch consumes.

Every view owns a DLPack tensor, and every tensor holds its own reference to the batch in the
library, so a view stays valid after batch.release(): releasing early can never leave an array
pointing at memory the loader has reused for another batch.
"""

from __future__ import annotations

import ctypes

from . import _capi
from ._errors import check

K_DL_CPU = 1
# (DLPack type code, bits) -> NumPy typestr. bfloat16 (code 4) has no NumPy type: the NumPy
# flavour shows its raw bits as uint16 (documented on Batch.data); torch takes it as bfloat16.
_TYPESTR = {
    (0, 8): "|i1", (0, 16): "<i2", (0, 32): "<i4", (0, 64): "<i8",
    (1, 8): "|u1", (1, 16): "<u2", (1, 32): "<u4", (1, 64): "<u8",
    (2, 16): "<f2", (2, 32): "<f4", (2, 64): "<f8",
    (4, 16): "<u2",
}


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class DLManagedTensor(ctypes.Structure):
    pass


_Deleter = ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensor))
DLManagedTensor._fields_ = [
    ("dl_tensor", DLTensor),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", _Deleter),
]


def export(batch_ptr, field: int) -> int:
    """A new DLManagedTensor* (as an int) for one field of a live batch; the caller owns it."""
    out = ctypes.c_void_p()
    check(_capi.thresher_batch_dlpack(batch_ptr, field, ctypes.byref(out)))
    return out.value


def delete(address: int) -> None:
    managed = ctypes.cast(address, ctypes.POINTER(DLManagedTensor))
    deleter = managed.contents.deleter
    if deleter:
        deleter(managed)


class NumpyLease:
    """Owns one DLPack tensor and describes it through __array_interface__, so the NumPy array
    built on it has this object as its base: the tensor (and with it the batch memory) lives
    exactly as long as some array refers to it."""

    __slots__ = ("_address", "__array_interface__")

    def __init__(self, address: int):
        self._address = address
        t = ctypes.cast(address, ctypes.POINTER(DLManagedTensor)).contents.dl_tensor
        key = (t.dtype.code, t.dtype.bits)
        if t.dtype.lanes != 1 or key not in _TYPESTR or t.strides or t.device.device_type != K_DL_CPU:
            self._address = None
            delete(address)
            raise TypeError(f"unsupported DLPack tensor (dtype {key}, lanes {t.dtype.lanes}, "
                            f"device {t.device.device_type}, strides {bool(t.strides)})")
        self.__array_interface__ = {
            "version": 3,
            "data": (t.data + t.byte_offset if t.data else 0, False),
            "shape": tuple(t.shape[i] for i in range(t.ndim)),
            "typestr": _TYPESTR[key],
            "strides": None,
        }

    def __del__(self) -> None:
        address, self._address = self._address, None
        if address:
            try:
                delete(address)
            except Exception:
                pass


# PyCapsule glue. The destructor runs when the capsule dies; a consumer that took the tensor
# (torch) renamed the capsule to "used_dltensor" and will call the deleter itself, so the
# destructor may only call it for a capsule nobody consumed.
_CAPSULE_NAME = ctypes.c_char_p(b"dltensor")
_PyCapsule_Destructor = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_PyCapsule_New = ctypes.pythonapi.PyCapsule_New
_PyCapsule_New.restype = ctypes.py_object
_PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, _PyCapsule_Destructor]
_PyCapsule_IsValid = ctypes.pythonapi.PyCapsule_IsValid
_PyCapsule_IsValid.restype = ctypes.c_int
_PyCapsule_IsValid.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_PyCapsule_GetPointer = ctypes.pythonapi.PyCapsule_GetPointer
_PyCapsule_GetPointer.restype = ctypes.c_void_p
_PyCapsule_GetPointer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]


def _capsule_destructor(capsule: int) -> None:
    try:
        if _PyCapsule_IsValid(capsule, _CAPSULE_NAME):
            delete(_PyCapsule_GetPointer(capsule, _CAPSULE_NAME))
    except Exception:
        pass


# Module-level so the C callback outlives every capsule that points at it.
_DESTRUCTOR = _PyCapsule_Destructor(_capsule_destructor)


def capsule(address: int):
    """Wraps an owned DLManagedTensor* in a "dltensor" PyCapsule, passing ownership to it."""
    try:
        return _PyCapsule_New(address, _CAPSULE_NAME, _DESTRUCTOR)
    except BaseException:
        delete(address)
        raise
