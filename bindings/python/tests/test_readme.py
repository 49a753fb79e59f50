"""The README's PyTorch program runs as written, and its diff keeps to five changed lines."""

from __future__ import annotations

import json
import re
import runpy

import pytest

from conftest import REPO, make_config

README = REPO / "bindings" / "python" / "README.md"


def block(marker: str) -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(rf"<!-- test: {marker} -->\s*```\w*\n(.*?)```", text, flags=re.S)
    assert m, f"README block {marker!r} not found"
    return m.group(1)


def test_diff_changes_at_most_five_lines():
    text = README.read_text(encoding="utf-8")
    diff = re.search(r"```diff\n(.*?)```", text, flags=re.S).group(1).splitlines()
    added = [line for line in diff if line.startswith("+")]
    removed = [line for line in diff if line.startswith("-")]
    assert len(added) <= 5 and len(removed) <= 5, (added, removed)


def test_readme_program_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    make_config()  # skips when the data is missing
    config = json.loads(block("config"))
    for key in ("images", "labels"):
        config["source"][key] = str(REPO / config["source"][key])
    config["source"]["limit"] = 2000  # a quick run; the README trains on all 60,000
    (tmp_path / "fashion-mnist.json").write_text(json.dumps(config))
    program = tmp_path / "train.py"
    program.write_text(block("program"))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(program), run_name="__main__")
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 3, out
    pruned = [int(re.search(r"(\d+)% pruned", line).group(1)) for line in lines]
    assert pruned[0] == 0 and pruned[1] > 0 and pruned[2] == 0, out
