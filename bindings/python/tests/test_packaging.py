"""setup.py's reading of the version: Cargo.toml's, also when the root crate inherits it from
the workspace (the wheel itself is tested by `make test-wheel`)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


@pytest.fixture
def setup_py():
    spec = importlib.util.spec_from_file_location("thresher_setup", HERE.parent / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not __main__: setup() does not run
    return module


def test_version_is_the_workspace_version(setup_py):
    import thresher

    assert setup_py.version() == thresher.__version__


@pytest.mark.parametrize("manifest, expected", [
    ('[workspace]\n[workspace.package]\nversion = "2.3.4"\n'
     '[package]\nname = "thresher"\nversion.workspace = true\n', "2.3.4"),
    # The key order does not matter, nor do [dependencies] versions after [package].
    ('[package]\nname = "thresher"\nversion = { workspace = true }\n'
     '[workspace.package]\nversion = "5.6.7"\n', "5.6.7"),
    ('[package]\nname = "thresher"\nversion = "0.9.1"\n[dependencies]\nx = { version = "1" }\n',
     "0.9.1"),
])
def test_version_from_manifest(setup_py, tmp_path, monkeypatch, manifest, expected):
    (tmp_path / "Cargo.toml").write_text(manifest)
    monkeypatch.setenv("THRESHER_REPO", str(tmp_path))
    assert setup_py.version() == expected


def test_no_version_is_an_error(setup_py, tmp_path, monkeypatch):
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "thresher"\nversion.workspace = true\n')
    monkeypatch.setenv("THRESHER_REPO", str(tmp_path))
    with pytest.raises(SystemExit, match="no version"):
        setup_py.version()


def test_cargo_builds_the_c_abi_crate_of_the_workspace(setup_py, tmp_path, monkeypatch):
    # A stand-in cargo that records its arguments and reports the artifact as cargo does.
    library = tmp_path / setup_py.LIBRARY
    library.write_bytes(b"")
    artifact = {"reason": "compiler-artifact", "target": {"crate_types": ["cdylib"]},
                "filenames": [str(library)]}
    fake = tmp_path / "cargo"
    fake.write_text(f"#!{sys.executable}\n"
                    "import json, os, sys\n"
                    f"open({str(tmp_path / 'call')!r}, 'w').write("
                    "json.dumps([sys.argv[1:], os.getcwd()]))\n"
                    f"print({json.dumps(json.dumps(artifact))})\n")
    fake.chmod(0o755)
    (tmp_path / "Cargo.toml").write_text("[workspace]\n")
    monkeypatch.setenv("THRESHER_REPO", str(tmp_path))
    monkeypatch.setenv("CARGO", str(fake))
    assert setup_py.cargo_build() == library
    args, cwd = json.loads((tmp_path / "call").read_text())
    # -p: the root manifest is a workspace; the root crate is the one that makes libthresher.
    assert args[:5] == ["build", "--release", "-p", "thresher", "--lib"], args
    assert os.path.samefile(cwd, tmp_path)
