"""thresher's image pipeline against torch.utils.data.DataLoader + torchvision, on the same files,
with the same worker count (2) and batch size (128), side by side, as images/s and ratios.

  JPEG: data/bench-jpeg, 5,000 photographs at about 500×375, q90 (benches/make_image_data.py):
        torchvision.datasets.ImageFolder with RandomResizedCrop(224), RandomHorizontalFlip(),
        ToTensor(), Normalize(ImageNet mean, std); thresher `image_folder` with the same
        transforms (examples/image_throughput.rs, pipeline `imagenet`).
  PNG:  data/bench-fmnist-png, Fashion-MNIST's 60,000 training images as 28×28 gray PNGs:
        ImageFolder with a gray loader, ToTensor(), Normalize(0.286, 0.353); thresher
        `image_folder` with `color: gray` (pipeline `fmnist`).

The JPEG pipeline is also timed, in the same rounds, against three anchors on the same files:
  DALI:     NVIDIA DALI's CPU pipeline (device_id=None, 2 threads, batch 128):
            fn.readers.file → fn.decoders.image_random_crop (decodes only the crop window) →
            fn.resize 224×224 → fn.crop_mirror_normalize (random flip, f32 CHW, ImageNet mean/std);
  ceiling:  a full-size decode of every file with libjpeg-turbo and nothing else, in 2 processes
            (one per core): through simplejpeg (accurate IDCT, fancy upsampling, as Pillow) and
            through Pillow (`Image.open(path).load()`). The faster is the practical ceiling of a
            pipeline that decodes every pixel;
  torchvision v2: DataLoader(num_workers=2) over ImageFolder with `torchvision.io.decode_jpeg`
            tensors and v2 transforms (RandomResizedCrop(224, antialias=True),
            RandomHorizontalFlip, ToDtype(float32, scale=True), Normalize): torchvision's fastest
            documented CPU path, beside the v1 PIL one above.

Each loader runs one warm-up epoch (worker start-up, page cache), then timed epochs; the
loaders alternate for ROUNDS rounds so that a burst of load on the machine hits them all, and
the figures are the means over rounds.

    .venv/bin/python benches/compare_images.py [ROUNDS] [--json PATH]

With --json the per-round figures (and the 1-minute load average beside each) are also written
to PATH for benches/report.py.
"""

import json
import math
import multiprocessing
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


MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def tensor_loader(path):
    from torchvision.io import ImageReadMode, decode_jpeg, read_file
    return decode_jpeg(read_file(path), mode=ImageReadMode.RGB)


def torch_v2_loader(root):
    from torchvision.transforms import v2
    tf = v2.Compose([
        v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD),
    ])
    ds = torchvision.datasets.ImageFolder(root, transform=tf, loader=tensor_loader)
    return DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=WORKERS,
                      persistent_workers=True)


def dali_pipeline(root):
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=BATCH, num_threads=WORKERS, device_id=None, seed=0)
    def pipe():
        jpegs, labels = fn.readers.file(file_root=root, random_shuffle=True, name="Reader")
        images = fn.decoders.image_random_crop(jpegs, device="cpu", output_type=types.RGB)
        images = fn.resize(images, resize_x=224, resize_y=224)
        images = fn.crop_mirror_normalize(
            images, dtype=types.FLOAT, output_layout="CHW",
            mean=[m * 255 for m in MEAN], std=[s * 255 for s in STD],
            mirror=fn.random.coin_flip(probability=0.5))
        return images, labels

    p = pipe()
    p.build()
    return p


def time_dali(p, epochs, warm):
    iters = math.ceil(p.epoch_size("Reader") / BATCH)
    for _ in range(iters if warm else 0):
        p.run()
    start, n = time.perf_counter(), 0
    for _ in range(epochs * iters):
        images, _labels = p.run()
        n += len(images)
    rate = n / (time.perf_counter() - start)
    # DALI refills its prefetch queue after the last run; let that finish before the next
    # loader's clock starts.
    time.sleep(1.0)
    return rate


