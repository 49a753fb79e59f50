"""Loader and Batch behaviour: configs, epochs, len(), fields, reports, lifetimes."""

from __future__ import annotations

import gc
import json
import math

import numpy as np
import pytest

import thresher
from conftest import make_config


def test_config_as_dict_json_string_and_path(tmp_path):
    config = make_config(limit=300, batch_size=100)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    epochs = []
    for form in (config, json.dumps(config), str(path), path, json.dumps(config).encode()):
        with thresher.Loader(form) as loader:
            epochs.append([b.ids.tolist() for b in loader])
    assert all(e == epochs[0] for e in epochs)
    assert sorted(i for b in epochs[0] for i in b) == list(range(300))


def test_the_callers_dict_is_copied():
    config = make_config(limit=300)
    with thresher.Loader(config) as loader:
        config["batch_size"] = 1
        assert loader.config["batch_size"] == 64


def test_len_is_the_coming_epochs_batches():
    with thresher.Loader(make_config(limit=1000, batch_size=64)) as loader:
        assert len(loader) == math.ceil(1000 / 64)
        assert sum(1 for _ in loader) == 16
    with thresher.Loader(make_config(limit=1000, batch_size=64, drop_last=True)) as loader:
        assert len(loader) == 15 == sum(1 for _ in loader)


def test_each_for_loop_is_one_epoch(loader):
    seen = []
    for epoch in range(3):
        assert loader.epoch_info()["epoch"] == epoch
        n = len(loader)
        ids = np.concatenate([b.ids.copy() for b in loader])
        assert len(ids) == 1000 and len(np.unique(ids)) == 1000
        seen.append(ids)
        report = loader.report()
        assert report["epoch"] == epoch and report["delivered"] == report["batches"] == n
    # shuffled afresh every epoch
    assert not np.array_equal(seen[0], seen[1])


def test_an_exhausted_epoch_iterator_stays_exhausted(loader):
    it = iter(loader)
    assert sum(1 for _ in it) == len(loader)
    assert next(it, None) is None
    assert loader.epoch_info()["epoch"] == 1


def test_a_for_after_break_begins_the_next_epoch(config, tmp_path):
    # DataLoader's convention: every iter() is a new epoch. The epoch left early is ended
    # (end_epoch): its report line is written with the batches delivered, the rest abandoned.
    report = tmp_path / "report.jsonl"
    cfg = config(limit=1000, batch_size=64, report=str(report))
    with thresher.Loader(cfg) as loader:
        first = []
        for i, b in enumerate(loader):
            first.append(b.ids.copy())
            if i == 2:
                break
        assert loader.report()["delivered"] == 3
        assert len(loader) == 16  # mid-epoch (for LR schedules): still the epoch under way
        second = [b.ids.copy() for b in loader]
        assert loader.report()["epoch"] == 1
        assert len(second) == 16 and len(np.unique(np.concatenate(second))) == 1000
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(r["epoch"], r["delivered"], r["batches"]) for r in lines] == [(0, 3, 16), (1, 16, 16)]
    # the abandoned 13 batches count as not visited: 3·64 of 1000 samples visited in epoch 0
    assert lines[0]["saved_fraction"] == pytest.approx(1 - 192 / 1000)


def test_resume_epoch_continues_the_epoch_left_early(loader):
    first = []
    for i, b in enumerate(loader):
        first.append(b.ids.copy())
        if i == 2:
            break
    loader.resume_epoch()
    rest = [b.ids.copy() for b in loader]
    assert len(first) + len(rest) == 16
    assert len(np.unique(np.concatenate(first + rest))) == 1000
    assert loader.report()["epoch"] == 0
    # a complete epoch is not continued: the next for is epoch 1
    loader.resume_epoch()
    assert sum(1 for _ in loader) == 16 and loader.report()["epoch"] == 1


def test_next_continues_where_the_for_left_off(loader):
    it = iter(loader)
    a = next(it).ids.copy()
    b = loader.next().ids.copy()  # next() never begins an epoch of its own accord
    c = next(it).ids.copy()
    assert len(np.unique(np.concatenate([a, b, c]))) == 3 * 64
    assert loader.report()["delivered"] == 3


