"""Threads and processes sharing a loader: threads take turns (each batch to one of them, none
left waiting forever), and a child made by os.fork() gets a clear StateError instead of a call
that blocks for good. Every wait here is bounded: a hang fails the test instead of stalling the
suite."""

from __future__ import annotations

import os
import select
import threading

import pytest

import thresher
from conftest import make_config

# A hang detector, not a timing assertion: the work takes milliseconds.
LIMIT_S = 30


def _join(threads):
    for t in threads:
        t.join(LIMIT_S)
        assert not t.is_alive(), "a thread is still blocked in the loader"


def test_two_threads_sharing_an_epoch_iterator_take_turns():
    with thresher.Loader(make_config(limit=1000, batch_size=32)) as loader:
        for _ in range(3):
            batches = len(loader)
            it = iter(loader)
            seen, errors = [], []

            def consume():
                try:
                    for batch in it:
                        seen.append(batch.ids.copy())
                        batch.release()
                except Exception as e:  # pragma: no cover - reported below
                    errors.append(e)

            threads = [threading.Thread(target=consume) for _ in range(2)]
            for t in threads:
                t.start()
            _join(threads)
            assert not errors, errors
            # Each batch of the epoch went to exactly one thread; nobody began the next epoch.
            assert len(seen) == batches
            ids = sorted(int(i) for b in seen for i in b)
            assert ids == list(range(1000))


def test_two_threads_calling_next_never_wait_forever():
    with thresher.Loader(make_config(limit=500, batch_size=16, prefetch=2)) as loader:
        counts = []

        def consume():
            n = 0
            while (batch := loader.next()) is not None:
                n += len(batch)
                batch.release()
            counts.append(n)

        threads = [threading.Thread(target=consume) for _ in range(2)]
        for t in threads:
            t.start()
        _join(threads)
        # One thread met the end of epoch 0; the other either met it too or went on to the
        # end of epoch 1 (next() after the end begins the next epoch).
        assert sum(counts) in (500, 1000), counts


def test_each_iter_on_its_own_thread_makes_the_older_one_stale():
    with thresher.Loader(make_config(limit=1000, batch_size=32)) as loader:
        first = iter(loader)
        next(first).release()
        second = iter(loader)  # ends the first epoch early and begins the next
        with pytest.raises(thresher.StateError, match="stale"):
            next(first)
        next(second).release()


def _in_child(body) -> str:
    """Runs `body()` in a child made by os.fork(); returns what it wrote (its verdict), failing
    when the child does not finish within LIMIT_S."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        try:
            verdict = body()
        except BaseException as e:  # noqa: BLE001 - everything goes to the parent
            verdict = f"raised {type(e).__name__}: {e}"
        os.write(w, verdict.encode())
        os._exit(0)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], LIMIT_S)
        if not ready:
            os.kill(pid, 9)
            pytest.fail("the forked child blocked")
        out = b""
        while chunk := os.read(r, 4096):
            out += chunk
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    return out.decode()


def test_a_forked_child_gets_a_clear_error_from_the_parents_loader():
    loader = thresher.Loader(make_config(limit=1000, batch_size=32))
    batch = loader.next()  # workers busy prefetching while we fork

    def child():
        verdicts = []
        for name, call in [
            ("next", loader.next),
            ("iter", lambda: next(iter(loader))),
            ("report", loader.report),
            ("end_epoch", loader.end_epoch),
            ("batch.ids", lambda: batch.ids),
        ]:
            try:
                call()
                verdicts.append(f"{name}: no error")
            except thresher.StateError as e:
                ok = "os.fork()" in str(e) and str(os.getpid()) in str(e)
                verdicts.append(f"{name}: {'ok' if ok else e}")
        # Closing in the child returns at once and leaves the parent's loader alone.
        batch.release()
        loader.close()
        return "; ".join(verdicts)

    verdict = _in_child(child)
    assert verdict == ("next: ok; iter: ok; report: ok; end_epoch: ok; batch.ids: ok"), verdict
    # The parent's loader and batch are untouched.
    assert len(batch.ids) == 32
    batch.release()
    assert loader.next() is not None
    loader.close()


def test_a_forked_child_can_make_its_own_loader():
    loader = thresher.Loader(make_config(limit=200, batch_size=50))

    def child():
        with thresher.Loader(make_config(limit=200, batch_size=50)) as own:
            return f"{sum(len(b) for b in own)}"

    assert _in_child(child) == "200"
    loader.close()


def test_a_forked_child_gets_a_clear_error_from_the_parents_sampler():
    torch_mod = pytest.importorskip("thresher.torch")
    sampler = torch_mod.Sampler(100, batch_size=10, seed=0)
    it = iter(sampler)
    next(it)

    def child():
        out = []
        for name, call in [
            ("iter", lambda: next(iter(sampler))),
            ("len", lambda: len(sampler)),
            ("state_dict", sampler.state_dict),
        ]:
            try:
                call()
                out.append(f"{name}: no error")
            except thresher.StateError as e:
                out.append(f"{name}: {'ok' if 'os.fork()' in str(e) else e}")
        return "; ".join(out)

    assert _in_child(child) == "iter: ok; len: ok; state_dict: ok"
    assert len(next(it)) == 10
    sampler.close()


def test_two_threads_sharing_a_sampler_iteration_never_block():
    torch_mod = pytest.importorskip("thresher.torch")
    sampler = torch_mod.Sampler(1000, batch_size=10, seed=0)
    it = iter(sampler)
    got, errors = [], []

    def consume():
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except ValueError as e:  # "generator already executing": a clear refusal
                errors.append(e)
                continue
            got.append(batch)

    threads = [threading.Thread(target=consume) for _ in range(2)]
    for t in threads:
        t.start()
    _join(threads)
    # Every batch was handed out once, to one of the threads.
    assert len(got) == 100
    assert sorted(int(i) for b in got for i in b) == list(range(1000))
    sampler.close()
