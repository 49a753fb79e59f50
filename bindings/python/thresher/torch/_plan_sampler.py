"""_PlanSampler: what thresher.torch.Sampler and InfoBatch's per-sample sampler share — the
index-mode loader, the plan of the epoch being handed out, epochs begun and ended like
DataLoader's, checkpoints at the consumer's position, and dataset checks. The FIFO of batches
handed out and not yet consumed, with the trainer's feedback, is _PendingBatches
(_pending.py).

The sampler reads each epoch whole (Loader.epoch_plan) and hands its batches — or, for
InfoBatch's per-sample sampler, its samples — out of that plan without calling the C layer.
The loader is told how far the DataLoader got in bulk (Loader.advance, one C call for any
number of batches) whenever its position is read: report(), len(), epoch_info(), state_dict(),
end_epoch(), the next epoch, or the `loader` property. The epoch's last batch is the exception:
handing it out makes the next epoch's plan (config `plan_ahead`), so the loader hears of it only
when the trainer is on it — its feedback, consumed(), or the epoch's end — never because the
DataLoader prefetched it. The plans are then the ones a loader with data makes for a trainer
that sends the same feedback: all of the epoch's but the last batch's.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any, Optional

import torch
import torch.utils.data

from .._errors import InvalidArgument, StateError
from .._feedback import LossOnly
from .._loader import Loader
from .._managed import ProcessLock
from .._plan import EpochPlan
from ._pending import _PendingBatches


class _PlanSampler(_PendingBatches):
    """What Sampler and InfoBatch's per-sample sampler share: the index-mode loader, the plan
    of the epoch being handed out, the FIFO [consumed, handed) of C batches (its consumption
    and feedback: _PendingBatches), epochs begun and ended like DataLoader's, checkpoints at
    the consumer's position."""

    _what = "Sampler"
    _per_sample = False

    def _setup(self, config: dict, dataset=None) -> None:
        self._loader = Loader(config)
        self._lock = ProcessLock(self._what)
        self._token = 0           # bumped whenever running generators become stale
        self._plan: Optional[EpochPlan] = None
        self._consumed = 0        # C batches of _plan the trainer consumed
        self._handed = 0          # C batches of _plan handed to the DataLoader
        self._synced = 0          # ... of which the loader has been told (see _sync)
        self._step = None         # _take_step's state for _plan (_pending.py)
        self._booker = LossOnly()  # _take_step's feedback struct, used under _lock
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

    @property
    def total_batches(self) -> int:
        """The run's total batches on this rank, known before training starts: pass it to a
        schedule over the whole run (OneCycleLR's total_steps, a cosine's T_max). Exact under
        the policy key `budget`, and for `full` and `random` with `epochs`; StateError when the
        count depends on feedback."""
        return self._loader.total_batches

    def report(self) -> dict[str, Any]:
        """The epoch report of the epoch under way so far (thresher.Loader.report). `delivered`
        counts batches handed to the DataLoader, prefetched ones included, but the epoch's last
        batch only once the trainer is on it (see _sync)."""
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
            self._sync(final=True)
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
            loader.warn_if_unlearnable()
            if plan.epoch != info["epoch"] or plan.batches != info["batches"]:
                raise StateError(f"thresher: the epoch plan ({plan!r}) does not match "
                                 f"epoch_info ({info}); please report this bug")
            self._plan = plan
            self._consumed = self._handed = self._synced = delivered
            self._started = plan.epoch
            self._token += 1
            return self._token

    def _sync(self, final: bool = False) -> None:
        """Tells the loader about the batches of _plan handed to the DataLoader since it last
        heard (Loader.advance: one C call however many), so that its report, its checkpoints
        and its end of the epoch see them. Called, under the lock, before anything that reads
        or ends the loader's position; iteration itself never calls the C layer. The last
        batch is told only once the trainer is on it (`final`, or consumed): that makes the
        next plan, which must not depend on how far the DataLoader prefetched."""
        plan = self._plan
        if plan is None:
            return
        target = self._handed
        if not final and self._consumed < plan.batches:
            target = min(target, plan.batches - 1)
        if target <= self._synced:
            return
        try:
            self._loader.advance(target - self._synced)
        except InvalidArgument:
            raise StateError("thresher: the loader's epoch ended before its plan (was "
                             "sampler.loader iterated or advanced?)") from None
        self._synced = target

    def _on_last(self, first: int, count: int) -> None:
        """Before the trainer's feedback (or consumed()) for batches first..first+count of
        _plan: when they reach the epoch's last batch, the loader is told that it is out, which
        makes the next plan from the feedback booked so far, as a loader with data does when
        its `next` hands out the last batch."""
        if self._plan is not None and first + count >= self._plan.batches:
            self._sync(final=True)

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
            self._sync(final=True)
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