def test_a_stale_epoch_iterator_raises(loader):
    old = iter(loader)
    next(old)
    new = iter(loader)  # ends epoch 0, begins epoch 1
    with pytest.raises(thresher.StateError, match="stale"):
        next(old)
    assert next(new) is not None and loader.report()["epoch"] == 1


def test_dataloader_attributes(config):
    cfg = config(limit=300, batch_size=64, drop_last=True)
    with thresher.Loader(cfg) as loader:
        assert len(loader.dataset) == 300 and loader.dataset.kind == "idx"
        assert loader.dataset.config["limit"] == 300
        assert loader.batch_size == 64 and loader.drop_last is True and len(loader) == 4
        assert not loader.index_mode
    with thresher.Loader({"source": {"kind": "index", "len": 10}}) as loader:
        assert loader.batch_size == 256 and loader.drop_last is False
        assert len(loader.dataset) == 10 and loader.index_mode


def test_batch_fields(config):
    with thresher.Loader(config(limit=200, batch_size=64)) as loader:
        batches = list(loader)
    b = batches[0]
    assert len(b) == 64
    assert b.data.shape == (64, 1, 28, 28) and b.data.dtype == np.float32
    assert b.labels.shape == (64,) and b.labels.dtype == np.int64
    assert b.ids.shape == (64,) and b.ids.dtype == np.uint64
    assert b.weights.shape == (64,) and b.weights.dtype == np.float32
    assert np.all(b.weights == 1.0)
    assert set(b.labels.tolist()) <= set(range(10))
    assert len(batches[-1]) == 200 - 3 * 64 and batches[-1].data.shape[0] == 8
    # the loader outlives nothing: batches stay readable after it was closed
    assert float(b.data.sum()) > 0


def test_u8_nhwc_transform(config):
    cfg = config(limit=100, batch_size=10, transform={"dtype": "u8", "layout": "nhwc"})
    with thresher.Loader(cfg) as loader:
        b = loader.next()
        assert b.data.shape == (10, 28, 28, 1) and b.data.dtype == np.uint8
        assert b.data.max() > 100


def test_same_seed_same_batches(config):
    runs = []
    for workers in (1, 3):
        with thresher.Loader(config(limit=500, workers=workers)) as loader:
            runs.append([(b.ids.copy(), b.data.copy()) for b in loader])
    for (ids0, d0), (ids1, d1) in zip(*runs):
        assert np.array_equal(ids0, ids1) and np.array_equal(d0, d1)


def test_views_outlive_release_and_loader(config):
    loader = thresher.Loader(config(limit=200))
    b = loader.next()
    data, ids = b.data, b.ids
    expected = (data.copy(), ids.copy())
    b.release()
    b.release()  # idempotent
    assert b.closed
    loader.close()
    # keep the pipeline busy writing other slots if it could; the views must not change
    del b
    gc.collect()
    assert np.array_equal(data, expected[0]) and np.array_equal(ids, expected[1])


def test_a_field_not_read_before_release_is_a_state_error(loader):
    b = loader.next()
    _ = b.ids
    b.release()
    assert len(b.ids) == 64
    with pytest.raises(thresher.StateError, match="released"):
        _ = b.data


def test_batch_as_context_manager(loader):
    with loader.next() as b:
        ids = b.ids
    assert b.closed and len(ids) == 64


def test_loader_context_manager_and_close(config):
    with thresher.Loader(config()) as loader:
        assert not loader.closed
        assert "epoch 0" in repr(loader)
    assert loader.closed
    assert "closed" in repr(loader)
    loader.close()  # idempotent


def test_next_returns_none_at_the_end_of_an_epoch(config):
    with thresher.Loader(config(limit=100, batch_size=50)) as loader:
        assert loader.next() is not None and loader.next() is not None
        assert loader.next() is None
        assert loader.next().ids.shape == (50,)  # next epoch


