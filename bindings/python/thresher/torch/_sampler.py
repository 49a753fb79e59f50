"""thresher.torch.Sampler: thresher's plan driving your own torch DataLoader.

The sampler is a thresher loader in index mode (config source `{"kind": "index", "len": N}`):
no worker threads, no data, only the plan. It hands the DataLoader lists of sample ids; the
DataLoader's workers read the samples from your dataset; the trainer gives the per-sample loss
back through `sampler.weighted_loss(...)`.

The DataLoader's main process asks the sampler for batches ahead of the trainer (prefetch) and
delivers them in that order, so the sampler keeps the batches it handed out and the trainer has
not consumed yet: a FIFO, here the range [consumed, handed) of the epoch's batch numbers.
weighted_loss() and consumed() take from its front; state_dict() is taken at its front — what
the trainer saw, not what the DataLoader prefetched (torchdata's StatefulDataLoader
convention).

The sampler reads each epoch whole (Loader.epoch_plan) and hands its batches — or, for
InfoBatch's per-sample sampler, its samples — out of that plan without calling the C layer.
The loader is told how far the DataLoader got in bulk (Loader.advance, one C call for any
number of batches) whenever its position is read: report(), len(), epoch_info(), state_dict(),
end_epoch(), the next epoch, or the `loader` property.
"""

from __future__ import annotations

import collections.abc
import os
import sys
import threading
import weakref
from typing import Any, Optional

import numpy as np
import torch
import torch.utils.data

from .. import _config
from .._errors import InvalidArgument, StateError
from .._loader import DEFAULT_BATCH_SIZE, Loader
from .._plan import EpochPlan

__all__ = ["PendingBatch", "Sampler", "WithIds"]


class PendingBatch:
    """A batch the sampler handed to the DataLoader that the trainer has not consumed yet:
    `ids` (torch.int64, the dataset indices, in the order the DataLoader collates them),
    `weights` (torch.float32 loss weights), `padding` (trailing weight-0 repeats, several
    ranks only), `epoch` and `index` (the batch's number in the epoch). Duck-compatible with
    thresher.torch.Batch for thresher.torch.weighted_loss and all_gather_feedback."""

    __slots__ = ("epoch", "index", "padding", "_ids", "_weights")

    def __init__(self, epoch: int, index: int, ids: np.ndarray, weights: np.ndarray,
                 padding: int):
        self.epoch = epoch
        self.index = index
        self.padding = padding
        self._ids = ids
        self._weights = weights

    @property
    def ids(self) -> torch.Tensor:
        return torch.from_numpy(self._ids.astype(np.int64))

    @property
    def weights(self) -> torch.Tensor:
        return torch.from_numpy(self._weights.copy())

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return (f"<thresher.torch.PendingBatch {self.index} of epoch {self.epoch}: "
                f"{len(self)} samples, {self.padding} padding>")


def _index_config(source, what: str, overrides: dict) -> dict:
    """The config of an index-mode loader from what a sampler accepts: N, a dataset (len()), or
    a config (dict, JSON text, path) with an index source; keyword overrides win."""
    dataset = None
    if isinstance(source, bool):
        raise InvalidArgument(f"{what}: expected N, a dataset or a config, got a bool")
    if isinstance(source, int) or (isinstance(source, np.integer)):
        config = {"source": {"kind": "index", "len": int(source)}}
    elif isinstance(source, (collections.abc.Mapping, str, bytes, os.PathLike)):
        config = _config.load(source)
    elif hasattr(source, "__len__"):
        dataset = source
        config = {"source": {"kind": "index", "len": len(source)}}
    else:
        raise InvalidArgument(
            f"{what}: expected N (an int), a map-style dataset or a config, got "
            f"{type(source).__name__}"
        )
    for key, value in overrides.items():
        if value is not None:
            config[key] = value
    src = config.get("source")
    if not isinstance(src, dict) or src.get("kind") != "index":
        kind = src.get("kind") if isinstance(src, dict) else src
        raise InvalidArgument(
            f"{what}: config `source` must be {{\"kind\": \"index\", \"len\": N}} (the sampler "
            f"plans ids; your dataset reads the samples), got {kind!r}; for thresher to read "
            "the source itself, use thresher.torch.Loader"
        )
    return config, dataset


