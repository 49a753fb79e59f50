"""Loader: the Python face of thresher_loader — iteration by epoch, feedback, reports,
checkpoints."""

from __future__ import annotations

import ctypes
import json
import os
import tempfile
from typing import Any, Iterator, Optional

from . import _capi, _config, _feedback
from ._batch import Batch
from ._errors import Error, InvalidArgument, check
from ._managed import Managed

STATE_VERSION = 1


def _as_dict(struct) -> dict[str, Any]:
    return {name: getattr(struct, name) for name, _ in struct._fields_}


class Epoch:
    """Iterator over the rest of the current epoch. After StopIteration it stays exhausted (the
    iterator protocol): the next epoch needs a new `iter(loader)`. A batch that failed to load
    raises IoError/FormatError and is skipped; calling next() again continues after it."""

    def __init__(self, loader: "Loader"):
        self._loader = loader
        self._done = False

    def __iter__(self) -> "Epoch":
        return self

    def __next__(self) -> Batch:
        if self._done:
            raise StopIteration
        batch = self._loader.next()
        if batch is None:
            self._done = True
            raise StopIteration
        return batch


class Loader(Managed):
    """A thresher loader.

    `config` is a dict, a JSON string, or the path of a JSON file (keys in the README). Worker
    threads start at once. `for batch in loader:` runs one epoch; the next `for` runs the next
    epoch, planned from the feedback given so far. Leaving a `for` early keeps the rest of the
    epoch for the next one. Close with close() or a `with` block; a closed loader raises
    StateError.

    next() and iteration belong to one thread at a time; feedback(), epoch_info(), report() and
    save_scores() may run on other threads meanwhile. close() must not race with other calls.
    """

    _what = "Loader"
    _batch_class = Batch

    def __init__(self, config: _config.ConfigLike):
        self._config = _config.load(config)
        self._take(self._create(self._config))

    @staticmethod
    def _create(config: dict):
        text = _config.dumps(config)
        out = ctypes.POINTER(_capi.thresher_loader)()
        check(_capi.thresher_loader_new(text.encode("utf-8"), ctypes.byref(out)))
        return out

    def _delete(self, ptr) -> None:
        _capi.thresher_loader_free(ptr)

    @property
    def config(self) -> dict:
        """A copy of the configuration this loader was made from."""
        return json.loads(json.dumps(self._config))

    # Iteration -----------------------------------------------------------------------------

    def next(self) -> Optional[Batch]:
        """The next batch of the current epoch, or None at its end (the call after that starts
        the next epoch)."""
        out = ctypes.POINTER(_capi.thresher_batch)()
        status = check(_capi.thresher_loader_next(self.ptr(), ctypes.byref(out)))
        if status == _capi.THRESHER_END_OF_EPOCH:
            return None
        return self._batch_class(out)

    def __iter__(self) -> Iterator[Batch]:
        self.ptr()
        return Epoch(self)

    def __len__(self) -> int:
        """Batches of the coming epoch (or of the current one, mid-epoch)."""
        return int(self.epoch_info()["batches"])

    # Feedback and reports ------------------------------------------------------------------

    def feedback(self, ids, loss, grad_norm=None, el2n=None, correct=None, embedding=None) -> None:
        """Books one step's per-sample feedback. Arrays may be NumPy arrays, torch tensors (any
        device; detached and copied to the host) or sequences; all hold len(ids) elements and
        `embedding` is [len(ids), dim]. Invalid feedback raises InvalidArgument and changes
        nothing."""
        fb, arrays = _feedback.build(ids, loss, grad_norm, el2n, correct, embedding)
        check(_capi.thresher_loader_feedback(self.ptr(), ctypes.byref(fb)))
        del arrays  # kept alive until here: fb points into them

    def epoch_info(self) -> dict[str, Any]:
        """The current (or, after an epoch ended, the coming) epoch's plan: epoch, batches,
        samples, dataset_len, prune_fraction."""
        out = _capi.thresher_epoch_info()
        check(_capi.thresher_loader_epoch_info(self.ptr(), ctypes.byref(out)))
        return _as_dict(out)

    def report(self) -> dict[str, Any]:
        """The epoch report of the current epoch so far, or of the one that just ended."""
        out = _capi.thresher_epoch_report()
        check(_capi.thresher_loader_report(self.ptr(), ctypes.byref(out)))
        return _as_dict(out)

    def digest(self) -> dict[str, int]:
        """{"epoch", "plan", "scores"}: 64-bit digests of the current (or, between epochs, the
        last) epoch's global plan and of the ScoreBook with the policy's state. Ranks fed the
        same feedback have equal digests; compare them across ranks after each epoch. Hashes
        the whole ScoreBook: call it per epoch, not per step."""
        out = _capi.thresher_digest()
        check(_capi.thresher_loader_digest(self.ptr(), ctypes.byref(out)))
        return _as_dict(out)

    def save_scores(self, path) -> None:
        """Writes the ScoreBook's per-sample scores to `path`, atomically."""
        check(_capi.thresher_loader_save_scores(self.ptr(), os.fsencode(path)))

    # Checkpoints ---------------------------------------------------------------------------

    def save_state(self, path) -> None:
        """Writes a checkpoint to `path`, atomically; config key `resume_from` continues it
        (see state_dict() for which config keys must match)."""
        check(_capi.thresher_loader_save_state(self.ptr(), os.fsencode(path)))

    def state_dict(self) -> dict[str, Any]:
        """{"version", "state": checkpoint bytes, "config"}: load_state_dict() continues
        exactly where this loader is: the same samples in the same order with the same
        weights.

        The checkpoint holds the global plan and how many of its positions were consumed, not
        batches, so the loader it is loaded into may have another batch_size, rank or
        world_size (the rest of the epoch is laid out anew for them). Its config must match in
        dataset size, seed, shuffle, drop_last and policy kind; a mismatch raises
        InvalidArgument naming both values."""
        ptr = self.ptr()
        with tempfile.TemporaryDirectory(prefix="thresher-") as d:
            path = os.path.join(d, "state")
            check(_capi.thresher_loader_save_state(ptr, os.fsencode(path)))
            with open(path, "rb") as f:
                state = f.read()
        return {"version": STATE_VERSION, "state": state, "config": self._base_config()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Replaces the underlying loader by one that continues from `state_dict`, made from
        this loader's config (which may differ from the saved one in batch_size, rank and
        world_size; see state_dict()). On error this loader is left as it was."""
        self.ptr()
        new = self._resume(self._base_config(), state_dict)
        old, self._ptr = self._ptr, new
        self._delete(old)

    @classmethod
    def from_state_dict(cls, state_dict: dict[str, Any]) -> "Loader":
        """A new loader from the config stored in `state_dict`, continuing from its state."""
        config = _config.load(_check_state_dict(state_dict)["config"])
        self = cls.__new__(cls)
        self._config = {k: v for k, v in config.items() if k != "resume_from"}
        self._take(self._resume(self._config, state_dict))
        return self

    @classmethod
    def _resume(cls, config: dict, state_dict: dict[str, Any]):
        state = _check_state_dict(state_dict)["state"]
        with tempfile.TemporaryDirectory(prefix="thresher-") as d:
            path = os.path.join(d, "state")
            with open(path, "wb") as f:
                f.write(state)
            # The checkpoint is read while the loader is created; the file can go afterwards.
            try:
                return cls._create({**config, "resume_from": path})
            except Error as e:
                # The library names the temporary file, which is gone by the time anyone reads
                # the message: say where the bytes came from instead.
                raise type(e)(f"state_dict: {e.message}", e.status) from None

    def _base_config(self) -> dict:
        # resume_from names a checkpoint that may be gone; the state dict carries the state.
        return {k: v for k, v in self.config.items() if k != "resume_from"}

    # Python protocols ----------------------------------------------------------------------

    def __reduce__(self):
        raise TypeError(f"{type(self).__name__} cannot be pickled; use state_dict()")

    def __repr__(self) -> str:
        name = f"{type(self).__module__}.{type(self).__name__}"
        if self.closed:
            return f"<{name}, closed>"
        # report(), not epoch_info(): looking at a loader must never begin its next epoch.
        r = self.report()
        return f"<{name} epoch {r['epoch']}, batch {r['delivered']} of {r['batches']}>"


def _check_state_dict(state_dict) -> dict[str, Any]:
    if not isinstance(state_dict, dict):
        raise InvalidArgument(f"state_dict: expected a dict, got {type(state_dict).__name__}")
    version = state_dict.get("version")
    if version != STATE_VERSION:
        raise InvalidArgument(f"state_dict: version {version!r} is not {STATE_VERSION}")
    state = state_dict.get("state")
    if not isinstance(state, (bytes, bytearray, memoryview)):
        raise InvalidArgument("state_dict: `state` must be bytes")
    if not isinstance(state_dict.get("config"), dict):
        raise InvalidArgument("state_dict: `config` must be a dict")
    return state_dict
