"""Builds libthresher with cargo (release) and bundles it inside the `thresher` package.

`pip install ./bindings/python` and `pip wheel ./bindings/python` run
`cargo build --release -p thresher --lib` in the repository (a Cargo workspace whose root crate
is the C ABI) and copy the shared library into the wheel. The wheel is tagged py3-none-PLATFORM:
it carries a native library, so it is not `any`, but it holds no CPython extension (ctypes loads
the library), so any Python 3 on that platform can use it. Installing the wheel needs neither
cargo nor the repository. An editable install (`pip install -e`) builds the library too but
leaves it in target/release, where the package looks when run from the source tree.

Environment: CARGO (the cargo binary), THRESHER_REPO (the Rust crate's root, when this
directory is not inside the repository, e.g. when building from an sdist).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

if sys.version_info >= (3, 11):
    import tomllib
else:  # pyproject.toml's build requirements bring tomli there
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
LIBRARY = {"darwin": "libthresher.dylib", "win32": "thresher.dll"}.get(sys.platform, "libthresher.so")


def repo_root() -> Path:
    root = Path(os.environ.get("THRESHER_REPO", HERE.parent.parent))
    if not (root / "Cargo.toml").is_file():
        sys.exit(f"thresher: no Cargo.toml in {root}; set THRESHER_REPO to the thresher checkout")
    return root


def version() -> str:
    """The root crate's version: `[package] version`, or, when that says
    `version.workspace = true`, the workspace's `[workspace.package] version`."""
    manifest = repo_root() / "Cargo.toml"
    with open(manifest, "rb") as f:
        cargo = tomllib.load(f)
    v = cargo.get("package", {}).get("version")
    if isinstance(v, dict) and v.get("workspace") is True:
        v = cargo.get("workspace", {}).get("package", {}).get("version")
    if not isinstance(v, str):
        sys.exit(f"thresher: no version in {manifest} ([package] or [workspace.package])")
    return v


def cargo_build() -> Path:
    """Builds the cdylib and returns its path, as cargo reports it (honours CARGO_TARGET_DIR)."""
    # -p: the root manifest is a workspace; only the C ABI crate makes libthresher.
    cmd = [os.environ.get("CARGO", "cargo"), "build", "--release", "-p", "thresher", "--lib",
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
    # The wheel carries a native library: install it as platform-specific (platlib).
    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """Tags the wheel py3-none-PLATFORM: bound to the platform by libthresher, not to one
    CPython version or ABI, since nothing in it is compiled against Python."""

    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        _python, _abi, plat = super().get_tag()
        return "py3", "none", plat


# setuptools runs this file as __main__; the guard lets tests import version() alone.
if __name__ == "__main__":
    setup(
        version=version(),
        cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel},
        distclass=BinaryDistribution,
    )
