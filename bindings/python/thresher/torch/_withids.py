"""thresher.torch.WithIds: a dataset wrapper whose items carry their index."""

from __future__ import annotations

from typing import Optional

import torch.utils.data

from ._plan_sampler import _PlanSampler

__all__ = ["WithIds"]


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
