"""Special files through the Python binding: a config path that is a FIFO, a device or a
directory is refused without blocking, and so is a dataset file; a FIFO named like an image is
one sample's error, or a skipped sample with on_error "skip"."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import thresher

LIMIT_S = 30


def _bounded(call):
    """Runs `call` on a thread; fails when it does not return within LIMIT_S."""
    out = {}

    def run():
        try:
            out["value"] = call()
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(LIMIT_S)
    assert not t.is_alive(), "the call blocked"
    if "error" in out:
        raise out["error"]
    return out.get("value")


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory"])
def test_a_config_path_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "config.json"
        os.mkfifo(path)
    elif kind == "dev_zero":
        path = "/dev/zero"
    else:
        path = tmp_path
    with pytest.raises(thresher.FormatError, match="not a regular file"):
        _bounded(lambda: thresher.Loader(str(path)))


def _png(path, value):
    from PIL import Image

    Image.fromarray(np.full((3, 3, 3), value, np.uint8)).save(path)


def test_a_fifo_image_is_a_sample_error_or_skipped(tmp_path):
    pytest.importorskip("PIL")
    (tmp_path / "a").mkdir()
    for i in range(3):
        _png(tmp_path / "a" / f"{i}.png", 10 * i)
    os.mkfifo(tmp_path / "a" / "1x.png")  # sample 2
    config = {"source": {"kind": "image_folder", "root": str(tmp_path)}, "batch_size": 1,
              "shuffle": False, "transform": {"resize": [2, 2], "dtype": "u8"}}

    def epoch(loader):
        got, errors = [], []
        while True:
            try:
                batch = loader.next()
            except thresher.FormatError as e:
                errors.append(str(e))
                continue
            if batch is None:
                return got, errors
            got.extend(int(i) for i in batch.ids)
            batch.release()

    with thresher.Loader(config) as loader:
        got, errors = _bounded(lambda: epoch(loader))
    assert got == [0, 1, 3]
    assert len(errors) == 1 and "sample 2" in errors[0] and "a FIFO" in errors[0], errors
    with thresher.Loader({**config, "on_error": "skip"}) as loader:
        got, errors = _bounded(lambda: epoch(loader))
        assert (got, errors) == ([0, 1, 3], [])
        assert loader.report()["skipped"] == 1


def test_a_fifo_dataset_file_is_refused_at_creation(tmp_path):
    fifo = tmp_path / "images"
    os.mkfifo(fifo)
    config = {"source": {"kind": "idx", "images": str(fifo), "labels": str(fifo)}}
    with pytest.raises(thresher.FormatError, match="a FIFO"):
        _bounded(lambda: thresher.Loader(config))
