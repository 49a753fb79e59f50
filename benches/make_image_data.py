"""Makes the image benchmark's data, deterministically, under data/ (never committed):

  data/bench-jpeg/<class>/<n>.jpg   5,000 JPEGs of natural photographs at about 500×375,
                                    quality 90 (Pillow's default 4:2:0 subsampling): random crops,
                                    scales and flips of the colour photographs that ship inside
                                    scikit-image's wheel (fetched with `pip download`, unpacked
                                    here; scikit-image itself is not installed), 10 classes.
  data/bench-fmnist-png/<class>/<n>.png
                                    Fashion-MNIST's 60,000 training images as 28×28 grayscale
                                    PNGs (from data/fashion-mnist, which `make setup` fetches).
  data/bench-cold-png/<class>/<n>.png
                                    200,000 28×28 grayscale PNGs for the cold-cache bench
                                    (benches/cold_read.py): Fashion-MNIST's training images
                                    repeated, each repeat shifted by a pixel so no two files are
                                    alike; about 1 GB on disk (4 KiB blocks), written by every
                                    core in parallel. THRESHER_COLD_ROOT moves it elsewhere.

Each part is skipped when its stamp file exists.

    .venv/bin/python benches/make_image_data.py
"""

import glob
import gzip
import io
import os
import subprocess
import sys
import zipfile

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data")
SKIMAGE = "scikit-image==0.26.0"
# The colour photographs among the wheel's sample images (the rest are grayscale, synthetic or
# tiny).
PHOTOS = [
    "astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png",
    "motorcycle_left.png", "motorcycle_right.png", "retina.jpg", "rocket.jpg",
]
N_JPEG = 5000
CLASSES = 10


def photos():
    """The photographs as RGB arrays, from scikit-image's wheel (downloaded once)."""
    cache = os.path.join(DATA, "cache", "skimage")
    os.makedirs(cache, exist_ok=True)
    wheels = glob.glob(os.path.join(cache, "scikit_image-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", SKIMAGE, "-d", cache],
            check=True,
        )
        wheels = glob.glob(os.path.join(cache, "scikit_image-*.whl"))
    out = []
    with zipfile.ZipFile(wheels[0]) as z:
        for name in PHOTOS:
            with z.open(f"skimage/data/{name}") as f:
                out.append(np.asarray(Image.open(io.BytesIO(f.read())).convert("RGB")))
    return out


def make_jpegs():
    root = os.path.join(DATA, "bench-jpeg")
    stamp = os.path.join(root, ".done")
    if os.path.exists(stamp):
        return
    rng = np.random.RandomState(20240917)
    src = photos()
    for c in range(CLASSES):
        os.makedirs(os.path.join(root, f"class{c:02d}"), exist_ok=True)
    for n in range(N_JPEG):
        img = src[rng.randint(len(src))]
        h, w = img.shape[:2]
        # About 500×375: landscape three times in four, and ±8% in each side.
        ow, oh = (500, 375) if rng.rand() < 0.75 else (375, 500)
        ow = int(ow * rng.uniform(0.92, 1.08))
        oh = int(oh * rng.uniform(0.92, 1.08))
        # A crop of the output's aspect ratio covering 35–100% of the largest that fits.
        fit = min(w / ow, h / oh)
        scale = fit * rng.uniform(0.35, 1.0)
        cw, ch = max(8, int(ow * scale)), max(8, int(oh * scale))
        x0, y0 = rng.randint(0, w - cw + 1), rng.randint(0, h - ch + 1)
        crop = Image.fromarray(img[y0 : y0 + ch, x0 : x0 + cw])
        out = crop.resize((ow, oh), Image.Resampling.BICUBIC)
        if rng.rand() < 0.5:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out.save(os.path.join(root, f"class{n % CLASSES:02d}", f"{n:05d}.jpg"), quality=90)
    open(stamp, "w").close()
    print(f"make_image_data: {N_JPEG} JPEGs in {root}")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def make_fmnist_pngs():
    root = os.path.join(DATA, "bench-fmnist-png")
    stamp = os.path.join(root, ".done")
    if os.path.exists(stamp):
        return
    src = os.path.join(DATA, "fashion-mnist")
    images = read_idx(os.path.join(src, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(src, "train-labels-idx1-ubyte.gz"))
    for c in range(10):
        os.makedirs(os.path.join(root, f"class{c}"), exist_ok=True)
    for i, (x, y) in enumerate(zip(images, labels)):
        Image.fromarray(x).save(os.path.join(root, f"class{y}", f"{i:05d}.png"))
    open(stamp, "w").close()
    print(f"make_image_data: {len(labels)} PNGs in {root}")


N_COLD = 200_000


def cold_root():
    return os.environ.get("THRESHER_COLD_ROOT") or os.path.join(DATA, "bench-cold-png")


def _write_cold(args):
    root, start, stop = args
    images = read_idx(os.path.join(DATA, "fashion-mnist", "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA, "fashion-mnist", "train-labels-idx1-ubyte.gz"))
    n = len(labels)
    for i in range(start, stop):
        x = images[i % n]
        shift = i // n
        if shift:
            x = np.roll(x, shift, axis=1)
        Image.fromarray(x).save(os.path.join(root, f"class{labels[i % n]}", f"{i:06d}.png"))


def make_cold_pngs():
    import multiprocessing
    import shutil

    root = cold_root()
    stamp = os.path.join(root, ".done")
    if os.path.exists(stamp):
        return
    os.makedirs(root, exist_ok=True)
    free = shutil.disk_usage(root).free
    if free < 2 << 30:
        sys.exit(f"make_image_data: {root}: {free / 2**30:.1f} GiB free, the cold set needs "
                 "about 1 GiB (and room to spare)")
    for c in range(10):
        os.makedirs(os.path.join(root, f"class{c}"), exist_ok=True)
    cores = os.cpu_count() or 1
    step = -(-N_COLD // (4 * cores))
    parts = [(root, a, min(a + step, N_COLD)) for a in range(0, N_COLD, step)]
    with multiprocessing.Pool(cores) as pool:
        pool.map(_write_cold, parts)
    open(stamp, "w").close()
    print(f"make_image_data: {N_COLD} PNGs in {root}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--cold-only"]:
        make_jpegs()
        make_fmnist_pngs()
    make_cold_pngs()
