"""Loader: the Python face of thresher_loader — iteration by epoch, feedback, reports,
checkpoints."""

from __future__ import annotations

import ctypes
import json
import operator
import os
import tempfile
import warnings
from typing import Any, Iterator, Optional

from . import _capi, _config, _feedback
from ._batch import Batch
from ._errors import Error, InvalidArgument, NoisyLabelsWarning, StateError, check
from ._managed import Managed, ProcessLock
from ._plan import EpochPlan

# The share of an epoch's kept samples that look unlearnable above which iteration warns
# (NoisyLabelsWarning): the header's THRESHER_UNLEARNABLE_WARNING, the level of every binding
# and of the reference trainer (docs/policies.md, "The warning").
UNLEARNABLE_WARNING = _capi.THRESHER_UNLEARNABLE_WARNING

STATE_VERSION = 1
# The library's defaults for the keys DataLoader also has (crates/thresher-core/src/config.rs).
DEFAULT_BATCH_SIZE = 256


def _as_dict(struct) -> dict[str, Any]:
    return {name: getattr(struct, name) for name, _ in struct._fields_}


class Source:
    """What a loader reads, as DataLoader's `dataset` attribute describes it: len() is N, the
    samples in the dataset; `kind` and `config` are the config's `source` section. Not
    indexable: thresher reads the samples itself (or, in index mode, you do)."""

    def __init__(self, config: dict, length: int):
        self.config = config
        self.kind = config.get("kind")
        self._len = length

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"<thresher.Source {self.kind!r} of {self._len} samples>"


class Epoch:
    """Iterator over the rest of the current epoch. After StopIteration it stays exhausted (the
    iterator protocol): the next epoch needs a new `iter(loader)`. A batch that failed to load
    raises IoError/FormatError and is skipped; calling next() again continues after it. Once a
    later `iter(loader)` (or load_state_dict) has moved the loader on, this one raises
    StateError instead of handing out another epoch's batches."""

    def __init__(self, loader: "Loader", generation: int):
        self._loader = loader
        self._generation = generation
        self._done = False

    def __iter__(self) -> "Epoch":
        return self

    def __next__(self) -> Batch:
        # Under the loader's lock: threads sharing this iterator take turns, and one that
        # waited while another reached the end stops too instead of beginning the next epoch.
        with self._loader._lock:
            if self._done:
                raise StopIteration
            if self._loader._generation != self._generation:
                raise StateError(
                    "this epoch iterator is stale: a later iter(loader), load_state_dict() or "
                    "end_epoch() moved the loader on"
                )
            batch = self._loader.next()
            if batch is None:
                self._done = True
                raise StopIteration
            return batch


