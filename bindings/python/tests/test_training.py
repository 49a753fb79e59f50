"""A real PyTorch training loop on a Fashion-MNIST subset with InfoBatch pruning: three epochs
of a small CNN, per-sample losses fed back each step, loss weights applied."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import thresher  # noqa: E402
import thresher.torch as tt  # noqa: E402
from conftest import FMNIST, make_config  # noqa: E402

EPOCHS = 3
NORMALIZE = {"mean": [0.2860], "std": [0.3530]}


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
    )


def accuracy(model: nn.Module) -> float:
    cfg = make_config(limit=2000, batch_size=500, shuffle=False, transform={"normalize": NORMALIZE})
    cfg["source"].update(images=str(FMNIST / "t10k-images-idx3-ubyte.gz"),
                         labels=str(FMNIST / "t10k-labels-idx1-ubyte.gz"))
    right = total = 0
    model.eval()
    with tt.Loader(cfg) as loader, torch.no_grad():
        for batch in loader:
            right += (model(batch.data).argmax(1) == batch.labels).sum().item()
            total += len(batch)
    model.train()
    return right / total


def test_cnn_trains_with_infobatch():
    torch.manual_seed(0)
    model = small_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    config = make_config(limit=5000, batch_size=64, gz=True, transform={"normalize": NORMALIZE},
                         policy={"kind": "infobatch", "prune": 0.5, "epochs": EPOCHS})
    mean_loss, plans, weights_seen = [], [], []
    with tt.Loader(config) as loader:
        for epoch in range(EPOCHS):
            plans.append(loader.epoch_info())
            assert len(loader) == plans[-1]["batches"]
            total = count = batches = 0
            weights = set()
            for batch in loader:
                opt.zero_grad()
                logits = model(batch.data)
                per_sample = F.cross_entropy(logits, batch.labels, reduction="none")
                loss = tt.weighted_loss(per_sample, batch)
                loss.backward()
                opt.step()
                loader.feedback(batch.ids, per_sample,
                                correct=logits.argmax(1) == batch.labels)
                total += per_sample.sum().item()
                count += len(batch)
                batches += 1
                weights.update(batch.weights.unique().tolist())
            assert batches == plans[-1]["batches"]
            assert count == plans[-1]["samples"]
            mean_loss.append(total / count)
            weights_seen.append(weights)
            report = loader.report()
            assert report["epoch"] == epoch and report["delivered"] == batches

    acc = accuracy(model)
    print(f"mean loss per epoch {mean_loss}, prune fractions "
          f"{[p['prune_fraction'] for p in plans]}, test accuracy {acc:.3f}")
    assert mean_loss[-1] < mean_loss[0] * 0.8, mean_loss
    # epoch 0 has no scores yet: full data
    assert plans[0]["prune_fraction"] == 0.0 and weights_seen[0] == {1.0}
    # epoch 1 prunes about r = 0.5 of the below-mean samples and up-weights the rest by 2
    assert plans[1]["prune_fraction"] > 0.0, (
        "infobatch pruned nothing in epoch 1: is the policy still a placeholder?")
    assert 0.1 < plans[1]["prune_fraction"] < 0.5
    assert weights_seen[1] == {1.0, 2.0}
    # epoch 2 >= floor(0.875 * 3): annealing, full data at weight 1
    assert plans[2]["prune_fraction"] == 0.0 and weights_seen[2] == {1.0}
    assert acc > 0.7


def test_numpy_loader_drives_torch_too():
    # The NumPy flavour with torch.from_numpy is as zero-copy; feedback takes tensors.
    torch.manual_seed(0)
    model = small_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with thresher.Loader(make_config(limit=1000, batch_size=100)) as loader:
        for batch in loader:
            x = torch.from_numpy(batch.data)
            assert x.data_ptr() == batch.data.__array_interface__["data"][0]
            per_sample = F.cross_entropy(model(x), torch.from_numpy(batch.labels), reduction="none")
            opt.zero_grad()
            tt.weighted_loss(per_sample, batch).backward()
            opt.step()
            loader.feedback(batch.ids, per_sample)
