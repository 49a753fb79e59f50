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


def test_diffs_change_at_most_five_lines():
    text = README.read_text(encoding="utf-8")
    diffs = re.findall(r"```diff\n(.*?)```", text, flags=re.S)
    assert len(diffs) == 2  # thresher.torch.Loader, thresher.torch.Sampler
    for diff in diffs:
        added = [line for line in diff.splitlines() if line.startswith("+")]
        removed = [line for line in diff.splitlines() if line.startswith("-")]
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


def _run_block(marker, tmp_path, monkeypatch, capsys, **names):
    program = tmp_path / f"{marker}.py"
    program.write_text(block(marker))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(program), init_globals=names, run_name="__main__")
    out = capsys.readouterr().out
    return [line for line in out.splitlines() if line.startswith("epoch ")], out


def test_readme_sampler_program_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    from fmnist import FashionMNIST

    lines, out = _run_block("sampler-program", tmp_path, monkeypatch, capsys,
                            train_set=FashionMNIST(2000))
    assert len(lines) == 3, out
    steps = [int(re.search(r"(\d+) steps", line).group(1)) for line in lines]
    pruned = [int(re.search(r"(\d+)% pruned", line).group(1)) for line in lines]
    assert steps[0] == 8 and steps[1] < 8 and steps[2] == 8, out
    assert pruned[0] == 0 and pruned[1] > 0 and pruned[2] == 0, out


def test_readme_infobatch_program_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    from fmnist import FashionMNIST

    lines, out = _run_block("infobatch-program", tmp_path, monkeypatch, capsys,
                            trainset=FashionMNIST(2000))
    samples = [int(re.search(r"(\d+) samples", line).group(1)) for line in lines]
    assert len(samples) == 4 and samples[0] == samples[3] == 2000, out
    assert samples[1] < 2000 and samples[2] < 2000, out
