"""thresher's image pipeline against torch.utils.data.DataLoader + torchvision, on the same files,
with the same worker count (2) and batch size (128), side by side, as images/s and ratios.

  JPEG: data/bench-jpeg, 5,000 photographs at about 500×375, q90 (benches/make_image_data.py):
        torchvision.datasets.ImageFolder with RandomResizedCrop(224), RandomHorizontalFlip(),
        ToTensor(), Normalize(ImageNet mean, std); thresher `image_folder` with the same
        transforms (examples/image_throughput.rs, pipeline `imagenet`).
  PNG:  data/bench-fmnist-png, Fashion-MNIST's 60,000 training images as 28×28 gray PNGs:
        ImageFolder with a gray loader, ToTensor(), Normalize(0.286, 0.353); thresher
        `image_folder` with `color: gray` (pipeline `fmnist`).

Each loader runs one warm-up epoch (worker start-up, page cache), then timed epochs; the two
loaders alternate for ROUNDS rounds so that a burst of load on the machine hits both, and the
figures are the means over rounds.

    .venv/bin/python benches/compare_images.py [ROUNDS] [--json PATH]

With --json the per-round figures (and the 1-minute load average beside each) are also written
to PATH for benches/report.py.
"""

import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torchvision
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKERS, BATCH = 2, 128
EXAMPLE = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                       "release", "examples", "image_throughput")
PIPELINES = {
    # name: (data dir, thresher pipeline, timed epochs thresher, timed epochs DataLoader)
    "jpeg": ("bench-jpeg", "imagenet", 2, 1),
    "png": ("bench-fmnist-png", "fmnist", 3, 1),
}


def gray_loader(path):
    with open(path, "rb") as f:
        return Image.open(f).convert("L")


def torch_loader(kind, root):
    if kind == "jpeg":
        tf = T.Compose([
            T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
            T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ])
        ds = torchvision.datasets.ImageFolder(root, transform=tf)
    else:
        tf = T.Compose([T.ToTensor(), T.Normalize([0.286], [0.353])])
        ds = torchvision.datasets.ImageFolder(root, transform=tf, loader=gray_loader)
    return DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=WORKERS,
                      persistent_workers=True)


def time_torch(dl, epochs):
    for _ in dl:  # warm-up epoch
        pass
    start, n = time.perf_counter(), 0
    for _ in range(epochs):
        for x, _y in dl:
            n += x.shape[0]
    return n / (time.perf_counter() - start)


def time_thresher(root, pipeline, epochs):
    out = subprocess.run([EXAMPLE, root, pipeline, str(WORKERS), str(epochs), str(BATCH)],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])["samples_per_s"]


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main():
    argv = sys.argv[1:]
    json_out = None
    if "--json" in argv:
        at = argv.index("--json")
        json_out = argv[at + 1]
        del argv[at : at + 2]
    rounds = int(argv[0]) if argv else 2
    per_round = []
    torch.set_num_threads(1)
    results = {}
    for kind, (sub, pipeline, t_epochs, d_epochs) in PIPELINES.items():
        root = os.path.join(ROOT, "data", sub)
        dl = torch_loader(kind, root)
        ours, theirs = [], []
        for r in range(rounds):
            ours.append(time_thresher(root, pipeline, t_epochs))
            theirs.append(time_torch(dl, d_epochs))
            print(f"  {kind} round {r + 1}: thresher {ours[-1]:,.0f}/s, DataLoader "
                  f"{theirs[-1]:,.0f}/s (load average {load()})", flush=True)
            per_round.append({"pipeline": kind, "round": r + 1, "thresher": ours[-1],
                              "dataloader": theirs[-1], "load": float(load())})
        del dl
        results[kind] = (statistics.mean(ours), statistics.mean(theirs), len(dl_dataset(root)))
    print(f"\nImages/s, {WORKERS} workers, batch {BATCH}, f32 NCHW normalised; "
          f"{os.cpu_count()} cores, load average {load()} at the end "
          f"(torch {torch.__version__}, torchvision {torchvision.__version__})\n")
    print(f"{'pipeline':62s} {'thresher':>10s} {'DataLoader':>11s} {'ratio':>7s} {'target':>7s}")
    names = {
        "jpeg": "JPEG 500×375 → RandomResizedCrop 224 + flip + Normalize",
        "png": "Fashion-MNIST PNG 28×28 → ToTensor + Normalize",
    }
    targets = {"jpeg": 2.0, "png": 5.0}
    met = True
    for kind, (ours, theirs, n) in results.items():
        ratio = ours / theirs
        met &= ratio >= targets[kind]
        print(f"{names[kind]:62s} {ours:10,.0f} {theirs:11,.0f} {ratio:6.1f}x {targets[kind]:6.0f}x"
              f"  ({n:,} images)")
    print(f"\ntargets (>= 2x on JPEG, stretch 3x; >= 5x on PNG): {'met' if met else 'NOT met'}")
    if json_out:
        with open(json_out, "w") as f:
            json.dump({
                "workers": WORKERS, "batch": BATCH, "cores": os.cpu_count(),
                "torch": torch.__version__, "torchvision": torchvision.__version__,
                "names": names, "rounds": per_round,
                "mean": {kind: {"thresher": o, "dataloader": t, "images": n}
                         for kind, (o, t, n) in results.items()},
            }, f, indent=2)


def dl_dataset(root):
    return [1 for _, _, files in os.walk(root) for f in files if f.endswith((".jpg", ".png"))]


if __name__ == "__main__":
    main()
