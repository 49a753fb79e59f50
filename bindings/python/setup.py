"""Builds libthresher with cargo (release) and bundles it inside the `thresher` package.

`pip install ./bindings/python` runs `cargo build --release --lib` in the repository and copies
the shared library into the wheel. An editable install (`pip install -e`) builds it too but
leaves it in target/release, where the package looks when run from the source tree.

Environment: CARGO (the cargo binary), THRESHER_REPO (the Rust crate's root, when this
directory is not inside the repository, e.g. when building from an sdist).
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
LIBRARY = {"darwin": "libthresher.dylib", "win32": "thresher.dll"}.get(sys.platform, "libthresher.so")


def repo_root() -> Path:
    root = Path(os.environ.get("THRESHER_REPO", HERE.parent.parent))
    if not (root / "Cargo.toml").is_file():
        sys.exit(f"thresher: no Cargo.toml in {root}; set THRESHER_REPO to the thresher checkout")
    return root


def version() -> str:
    text = (repo_root() / "Cargo.toml").read_text(encoding="utf-8")
    m = re.search(r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"', text, flags=re.M | re.S)
    if not m:
        sys.exit("thresher: no [package] version in Cargo.toml")
    return m.group(1)


def cargo_build() -> Path:
    """Builds the cdylib and returns its path, as cargo reports it (honours CARGO_TARGET_DIR)."""
    cmd = [os.environ.get("CARGO", "cargo"), "build", "--release", "--lib",
           "--message-format=json-render-diagnostics"]
    print("thresher:", " ".join(cmd), file=sys.stderr)
    proc = subprocess.run(cmd, cwd=repo_root(), stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"thresher: cargo build failed (exit {proc.returncode})")
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and "cdylib" in msg["target"]["crate_types"]:
            for name in msg["filenames"]:
                if Path(name).name == LIBRARY:
                    return Path(name)
    sys.exit(f"thresher: cargo did not report building {LIBRARY}")


class BuildPyWithLibrary(build_py):
    def run(self):
        library = cargo_build()
        super().run()
        if not getattr(self, "editable_mode", False):
            dest = Path(self.build_lib) / "thresher" / LIBRARY
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(library, dest)


class BinaryDistribution(Distribution):
    # The wheel carries a native library: tag it for this platform, not py3-none-any.
    def has_ext_modules(self):
        return True


setup(
    version=version(),
    cmdclass={"build_py": BuildPyWithLibrary},
    distclass=BinaryDistribution,
)
