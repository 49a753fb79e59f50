"""Cold-cache reading: an image folder of 200,000 small PNGs (data/bench-cold-png, made by
benches/make_image_data.py) read with the page cache dropped before every run, so each open
and read goes to the disk. Compared: thresher with 8 workers and read-ahead off (the loader
before read-ahead existed: its I/O depth was its worker count), 2 workers with read-ahead off,
2 workers with read-ahead on (`io_depth` at its default), and torch's DataLoader over
torchvision's ImageFolder with 2 workers for reference. Each run times the first SAMPLES
samples of a shuffled epoch (the clock starts after the folder scan), three rounds, alternating
(the DataLoader in the first only); the ratio is of the medians.

The cache is dropped with `sync; echo 3 > /proc/sys/vm/drop_caches` (needs root); where that is
refused, every file of the set is evicted with posix_fadvise(POSIX_FADV_DONTNEED) instead (the
directory and inode caches then stay warm, so the figures flatter every loader), and the JSON
and the page say which was used.

    .venv/bin/python benches/cold_read.py [--json FILE] [--rounds N]
"""

import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = 40_000
SAMPLES_TORCH = 4_000
BATCH = 128


def cold_root():
    return os.environ.get("THRESHER_COLD_ROOT") or os.path.join(ROOT, "data", "bench-cold-png")


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def drop_cache(root):
    """Empties the page cache (or evicts the set's files); returns the method used."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return "drop_caches"
    except OSError:
        for d, _, files in os.walk(root):
            for name in files:
                fd = os.open(os.path.join(d, name), os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)
        return "fadvise_dontneed"


def thresher(root, workers, io_depth):
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    exe = os.path.join(target, "release", "examples", "cold_read")
    out = subprocess.run([exe, root, str(workers), str(io_depth), str(SAMPLES), str(BATCH)],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def torch_loader(root):
    """DataLoader(num_workers=2) over ImageFolder, the pipeline of compare_images.py's PNG row."""
    code = f"""
import json, time, torch, torchvision, torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader
def gray(p):
    with open(p, "rb") as f:
        return Image.open(f).convert("L")
torch.manual_seed(0)
ds = torchvision.datasets.ImageFolder({root!r}, transform=T.Compose([T.ToTensor(),
    T.Normalize((0.286,), (0.353,))]), loader=gray)
dl = DataLoader(ds, batch_size={BATCH}, shuffle=True, num_workers=2)
n, t = 0, time.perf_counter()
for x, y in dl:
    n += len(y)
    if n >= {SAMPLES_TORCH}:
        break
s = time.perf_counter() - t
print(json.dumps({{"samples": n, "seconds": s, "samples_per_s": n / s}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def default_io_depth():
    # The default of config key `io_depth`, read from the source so the page names it.
    with open(os.path.join(ROOT, "crates", "thresher-core", "src", "config.rs")) as f:
        for line in f:
            if line.startswith("pub const DEFAULT_IO_DEPTH"):
                return int(line.split("=")[1].strip(" ;\n"))
    raise SystemExit("cold_read: DEFAULT_IO_DEPTH not found in config.rs")


def measure(rounds):
    root = cold_root()
    if not os.path.exists(os.path.join(root, ".done")):
        raise SystemExit(f"cold_read: {root} is missing; run benches/make_image_data.py")
    io = default_io_depth()
    try:
        import torchvision  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    runs = [("thresher, workers 8, read-ahead off", 8, 0),
            ("thresher, workers 2, read-ahead off", 2, 0),
            (f"thresher, workers 2, read-ahead on (io_depth {io})", 2, io)]
    rows, methods = [], set()
    t0 = time.time()
    for r in range(rounds):
        for name, w, d in runs:
            methods.add(drop_cache(root))
            res = thresher(root, w, d)
            rows.append(dict(name=name, round=r + 1, load=load(), **res))
            print(f"  cold_read round {r + 1}: {name}: {res['samples_per_s']:,.0f} samples/s "
                  f"(load {load():.2f})", flush=True)
        if have_torch and r == 0:
            methods.add(drop_cache(root))
            res = torch_loader(root)
            rows.append(dict(name="DataLoader + torchvision, num_workers 2", round=1,
                             load=load(), **res))
            print(f"  cold_read: DataLoader: {res['samples_per_s']:,.0f} samples/s", flush=True)
    median = {}
    for row in rows:
        median.setdefault(row["name"], []).append(row["samples_per_s"])
    median = {k: statistics.median(v) for k, v in median.items()}
    ratio = median[runs[2][0]] / median[runs[0][0]]
    return dict(root=os.path.relpath(root, ROOT), files=200_000, samples=SAMPLES, samples_torch=SAMPLES_TORCH,
                batch=BATCH, io_depth=io, method=" and ".join(sorted(methods)), rows=rows,
                median=median, ratio=ratio, seconds=time.time() - t0,
                names=[n for n, _, _ in runs])


def section(data):
    """The page's lines and the Goals row (goal, figure, load, met) for report.py."""
    cold = "page cache dropped (`echo 3 > /proc/sys/vm/drop_caches`)" \
        if data["method"] == "drop_caches" else \
        "**drop_caches was refused**: each file evicted with posix_fadvise(DONTNEED) instead " \
        "(directory entries and inodes stay cached, which flatters every loader)"
    lines = ["## Cold cache: an image folder larger than what is cached\n",
             f"{data['files']:,} Fashion-MNIST PNGs of 28×28 in an image folder, {cold} before "
             f"every run; each run times the first {data['samples']:,} samples of a shuffled "
             f"epoch (DataLoader: {data['samples_torch']:,}), batch {data['batch']}, after the "
             "folder scan (`benches/cold_read.py`, thresher through `examples/cold_read.rs`). "
             "Reads of small cold files wait on the disk, not on the CPU: without read-ahead "
             "the I/O depth is the number of workers; with it (`io_depth`, see the README) "
             "a few I/O threads hint the plan's next files to the kernel ahead of the "
             f"workers. The cold part took {data['seconds']:.0f} s.\n",
             "| loader | round | samples/s | load avg |", "|---|---:|---:|---:|"]
    for r in data["rows"]:
        lines.append(f"| {r['name']} | {r['round']} | {r['samples_per_s']:,.0f} | "
                     f"{r['load']:.2f} |")
    for name, m in data["median"].items():
        lines.append(f"| **{name}, median** | | **{m:,.0f}** | |")
    lines.append("")
    on, off8 = data["names"][2], data["names"][0]
    loads = [r["load"] for r in data["rows"] if r["name"] in (on, off8)]
    goal = ("cold image folder: workers 2 with read-ahead ≥ 2× workers 8 without",
            f"{data['ratio']:.2f}× ({data['median'][on]:,.0f} vs {data['median'][off8]:,.0f} "
            "samples/s, medians)", max(loads), data["ratio"] >= 2)
    return lines, goal


def main():
    argv = sys.argv[1:]
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 3
    data = measure(rounds)
    print(f"cold_read: workers 2 with read-ahead ÷ workers 8 without = {data['ratio']:.2f}×")
    if "--json" in argv:
        with open(argv[argv.index("--json") + 1], "w") as f:
            json.dump(data, f, indent=1)


if __name__ == "__main__":
    main()
