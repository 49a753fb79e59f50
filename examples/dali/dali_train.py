"""thresher plans, NVIDIA DALI reads, decodes and augments, torch trains.

thresher runs in index mode (config source {"kind": "index", "len": N}): it starts no worker
threads and hands out batches of sample ids and loss weights only. A DALI pipeline's
`fn.external_source` callback takes the next such batch, reads those ids' image files and
returns their encoded bytes, labels, ids and weights; DALI decodes (`fn.decoders.image`, CPU)
and augments (rotation, flip, normalisation), and a small CNN trains on what comes out. The
per-sample losses go back to thresher by id, and its policy (InfoBatch here) plans the next
epoch from them.

DALI prefetches: the callback runs up to `prefetch_queue_depth` batches ahead of the trainer.
The ids and weights therefore travel through the pipeline as outputs beside the images, so
every batch the trainer gets carries its own ids and weights (and `ThresherSource.pending`
checks that DALI returns batches in the order the callback made them). The epoch ends when
thresher's `next()` says so: the callback raises StopIteration, DALI hands out what it had
prefetched and then stops; only after the trainer has fed back those last batches is the
pipeline reset, and the next call of the callback makes thresher plan the next epoch from all
of the feedback.

    PYTHONPATH=bindings/python .venv/bin/python examples/dali/dali_train.py --epochs 3

Run from the repository root (the library is found in target/release; THRESHER_LIBRARY
overrides). CPU only: the pipeline is built with device_id=None.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
FMNIST = REPO / "data" / "fashion-mnist"
MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST's pixel mean and standard deviation (in [0, 1])


# ---- The dataset: image files on disk, as a reader like DALI's expects ----------------------


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip or raw) as a NumPy array (uint8 images [N, H, W] or labels [N])."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def prepare_dataset(out_dir: Path, n: int, fmt: str = "png", fmnist: Path = FMNIST) -> np.ndarray:
    """Writes the first `n` Fashion-MNIST training images as `out_dir/{id:05d}.{fmt}` (Pillow)
    and their labels, one a line, as `out_dir/labels.txt`; returns the labels. Sample id i is
    file i."""
    from PIL import Image

    images = read_idx(fmnist / "train-images-idx3-ubyte.gz")[:n]
    labels = read_idx(fmnist / "train-labels-idx1-ubyte.gz")[:n].astype(np.int64)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        options = {"quality": 95} if fmt == "jpg" else {}
        Image.fromarray(image).save(out_dir / f"{i:05d}.{fmt}", **options)
    (out_dir / "labels.txt").write_text("".join(f"{y}\n" for y in labels))
    return labels


def load_labels(root: Path) -> np.ndarray:
    return np.loadtxt(root / "labels.txt", dtype=np.int64).reshape(-1)


def held_out(n: int, fmnist: Path = FMNIST):
    """The first `n` Fashion-MNIST test images, normalised as the pipeline does (no
    augmentation), and their labels, as torch tensors."""
    import torch

    x = read_idx(fmnist / "t10k-images-idx3-ubyte.gz")[:n].astype(np.float32) / 255.0
    y = read_idx(fmnist / "t10k-labels-idx1-ubyte.gz")[:n].astype(np.int64)
    x = (x - MEAN) / STD
    return torch.from_numpy(x[:, None]), torch.from_numpy(y)


# ---- The external source: thresher's next batch of ids -> encoded bytes ------------------


class ThresherSource:
    """The callable for `fn.external_source(batch=True, batch_info=True, num_outputs=4)`.

    Each call takes thresher's next batch (index mode: ids and weights, no data), reads the
    files of those ids and returns (encoded bytes, labels, ids, weights), one entry per sample.
    At the end of thresher's epoch it raises StopIteration, which ends DALI's epoch. It records
    what it read (`reads[epoch]`, ids in read order) and which batches it handed to DALI that
    the trainer has not taken yet (`pending`, oldest first)."""

    def __init__(self, loader, root: Path, labels: np.ndarray, ext: str = "png"):
        self.loader = loader
        self.root = Path(root)
        self.labels = labels
        self.ext = ext
        self.epoch = 0
        self.reads: dict[int, list[int]] = collections.defaultdict(list)
        self.pending: collections.deque[np.ndarray] = collections.deque()

    def path(self, i: int) -> Path:
        return self.root / f"{i:05d}.{self.ext}"

    def __call__(self, info):
        # DALI counts its epochs by reset(); thresher by end-of-epoch. They must agree.
        if info.epoch_idx != self.epoch:
            raise RuntimeError(f"DALI epoch {info.epoch_idx}, thresher epoch {self.epoch}")
        batch = self.loader.next()
        if batch is None:  # thresher's epoch is over; the next next() plans the next one
            self.epoch += 1
            raise StopIteration
        with batch:
            real = len(batch) - batch.padding  # padding only with world_size > 1
            ids = np.array(batch.ids[:real], dtype=np.int64)
            weights = np.array(batch.weights[:real], dtype=np.float32)
        encoded = [np.fromfile(self.path(i), dtype=np.uint8) for i in ids]
        self.reads[self.epoch].extend(ids.tolist())
        self.pending.append(ids)
        # Batch-major arrays: DALI takes each row (a scalar here) as one sample.
        return encoded, self.labels[ids], ids, weights


def build_pipeline(source: ThresherSource, batch_size: int, seed: int, threads: int = 1,
                   prefetch: int = 2, augment: bool = True):
    """A CPU-only DALI pipeline (device_id=None): decode, random rotation and flip, normalise
    to float CHW; outputs (images, labels, ids, weights)."""
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=batch_size, num_threads=threads, device_id=None, seed=seed,
                  prefetch_queue_depth=prefetch)
    def pipeline():
        encoded, labels, ids, weights = fn.external_source(
            source=source, num_outputs=4, batch=True, batch_info=True,
            dtype=[types.UINT8, types.INT64, types.INT64, types.FLOAT])
        images = fn.decoders.image(encoded, device="cpu", output_type=types.GRAY)
        mirror = 0
        if augment:
            images = fn.rotate(images, angle=fn.random.uniform(range=(-10.0, 10.0)),
                               keep_size=True, fill_value=0)
            mirror = fn.random.coin_flip()
        images = fn.crop_mirror_normalize(
            images, dtype=types.FLOAT, output_layout="CHW", mirror=mirror,
            mean=[MEAN * 255.0], std=[STD * 255.0])
        return images, labels, ids, weights

    return pipeline()


# ---- The model and the training loop -------------------------------------------------------


def make_model():
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 16 x 14 x 14
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 7 x 7
        nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def evaluate(model, x, y) -> tuple[float, float]:
    import torch
    import torch.nn.functional as F

    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
        acc = (logits.argmax(1) == y).float().mean().item()
    model.train()
    return loss, acc


def train(root: Path, epochs: int = 3, batch_size: int = 64, seed: int = 0, prune: float = 0.5,
          anneal: float = 1.0, lr: float = 0.03, test_n: int = 1000, threads: int = 1,
          prefetch: int = 2, ext: str = "png", log=print) -> dict:
    """Trains for `epochs` epochs on the image files in `root` (from prepare_dataset) with
    InfoBatch (prune r, anneal δ; δ = 1 prunes every epoch after the first). Returns what the
    test checks: per epoch the plan known before batch 0 (epoch_info), the report, the ids read
    and the ids/weights DALI delivered, the losses fed back, and the held-out loss."""
    import torch
    import torch.nn.functional as F
    from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

    import thresher

    torch.manual_seed(seed)
    labels = load_labels(root)
    n = len(labels)
    config = {
        "source": {"kind": "index", "len": n},
        "batch_size": batch_size,
        "seed": seed,
        "policy": {"kind": "infobatch", "prune": prune, "anneal": anneal, "epochs": epochs},
        # DALI's callback takes batches `prefetch` ahead of the training step, so the call that
        # takes an epoch's last batch comes before the feedback of the last few. With the
        # default plan_ahead the next plan would be fixed there, without that feedback; this
        # example plans each epoch at its start instead, from all of the last one's feedback.
        "plan_ahead": False,
    }
    loader = thresher.Loader(config)
    source = ThresherSource(loader, root, labels, ext)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    x_test, y_test = held_out(test_n)
    result = {"config": config, "held_out": [evaluate(model, x_test, y_test)], "epochs": []}
    log(f"held-out before training: loss {result['held_out'][0][0]:.3f} "
        f"acc {result['held_out'][0][1]:.3f}")

    # The first plan, known before batch 0 (the iterator below prefetches at once): its length
    # (epoch_info) and, for the test, the whole epoch's ids and weights (epoch_plan; a reader
    # that schedules its own reads could work from it instead of next()).
    info, plan = loader.epoch_info(), loader.epoch_plan()
    pipe = build_pipeline(source, batch_size, seed, threads, prefetch)
    it = DALIGenericIterator(pipe, ["images", "labels", "ids", "weights"],
                             last_batch_policy=LastBatchPolicy.PARTIAL, auto_reset=False)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        delivered, weights, targets, losses, steps, total = [], [], [], [], 0, 0.0
        for out in it:
            b = out[0]
            ids = b["ids"].reshape(-1)
            w = b["weights"].reshape(-1)
            # DALI returns batches in the order the callback made them; the ids it carries
            # say which batch this is either way.
            expected = source.pending.popleft()
            if not np.array_equal(ids.numpy(), expected):
                raise RuntimeError("DALI returned a batch out of order")
            y = b["labels"].reshape(-1)
            logits = model(b["images"])
            per_sample = F.cross_entropy(logits, y, reduction="none")
            loss = (w * per_sample).mean()  # mean(w * l): what InfoBatch's weights are for
            opt.zero_grad()
            loss.backward()
            opt.step()
            loader.feedback(ids.numpy().astype(np.uint64), per_sample.detach())
            delivered.append(ids.numpy())
            weights.append(w.numpy())
            targets.append(y.numpy())
            losses.append(per_sample.detach().numpy())
            steps += 1
            total += loss.item()
        # thresher's next() has returned None (the callback raised StopIteration): the report is
        # the finished epoch's; every batch's feedback is in.
        report = loader.report()
        held = evaluate(model, x_test, y_test)
        record = {
            "info": info, "plan": plan, "report": report, "steps": steps,
            "reads": list(source.reads[epoch]), "ids": np.concatenate(delivered),
            "weights": np.concatenate(weights), "labels": np.concatenate(targets),
            "losses": np.concatenate(losses), "train_loss": total / max(steps, 1),
            "held_out": held, "seconds": time.perf_counter() - t0,
        }
        result["epochs"].append(record)
        result["held_out"].append(held)
        log(f"epoch {epoch}: {steps} batches, {len(record['ids'])} of {n} samples "
            f"(prune {report['prune_fraction']:.3f}, mean weight {report['mean_weight']:.3f}), "
            f"train loss {record['train_loss']:.3f}, held-out loss {held[0]:.3f} "
            f"acc {held[1]:.3f}, {record['seconds']:.1f} s")
        if epoch + 1 < epochs:
            # Plan the next epoch now, from all of this epoch's feedback, and learn its length
            # before batch 0; then reset DALI, which calls the callback for the new epoch.
            info, plan = loader.epoch_info(), loader.epoch_plan()
            it.reset()
    result["final_report"] = loader.report()
    loader.close()
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="image folder from a previous run (default: a "
                   "temporary one made from data/fashion-mnist)")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--format", choices=["png", "jpg"], default="png")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--prune", type=float, default=0.5)
    p.add_argument("--anneal", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="thresher-dali-") as tmp:
        root = args.data
        if root is None:
            root = Path(tmp)
            prepare_dataset(root, args.samples, args.format)
        result = train(root, args.epochs, args.batch_size, args.seed, args.prune, args.anneal,
                       ext=args.format)
    print(json.dumps(result["final_report"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
