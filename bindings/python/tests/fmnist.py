"""Fashion-MNIST as an ordinary map-style torch Dataset (the gz IDX files read with NumPy): the
"any dataset" that thresher.torch.Sampler and InfoBatch drive through a torch DataLoader."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from conftest import FMNIST

MEAN, STD = 0.2860, 0.3530
_cache: dict[str, np.ndarray] = {}


def _idx(name: str) -> np.ndarray:
    if name not in _cache:
        path = FMNIST / name
        if not path.exists():
            pytest.skip(f"Fashion-MNIST not found at {FMNIST} (run `make setup`)")
        with gzip.open(path) as f:
            raw = f.read()
        ndim = raw[3]
        dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
        _cache[name] = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)
    return _cache[name]


class FashionMNIST(torch.utils.data.Dataset):
    """The first `limit` images as ([1, 28, 28] float32 normalised, int label) pairs."""

    def __init__(self, limit: int, train: bool = True):
        prefix = "train" if train else "t10k"
        self.images = _idx(f"{prefix}-images-idx3-ubyte.gz")[:limit]
        self.labels = _idx(f"{prefix}-labels-idx1-ubyte.gz")[:limit]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = torch.from_numpy(self.images[i].astype(np.float32) / 255.0)
        return ((x - MEAN) / STD).unsqueeze(0), int(self.labels[i])