def decode_files(job):
    """Decodes every file of `paths` in full (a ceiling worker); returns how many."""
    kind, paths = job
    if kind == "simplejpeg":
        import simplejpeg
        for path in paths:
            with open(path, "rb") as f:
                simplejpeg.decode_jpeg(f.read(), colorspace="RGB", fastdct=False,
                                       fastupsample=False)
    else:
        for path in paths:
            with Image.open(path) as im:
                im.load()
    return len(paths)


def time_ceiling(pool, kind, paths):
    # Small jobs, so that both processes stay busy to the end.
    jobs = [(kind, paths[i::40]) for i in range(40)]
    start = time.perf_counter()
    n = sum(pool.map(decode_files, jobs, chunksize=1))
    return n / (time.perf_counter() - start)


def have_simplejpeg():
    try:
        import simplejpeg  # noqa: F401
        return True
    except ImportError:
        return False


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
    anchors = {}
    for kind, (sub, pipeline, t_epochs, d_epochs) in PIPELINES.items():
        root = os.path.join(ROOT, "data", sub)
        dl = torch_loader(kind, root)
        extra = {}
        if kind == "jpeg":
            paths = [os.path.join(d, f) for d, _, files in os.walk(root) for f in sorted(files)
                     if f.endswith(".jpg")]
            extra["dali"] = dali_pipeline(root)
            extra["v2"] = torch_v2_loader(root)
            pool = multiprocessing.get_context("spawn").Pool(WORKERS)
            time_ceiling(pool, "pillow", paths[:40])  # start-up and imports
            kinds = ["simplejpeg", "pillow"] if have_simplejpeg() else ["pillow"]
        ours, theirs = [], []
        for r in range(rounds):
            ours.append(time_thresher(root, pipeline, t_epochs))
            theirs.append(time_torch(dl, d_epochs))
            row = {"pipeline": kind, "round": r + 1, "thresher": ours[-1],
                   "dataloader": theirs[-1]}
            if kind == "jpeg":
                row["dali"] = time_dali(extra["dali"], 2, warm=r == 0)
                for k in kinds:
                    row[f"ceiling_{k}"] = time_ceiling(pool, k, paths)
                row["ceiling"] = max(row[f"ceiling_{k}"] for k in kinds)
                row["dataloader_v2"] = time_torch(extra["v2"], d_epochs)
                for key, value in row.items():
                    if key not in ("pipeline", "round", "thresher", "dataloader"):
                        anchors.setdefault(key, []).append(value)
            row["load"] = float(load())
            print(f"  {kind} round {r + 1}: " + ", ".join(
                f"{k} {v:,.0f}/s" for k, v in row.items()
                if k not in ("pipeline", "round", "load")) + f" (load average {load()})",
                flush=True)
            per_round.append(row)
        del dl
        if kind == "jpeg":
            pool.close()
            pool.join()
            del extra
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
    anchor_mean = {k: statistics.mean(v) for k, v in anchors.items()}
    if anchor_mean:
        ours = results["jpeg"][0]
        print("\nJPEG pipeline, thresher against the anchors (means over rounds):")
        for key, goal in (("ceiling", "goal >= 1.0, stretch 1.3"), ("dali", "goal > 1"),
                          ("dataloader_v2", "goal >= 2")):
            print(f"  thresher / {key}: {ours / anchor_mean[key]:.2f} "
                  f"({ours:,.0f} vs {anchor_mean[key]:,.0f} images/s; {goal})")
    if json_out:
        with open(json_out, "w") as f:
            json.dump({
                "workers": WORKERS, "batch": BATCH, "cores": os.cpu_count(),
                "torch": torch.__version__, "torchvision": torchvision.__version__,
                "names": names, "rounds": per_round,
                "mean": {kind: {"thresher": o, "dataloader": t, "images": n,
                                **({"anchors": anchor_mean} if kind == "jpeg" else {})}
                         for kind, (o, t, n) in results.items()},
                "dali": dali_version(), "simplejpeg": have_simplejpeg(),
            }, f, indent=2)


def dali_version():
    try:
        import nvidia.dali
        return nvidia.dali.__version__
    except ImportError:
        return None


def dl_dataset(root):
    return [1 for _, _, files in os.walk(root) for f in files if f.endswith((".jpg", ".png"))]


if __name__ == "__main__":
    main()
