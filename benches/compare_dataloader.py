"""thresher against PyTorch's DataLoader on the same data, side by side, as ratios.

Fashion-MNIST train (60,000 × 28×28 u8), normalised f32 NCHW (mean 0.286, std 0.353),
batch 256, shuffled. PyTorch runs two ways, both with num_workers=2:
  - TensorDataset over the array normalised up front (the fastest PyTorch can be here),
  - a per-sample Dataset that normalises in __getitem__ (the common way).
thresher runs through examples/throughput.rs with 1 and 2 workers, each in MEMCPY_ROUNDS rounds
that alternate with the memory-bandwidth reference for the same bytes (a memcpy of
samples x 3,136 bytes in batch-sized chunks into reused buffers, on as many threads as workers;
exactly what it copies is in examples/throughput.rs): the loader's bytes/s as a fraction of it.

    .venv/bin/python benches/compare_dataloader.py [epochs] [--json PATH]

With --json the figures (and the 1-minute load average beside each) are also written to PATH
for benches/report.py.
"""

import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data", "fashion-mnist")
MEAN, STD = 0.286, 0.353
MEMCPY_ROUNDS = 5


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class PerSample(Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i].astype(np.float32)).div_(255.0).sub_(MEAN).div_(STD)
        return x.unsqueeze(0), int(self.labels[i])


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def time_loader(loader, epochs):
    for _ in loader:  # warm-up epoch: worker start-up, page faults
        pass
    start = time.perf_counter()
    n = 0
    for _ in range(epochs):
        for x, _y in loader:
            n += x.shape[0]
    return n / (time.perf_counter() - start)


def main():
    argv = sys.argv[1:]
    json_out = None
    if "--json" in argv:
        at = argv.index("--json")
        json_out = argv[at + 1]
        del argv[at : at + 2]
    epochs = int(argv[0]) if argv else 3
    torch.set_num_threads(1)
    images = read_idx(os.path.join(DATA, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA, "train-labels-idx1-ubyte.gz")).astype(np.int64)

    rows = []
    loads = {}
    memcpy = {}
    # cargo run honours CARGO_TARGET_DIR, so `make bench` with its own target dir reuses its build.
    exe = subprocess.run(
        ["cargo", "run", "--quiet", "--release", "--example", "throughput", "--", DATA, "1,2", str(epochs + 2),
         "--memcpy", str(MEMCPY_ROUNDS)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    for line in exe.stdout.splitlines():
        r = json.loads(line)
        rows.append((f"thresher, workers={r['workers']}", r["samples_per_s"]))
        loads[rows[-1][0]] = load()
        memcpy[rows[-1][0]] = {
            "threads": r["memcpy_threads"], "dest_buffers": r["memcpy_dest_buffers"],
            "sample_bytes": r["sample_bytes"], "bytes_per_s": r["memcpy_bytes_per_s"],
            "fraction": r["fraction_of_memcpy"], "rounds": r["rounds"],
            "load": loads[rows[-1][0]],
        }

    x = torch.from_numpy(images.astype(np.float32)).div_(255.0).sub_(MEAN).div_(STD).unsqueeze(1)
    tensor_ds = TensorDataset(x, torch.from_numpy(labels))
    dl = DataLoader(tensor_ds, batch_size=256, shuffle=True, num_workers=2, persistent_workers=True)
    rows.append(("DataLoader(TensorDataset), num_workers=2", time_loader(dl, epochs)))
    loads[rows[-1][0]] = load()
    dl = DataLoader(PerSample(images, labels), batch_size=256, shuffle=True, num_workers=2,
                    persistent_workers=True)
    rows.append(("DataLoader(per-sample Dataset), num_workers=2", time_loader(dl, 1)))
    loads[rows[-1][0]] = load()

    best_torch = max(r[1] for r in rows if r[0].startswith("DataLoader"))
    thresher_2 = dict(rows)["thresher, workers=2"]
    print("\nFashion-MNIST train, f32 NCHW normalised, batch 256, shuffled "
          f"({os.cpu_count()} cores)\n")
    print(f"{'loader':48s} {'samples/s':>12s} {'thresher(2 workers) / this':>28s}")
    for name, sps in rows:
        print(f"{name:48s} {sps:12,.0f} {thresher_2 / sps:27.1f}x")
    print(f"\nthresher (2 workers) vs the fastest DataLoader: {thresher_2 / best_torch:.1f}x "
          f"(target >= 10x and >= 1M samples/s: "
          f"{'met' if thresher_2 / best_torch >= 10 and thresher_2 >= 1e6 else 'NOT met'})")
    for name, m in memcpy.items():
        print(f"{name}: {m['fraction']:.0%} of a {m['threads']}-thread memcpy of the same bytes "
              f"({m['bytes_per_s'] / 1e9:.2f} GB/s; median of {len(m['rounds'])} alternating "
              f"rounds; load {m['load']:.2f})")
    if json_out:
        with open(json_out, "w") as f:
            json.dump({
                "dataset": "Fashion-MNIST train (60,000), f32 NCHW normalised, batch 256, shuffled",
                "cores": os.cpu_count(), "torch": torch.__version__, "epochs": epochs,
                "rows": [{"loader": name, "samples_per_s": sps, "load": loads[name]}
                         for name, sps in rows],
                "memcpy": memcpy,
            }, f, indent=2)


if __name__ == "__main__":
    main()
