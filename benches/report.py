"""Runs every side-by-side comparison and writes docs/performance.md with its plots (PNG) beside it.

    .venv/bin/python benches/report.py [--quick] [--from-json] [--docs DIR]

Steps (each writes its raw figures as JSON under DIR/bench/, so the page can be redrawn from them
with --from-json without rerunning anything):
  1. the Rust micro bench (benches/micro/): plan time per policy and N, feedback ingest,
     ScoreBook bytes per sample, next+release overhead, the epoch-boundary wait;
  2. benches/compare_dataloader.py: pre-decoded IDX against PyTorch's DataLoader;
  3. benches/compare_images.py: PNG folder and JPEG pipeline against DataLoader + torchvision
     (skipped, and said so on the page, when torchvision or the image data is missing; `make
     bench` installs and makes both); benches/cold_read.py: the same kind of folder, 200,000
     PNGs read with the page cache dropped, read-ahead on and off;
  4. the page and its plots. The reference trainer's accuracy-against-time comparison is not
     rerun (it takes hours): the page links results/long/compare.md and embeds its plot.

This file runs the steps; the page is drawn by the modules beside it: report_page.py (the page's
sections), report_plots.py (its plots) and report_common.py (what they share).

Plots are drawn with matplotlib (installed into .venv by `make bench`, like torchvision for
`make bench-images`): the report is Python already, the figures come from JSON, and a log-log
plot with fitted lines and a legend is a few lines there; the Rust alternative (plotters) sits
behind the `trainer` feature, which builds libtorch bindings.
"""

import os
import subprocess
import sys
import time

import cold_read  # benches/cold_read.py: the cold-cache comparison and its section
from report_common import ROOT
from report_page import write_page

PY = sys.executable


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run(cmd, **kw):
    print("+ " + " ".join(cmd), flush=True)
    t = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True, **kw)
    print(f"  ({time.time() - t:.0f} s, load average {load():.2f})", flush=True)


def measure(raw, quick):
    os.makedirs(raw, exist_ok=True)
    micro = ["cargo", "bench", "--bench", "micro", "--", "--out", os.path.join(raw, "micro.json")]
    run(micro + (["--quick"] if quick else []))
    run([PY, "benches/compare_dataloader.py", "2" if quick else "3",
         "--json", os.path.join(raw, "dataloader.json")])
    run([PY, "benches/compare_sampler.py", "--json", os.path.join(raw, "sampler.json")]
        + (["--quick"] if quick else []))
    images = os.path.join(raw, "images.json")
    try:
        import torchvision  # noqa: F401
        have_tv = True
    except ImportError:
        have_tv = False
    have_data = all(os.path.isdir(os.path.join(ROOT, "data", d))
                    for d in ("bench-jpeg", "bench-fmnist-png"))
    if have_tv and have_data:
        run([PY, "benches/compare_images.py", "1" if quick else "2", "--json", images])
    else:
        print("image comparison skipped: torchvision or data/bench-* missing "
              "(make bench installs and makes them)")
        if os.path.exists(images):
            os.remove(images)
    # Cold cache (benches/cold_read.py): its data set is made by make_image_data.py.
    cold = os.path.join(raw, "cold.json")
    if os.path.exists(os.path.join(cold_read.cold_root(), ".done")):
        run([PY, "benches/cold_read.py", "--rounds", "1" if quick else "3", "--json", cold])
    else:
        print("cold-cache comparison skipped: data/bench-cold-png missing (make bench makes it)")
        if os.path.exists(cold):
            os.remove(cold)


def main():
    argv = sys.argv[1:]
    quick = "--quick" in argv
    docs = os.path.join(ROOT, "docs")
    if "--docs" in argv:
        docs = os.path.abspath(argv[argv.index("--docs") + 1])
    raw = os.path.join(docs, "bench")
    os.makedirs(raw, exist_ok=True)
    if "--from-json" not in argv:
        measure(raw, quick)
    write_page(docs, raw, quick)


if __name__ == "__main__":
    main()
