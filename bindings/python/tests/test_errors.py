"""Every error path raises the right thresher.Error subclass, with the status and a message
that names the cause, and leaves the process (and the ScoreBook) intact."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import thresher
from conftest import TRAIN_IMAGES, make_config, raw_train_set


def expect(cls, status, *needles):
    """pytest.raises for a thresher error, also checking .status and the message."""

    class _Check:
        def __enter__(self):
            self._ctx = pytest.raises(cls)
            self.info = self._ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self._ctx.__exit__(*exc)
            if not handled:
                return handled
            e = self.info.value
            assert isinstance(e, thresher.Error)
            assert e.status == status and e.message == str(e)
            for needle in needles:
                assert needle in e.message, f"{needle!r} not in {e.message!r}"
            return handled

    return _Check()


# Configuration --------------------------------------------------------------------------------

def test_unknown_config_key_is_named():
    with expect(thresher.InvalidArgument, thresher.Status.INVALID_ARGUMENT, "batch_sise"):
        thresher.Loader(make_config(batch_sise=3))
    with expect(thresher.InvalidArgument, thresher.Status.INVALID_ARGUMENT, "colour"):
        thresher.Loader(make_config(transform={"colour": 1}))


def test_bad_config_value_is_named():
    with expect(thresher.InvalidArgument, 2, "batch_size"):
        thresher.Loader(make_config(batch_size=0))
    with expect(thresher.InvalidArgument, 2, "policy.prune"):
        thresher.Loader(make_config(policy={"kind": "random", "prune": 1.5}))
    with expect(thresher.InvalidArgument, 2, "config"):
        thresher.Loader(make_config(seed=float("nan")))


def test_a_config_python_cannot_parse_is_a_thresher_error_not_a_python_one():
    # JSON nested past Python's recursion limit, and bytes that are not UTF-8: the library
    # refuses both with INVALID_ARGUMENT, and so does the binding's own parse before it.
    with expect(thresher.InvalidArgument, 2, "nested too deeply"):
        thresher.Loader('{"a": ' * 100_000)
    nested: dict = {}
    for _ in range(100_000):
        nested = {"a": nested}
    with expect(thresher.InvalidArgument, 2, "nested too deeply"):
        thresher.Loader(nested)
    with expect(thresher.InvalidArgument, 2, "UTF-8"):
        thresher.Loader(b'{"source": {"kind": "index", "len": 10}, "report": "\xff"}')


def test_a_nan_or_infinity_in_a_config_dict_is_named_by_its_key():
    with expect(thresher.InvalidArgument, 2, "`policy.anneal`", "nan"):
        thresher.Loader(make_config(policy={"kind": "infobatch", "prune": 0.5, "epochs": 2,
                                            "anneal": math.nan}))
    with expect(thresher.InvalidArgument, 2, "`transform.normalize.std[1]`", "inf"):
        thresher.Loader(make_config(transform={"normalize": {"mean": [0.5, 0.5],
                                                             "std": [1.0, math.inf]}}))


def test_a_key_given_twice_is_refused_like_the_library_does(tmp_path):
    index = '"source": {"kind": "index", "len": 10}'
    for text, key in [
        ('{%s, "seed": 1, "seed": 2}' % index, "seed"),
        ('{%s, "policy": {"kind": "random", "prune": 0.3, "prune": 0.5}}' % index, "prune"),
        ('{"source": {"kind": "index", "len": 10, "len": 11}}', "len"),
    ]:
        with expect(thresher.InvalidArgument, 2, key, "given twice"):
            thresher.Loader(text)
        path = tmp_path / "dup.json"
        path.write_text(text)
        with expect(thresher.InvalidArgument, 2, key, "given twice", str(path)):
            thresher.Loader(path)


def test_malformed_configs(tmp_path):
    with expect(thresher.InvalidArgument, 2, "config"):
        thresher.Loader('{"batch_size": ')
    array = tmp_path / "array.json"
    array.write_text("[1, 2]")
    with expect(thresher.InvalidArgument, 2, "JSON object", str(array)):
        thresher.Loader(array)
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with expect(thresher.InvalidArgument, 2, str(bad)):
        thresher.Loader(bad)
    with expect(thresher.InvalidArgument, 2, "expected a dict"):
        thresher.Loader(42)
    with expect(thresher.InvalidArgument, 2, "object"):
        thresher.Loader({"source": object()})


def test_missing_config_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.json"
    with expect(thresher.IoError, thresher.Status.IO, str(missing)):
        thresher.Loader(str(missing))


def test_missing_data_file_names_the_path(tmp_path):
    missing = tmp_path / "no-images.gz"
    cfg = make_config()
    cfg["source"]["images"] = str(missing)
    with expect(thresher.IoError, thresher.Status.IO, str(missing)) as info:
        thresher.Loader(cfg)
    assert isinstance(info.value, OSError)  # ordinary handlers catch it too


def test_truncated_gzip_is_a_format_error(tmp_path):
    cut = tmp_path / "cut-images.gz"
    cut.write_bytes(TRAIN_IMAGES.read_bytes()[:50_000])
    cfg = make_config()
    cfg["source"]["images"] = str(cut)
    with expect(thresher.FormatError, thresher.Status.FORMAT, str(cut)):
        thresher.Loader(cfg)


def test_truncated_idx_is_a_format_error(tmp_path):
    raw = raw_train_set()[0].read_bytes()
    cut = tmp_path / "cut-images.idx"
    cut.write_bytes(raw[:16 + 28 * 28 * 10 + 5])
    cfg = make_config()
    cfg["source"]["images"] = str(cut)
    with expect(thresher.FormatError, 4, str(cut), "truncated"):
        thresher.Loader(cfg)
    notidx = tmp_path / "labels.idx"
    notidx.write_bytes(b"hello, world, not an idx file")
    cfg["source"].update(images=str(TRAIN_IMAGES), labels=str(notidx))
    with expect(thresher.FormatError, 4, str(notidx)):
        thresher.Loader(cfg)


# Feedback -------------------------------------------------------------------------------------

@pytest.fixture
def fed(tmp_path):
    """A loader that has had one valid feedback call, and a way to snapshot its ScoreBook."""
    loader = thresher.Loader(make_config(limit=500, batch_size=50,
                                         policy={"kind": "infobatch", "epochs": 3}))
    batch = loader.next()
    loader.feedback(batch.ids, np.linspace(0.1, 2.0, len(batch)))
    count = [0]

    def snapshot() -> bytes:
        count[0] += 1
        path = tmp_path / f"scores-{count[0]}.bin"
        loader.save_scores(path)
        return path.read_bytes()

    yield loader, batch, snapshot
    loader.close()


def test_nan_loss_is_refused_and_changes_nothing(fed):
    loader, batch, snapshot = fed
    before = snapshot()
    loss = np.ones(len(batch), np.float32)
    loss[7] = np.nan
    with expect(thresher.InvalidArgument, 2, "loss[7]", "NaN"):
        loader.feedback(batch.ids, loss)
    loss[7] = np.inf
    with expect(thresher.InvalidArgument, 2, "loss[7]"):
        loader.feedback(batch.ids, loss)
    assert snapshot() == before


def test_id_out_of_range_changes_nothing(fed):
    loader, batch, snapshot = fed
    before = snapshot()
    ids = batch.ids.copy()
    ids[3] = 500
    with expect(thresher.InvalidArgument, 2, "ids[3]", "500"):
        loader.feedback(ids, np.ones(len(ids)))
    with expect(thresher.InvalidArgument, 2, "ids[0]", "negative"):
        loader.feedback([-1], [1.0])
    with expect(thresher.InvalidArgument, 2, "twice"):
        loader.feedback([4, 4], [1.0, 1.0])
    assert snapshot() == before


def test_mismatched_lengths_change_nothing(fed):
    loader, batch, snapshot = fed
    before = snapshot()
    n = len(batch)
    with expect(thresher.InvalidArgument, 2, "`loss`", str(n - 1), str(n)):
        loader.feedback(batch.ids, np.ones(n - 1))
    with expect(thresher.InvalidArgument, 2, "`grad_norm`"):
        loader.feedback(batch.ids, np.ones(n), grad_norm=np.ones(n + 1))
    with expect(thresher.InvalidArgument, 2, "`correct`"):
        loader.feedback(batch.ids, np.ones(n), correct=np.ones(2, np.uint8))
    with expect(thresher.InvalidArgument, 2, "`embedding`", "rows"):
        loader.feedback(batch.ids, np.ones(n), embedding=np.ones((n - 1, 4)))
    with expect(thresher.InvalidArgument, 2, "`embedding`", "2-D"):
        loader.feedback(batch.ids, np.ones(n), embedding=np.ones(n))
    with expect(thresher.InvalidArgument, 2, "`loss`", "1-D"):
        loader.feedback(batch.ids, np.ones((n, 1)))
    assert snapshot() == before


def test_bad_feedback_values_change_nothing(fed):
    loader, batch, snapshot = fed
    before = snapshot()
    n = len(batch)
    with expect(thresher.InvalidArgument, 2, "grad_norm[0]"):
        loader.feedback(batch.ids, np.ones(n), grad_norm=-np.ones(n))
    with expect(thresher.InvalidArgument, 2, "correct", "0 or 1"):
        loader.feedback(batch.ids, np.ones(n), correct=np.full(n, 2))
    with expect(thresher.InvalidArgument, 2, "ids", "integers"):
        loader.feedback(batch.ids.astype(np.float64), np.ones(n))
    with expect(thresher.InvalidArgument, 2, "loss", "numbers"):
        loader.feedback(batch.ids, ["a"] * n)
    assert snapshot() == before
    # and the loader still works
    loader.feedback(batch.ids, np.ones(n))
    assert snapshot() != before


def test_torch_nan_loss_is_refused():
    torch = pytest.importorskip("torch")
    import thresher.torch as tt

    with tt.Loader(make_config(limit=200)) as loader:
        b = loader.next()
        loss = torch.ones(len(b), requires_grad=True) * float("nan")
        with expect(thresher.InvalidArgument, 2, "NaN"):
            loader.feedback(b.ids, loss)


# Files and checkpoints ------------------------------------------------------------------------

def test_save_scores_to_a_missing_directory_names_the_path(loader, tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "scores.bin"
    with expect(thresher.IoError, 3, str(target)):
        loader.save_scores(target)


def test_bad_state_dicts(loader):
    with expect(thresher.InvalidArgument, 2, "version"):
        loader.load_state_dict({"version": 99, "state": b"", "config": {}})
    with expect(thresher.InvalidArgument, 2, "bytes"):
        loader.load_state_dict({"version": 1, "state": "text", "config": {}})
    with expect(thresher.InvalidArgument, 2, "expected a dict"):
        loader.load_state_dict(None)
    with expect(thresher.FormatError, 4, "state_dict"):
        loader.load_state_dict({"version": 1, "state": b"garbage", "config": {}})
    good = loader.state_dict()
    with expect(thresher.FormatError, 4, "state_dict"):
        loader.load_state_dict({**good, "state": good["state"][: len(good["state"]) // 2]})
    with thresher.Loader(make_config(seed=99)) as other:
        with expect(thresher.InvalidArgument, 2, "state_dict", "another run",
                    "seed 7 in the saved run, 99 here"):
            other.load_state_dict(good)
        # a failed load leaves the loader as it was
        assert len(list(other)) == 16
    assert len(loader.next()) == 64
    with thresher.Loader(make_config(limit=900)) as shorter:
        with expect(thresher.InvalidArgument, 2, "dataset size", "1000 in the saved run, 900 here",
                    "did the dataset change"):
            shorter.load_state_dict(good)


# Use after close ------------------------------------------------------------------------------

def test_use_after_close_is_a_state_error_not_a_crash(tmp_path):
    loader = thresher.Loader(make_config())
    batch = loader.next()
    it = iter(loader)
    loader.close()
    calls = [
        lambda: len(loader),
        lambda: iter(loader),
        lambda: next(it),
        lambda: loader.next(),
        lambda: loader.feedback(batch.ids, np.ones(len(batch))),
        lambda: loader.epoch_info(),
        lambda: loader.report(),
        lambda: loader.save_scores(tmp_path / "s"),
        lambda: loader.state_dict(),
        lambda: loader.load_state_dict({"version": 1, "state": b"", "config": {}}),
    ]
    for call in calls:
        with expect(thresher.StateError, thresher.Status.STATE, "Loader is closed"):
            call()
    with pytest.raises(thresher.StateError):
        with loader:
            pass
    # a batch taken before close is still good, and releasing it after close is fine
    assert batch.data.shape == (64, 1, 28, 28)
    batch.release()


def test_exception_hierarchy():
    for cls, base in [(thresher.InvalidArgument, ValueError), (thresher.IoError, OSError),
                      (thresher.FormatError, ValueError), (thresher.StateError, RuntimeError),
                      (thresher.PanicError, RuntimeError)]:
        e = cls("why")
        assert isinstance(e, thresher.Error) and isinstance(e, base)
        assert e.status.name.replace("_", "") in cls.__name__.upper().replace("ERROR", "") or cls is thresher.IoError
    assert thresher.IoError("x").status == thresher.Status.IO
    from thresher._errors import error_for

    assert type(error_for(6, "boom")) is thresher.PanicError
    assert type(error_for(42, "odd")) is thresher.Error


def test_last_error_is_thread_local():
    import threading

    with pytest.raises(thresher.InvalidArgument):
        thresher.Loader(make_config(workers=0))
    here = thresher.last_error()
    assert "workers" in here
    seen = []
    t = threading.Thread(target=lambda: seen.append(thresher.last_error()))
    t.start()
    t.join()
    assert seen == [""]


def test_json_round_trip_of_report_values(loader):
    # reports are plain Python values: json.dumps with NaN allowed, no ctypes objects inside
    text = json.dumps(loader.report())
    assert math.isnan(json.loads(text)["score_mean"])