def test_epoch_info_and_report_are_dicts(loader):
    info = loader.epoch_info()
    assert info == {"epoch": 0, "batches": 16, "samples": 1000, "dataset_len": 1000,
                    "prune_fraction": 0.0}
    report = loader.report()
    assert set(report) == {"epoch", "samples", "dataset_len", "prune_fraction",
                           "saved_fraction", "mean_weight", "score_mean", "score_std",
                           "batches", "delivered", "consumer_wait_s", "worker_busy_s",
                           "skipped"}
    assert report["delivered"] == 0 and report["skipped"] == 0
    assert math.isnan(report["score_mean"])


def test_feedback_reaches_the_scorebook(config, tmp_path):
    # plan_ahead off: the plan of epoch 1 sees the last batch's feedback too
    cfg = config(limit=300, batch_size=100, plan_ahead=False,
                 policy={"kind": "infobatch", "prune": 0.5, "epochs": 4})
    with thresher.Loader(cfg) as loader:
        for b in loader:
            loader.feedback(b.ids, b.ids.astype(np.float32) / 300, grad_norm=np.ones(len(b)),
                            el2n=np.full(len(b), 0.5), correct=np.ones(len(b), dtype=bool),
                            embedding=np.ones((len(b), 3), np.float32))
        loader.save_scores(tmp_path / "scores.bin")
        loader.epoch_info()  # plans epoch 1 from the ScoreBook
        report = loader.report()
    assert (tmp_path / "scores.bin").stat().st_size > 0
    # the ids 0..299 gave losses 0..1; infobatch's score is the last loss
    assert report["score_mean"] == pytest.approx(299 / 600, rel=1e-3)


INFOBATCH = {"kind": "infobatch", "epochs": 4}  # keeps each sample's last loss
FORGETTING = {"kind": "forgetting"}  # keeps each sample's last correctness


def _scores_after(policy: dict, feed) -> int:
    """The ScoreBook digest of a fresh loader after `feed(loader, ids)` on its first batch's ids
    (the same ids for every call with the same policy: the plan is seeded)."""
    with thresher.Loader(make_config(limit=1000, batch_size=64, policy=policy)) as ld:
        with ld.next() as b:
            ids = b.ids.copy()
        before = ld.digest()["scores"]
        feed(ld, ids)
        after = ld.digest()["scores"]
    assert after != before or feed is _feed_nothing, "the feedback left no trace in the digest"
    return after


def _feed_nothing(ld, ids):
    ld.feedback([], [])


def test_feedback_accepts_lists_and_other_dtypes():
    # What was stored, not only that the call passed: each converted form must leave the same
    # ScoreBook as uint64 ids with float32 values, and the controls show that the digest does
    # see truncated values, ids shifted by one and flipped correctness.
    loss = np.linspace(0.3, 7.7, 64)  # float64, none of them integers
    half = 32

    def reference(ld, ids):
        ld.feedback(ids[:half], loss[:half].astype(np.float32))
        ld.feedback(ids[half:][::2].copy(), loss[half:][::2].astype(np.float32))

    def converted(ld, ids):
        # Python lists (ints become uint64, floats float32) ...
        ld.feedback([int(i) for i in ids[:half]], [float(x) for x in loss[:half]])
        # ... and strided int32 ids with strided float64 losses.
        ld.feedback(ids.astype(np.int32)[half:][::2], loss[half:][::2])

    def truncated(ld, ids):
        ld.feedback(ids[:half], np.trunc(loss[:half]).astype(np.float32))
        ld.feedback(ids[half:][::2].copy(), np.trunc(loss[half:][::2]).astype(np.float32))

    def shifted(ld, ids):
        ld.feedback((ids[:half] + 1) % 1000, loss[:half].astype(np.float32))
        ld.feedback(((ids[half:] + 1) % 1000)[::2], loss[half:][::2].astype(np.float32))

    want = _scores_after(INFOBATCH, reference)
    assert _scores_after(INFOBATCH, converted) == want
    assert _scores_after(INFOBATCH, truncated) != want
    assert _scores_after(INFOBATCH, shifted) != want

    # Correctness: bool lists and int32 arrays become the uint8 0/1 the library reads.
    right = np.arange(64) % 3 == 0
    ones = np.ones(64, np.float32)

    def correct_ref(ld, ids):
        ld.feedback(ids, ones, correct=right.astype(np.uint8))

    def correct_list(ld, ids):
        ld.feedback(ids.tolist(), ones.tolist(), correct=right.tolist())

    def correct_int32(ld, ids):
        ld.feedback(ids.astype(np.int64), ones.astype(np.float64), correct=right.astype(np.int32))

    def correct_flipped(ld, ids):
        ld.feedback(ids, ones, correct=(~right).astype(np.uint8))

    want = _scores_after(FORGETTING, correct_ref)
    assert _scores_after(FORGETTING, correct_list) == want
    assert _scores_after(FORGETTING, correct_int32) == want
    assert _scores_after(FORGETTING, correct_flipped) != want

    # Empty lists are a valid, empty call.
    _scores_after(INFOBATCH, _feed_nothing)


