"""Finds and loads libthresher, and binds its functions for the generated _capi module.

Search order: $THRESHER_LIBRARY (a file), the copy bundled in this package by `pip install`,
then the repository's cargo output (an editable or in-tree checkout).
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

_NAMES = {"linux": "libthresher.so", "darwin": "libthresher.dylib", "win32": "thresher.dll"}
LIBRARY_NAME = _NAMES.get(sys.platform, "libthresher.so")


def candidates() -> list[Path]:
    env = os.environ.get("THRESHER_LIBRARY")
    if env:
        # An explicit choice is never silently replaced by another copy.
        return [Path(env)]
    here = Path(__file__).resolve().parent
    found = [here / LIBRARY_NAME]
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        found.append(Path(target) / "release" / LIBRARY_NAME)
    for parent in here.parents:
        if (parent / "Cargo.toml").is_file():
            found.append(parent / "target" / "release" / LIBRARY_NAME)
            break
    return found


def _load() -> tuple[ctypes.CDLL, Path]:
    tried = candidates()
    for path in tried:
        if path.is_file():
            return ctypes.CDLL(str(path)), path
    where = ", ".join(str(p) for p in tried)
    raise ImportError(
        f"thresher: {LIBRARY_NAME} not found (looked at {where}). Install the package with pip, "
        "build it with `cargo build --release -p thresher --lib`, or set THRESHER_LIBRARY to "
        "its path."
    )


lib, path = _load()


def _missing(name: str):
    def call(*_args):
        raise AttributeError(
            f"{path} has no function {name}: the library is older than include/thresher.h; "
            "rebuild it (cargo build --release -p thresher --lib) or reinstall the package"
        )

    call.__name__ = name
    return call


def bind(name: str, restype, argtypes: list, argnames: list[str]):
    """The library's function `name` with its signature set, or a stand-in that raises when
    called, so an older library still imports and fails only where it lacks something."""
    try:
        fn = getattr(lib, name)
    except AttributeError:
        return _missing(name)
    fn.restype = restype
    fn.argtypes = argtypes
    fn.argnames = tuple(argnames)
    return fn
