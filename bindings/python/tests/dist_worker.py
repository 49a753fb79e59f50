"""The body of one rank in test_distributed.py: a module of its own, so that mp.spawn's
children can import it (they re-import by name; pytest's test modules are not importable so)."""

from __future__ import annotations

import json
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F

import thresher.torch as tt
from thresher.torch.distributed import all_gather_feedback, assert_same_state
from conftest import make_config
from test_training import NORMALIZE, accuracy, small_cnn

EPOCHS = 3
LIMIT = 4000


def train(rank: int, world: int, batch_size: int, rendezvous: str, out_dir: str) -> None:
    """Trains the small CNN with InfoBatch for EPOCHS epochs on `world` ranks and writes what
    each epoch delivered, the digests and (rank 0) the test accuracy to out_dir/rank{rank}.json."""
    torch.set_num_threads(1)
    if world > 1:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank,
                                world_size=world)
    torch.manual_seed(0)
    model = small_cnn()
    if world > 1:
        # The parameters start equal (same seed); DDP averages the gradients every step.
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    config = make_config(limit=LIMIT, batch_size=batch_size, gz=True,
                         transform={"normalize": NORMALIZE}, rank=rank, world_size=world,
                         policy={"kind": "infobatch", "prune": 0.5, "epochs": EPOCHS})
    record = {"epochs": []}
    with tt.Loader(config) as loader:
        for _ in range(EPOCHS):
            info = loader.epoch_info()
            ids, batches, padding, fed = [], 0, 0, 0
            for batch in loader:
                per_sample = F.cross_entropy(model(batch.data), batch.labels, reduction="none")
                if world > 1:
                    fed += all_gather_feedback(loader, batch, per_sample)
                else:
                    loader.feedback(batch.ids, per_sample)
                    fed += len(batch)
                opt.zero_grad()
                tt.weighted_loss(per_sample, batch).backward()
                opt.step()
                real = len(batch) - batch.padding
                ids.extend(int(i) for i in batch.ids[:real])
                assert (batch.weights[real:] == 0).all()
                batches += 1
                padding += batch.padding
            digest = assert_same_state(loader) if world > 1 else loader.digest()
            record["epochs"].append({"info": info, "ids": ids, "batches": batches,
                                     "padding": padding, "fed": fed, "digest": digest})
    if rank == 0:
        net = model.module if world > 1 else model
        record["accuracy"] = accuracy(net)
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(record, f)
    if world > 1:
        dist.destroy_process_group()


def mismatched_fields(rank: int, world: int, rendezvous: str, out_dir: str) -> None:
    """Rank 1 gives el2n, rank 0 does not: both must raise InvalidArgument, neither hang."""
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank,
                            world_size=world)
    config = make_config(limit=256, batch_size=16, gz=True, rank=rank, world_size=world)
    outcome = "no error"
    with tt.Loader(config) as loader:
        batch = loader.next()
        extra = {"el2n": torch.ones(len(batch))} if rank == 1 else {}
        try:
            all_gather_feedback(loader, batch, torch.ones(len(batch)), **extra)
        except Exception as e:  # noqa: BLE001 - the test checks the type by name
            outcome = f"{type(e).__name__}: {e}"
        batch.release()
        seen = loader.report()["delivered"]
    with open(os.path.join(out_dir, f"mismatch{rank}.json"), "w") as f:
        json.dump({"outcome": outcome, "delivered": seen}, f)
    dist.destroy_process_group()


def samplers(rank: int, world: int, rendezvous: str, out_dir: str) -> None:
    """thresher.torch.Sampler and InfoBatch on `world` gloo ranks, each with its own
    DataLoader: the feedback is gathered by weighted_loss/update themselves (epoch 0 and 2)
    and by all_gather_feedback on the pending batch (epoch 1)."""
    from torch.utils.data import DataLoader

    from fmnist import FashionMNIST

    torch.set_num_threads(1)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank,
                            world_size=world)
    data = FashionMNIST(600)
    sampler = tt.Sampler(len(data), batch_size=32, seed=4, rank=rank, world_size=world,
                         policy={"kind": "infobatch", "prune": 0.5, "epochs": EPOCHS})
    loader = DataLoader(tt.WithIds(data, sampler), batch_sampler=sampler, num_workers=0)
    record = {"epochs": [], "infobatch": []}
    for epoch in range(EPOCHS):
        length, ids, steps, padding = len(sampler), [], 0, 0
        for batch_ids, (x, _) in loader:
            per_sample = x.flatten(1).mean(1) + 1.0
            pending = sampler.pending
            real = len(pending) - pending.padding
            ids.extend(batch_ids[:real].tolist())
            padding += pending.padding
            if epoch == 1:
                all_gather_feedback(sampler, None, per_sample)
                tt.weighted_loss(per_sample, pending)
                sampler.consumed()
            else:
                sampler.weighted_loss(per_sample)
            steps += 1
        record["epochs"].append({"len": length, "steps": steps, "ids": ids, "padding": padding,
                                 "samples": sampler.report()["samples"],
                                 "digest": assert_same_state(sampler.loader)})
    trainset = tt.InfoBatch(FashionMNIST(301), EPOCHS)  # rank and world_size from the group
    trainloader = DataLoader(trainset, batch_size=16, sampler=trainset.sampler)
    for epoch in range(EPOCHS):
        length, seen = len(trainset.sampler), 0
        for x, _ in trainloader:
            trainset.update(x.flatten(1).mean(1) + 1.0)
            seen += len(x)
        record["infobatch"].append({"len": length, "seen": seen,
                                    "digest": assert_same_state(trainset.sampler.loader)})
    with open(os.path.join(out_dir, f"sampler{rank}.json"), "w") as f:
        json.dump(record, f)
    dist.destroy_process_group()