class Loader(Managed):
    """A thresher loader.

    `config` is a dict, a JSON string, or the path of a JSON file (keys in the README). Worker
    threads start at once. `for batch in loader:` runs one epoch; the next `for` runs the next
    epoch, planned from the feedback given so far. As with torch's DataLoader, every iter()
    begins a new epoch: an epoch left early (a `break`) is ended first with end_epoch() — its
    other batches are abandoned, the feedback given stays. To continue it instead, call
    resume_epoch() before the next `for` (load_state_dict() does so too); next() always
    continues. With config source `{"kind": "index", "len": N}` the loader runs in index mode:
    no workers, batches of ids and weights without data, for a pipeline that reads its own
    samples (thresher.torch.Sampler is that for a DataLoader). Close with close() or a `with`
    block; a closed loader raises StateError.

    DataLoader's attributes: `dataset` (a Source: len() = N), `batch_size`, `drop_last`, and
    len(loader) (the epoch's batches).

    Threads: next(), iteration, end_epoch(), load_state_dict() and close() take a lock, so
    threads that share a loader (or one epoch iterator) take turns: each batch goes to exactly
    one of them and none waits forever — when one reaches the end of the epoch, the others'
    next() on that iterator stops too. feedback(), epoch_info(), report() and save_scores() do
    not wait for it and may run on other threads meanwhile.

    Processes: a loader belongs to the process that made it. In a child made by os.fork() its
    worker threads do not exist, so every use there raises StateError (create a new loader in
    the child) and closing it there only drops the child's reference.
    """

    _what = "Loader"
    _batch_class = Batch

    # Set per instance (also by from_state_dict, which skips __init__).
    _resume = False
    _generation = 0

    def __init__(self, config: _config.ConfigLike):
        self._config = _config.load(config)
        self._take(self._create(self._config))

    @staticmethod
    def _create(config: dict):
        text = _config.dumps(config)
        out = ctypes.POINTER(_capi.thresher_loader)()
        check(_capi.thresher_loader_new(text.encode("utf-8"), ctypes.byref(out)))
        return out

    def _take(self, ptr) -> None:
        super()._take(ptr)
        self._lock = ProcessLock(self._what)

    def _delete(self, ptr) -> None:
        _capi.thresher_loader_free(ptr)

    def close(self) -> None:
        """Frees the loader (its worker threads stop within about a second, whatever they are
        reading). Waits for a next() under way on another thread; in a child made by
        os.fork() it only drops the child's reference."""
        if self._ptr is not None and self._pid == os.getpid():
            with self._lock:
                super().close()
        else:
            super().close()

    @property
    def config(self) -> dict:
        """A copy of the configuration this loader was made from."""
        return json.loads(json.dumps(self._config))

    # DataLoader's attributes ---------------------------------------------------------------

    @property
    def dataset(self) -> Source:
        """The source as an object with len() = N, the samples in the dataset (DataLoader's
        `dataset`)."""
        source = self._config.get("source")
        source = dict(source) if isinstance(source, dict) else {}
        return Source(source, self._dataset_len())

    @property
    def batch_size(self) -> int:
        return int(self._config.get("batch_size", DEFAULT_BATCH_SIZE))

    @property
    def drop_last(self) -> bool:
        return bool(self._config.get("drop_last", False))

    @property
    def index_mode(self) -> bool:
        """Whether the source is `{"kind": "index", ...}`: batches without data."""
        source = self._config.get("source")
        return isinstance(source, dict) and source.get("kind") == "index"

    def _dataset_len(self) -> int:
        # report() never begins an epoch; it knows N except on a loader resumed from a
        # checkpoint written between epochs, before its first call.
        n = int(self.report()["dataset_len"])
        return n if n else int(self.epoch_info()["dataset_len"])

    # Iteration -----------------------------------------------------------------------------

    def next(self) -> Optional[Batch]:
        """The next batch of the current epoch, or None at its end (the call after that starts
        the next epoch)."""
        out = ctypes.POINTER(_capi.thresher_batch)()
        self.ptr()  # closed or forked: raise before taking the lock
        with self._lock:
            status = check(_capi.thresher_loader_next(self.ptr(), ctypes.byref(out)))
        if status == _capi.THRESHER_END_OF_EPOCH:
            return None
        return self._batch_class(out)

    def __iter__(self) -> Iterator[Batch]:
        """One epoch, as a DataLoader iterates: the next one. When the epoch under way has
        handed out batches already, it is ended first (end_epoch(): the rest abandoned,
        feedback kept) — unless resume_epoch() or load_state_dict() asked to continue it and
        it has batches left."""
        self.ptr()
        with self._lock:
            resume, self._resume = self._resume, False
            info = self.epoch_info()  # the next epoch's plan if the last one ended
            delivered = int(self.report()["delivered"])
            if delivered and not (resume and delivered < info["batches"]):
                self.end_epoch()
            self.warn_if_unlearnable()
            self._generation += 1
            return Epoch(self, self._generation)

    def resume_epoch(self) -> None:
        """Makes the next iter() continue the epoch under way from the batch next() would give,
        instead of ending it and beginning the next (for a loop left early on purpose, e.g. for
        an evaluation in the middle of an epoch). A complete epoch is not continued."""
        self.ptr()
        self._resume = True

    def end_epoch(self) -> None:
        """Ends the epoch under way now: its report is written, its remaining batches are
        abandoned (not visited; no feedback expected for them), the feedback given stays, and
        the next batch begins the next epoch. A no-op between epochs. iter() calls it for an
        epoch left early."""
        self.ptr()
        with self._lock:
            check(_capi.thresher_loader_end_epoch(self.ptr()))

    def advance(self, batches: int) -> None:
        """Index mode only: counts `batches` more batches of the epoch under way as handed out,
        without building them — for a reader that consumed them from epoch_plan(), so that
        report() (`delivered`, `saved_fraction`) and checkpoints see its real position. Begins
        the next epoch first when the last one has ended; next() then continues after them
        (None once none is left). Reaching the last batch hands it out, which makes the next
        epoch's plan (config plan_ahead): advance only as far as the trainer has consumed.
        InvalidArgument when fewer than `batches` are left (nothing changes); StateError for a
        loader with data. One C call however many batches."""
        check(_capi.thresher_loader_advance(self.ptr(), _count("advance", batches)))

    def __len__(self) -> int:
        """Batches of the coming epoch (or of the current one, mid-epoch and until next() has
        reported its end)."""
        return int(self.epoch_info()["batches"])

    def epoch_plan(self) -> EpochPlan:
        """This rank's whole epoch under way, from its batch 0 (the next one's if the last one
        ended, like epoch_info(): planned when its last batch was handed out, or now with
        config plan_ahead false): ids and weights as NumPy arrays in delivery order, with
        `epoch`, `batches`, `padding` and `batch(k)`. It does not move the position: next()
        still hands out the same batches one by one; in index mode, advance(k) tells the
        loader that a reader of the plan consumed k more."""
        return EpochPlan._read(self.ptr(), self.batch_size)

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

    @property
    def unlearnable_fraction(self) -> float:
        """The fraction of the current (or last) epoch's kept samples that look unlearnable:
        wrong at each of their last `guard_window` correctness reports when the plan was made
        (needs `correct` in the feedback). NaN for full, random and infobatch."""
        out = ctypes.c_double(0.0)
        check(_capi.thresher_loader_unlearnable_fraction(self.ptr(), ctypes.byref(out)))
        return float(out.value)

    def warn_if_unlearnable(self, threshold: float = UNLEARNABLE_WARNING) -> None:
        """Warns (NoisyLabelsWarning) once per epoch when the current epoch's plan keeps more
        than `threshold` of samples that look unlearnable. Iteration calls it."""
        f = self.unlearnable_fraction
        epoch = int(self.report()["epoch"])
        if f == f and f > threshold and getattr(self, "_warned_epoch", None) != epoch:
            self._warned_epoch = epoch
            warnings.warn(
                f"thresher: {100 * f:.1f}% of epoch {epoch}'s kept samples look unlearnable "
                f"(misclassified at each of their last reports): the labels may be noisy, and a "
                f"policy that keeps hard samples may be fitting them (keep `noise_guard` on; "
                f"docs/policies.md, \"The noise guard\")", NoisyLabelsWarning, stacklevel=3)

    @property
    def total_batches(self) -> int:
        """The run's total batches on this rank, known before training starts (for learning-
        rate schedules over the whole run): exact under the policy key `budget`, and for `full`
        and `random` with `epochs`. StateError when the count depends on feedback."""
        out = ctypes.c_uint64(0)
        check(_capi.thresher_loader_total_batches(self.ptr(), ctypes.byref(out)))
        return int(out.value)

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

    def save_state_at(self, path, batches: int) -> None:
        """Writes a checkpoint as if only the first `batches` batches of the latest epoch (the
        one under way, or the one that just ended) had been handed out: for a consumer that
        fetches ahead of its trainer. Resuming from it yields batch `batches` next.
        InvalidArgument when more batches are named than were handed out."""
        check(_capi.thresher_loader_save_state_at(self.ptr(), os.fsencode(path),
                                                  _count("save_state_at", batches)))

    def state_dict(self, batches: Optional[int] = None) -> dict[str, Any]:
        """{"version", "state": checkpoint bytes, "config"}: load_state_dict() continues
        exactly where this loader is: the same samples in the same order with the same
        weights. With `batches`, where it would be had it handed out only the first `batches`
        batches of the latest epoch (save_state_at).

        The checkpoint holds the global plan and how many of its positions were consumed, not
        batches, so the loader it is loaded into may have another batch_size, rank or
        world_size (the rest of the epoch is laid out anew for them). Its config must match in
        dataset (size and fingerprint), seed, shuffle, drop_last and policy (kind and every
        parameter); a mismatch raises InvalidArgument naming what differs with both values."""
        ptr = self.ptr()
        if batches is not None:
            batches = _count("state_dict", batches)
        with tempfile.TemporaryDirectory(prefix="thresher-") as d:
            path = os.fsencode(os.path.join(d, "state"))
            if batches is None:
                check(_capi.thresher_loader_save_state(ptr, path))
            else:
                check(_capi.thresher_loader_save_state_at(ptr, path, batches))
            with open(path, "rb") as f:
                state = f.read()
        return {"version": STATE_VERSION, "state": state, "config": self._base_config()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Replaces the underlying loader by one that continues from `state_dict`, made from
        this loader's config (which may differ from the saved one in batch_size, rank and
        world_size; see state_dict()); the next iter() continues the saved epoch (or begins
        the next one if it was complete). On error this loader is left as it was."""
        self.ptr()
        new = self._resume_from(self._base_config(), state_dict)
        with self._lock:
            old, self._ptr = self._ptr, new
            self._delete(old)
            self._generation += 1
            self._resume = True

    @classmethod
    def from_state_dict(cls, state_dict: dict[str, Any]) -> "Loader":
        """A new loader from the config stored in `state_dict`, continuing from its state."""
        config = _config.load(_check_state_dict(state_dict)["config"])
        self = cls.__new__(cls)
        self._config = {k: v for k, v in config.items() if k != "resume_from"}
        self._take(self._resume_from(self._config, state_dict))
        self._resume = True
        return self

    @classmethod
    def _resume_from(cls, config: dict, state_dict: dict[str, Any]):
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
                message = e.message.replace(path, "the state")
                raise type(e)(f"state_dict: {message}", e.status) from None

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


def _count(what: str, value) -> int:
    try:
        n = operator.index(value)
    except TypeError:
        n = -1
    if isinstance(value, bool) or n < 0:
        raise InvalidArgument(f"{what}: batches must be an integer ≥ 0, got {value!r}")
    return n


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