def test_state_dict_resumes_exactly(config):
    # infobatch, so the next epoch's plan depends on the ScoreBook the state carries
    cfg = config(limit=500, batch_size=50, policy={"kind": "infobatch", "epochs": 4})

    def run(loader):
        ids = []
        for _ in range(2):  # the rest of epoch 0, then epoch 1
            for b in loader:
                ids.append(b.ids.copy())
                loader.feedback(b.ids, b.ids / 500.0)
        return ids, loader.next().data.copy()

    with thresher.Loader(cfg) as a:
        for _ in range(3):
            b = a.next()
            a.feedback(b.ids, b.ids / 500.0)
        sd = a.state_dict()
        assert sd["version"] == 1 and isinstance(sd["state"], bytes) and sd["config"] == cfg
        a.resume_epoch()  # the `for` in run() continues epoch 0 (load_state_dict does so too)
        expected, pixels = run(a)
    with thresher.Loader(cfg) as c:
        c.load_state_dict(sd)
        assert "resume_from" not in c.config
        got, got_pixels = run(c)
    assert np.array_equal(got_pixels, pixels)  # same bytes, not only the same ids
    assert len(got) == len(expected) and 7 + 1 < len(expected) < 7 + 10  # epoch 1 was pruned
    assert all(np.array_equal(x, y) for x, y in zip(got, expected))
    with thresher.Loader.from_state_dict(sd) as d:
        assert np.array_equal(d.next().ids, expected[0])
        # a state dict of a resumed loader resumes too
        sd2 = d.state_dict()
        assert "resume_from" not in sd2["config"]
    with thresher.Loader.from_state_dict(sd2) as e:
        assert np.array_equal(e.next().ids, expected[1])


def test_state_dict_resumes_at_another_batch_size_and_world_size(config):
    # The checkpoint holds the global plan and the consumed position, not batches: the rest of
    # the epoch is laid out anew for the resuming loader's batch_size, rank and world_size.
    cfg = config(limit=500, batch_size=50, policy={"kind": "infobatch", "epochs": 4})

    def rest_of_epoch(loader):
        ids, weights, sizes = [], [], []
        for b in loader:
            real = len(b) - b.padding
            ids.append(b.ids[:real].copy())
            weights.append(b.weights[:real].copy())
            sizes.append(len(b))
        return np.concatenate(ids), np.concatenate(weights), sizes

    with thresher.Loader(cfg) as a:
        for _ in range(3):
            b = a.next()
            a.feedback(b.ids, b.ids / 500.0)
        sd = a.state_dict()
        a.resume_epoch()
        ids, weights, _ = rest_of_epoch(a)

    with thresher.Loader({**cfg, "batch_size": 30}) as c:
        c.load_state_dict(sd)
        got_ids, got_weights, sizes = rest_of_epoch(c)
    assert max(sizes) == 30 and len(sizes) == math.ceil(len(ids) / 30)
    assert np.array_equal(got_ids, ids) and np.array_equal(got_weights, weights)

    shares = []
    for rank in range(2):
        with thresher.Loader({**cfg, "batch_size": 20, "rank": rank, "world_size": 2}) as r:
            r.load_state_dict(sd)
            shares.append(rest_of_epoch(r)[0])
    assert sorted(np.concatenate(shares).tolist()) == sorted(ids.tolist())


