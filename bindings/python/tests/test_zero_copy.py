"""Batch fields are views of the library's memory, not copies: the addresses NumPy and torch
report are the ones the C API reports."""

from __future__ import annotations

import ctypes
import gc

import pytest

import thresher
from thresher import _capi, _dlpack
from conftest import make_config


def c_addresses(batch) -> dict[str, int]:
    ptr = batch.ptr()
    tensor = _capi.thresher_tensor()
    assert _capi.thresher_batch_data(ptr, ctypes.byref(tensor)) == _capi.THRESHER_OK
    as_int = lambda p: ctypes.cast(p, ctypes.c_void_p).value  # noqa: E731
    return {
        "data": tensor.data,
        "labels": as_int(_capi.thresher_batch_labels(ptr)),
        "ids": as_int(_capi.thresher_batch_ids(ptr)),
        "weights": as_int(_capi.thresher_batch_weights(ptr)),
    }


@pytest.mark.parametrize("transform", [{"dtype": "f32"}, {"dtype": "u8", "layout": "nhwc"}])
def test_numpy_fields_are_the_batch_memory(transform):
    with thresher.Loader(make_config(limit=300, transform=transform)) as loader:
        for batch in loader:
            addresses = c_addresses(batch)
            for name, address in addresses.items():
                arr = getattr(batch, name)
                assert arr.__array_interface__["data"][0] == address, name
                assert arr.flags.c_contiguous and not arr.flags.owndata
            # 64-byte aligned, as the header promises
            assert addresses["data"] % 64 == 0


def test_numpy_writes_land_in_the_batch(loader):
    batch = loader.next()
    batch.data[0, 0, 0, 0] = 12345.0
    tensor = _capi.thresher_tensor()
    _capi.thresher_batch_data(batch.ptr(), ctypes.byref(tensor))
    assert ctypes.cast(tensor.data, ctypes.POINTER(ctypes.c_float))[0] == 12345.0


def test_torch_fields_are_the_batch_memory():
    torch = pytest.importorskip("torch")
    import thresher.torch as tt

    with tt.Loader(make_config(limit=300)) as loader:
        for batch in loader:
            addresses = c_addresses(batch)
            for name, address in addresses.items():
                t = getattr(batch, name)
                assert isinstance(t, torch.Tensor) and t.device.type == "cpu"
                assert t.data_ptr() == address, name
                assert t.is_contiguous()
            assert batch.data.shape == (len(batch), 1, 28, 28)


def test_torch_tensors_outlive_the_batch_and_the_loader():
    pytest.importorskip("torch")
    import thresher.torch as tt

    loader = tt.Loader(make_config(limit=300))
    batch = loader.next()
    data, ids = batch.data, batch.ids
    copy = data.clone(), ids.clone()
    batch.release()
    del batch
    loader.close()
    gc.collect()
    assert data.equal(copy[0]) and ids.equal(copy[1])


def test_unconsumed_capsules_free_their_tensor(loader):
    # A capsule nobody imported must call the DLPack deleter itself (else the batch leaks).
    batch = loader.next()
    freed = []
    real_delete = _dlpack.delete

    def spy(address):
        freed.append(address)
        real_delete(address)

    _dlpack.delete, old = spy, _dlpack.delete
    try:
        cap = _dlpack.capsule(_dlpack.export(batch.ptr(), _capi.THRESHER_FIELD_IDS))
        del cap
        gc.collect()
    finally:
        _dlpack.delete = old
    assert len(freed) == 1


def test_consumed_capsules_are_left_to_the_consumer():
    torch = pytest.importorskip("torch")
    with thresher.Loader(make_config(limit=100)) as loader:
        batch = loader.next()
        freed = []
        real_delete = _dlpack.delete

        def spy(address):
            freed.append(address)
            real_delete(address)

        _dlpack.delete, old = spy, _dlpack.delete
        try:
            cap = _dlpack.capsule(_dlpack.export(batch.ptr(), _capi.THRESHER_FIELD_LABELS))
            t = torch.utils.dlpack.from_dlpack(cap)
            del cap
            gc.collect()
            assert freed == []  # torch owns it now and calls the deleter itself
            assert t.tolist() == batch.labels.tolist()
            del t
        finally:
            _dlpack.delete = old
