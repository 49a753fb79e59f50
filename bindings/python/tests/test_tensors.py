"""Typed samples and targets, and token streams, through the Python binding: an array NumPy
wrote comes out of a batch bit for bit, in NumPy (the plain Loader), in torch and through
DLPack, for every dtype; token blocks give x as `data` and y as `targets`."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import thresher
import thresher.torch

# config dtype name -> (NumPy dtype written to the file, torch dtype of batch.data)
DTYPES = {
    "u8": (np.uint8, torch.uint8),
    "i8": (np.int8, torch.int8),
    "u16": (np.uint16, torch.uint16),
    "i16": (np.int16, torch.int16),
    "u32": (np.uint32, torch.uint32),
    "i32": (np.int32, torch.int32),
    "i64": (np.int64, torch.int64),
    "f16": (np.float16, torch.float16),
    "bf16": (np.uint16, torch.bfloat16),  # NumPy has no bfloat16: its bits, with x_dtype
    "f32": (np.float32, torch.float32),
    "f64": (np.float64, torch.float64),
}


def noise(n_bytes: int, seed: int) -> np.ndarray:
    """Every bit pattern is fair game (NaNs and infinities included): bytes must not change."""
    return np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8)


def config(source: dict, **extra) -> dict:
    return {"source": source, "batch_size": 4, "shuffle": False, "workers": 2, **extra}


def raw(a) -> bytes:
    if isinstance(a, torch.Tensor):
        a = a.contiguous().view(torch.uint8).numpy() if a.dtype != torch.uint8 else a.numpy()
    return np.ascontiguousarray(a).tobytes()


@pytest.mark.parametrize("name", list(DTYPES))
def test_every_dtype_is_bit_identical_in_numpy_torch_and_dlpack(tmp_path, name):
    np_dtype, torch_dtype = DTYPES[name]
    x = noise(10 * 3 * 2 * np.dtype(np_dtype).itemsize, 1).view(np_dtype).reshape(10, 3, 2)
    y = noise(10 * 5 * np.dtype(np_dtype).itemsize, 2).view(np_dtype).reshape(10, 5)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    source = {"kind": "npy", "x": str(tmp_path / "x.npy")}
    if name == "bf16":
        source["x_dtype"] = "bf16"
    else:
        source["y"] = str(tmp_path / "y.npy")
    cfg = config(source)

    got, targets = [], []
    with thresher.Loader(cfg) as loader:
        for batch in loader:
            assert batch.dtype == name
            assert batch.data.dtype == np.dtype(np_dtype)
            assert batch.data.shape[1:] == (3, 2)
            got.append(raw(batch.data))
            if name != "bf16":
                assert batch.targets.dtype == np.dtype(np_dtype)
                targets.append(raw(batch.targets))
            with pytest.raises(thresher.StateError, match="no class labels"):
                batch.labels
            with pytest.raises(thresher.StateError, match="no mask"):
                batch.mask
    assert b"".join(got) == x.tobytes()
    if name != "bf16":
        assert b"".join(targets) == y.tobytes()

    got, targets = [], []
    with thresher.torch.Loader(cfg) as loader:
        for batch in loader:
            assert batch.data.dtype == torch_dtype
            assert batch.data.data_ptr() % 64 == 0
            got.append(raw(batch.data))
            if name != "bf16":
                assert batch.targets.dtype == torch_dtype
                targets.append(raw(batch.targets))
    assert b"".join(got) == x.tobytes()
    if name != "bf16":
        assert b"".join(targets) == y.tobytes()

    # DLPack by hand: the tensor's own type code and bits, read by torch.from_dlpack.
    with thresher.Loader(cfg) as loader:
        batch = loader.next()
        from thresher import _capi, _dlpack

        t = torch.utils.dlpack.from_dlpack(
            _dlpack.capsule(_dlpack.export(batch.ptr(), _capi.THRESHER_FIELD_DATA))
        )
        assert t.dtype == torch_dtype and tuple(t.shape) == (4, 3, 2)
        assert raw(t) == x[:4].tobytes()


def test_bf16_values_survive(tmp_path):
    values = torch.tensor([[1.5, -2.0], [3.25, float("inf")]], dtype=torch.bfloat16)
    np.save(tmp_path / "x.npy", values.view(torch.uint16).numpy())
    cfg = config({"kind": "npy", "x": str(tmp_path / "x.npy"), "x_dtype": "bf16"})
    with thresher.torch.Loader(cfg) as loader:
        batch = next(iter(loader))
        assert torch.equal(batch.data, values)
    with thresher.Loader(cfg) as loader:
        bits = loader.next().data
        assert bits.dtype == np.uint16
        floats = (bits.astype(np.uint32) << 16).view(np.float32)
        assert floats.tolist() == [[1.5, -2.0], [3.25, float("inf")]]


def test_float_and_multilabel_targets_and_integer_labels(tmp_path):
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.array([3, 1, 4, 1, 5, 9], dtype=np.int32))
    cfg = config({"kind": "npy", "x": str(tmp_path / "x.npy"), "y": str(tmp_path / "y.npy")})
    with thresher.torch.Loader(cfg) as loader:
        batch = next(iter(loader))
        assert torch.equal(batch.data, torch.from_numpy(x[:4]))
        assert batch.labels.tolist() == [3, 1, 4, 1] and batch.labels.dtype == torch.int64
        assert batch.targets.dtype == torch.int32
    multi = (np.arange(18).reshape(6, 3) % 2).astype(np.float32)
    # A new file renamed over the old one, as docs advise for mapped files: rewriting y.npy in
    # place could truncate it under a worker of the closed loader that is still finishing.
    np.save(tmp_path / "y_new.npy", multi)
    os.replace(tmp_path / "y_new.npy", tmp_path / "y.npy")
    with thresher.torch.Loader(cfg) as loader:
        batch = next(iter(loader))
        assert torch.equal(batch.targets, torch.from_numpy(multi[:4]))
        with pytest.raises(thresher.StateError):
            batch.labels


def test_token_blocks_and_ragged_documents(tmp_path):
    tokens = (np.arange(41, dtype=np.uint16) * 3 + 100).astype(np.uint16)
    tokens.tofile(tmp_path / "train.bin")
    cfg = config({"kind": "tokens", "path": str(tmp_path / "train.bin"), "dtype": "u16",
                  "block": 8})
    with thresher.torch.Loader(cfg) as loader:
        # 41 tokens: windows at 0, 8, 16, 24 (24 + 9 ≤ 41), 32 would need 41 ≥ 41: 5 windows.
        assert len(loader.dataset) == 5
        xs, ys = [], []
        for batch in loader:
            assert batch.data.dtype == torch.uint16 and batch.data.shape[1] == 8
            xs.append(batch.data.to(torch.int64))
            ys.append(batch.targets.to(torch.int64))
        x, y = torch.cat(xs), torch.cat(ys)
    t = torch.from_numpy(tokens.astype(np.int64))
    for i in range(5):
        assert torch.equal(x[i], t[8 * i: 8 * i + 8])
        assert torch.equal(y[i], t[8 * i + 1: 8 * i + 9])

    np.save(tmp_path / "offsets.npy", np.array([0, 3, 20, 41], dtype=np.int64))
    cfg["source"]["offsets"] = str(tmp_path / "offsets.npy")
    with thresher.Loader(cfg) as loader:
        batch = loader.next()
        assert batch.mask.dtype == np.uint8 and batch.mask.shape == (3, 8)
        assert batch.mask[0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
        assert batch.mask[1].tolist() == [1] * 8
        assert batch.data[0].tolist() == [100, 103, 106, 0, 0, 0, 0, 0]
        assert batch.targets[0].tolist() == [103, 106, 0, 0, 0, 0, 0, 0]


def test_bad_inputs_name_file_and_key(tmp_path):
    np.arange(10, dtype=np.uint16).tofile(tmp_path / "t.bin")
    with pytest.raises(thresher.InvalidArgument, match=r"source\.block.*t\.bin"):
        thresher.Loader(config({"kind": "tokens", "path": str(tmp_path / "t.bin"),
                                "dtype": "u16", "block": 10}))
    np.save(tmp_path / "x.npy", np.zeros((5, 2), np.float32))
    np.save(tmp_path / "y.npy", np.zeros(4, np.int64))
    with pytest.raises(thresher.FormatError, match=r"source\.y.*y\.npy.*4 labels"):
        thresher.Loader(config({"kind": "npy", "x": str(tmp_path / "x.npy"),
                                "y": str(tmp_path / "y.npy")}))
    with pytest.raises(thresher.InvalidArgument, match=r"source\.x_dtype.*x\.npy"):
        thresher.Loader(config({"kind": "npy", "x": str(tmp_path / "x.npy"), "x_dtype": "f64"}))


def test_token_blocks_train_and_prune_with_feedback(tmp_path):
    """The README's token loop: one loss per sequence fed back, InfoBatch prunes sequences."""
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    rng.integers(0, 50, 4000, dtype=np.uint16).tofile(tmp_path / "train.bin")
    loader = thresher.torch.Loader({
        "source": {"kind": "tokens", "path": str(tmp_path / "train.bin"), "dtype": "u16",
                   "block": 16},
        "batch_size": 32, "seed": 1,
        "policy": {"kind": "infobatch", "prune": 0.5, "epochs": 4}})
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Linear(8, 50))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    n = len(loader.dataset)
    assert n == (4000 - 17) // 16 + 1
    seen = []
    for _ in range(2):
        ids = []
        for batch in loader:
            x, y = batch.data.long(), batch.targets.long()
            per_seq = F.cross_entropy(model(x).transpose(1, 2), y, reduction="none").mean(1)
            opt.zero_grad()
            loader.weighted_loss(per_seq, batch).backward()
            opt.step()
            ids.extend(batch.ids.tolist())
        seen.append(ids)
    assert sorted(seen[0]) == list(range(n))          # epoch 0: every sequence
    assert len(seen[1]) < n and set(seen[1]) <= set(range(n))  # epoch 1: pruned