def test_torch_weighted_loss_and_feedback():
    torch = pytest.importorskip("torch")
    import thresher.torch as tt

    with tt.Loader(make_config(limit=200, batch_size=64)) as loader:
        b = loader.next()
        assert isinstance(b, tt.Batch) and isinstance(b.data, torch.Tensor)
        assert b.ids.dtype == torch.uint64 and b.labels.dtype == torch.int64
        loss = torch.arange(64, dtype=torch.float32, requires_grad=True)
        w = tt.weighted_loss(loss, b)
        assert w.item() == pytest.approx(loss.detach().mean().item())
        w.backward()
        assert loss.grad is not None
        loader.feedback(b.ids, loss, correct=b.labels == 0)
        assert tt.Loader.weighted_loss(loader, loss, b).item() == pytest.approx(31.5)
        with pytest.raises(thresher.InvalidArgument, match="reduction='none'"):
            tt.weighted_loss(loss.mean(), b)
    # the NumPy batch works with the torch helper too
    with thresher.Loader(make_config(limit=200)) as loader:
        nb = loader.next()
        assert tt.weighted_loss(torch.ones(64), nb).item() == pytest.approx(1.0)
    assert thresher.torch is tt


def test_feedback_from_another_thread_while_iterating(config):
    import queue
    import threading

    cfg = config(limit=2000, batch_size=50, policy={"kind": "infobatch", "epochs": 3})
    with thresher.Loader(cfg) as loader:
        todo: queue.Queue = queue.Queue()
        errors = []

        def feeder():
            while (item := todo.get()) is not None:
                try:
                    loader.feedback(*item)
                except Exception as e:  # pragma: no cover - reported below
                    errors.append(e)

        t = threading.Thread(target=feeder)
        t.start()
        for batch in loader:
            todo.put((batch.ids, np.linspace(0.0, 1.0, len(batch))))
        todo.put(None)
        t.join()
        assert errors == []
        assert loader.epoch_info()["prune_fraction"] > 0


def test_library_location(tmp_path):
    import os
    import subprocess
    import sys

    code = "import thresher; print(thresher.library_path)"
    env = dict(os.environ, THRESHER_LIBRARY=str(thresher.library_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(thresher.library_path)
    env["THRESHER_LIBRARY"] = str(tmp_path / "missing.so")
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "THRESHER_LIBRARY" in proc.stderr and "missing.so" in proc.stderr


def test_loaders_cannot_be_pickled(loader):
    import pickle

    with pytest.raises(TypeError, match="state_dict"):
        pickle.dumps(loader)


def test_save_state_and_resume_from(config, tmp_path):
    cfg = config(limit=300, batch_size=100)
    ckpt = tmp_path / "ckpt.bin"
    with thresher.Loader(cfg) as a:
        a.next()
        a.save_state(ckpt)
        expected = a.next().ids.copy()
    with thresher.Loader({**cfg, "resume_from": str(ckpt)}) as b:
        assert np.array_equal(b.next().ids, expected)


def test_plan_ahead_k_gives_the_batches_of_index_mode():
    # plan_ahead 5: the next plan is fixed 5 batches before the end; a loader with data (its
    # workers make the plan while the trainer goes on) and index mode agree batch for batch
    policy = {"kind": "ucb", "prune": 0.5, "noise_guard": False}

    def run(cfg):
        out = []
        with thresher.Loader(cfg) as ld:
            for epoch in range(3):
                for b in ld:
                    out.append((epoch, b.ids.tolist()))
                    ld.feedback(b.ids, ((b.ids * 7 + epoch * 3) % 11).astype(np.float32))
        return out

    with_data = run(make_config(limit=600, batch_size=50, plan_ahead=5, policy=policy))
    index = run({"source": {"kind": "index", "len": 600}, "batch_size": 50, "plan_ahead": 5,
                 "seed": 7, "policy": policy})
    assert [e for e, _ in with_data].count(2) == 6  # pruned to half: 6 batches an epoch
    assert with_data == index
    with pytest.raises(thresher.InvalidArgument, match="plan_ahead"):
        thresher.Loader(make_config(limit=600, plan_ahead=256))
