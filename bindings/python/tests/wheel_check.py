"""The installed wheel, used as someone without the repository's toolchain uses it (`make
test-wheel` runs this with a fresh venv's python, `-I`, and a PATH without cargo):

    python -I wheel_check.py REPO

imports thresher from that venv, checks that its version is Cargo.toml's and that the library
it loaded is the copy inside the wheel, then opens a loader on REPO/data/fashion-mnist and takes
one batch. Not a pytest module: it must run where pytest and the source tree are absent.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
import tomllib
from pathlib import Path


def cargo_version(repo: Path) -> str:
    # Read here rather than through setup.py, so a wrong version there is caught, not copied.
    with open(repo / "Cargo.toml", "rb") as f:
        manifest = tomllib.load(f)
    version = manifest["package"]["version"]
    if isinstance(version, dict) and version.get("workspace"):
        version = manifest["workspace"]["package"]["version"]
    return version


def main(repo: Path) -> None:
    assert shutil.which("cargo") is None, f"cargo is on PATH ({shutil.which('cargo')})"

    import numpy as np

    import thresher

    package = Path(thresher.__file__).resolve().parent
    assert Path(sys.prefix).resolve() in package.parents, f"thresher came from {package}"
    assert Path(thresher.library_path).resolve().parent == package, (
        f"loaded {thresher.library_path}, not the library bundled in {package}")

    expected = cargo_version(repo)
    assert thresher.__version__ == expected, (thresher.__version__, expected)
    assert importlib.metadata.version("thresher") == expected

    fmnist = repo / "data" / "fashion-mnist"
    config = {
        "source": {"kind": "idx",
                   "images": str(fmnist / "train-images-idx3-ubyte.gz"),
                   "labels": str(fmnist / "train-labels-idx1-ubyte.gz"),
                   "limit": 1000},
        "batch_size": 32,
        "workers": 1,
    }
    with thresher.Loader(config) as loader:
        batch = loader.next()
        assert batch is not None and len(batch) == 32
        assert batch.data.shape[0] == 32 and batch.data.size == 32 * 28 * 28
        assert batch.ids.dtype == np.uint64 and batch.ids.max() < 1000
        assert 0 <= batch.labels.min() and batch.labels.max() <= 9
        loader.feedback(batch.ids, np.ones(32, np.float32))
        batch.release()
    print(f"wheel ok: thresher {thresher.__version__} from {package}, "
          f"batch {batch.data.shape} {batch.data.dtype}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} REPO")
    main(Path(sys.argv[1]).resolve())