def _rows(name: str, value, n: int, what: str) -> None:
    try:
        rows = len(value)
    except TypeError:
        raise InvalidArgument(f"{what}: `{name}` must hold one value per sample") from None
    if rows != n:
        raise InvalidArgument(f"{what}: `{name}` has {rows} rows but the batch has {n} samples")


class _PlanSampler:
    """What Sampler and InfoBatch's per-sample sampler share: the index-mode loader, the plan
    of the epoch being handed out, the FIFO [consumed, handed) of C batches, epochs begun and
    ended like DataLoader's, checkpoints at the consumer's position."""

    _what = "Sampler"
    _per_sample = False

    def _setup(self, config: dict, dataset=None) -> None:
        self._loader = Loader(config)
        self._lock = threading.RLock()
        self._token = 0           # bumped whenever running generators become stale
        self._plan: Optional[EpochPlan] = None
        self._consumed = 0        # C batches of _plan the trainer consumed
        self._handed = 0          # C batches of _plan handed to the DataLoader
        self._synced = 0          # ... of which the loader has been told (see _sync)
        self._started: Optional[int] = None  # the epoch the last iteration began
        self._resume = False      # load_state_dict/resume_epoch: continue the epoch
        self._datasets: list = []
        self._n = int(self._loader.report()["dataset_len"]) or len(self._loader.dataset)
        cfg = self._loader.config
        self._rank = int(cfg.get("rank", 0))
        self._world_size = int(cfg.get("world_size", 1))
        if dataset is not None:
            self.check(dataset)

    # The underlying loader and what it knows ----------------------------------------------

    @property
    def loader(self) -> Loader:
        """The index-mode thresher.Loader underneath: for digest(), save_scores(), or feedback
        of other ranks' samples (loader.feedback) when you exchange feedback yourself. Do not
        iterate it or call next()/advance()/end_epoch() on it: that moves the plan under the
        sampler. Its position is brought up to the DataLoader's when this property is read."""
        with self._lock:
            self._sync()
            return self._loader

    @property
    def config(self) -> dict:
        return self._loader.config

    @property
    def dataset_len(self) -> int:
        """N, the dataset length this sampler plans for."""
        return self._n

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def world_size(self) -> int:
        return self._world_size

    @property
    def epoch(self) -> int:
        """The epoch under way (or, once the trainer consumed all of it, the coming one: the
        same rule as len())."""
        return int(self.epoch_info()["epoch"])

    def report(self) -> dict[str, Any]:
        """The epoch report of the epoch under way so far (thresher.Loader.report). `delivered`
        counts batches handed to the DataLoader, prefetched ones included."""
        with self._lock:
            self._sync()
            return self._loader.report()

    def digest(self) -> dict[str, int]:
        return self._loader.digest()

    def save_scores(self, path) -> None:
        self._loader.save_scores(path)

    def set_epoch(self, epoch: int) -> None:
        """Accepted for DistributedSampler compatibility, and ignored: thresher numbers the
        epochs itself (each iter() begins the next one; the shuffle is seeded by `seed` and
        the epoch number)."""

    # Epochs -------------------------------------------------------------------------------

    def _pending(self) -> int:
        return self._handed - self._consumed if self._plan is not None else 0

    def _coming(self) -> dict[str, Any]:
        """epoch_info() of the epoch the trainer is in; once it has consumed all of it, of the
        next one (planned now: all feedback of the last epoch is in)."""
        self._sync()
        loader = self._loader
        info = loader.epoch_info()
        delivered = int(loader.report()["delivered"])
        begun = delivered > 0 or self._started == info["epoch"]
        if begun and not self._pending() and delivered >= info["batches"]:
            loader.end_epoch()
            info = loader.epoch_info()
        return info

    def __len__(self) -> int:
        """Batches (Sampler) or samples (InfoBatch's sampler) of the epoch under way on this
        rank; once the trainer has consumed all of it, of the next epoch (planned then, from
        all the feedback given). Known before the epoch's first batch, for LR schedules."""
        with self._lock:
            return int(self._coming()["batches"])

    def epoch_info(self) -> dict[str, Any]:
        """thresher.Loader.epoch_info() of the epoch len() describes."""
        with self._lock:
            return self._coming()

    def epoch_plan(self) -> EpochPlan:
        """The whole plan of the epoch len() describes (thresher.EpochPlan: ids and weights as
        NumPy arrays), from its batch 0; it moves nothing."""
        with self._lock:
            self._coming()
            return self._loader.epoch_plan()

    def _begin(self) -> int:
        """At the first step of a new iteration: end the epoch under way if it was begun
        (unless it is to be continued and has batches left), and take the plan of the epoch
        now under way. Returns the iteration's token."""
        with self._lock:
            self._check_datasets()
            self._sync()
            loader = self._loader
            resume, self._resume = self._resume, False
            info = loader.epoch_info()
            delivered = int(loader.report()["delivered"])
            begun = delivered > 0 or self._started == info["epoch"]
            if begun and not (resume and delivered < info["batches"]):
                loader.end_epoch()
                info = loader.epoch_info()
                delivered = int(loader.report()["delivered"])
            plan = loader.epoch_plan()
            if plan.epoch != info["epoch"] or plan.batches != info["batches"]:
                raise StateError(f"thresher: the epoch plan ({plan!r}) does not match "
                                 f"epoch_info ({info}); please report this bug")
            self._plan = plan
            self._consumed = self._handed = self._synced = delivered
            self._started = plan.epoch
            self._token += 1
            return self._token

    def _sync(self) -> None:
        """Tells the loader about the batches of _plan handed to the DataLoader since it last
        heard (Loader.advance: one C call however many), so that its report, its checkpoints
        and its end of the epoch see them. Called, under the lock, before anything that reads
        or ends the loader's position; iteration itself never calls the C layer."""
        if self._plan is None or self._handed == self._synced:
            return
        try:
            self._loader.advance(self._handed - self._synced)
        except InvalidArgument:
            raise StateError("thresher: the loader's epoch ended before its plan (was "
                             "sampler.loader iterated or advanced?)") from None
        self._synced = self._handed

    def _iterate(self):
        # A generator: nothing happens until the DataLoader asks for the first batch (it calls
        # iter() twice per epoch and drops the first iterator unused).
        self._check_caller(sys._getframe(1))
        token = self._begin()
        while True:
            with self._lock:
                if token != self._token:
                    raise StateError(
                        f"this {self._what} iteration is stale: a later iter(), end_epoch() or "
                        "load_state_dict() moved the sampler on"
                    )
                plan = self._plan
                k = self._handed
                if k >= plan.batches:
                    return
                self._handed = k + 1  # the loader hears of it at the next _sync
                item = self._item(plan, k)
            yield item

    def __iter__(self):
        """One epoch, as DataLoader iterates: the next one. If the epoch under way has handed
        out batches, it is ended first (its other batches abandoned — not visited — its
        feedback kept; batches prefetched but not consumed are dropped), unless
        load_state_dict() or resume_epoch() asked to continue it. Lazy: this happens when the
        DataLoader asks for the first batch."""
        return self._iterate()

    def end_epoch(self) -> None:
        """Ends the epoch the last iteration began (as the next iter() would): report written,
        its remaining batches abandoned, pending ones dropped, feedback kept; the next epoch is
        planned now, so len() tells its length. A no-op when no epoch was begun."""
        with self._lock:
            self._sync()
            loader = self._loader
            info = loader.epoch_info()
            if int(loader.report()["delivered"]) > 0 or self._started == info["epoch"]:
                loader.end_epoch()
                loader.epoch_info()
            self._plan = None
            self._consumed = self._handed = self._synced = 0
            self._resume = False
            self._token += 1

    def resume_epoch(self) -> None:
        """Makes the next iter() continue the epoch under way from the first batch the trainer
        has not consumed (batches prefetched but not consumed are handed out again), instead of
        beginning the next epoch: for a loop left early on purpose."""
        with self._lock:
            if self._pending():
                self.load_state_dict(self.state_dict())
            else:
                self._resume = True
                self._token += 1

    # Consumption and feedback -------------------------------------------------------------

    @property
    def pending(self) -> Optional[PendingBatch]:
        """The oldest batch handed to the DataLoader and not yet consumed — the batch the
        trainer is on — or None."""
        with self._lock:
            if not self._pending():
                return None
            return self._pending_batch(self._consumed)

    @property
    def num_pending(self) -> int:
        """Batches handed to the DataLoader and not yet consumed (the DataLoader's prefetch)."""
        with self._lock:
            return self._pending()

    def _pending_batch(self, k: int) -> PendingBatch:
        ids, weights, padding = self._plan.batch(k)
        return PendingBatch(self._plan.epoch, k, ids, weights, padding)

    def consumed(self, batches: int = 1) -> None:
        """Marks the oldest `batches` pending batches as consumed by the trainer (weighted_loss
        does it for you): state_dict() resumes after them."""
        with self._lock:
            if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
                raise InvalidArgument(f"consumed: batches must be an integer ≥ 1, got {batches!r}")
            if batches > self._pending():
                raise StateError(
                    f"consumed: {batches} batches marked but only {self._pending()} are pending "
                    "(handed to the DataLoader and not yet consumed)"
                )
            self._consumed += batches

    def _no_pending(self, what: str) -> StateError:
        return StateError(
            f"{what}: no batch is pending: every batch this {self._what} handed to the "
            "DataLoader was consumed already (or a new iter(), end_epoch() or load_state_dict() "
            "dropped the rest). Call it once per batch, in delivery order, with a DataLoader "
            f"built on this {self._what}"
        )

    def _gathering(self, gather, group, what: str) -> bool:
        import torch.distributed as dist

        ready = dist.is_available() and dist.is_initialized()
        if gather is None:
            if self._world_size == 1:
                return False
            if not ready:
                raise StateError(
                    f"{what}: this {self._what} is rank {self._rank} of world_size "
                    f"{self._world_size}, but torch.distributed is not initialised: every "
                    "rank's feedback must reach every rank. Initialise the process group "
                    "(the feedback is then gathered), or pass gather=False and give the other "
                    "ranks' feedback to sampler.loader.feedback() yourself"
                )
            gather = True
        if gather:
            if not ready:
                raise StateError(f"{what}: gather=True needs torch.distributed initialised")
            if dist.get_world_size(group) != self._world_size:
                raise InvalidArgument(
                    f"{what}: the process group has {dist.get_world_size(group)} ranks, the "
                    f"{self._what} world_size {self._world_size}"
                )
        return bool(gather)

    def _take(self, count: int, loss, ids, fields: dict, gather, group, what: str):
        """Books the feedback of the oldest `count` pending C batches and marks them consumed;
        returns their weights (NumPy). Everything is checked before anything is booked."""
        if not isinstance(loss, torch.Tensor):
            raise InvalidArgument(
                f"{what}: the per-sample loss must be a torch.Tensor, got {type(loss).__name__}"
            )
        with self._lock:
            pending = self._pending()
            if not pending:
                raise self._no_pending(what)
            plan = self._plan
            k = self._consumed
            if count > pending:
                raise InvalidArgument(
                    f"{what}: the per-sample loss has {loss.shape[0] if loss.dim() else 1} "
                    f"values but only {plan.bounds(k + pending - 1)[1] - plan.bounds(k)[0]} "
                    f"samples are pending; use reduction='none'"
                )
            start = plan.bounds(k)[0]
            stop = plan.bounds(k + count - 1)[1]
            n = stop - start
            if loss.dim() != 1 or loss.shape[0] != n:
                shape = tuple(loss.shape)
                hint = "; use reduction='none'" if loss.dim() != 1 else ""
                if not self._per_sample and loss.dim() == 1 and loss.shape[0] < n:
                    hint = ("; was the Sampler passed as DataLoader(sampler=...)? It is a batch "
                            "sampler: DataLoader(dataset, batch_sampler=sampler)")
                raise InvalidArgument(
                    f"{what}: the per-sample loss has shape {shape} but the pending batch "
                    f"(batch {k} of epoch {plan.epoch}) has {n} samples{hint}"
                )
            batch_ids = plan.ids[start:stop]
            if ids is not None:
                given = np.asarray(ids.detach().cpu() if isinstance(ids, torch.Tensor) else ids)
                if given.shape != (n,) or not np.array_equal(given.astype(np.int64),
                                                             batch_ids.astype(np.int64)):
                    raise InvalidArgument(
                        f"{what}: `ids` are not the pending batch's (batch {k} of epoch "
                        f"{plan.epoch}); the DataLoader must deliver batches in the order the "
                        "sampler hands them out (not in_order=False) and from this sampler"
                    )
            for name, value in fields.items():
                if value is not None:
                    _rows(name, value, n, what)
            real = max(0, min(stop, plan.real) - start)
            sliced = {name: (None if v is None else v[:real]) for name, v in fields.items()}
            if self._gathering(gather, group, what):
                from .distributed import _gather_rows

                gathered = _gather_rows(batch_ids, real, loss, group=group, **sliced)
                self._loader.feedback(**gathered)
            else:
                self._loader.feedback(batch_ids[:real], loss[:real], **sliced)
            self._consumed += count
            return plan.weights[start:stop]

    def feedback(self, ids, loss, grad_norm=None, el2n=None, correct=None,
                 embedding=None) -> None:
        """Feedback by explicit ids (e.g. from thresher.torch.WithIds) for samples of the
        pending batch the trainer is on: every id must be one of its real (not padding)
        samples. Does not mark the batch consumed (call consumed() when done with it, or use
        weighted_loss). Invalid feedback raises InvalidArgument and books nothing."""
        with self._lock:
            if not self._pending():
                raise self._no_pending("feedback")
            plan = self._plan
            k = self._consumed
            start, stop = plan.bounds(k)
            real = plan.ids[start:max(start, min(stop, plan.real))]
            given = ids.detach().cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
            if given.ndim != 1:
                raise InvalidArgument(f"feedback: `ids` must be 1-D, got shape {given.shape}")
            if given.size and given.dtype.kind not in "iu":
                raise InvalidArgument(f"feedback: `ids` must hold integers, got {given.dtype}")
            inside = np.isin(given.astype(np.int64), real.astype(np.int64))
            if not inside.all():
                i = int(np.argmin(inside))
                raise InvalidArgument(
                    f"feedback: ids[{i}] = {given[i].item()!r} is not a sample of the pending batch "
                    f"(batch {k} of epoch {plan.epoch}, {len(real)} samples"
                    f"{' without its padding' if len(real) < stop - start else ''}); feedback "
                    "is for the batch the trainer is on — call consumed() after each batch"
                )
            self._loader.feedback(given, loss, grad_norm=grad_norm, el2n=el2n,
                                  correct=correct, embedding=embedding)

    # Checkpoints --------------------------------------------------------------------------

    def _position(self) -> int:
        self._sync()
        if self._pending():
            return self._consumed
        return int(self._loader.report()["delivered"])

    def state_dict(self) -> dict[str, Any]:
        """{"version", "state", "config"} (thresher.Loader's format) at the trainer's position:
        the batches it consumed (weighted_loss / consumed()), not those the DataLoader
        prefetched. load_state_dict() continues exactly there."""
        with self._lock:
            return self._loader.state_dict(batches=self._position())

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continues from `state_dict`: the next iter() yields the rest of the saved epoch (the
        next epoch if it was complete), the same ids, order and weights as the run that saved
        it. The state may come from another batch_size, rank or world_size, not from another
        dataset length (InvalidArgument)."""
        with self._lock:
            config = state_dict.get("config") if isinstance(state_dict, dict) else None
            source = config.get("source") if isinstance(config, dict) else None
            saved = source.get("len") if isinstance(source, dict) else None
            if isinstance(saved, int) and saved != self._n:
                raise InvalidArgument(
                    f"load_state_dict: the state is from a {self._what} over {saved} samples; "
                    f"this one has N = {self._n} (did the dataset change?)"
                )
            try:
                self._loader.load_state_dict(state_dict)
            except InvalidArgument as e:
                raise InvalidArgument(f"load_state_dict: {e.message}", e.status) from None
            self._loader.epoch_info()  # never between epochs (a state saved between them)
            self._plan = None
            self._consumed = self._handed = self._synced = 0
            self._started = None
            self._resume = True
            self._token += 1

    # Dataset checks -------------------------------------------------------------------------

    def check(self, obj) -> None:
        """Checks a dataset (its len() must be N) or a DataLoader (built on this sampler the
        right way, in order, over a dataset of N samples); raises InvalidArgument naming the
        problem. The dataset is remembered and checked again at the start of every epoch."""
        if isinstance(obj, torch.utils.data.DataLoader):
            self._check_loader(obj)
            obj = obj.dataset
        try:
            n = len(obj)
        except TypeError:
            raise InvalidArgument(
                f"check: {type(obj).__name__} has no len(); a {self._what} needs a map-style "
                "dataset"
            ) from None
        if n != self._n:
            raise InvalidArgument(self._length_message(n))
        with self._lock:
            if not any(ref() is obj for ref in self._datasets):
                try:
                    ref = weakref.ref(obj)
                except TypeError:
                    ref = (lambda o: lambda: o)(obj)
                self._datasets.append(ref)

    def _length_message(self, n: int) -> str:
        return (f"len(dataset) is {n} but this {self._what} plans N = {self._n} samples: the "
                "dataset changed since the sampler was made; make a new one for it (a state "
                "from this run will not load into it)")

    def _check_datasets(self) -> None:
        alive = []
        for ref in self._datasets:
            obj = ref()
            if obj is None:
                continue
            alive.append(ref)
            if len(obj) != self._n:
                raise InvalidArgument(self._length_message(len(obj)))
        self._datasets = alive

    def _check_loader(self, dl) -> None:
        if self._per_sample:
            if dl.batch_sampler is self:
                raise InvalidArgument(
                    "InfoBatch's sampler yields one index at a time: "
                    "DataLoader(trainset, batch_size=B, sampler=trainset.sampler)"
                )
            if dl.sampler is not self:
                raise InvalidArgument("check: this DataLoader does not use this sampler "
                                      "(sampler=trainset.sampler)")
        else:
            if dl.sampler is self:
                raise InvalidArgument(
                    "check: the Sampler was passed as DataLoader(sampler=...); it is a batch "
                    "sampler: DataLoader(dataset, batch_sampler=sampler)"
                )
            if dl.batch_sampler is not self:
                raise InvalidArgument("check: this DataLoader does not use this Sampler "
                                      "(DataLoader(dataset, batch_sampler=sampler))")
        if getattr(dl, "in_order", True) is False:
            raise InvalidArgument(
                "check: DataLoader(in_order=False) may deliver batches out of order; the "
                f"{self._what} matches the loss to its batch by order: use in_order=True"
            )

    def _check_caller(self, frame) -> None:
        """Best effort: recognise being iterated the wrong way by the DataLoader (a batch
        sampler as `sampler=`, or a per-sample sampler as `batch_sampler=`) before any epoch
        moves. Unknown callers pass."""
        owner = frame.f_locals.get("self") if frame is not None else None
        if owner is None:
            return
        if not self._per_sample:
            if isinstance(owner, torch.utils.data.BatchSampler) and owner.sampler is self:
                raise InvalidArgument(
                    "thresher.torch.Sampler is a batch sampler: pass it as "
                    "DataLoader(dataset, batch_sampler=sampler), not sampler= (the DataLoader "
                    "would batch its batches)"
                )
        else:
            from torch.utils.data.dataloader import _BaseDataLoaderIter

            if (isinstance(owner, _BaseDataLoaderIter) and owner._auto_collation
                    and owner._index_sampler is self):
                raise InvalidArgument(
                    "InfoBatch's sampler yields one index at a time: pass it as "
                    "DataLoader(trainset, batch_size=B, sampler=trainset.sampler), not "
                    "batch_sampler="
                )

    def __reduce__(self):
        raise TypeError(f"{type(self).__name__} cannot be pickled; use state_dict()")

    def close(self) -> None:
        """Frees the loader underneath (also done by the garbage collector)."""
        self._loader.close()


class Sampler(_PlanSampler, torch.utils.data.Sampler):
    """thresher's plan as a batch sampler for your own DataLoader over any map-style dataset:

        sampler = thresher.torch.Sampler(len(dataset), batch_size=256, seed=0,
                                         policy={"kind": "infobatch", "prune": 0.5, "epochs": 5})
        loader = DataLoader(dataset, batch_sampler=sampler, num_workers=2)
        for epoch in range(5):
            for x, y in loader:
                loss = sampler.weighted_loss(F.cross_entropy(model(x), y, reduction="none"))
                ...

    `source` is N (an int), the dataset itself (len() is taken, and checked again each epoch),
    or a config (dict, JSON text or path) whose source is `{"kind": "index", "len": N}`. The
    keywords override config keys (batch_size default 256, as the library's).

    Every iter() begins a new epoch, as DataLoader's; an epoch left early (a `break`) is ended
    first: its other batches abandoned, its feedback kept. resume_epoch() or load_state_dict()
    continue an epoch instead. len() is the epoch's batch count, known before it begins.
    Several ranks: `rank`/`world_size` give every rank its share with equal batch counts (the
    last batch padded with weight-0 repeats); weighted_loss then gathers the feedback through
    torch.distributed.
    """

    def __init__(self, source, batch_size: Optional[int] = None, *, seed: Optional[int] = None,
                 policy: Optional[dict] = None, shuffle: Optional[bool] = None,
                 drop_last: Optional[bool] = None, rank: Optional[int] = None,
                 world_size: Optional[int] = None, report=None):
        config, dataset = _index_config(source, "Sampler", {
            "batch_size": batch_size, "seed": seed, "policy": policy, "shuffle": shuffle,
            "drop_last": drop_last, "rank": rank, "world_size": world_size,
            "report": os.fspath(report) if report is not None else None,
        })
        self._setup(config, dataset)

    @property
    def batch_size(self) -> int:
        return int(self.config.get("batch_size", DEFAULT_BATCH_SIZE))

    @property
    def drop_last(self) -> bool:
        return bool(self.config.get("drop_last", False))

    def _item(self, plan: EpochPlan, k: int) -> list:
        start, stop = plan.bounds(k)
        return plan.ids[start:stop].tolist()

    def weighted_loss(self, per_sample_loss: torch.Tensor, *, ids=None, gather=None,
                      group=None, grad_norm=None, el2n=None, correct=None,
                      embedding=None) -> torch.Tensor:
        """Books `per_sample_loss` (reduction='none', one value per sample of the batch, padding
        included) as the feedback of the pending batch the trainer is on — the oldest handed to
        the DataLoader — marks it consumed, and returns mean(w · ℓ) over it, w the plan's loss
        weights: a differentiable scalar to minimise. Padding rows are left out of the
        feedback. `ids` (e.g. from WithIds) are checked against the batch's. Other feedback
        fields (correct=, el2n=, grad_norm=, embedding=) go along. With world_size > 1 the
        feedback of every rank is gathered through torch.distributed (a collective: every rank
        calls it each step); gather=False books this rank's alone. A rejected call books
        nothing and consumes nothing."""
        fields = {"grad_norm": grad_norm, "el2n": el2n, "correct": correct,
                  "embedding": embedding}
        weights = self._take(1, per_sample_loss, ids, fields, gather, group, "weighted_loss")
        return _weighted_mean(per_sample_loss, weights)

    def __repr__(self) -> str:
        if self._loader.closed:
            return "<thresher.torch.Sampler, closed>"
        r = self.report()
        return (f"<thresher.torch.Sampler N={self._n} batch_size={self.batch_size}: epoch "
                f"{r['epoch']}, {r['delivered']} of {r['batches']} batches handed out, "
                f"{self._pending()} pending>")


def _weighted_mean(loss: torch.Tensor, weights: np.ndarray) -> torch.Tensor:
    dtype = loss.dtype if loss.is_floating_point() else torch.float32
    w = torch.from_numpy(np.ascontiguousarray(weights)).to(device=loss.device, dtype=dtype,
                                                           non_blocking=True)
    return (w * loss).mean()


class WithIds(torch.utils.data.Dataset):
    """A dataset wrapper whose items carry their index: `WithIds(ds)[i] == (i, ds[i])`, so a
    DataLoader yields `(ids, batch)` — `for ids, (x, y) in loader:` — for feedback by ids or
    to check the order (sampler.weighted_loss(loss, ids=ids)). With `sampler`, len(dataset)
    is checked against its N now and at every epoch. Uses the dataset's __getitems__ (a
    Hugging Face datasets.Dataset has one) when it has one."""

    def __init__(self, dataset, sampler: Optional[_PlanSampler] = None):
        self.dataset = dataset
        if sampler is not None:
            sampler.check(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        return index, self.dataset[index]

    @property
    def __getitems__(self):
        # DataLoader fetches a whole batch through __getitems__ when the dataset has one.
        inner = getattr(self.dataset, "__getitems__", None)
        if not inner:
            return None

        def getitems(indices):
            return list(zip(indices, inner(indices)))

        return getitems
