"""Shared fixtures: paths to the repository's data and a config builder."""

from __future__ import annotations

import atexit
import copy
import gzip
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FMNIST = REPO / "data" / "fashion-mnist"
TRAIN_IMAGES = FMNIST / "train-images-idx3-ubyte.gz"
TRAIN_LABELS = FMNIST / "train-labels-idx1-ubyte.gz"


_raw: dict[str, Path] = {}


def raw_train_set() -> tuple[Path, Path]:
    """The training set decompressed once per session: opening a loader on raw IDX skips the
    0.2 s of inflating 26 MB, which most of the tests here would otherwise spend."""
    if not _raw:
        tmp = Path(tempfile.mkdtemp(prefix="thresher-test-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        for key, gz in (("images", TRAIN_IMAGES), ("labels", TRAIN_LABELS)):
            raw = tmp / gz.name[: -len(".gz")]
            with gzip.open(gz) as src, open(raw, "wb") as dst:
                shutil.copyfileobj(src, dst)
            _raw[key] = raw
    return _raw["images"], _raw["labels"]


def make_config(limit: int = 1000, batch_size: int = 64, gz: bool = False, **overrides) -> dict:
    """A config over the first `limit` Fashion-MNIST training samples; `gz` reads the .gz files
    as shipped instead of a raw copy."""
    if not TRAIN_IMAGES.exists():
        pytest.skip(f"Fashion-MNIST not found at {FMNIST} (run `make setup`)")
    images, labels = (TRAIN_IMAGES, TRAIN_LABELS) if gz else raw_train_set()
    config = {
        "source": {
            "kind": "idx",
            "images": str(images),
            "labels": str(labels),
            "limit": limit,
        },
        "batch_size": batch_size,
        "workers": 2,
        "seed": 7,
    }
    config.update(copy.deepcopy(overrides))
    return config


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    # The loader's workers need the cores too: torch's intra-op threads spin-wait, and on a
    # small, busy machine a second one makes a training step several times slower, not faster.
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def config():
    return make_config


@pytest.fixture
def loader():
    import thresher

    with thresher.Loader(make_config()) as ld:
        yield ld


def pytest_report_header(config):
    try:
        import thresher
    except ImportError as e:
        return f"thresher: not importable ({e})"
    return f"thresher {thresher.__version__} from {Path(thresher.__file__).parent}, library {thresher.library_path}"
