"""thresher.torch.Sampler: thresher's plan driving your own torch DataLoader.

The sampler is a thresher loader in index mode (config source `{"kind": "index", "len": N}`):
no worker threads, no data, only the plan. It hands the DataLoader lists of sample ids; the
DataLoader's workers read the samples from your dataset; the trainer gives the per-sample loss
back through `sampler.weighted_loss(...)`.

What it shares with InfoBatch's per-sample sampler is _PlanSampler (_plan_sampler.py: epochs,
bulk advancing, checkpoints, dataset checks) and _PendingBatches (_pending.py: the batches
handed to the DataLoader and not yet consumed, and their feedback).
"""

from __future__ import annotations

import collections.abc
import os
from typing import Optional

import numpy as np
import torch
import torch.utils.data

from .. import _config
from .._errors import InvalidArgument
from .._loader import DEFAULT_BATCH_SIZE
from .._plan import EpochPlan
from ._pending import _weighted_mean
from ._plan_sampler import _PlanSampler

__all__ = ["Sampler"]


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
        if (grad_norm is None and el2n is None and correct is None and embedding is None
                and (gather is False or (gather is None and self._world_size == 1))):
            return self._take_step(per_sample_loss, ids, "weighted_loss")  # the common call
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
