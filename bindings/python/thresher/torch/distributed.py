"""Feedback across ranks with torch.distributed.

Every rank holds the whole ScoreBook and makes the same global plan from it; for that, every
rank must see every rank's feedback. thresher opens no sockets: the exchange goes through the
trainer's own process group (gloo, NCCL, …).

    loader = thresher.torch.Loader({..., "rank": dist.get_rank(),
                                    "world_size": dist.get_world_size()})
    for batch in loader:
        per_sample = F.cross_entropy(model(batch.data), batch.labels, reduction="none")
        all_gather_feedback(loader, batch, per_sample)      # a collective: every rank calls it
        thresher.torch.weighted_loss(per_sample, batch).backward()
        ...
    # optional, once an epoch: every rank holds the same plan and ScoreBook
    assert_same_state(loader)

Every rank yields the same number of batches (the plan is padded to whole steps), so the
collective in each step never waits for a rank that has run out.

With your own DataLoader and thresher.torch.Sampler(..., rank=, world_size=),
`sampler.weighted_loss(per_sample)` gathers by itself; all_gather_feedback(sampler, None, loss)
is the explicit form.
"""

from __future__ import annotations

import zlib
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist

from .._errors import InvalidArgument, StateError

__all__ = ["all_gather_feedback", "assert_same_state"]


def _column(name: str, value, n: int, device) -> torch.Tensor:
    t = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    t = t.detach()
    if t.shape[0] < n:
        raise InvalidArgument(f"all_gather_feedback: `{name}` has {t.shape[0]} rows, the batch {n}")
    return t[:n].to(device=device, dtype=torch.float32).reshape(n, -1)


def all_gather_feedback(
    loader,
    batch,
    loss,
    grad_norm=None,
    el2n=None,
    correct=None,
    embedding=None,
    group: Optional["dist.ProcessGroup"] = None,
) -> int:
    """Gathers this step's per-sample feedback from every rank of `group` (the default group
    when None) and feeds all of it to `loader` on every rank. A collective: every rank must
    call it once per batch, in the same order, with the same fields given (`embedding` of the
    same width). `loss` and the other fields hold one value per sample of `batch` (tensors on
    any device, NumPy arrays or sequences); the batch's padding rows are left out, and ranks
    may contribute different numbers of samples.

    `loader` may be a thresher.torch.Sampler (or InfoBatch's sampler): `batch` is then its
    pending batch (None takes `loader.pending`, the batch the trainer is on), and the gathered
    feedback goes to the sampler's loader. It does not mark the batch consumed: follow with
    thresher.torch.weighted_loss(loss, batch) and sampler.consumed() — or let
    sampler.weighted_loss(loss) do all three.

    One all_gather of the sizes and one of the values, packed as float32 columns (ids travel
    bit-exactly as two float32 words each). With NCCL the tensors go through the current CUDA
    device. Returns the number of samples fed. Raises InvalidArgument when ranks disagree on
    the fields (on every rank, after the collectives, so no rank is left waiting)."""
    from ._plan_sampler import _PlanSampler

    target = loader
    if isinstance(loader, _PlanSampler):
        if batch is None:
            batch = loader.pending
            if batch is None:
                raise loader._no_pending("all_gather_feedback")
        target = loader.loader
    fields = _gather_rows(batch.ids, len(batch) - batch.padding, loss, grad_norm, el2n, correct,
                          embedding, group)
    target.feedback(**fields)
    return int(fields["ids"].shape[0])


def _gather_rows(ids, n, loss, grad_norm=None, el2n=None, correct=None, embedding=None,
                 group=None) -> dict:
    """The feedback fields of every rank's first `n` rows (ids and the given fields), gathered;
    the keyword arguments of Loader.feedback."""
    if not dist.is_available() or not dist.is_initialized():
        raise StateError("all_gather_feedback: torch.distributed is not initialised")
    world = dist.get_world_size(group)
    backend = dist.get_backend(group)
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else "cpu"

    # uint64 reinterpreted as int64 (ids are below 2^63), then as two float32 words: the bits
    # travel unchanged.
    if isinstance(ids, torch.Tensor):
        ids = ids.view(torch.int64) if ids.dtype == torch.uint64 else ids.to(torch.int64)
    else:
        ids = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.uint64).view(np.int64))
    ids = ids[:n].contiguous().view(torch.float32).reshape(n, 2).to(device)
    columns = [ids, _column("loss", loss, n, device)]
    layout = [("loss", 1)]
    for name, value in (("grad_norm", grad_norm), ("el2n", el2n), ("correct", correct),
                        ("embedding", embedding)):
        if value is not None:
            col = _column(name, value, n, device)
            columns.append(col)
            layout.append((name, col.shape[1]))
    packed = torch.cat(columns, dim=1).contiguous()
    width = packed.shape[1]
    # The field layout's fingerprint travels with the size, so a mismatch is seen everywhere.
    # (crc32, not hash(): str hashes differ from process to process.)
    signature = zlib.crc32(repr(layout).encode())

    meta = torch.tensor([n, width, signature], dtype=torch.int64, device=device)
    metas = [torch.empty_like(meta) for _ in range(world)]
    dist.all_gather(metas, meta, group=group)
    metas = [m.tolist() for m in metas]
    longest = max(m[0] for m in metas)
    widths = {m[1] for m in metas}
    signatures = {m[2] for m in metas}

    # Pad to the longest contribution (all_gather needs equal shapes); the width must agree for
    # that too, so the values collective runs only when it does.
    if len(widths) != 1 or len(signatures) != 1:
        raise InvalidArgument(
            "all_gather_feedback: ranks give different feedback fields or embedding widths "
            f"(this rank: {', '.join(f'{k}[{w}]' for k, w in layout)}); every rank must pass "
            "the same ones"
        )
    padded = torch.zeros((longest, width), dtype=torch.float32, device=device)
    padded[:n] = packed
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded, group=group)
    rows = torch.cat([p[: m[0]] for p, m in zip(parts, metas)]).cpu()

    fields = {"ids": rows[:, :2].contiguous().view(torch.int64).reshape(-1)}
    at = 2
    for name, w in layout:
        col = rows[:, at : at + w]
        at += w
        fields[name] = col if name == "embedding" else col.reshape(-1)
    if "correct" in fields:
        fields["correct"] = fields["correct"].to(torch.uint8)
    return fields


def assert_same_state(loader, group: Optional["dist.ProcessGroup"] = None) -> dict[str, int]:
    """Checks that every rank of `group` holds the same global plan and ScoreBook (their
    digests, thresher_loader_digest); raises StateError naming the ranks that differ. A
    collective. Returns this rank's digest."""
    mine = loader.digest()
    everyone = [None] * dist.get_world_size(group)
    dist.all_gather_object(everyone, mine, group=group)
    differ = [r for r, d in enumerate(everyone) if d != everyone[0]]
    if differ:
        raise StateError(
            f"thresher: ranks {differ} differ from rank 0 in plan or ScoreBook: {everyone}"
        )
    return mine
