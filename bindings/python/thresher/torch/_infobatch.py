"""thresher.torch.InfoBatch: a drop-in for the InfoBatch repository's API (Qin et al., ICLR
2024), backed by thresher's `infobatch` policy, without patching torch.

    trainset = InfoBatch(trainset, num_epochs, prune_ratio, delta)
    sampler = trainset.sampler
    trainloader = DataLoader(trainset, batch_size=B, sampler=sampler, num_workers=2)
    for epoch in range(num_epochs):
        for inputs, targets in trainloader:
            loss = criterion(model(inputs), targets)     # reduction='none'
            loss = trainset.update(loss)                 # mean(w · ℓ), scores booked
            optimizer.zero_grad(); loss.backward(); optimizer.step()

The repository learns which indices a batch holds by replacing DataLoader's
_BaseDataLoaderIter.__next__; here the sampler remembers the indices it handed to the
DataLoader, in order, and update(loss) takes the oldest len(loss) of them.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.utils.data

from .._errors import InvalidArgument
from ._pending import _weighted_mean
from ._plan_sampler import _PlanSampler

__all__ = ["InfoBatch"]


class _InfoBatchSampler(_PlanSampler, torch.utils.data.Sampler):
    """InfoBatch's per-sample sampler: this rank's kept indices of the epoch, one at a time,
    for DataLoader(trainset, batch_size=B, sampler=trainset.sampler). An index-mode loader with
    batch_size 1 underneath, so a checkpoint can stop at any sample. len() is the epoch's
    samples on this rank, known before the epoch."""

    _what = "InfoBatch sampler"
    _per_sample = True

    def __init__(self, config: dict, dataset):
        self._setup(config, dataset)

    def _item(self, plan, k: int) -> int:
        return int(plan.ids[k])

    def _update(self, values: torch.Tensor, **fields) -> torch.Tensor:
        if not isinstance(values, torch.Tensor):
            raise InvalidArgument(
                f"update: the per-sample loss must be a torch.Tensor, got {type(values).__name__}"
            )
        if values.dim() != 1 or values.shape[0] == 0:
            raise InvalidArgument(
                f"update: the loss has shape {tuple(values.shape)}; InfoBatch needs the "
                "per-sample loss of the batch (reduction='none')"
            )
        weights = self._take(int(values.shape[0]), values, None, fields, None, None, "update")
        return _weighted_mean(values, weights)

    def __repr__(self) -> str:
        if self._loader.closed:
            return "<InfoBatch sampler, closed>"
        r = self.report()
        return (f"<thresher.torch.InfoBatch sampler N={self._n}: epoch {r['epoch']}, "
                f"{r['delivered']} of {r['batches']} samples handed out, {self._pending()} "
                "pending>")


class InfoBatch(torch.utils.data.Dataset):
    """InfoBatch(dataset, num_epochs, prune_ratio=0.5, delta=0.875): the dataset, wrapped.

    It behaves as the dataset (len(), [i], other attributes delegated) and adds `sampler`
    (the same per-sample sampler every time: give it to DataLoader(sampler=...)) and
    update(loss), which books the per-sample loss of the batch the trainer is on and returns
    the weighted mean to minimise. Pruning is thresher's `infobatch` policy with prune =
    prune_ratio, anneal = delta, epochs = num_epochs: each epoch until ⌊delta·num_epochs⌋ drops
    a random prune_ratio of the samples whose last loss is below the mean and up-weights the
    other below-mean ones by 1/(1−prune_ratio); then full data. prune_ratio is at most 0.9
    (the repository clamps to that; thresher refuses more).

    Unlike the repository: no torch patching; len(sampler) is known before each epoch; a
    `break` ends the epoch (like DataLoader); state_dict()/load_state_dict() resume exactly at
    the last update(); the shuffle is seeded (`seed`). Under torch.distributed (initialised
    before this is made) every rank gets its share and update() gathers every rank's losses.
    Built on the sampler's order: the DataLoader must use `sampler=trainset.sampler`, in
    order, and every batch it delivers must go through update() once.
    """

    def __init__(self, dataset, num_epochs: int, prune_ratio: float = 0.5, delta: float = 0.875,
                 *, seed: int = 0, rank: Optional[int] = None, world_size: Optional[int] = None,
                 report=None):
        self.dataset = dataset
        self.num_epochs = num_epochs
        self.prune_ratio = prune_ratio
        self.delta = delta
        self.keep_ratio = 1.0 - prune_ratio
        if rank is None and world_size is None:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                rank, world_size = dist.get_rank(), dist.get_world_size()
        config = {
            "source": {"kind": "index", "len": len(dataset)},
            "batch_size": 1,
            "seed": seed,
            "policy": {"kind": "infobatch", "prune": prune_ratio, "anneal": delta,
                       "epochs": num_epochs},
        }
        if rank is not None:
            config["rank"] = rank
        if world_size is not None:
            config["world_size"] = world_size
        if report is not None:
            config["report"] = str(report)
        self._sampler = _InfoBatchSampler(config, self)

    # The repository's API -----------------------------------------------------------------

    @property
    def sampler(self) -> _InfoBatchSampler:
        sampler = self.__dict__.get("_sampler")
        if sampler is None:
            raise InvalidArgument("InfoBatch: this is a copy made for a DataLoader worker; "
                                  "use the trainer's InfoBatch object")
        return sampler

    def update(self, values: torch.Tensor, **feedback) -> torch.Tensor:
        """Books `values`, the per-sample loss (reduction='none') of the batch the trainer is
        on — the oldest len(values) indices the sampler handed to the DataLoader — and returns
        mean(w · ℓ) over it (a differentiable scalar; `values` is not modified). Other
        feedback fields (correct=, el2n=, ...) may go along. A rejected call books nothing."""
        return self.sampler._update(values, **feedback)

    @property
    def stop_prune(self) -> float:
        return self.num_epochs * self.delta

    # The dataset --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        return self.dataset[index]

    @property
    def __getitems__(self):
        # DataLoader fetches a batch through __getitems__ when the dataset has one.
        return getattr(self.dataset, "__getitems__", None) or None

    def __getattr__(self, name: str):
        # Attributes the wrapper lacks are the dataset's (as in the repository). Not for
        # private or special names: unpickling and copy probe those before __dict__ is filled.
        if name.startswith("_") or "dataset" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["dataset"], name)

    def __getstate__(self):
        # DataLoader workers started by spawn/forkserver get a copy to read samples from; the
        # sampler (a loader handle) stays with the trainer.
        state = dict(self.__dict__)
        state.pop("_sampler", None)
        return state

    # thresher's extras --------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The sampler's state at the last update() (what the trainer consumed)."""
        return self.sampler.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state_dict)

    def report(self) -> dict[str, Any]:
        return self.sampler.report()

    def __repr__(self) -> str:
        return (f"InfoBatch({self.dataset!r}, num_epochs={self.num_epochs}, "
                f"prune_ratio={self.prune_ratio}, delta={self.delta})")
