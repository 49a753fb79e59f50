"""Reference outputs from Pillow for tests/pillow.rs (which runs this script with the venv's
Python): writes test images with Pillow, then what torchvision's PIL pipeline makes of them.

    python tests/pillow_reference.py OUTDIR

OUTDIR/cases.json lists the cases; each names an image file, an operation and a raw reference
(uint8 HWC, or float32 CHW for "normalize") in OUTDIR. Operations:
  decode        Image.open(f).convert(color)                      (torchvision's pil_loader)
  decode_edges  the same for noise JPEGs, compared apart at the last column and row
  resize        .resize((w, h), BILINEAR)                         (Resize([h, w]))
  resize_short  Resize(n): shorter side n, long int(n * long / short)
  resize_center Resize(n) then CenterCrop(crop), zero padding where the crop is larger
  rrc           crop(box).resize((s, s)) for every box position     (RandomResizedCrop)
  normalize     ToTensor + Normalize on the decoded image

    python tests/pillow_reference.py OUTDIR --region REQUESTS.json

writes, for each request (a JPEG in OUTDIR, a crop box in full-size pixels, the output size and
the DCT scale 1/s thresher decoded it at), two uint8 HWC references: what thresher's region
decode computes in Pillow's terms (at s = 1 the full decode + crop + BILINEAR resize; reduced,
`draft` to that scale + BILINEAR `resize` of the box divided by s, as a fractional box), and
the full-size decode + crop + resize (torchvision's RandomResizedCrop).
"""


import json
import os
import sys

import numpy as np
from PIL import Image

OUT = sys.argv[1]
CASES = []


def save_ref(name, array):
    path = os.path.join(OUT, name + ".raw")
    np.ascontiguousarray(array).tofile(path)
    return os.path.basename(path)


def photo(w, h, seed):
    """A smooth random field with detail: sums of random waves plus noise."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        for _ in range(4):
            fx, fy, ph = rng.uniform(0.01, 0.2), rng.uniform(0.01, 0.2), rng.uniform(0, 6)
            img[..., c] += np.sin(x * fx + y * fy + ph) * rng.uniform(20, 50)
    img += 128 + rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def add(name, file, op, ref, **params):
    CASES.append({"name": name, "file": file, "op": op, "ref": ref, **params})


def decode_cases():
    base = photo(157, 113, 1)
    files = {}
    # PNG variants.
    files["rgb.png"] = base
    files["rgba.png"] = Image.merge("RGBA", (*base.split(), base.convert("L")))
    files["gray.png"] = base.convert("L")
    files["la.png"] = Image.merge("LA", (base.convert("L"), base.split()[0]))
    files["palette.png"] = base.quantize(64)
    pal_t = base.quantize(16)
    pal_t.info["transparency"] = 3
    files["palette_trns.png"] = pal_t
    files["bits1.png"] = base.convert("1")
    for name, img in files.items():
        path = os.path.join(OUT, name)
        if name == "palette_trns.png":
            img.save(path, transparency=3, bits=4)  # a 4-bit palette with a tRNS chunk
        else:
            img.save(path)
    # Pillow writes neither 4-bit gray nor 16-bit RGB: those are assembled by hand.
    g = np.asarray(base.convert("L")) >> 4
    packed = [bytes((g[r, 0::2] << 4) | np.pad(g[r, 1::2], (0, g.shape[1] % 2))) for r in range(g.shape[0])]
    write_png(os.path.join(OUT, "gray4.png"), base.size, 4, 0, packed)
    a = np.asarray(base).astype(np.uint16) * 257 + np.arange(base.size[0], dtype=np.uint16)[None, :, None] % 200
    write_png(os.path.join(OUT, "rgb16.png"), base.size, 16, 2, [a[r].astype(">u2").tobytes() for r in range(a.shape[0])])
    for name in list(files) + ["gray4.png", "rgb16.png"]:
        img = Image.open(os.path.join(OUT, name))
        for color in ("RGB", "L"):
            ref = np.asarray(img.convert(color))
            add(f"decode {name} {color}", name, "decode", save_ref(f"{name}.{color}", ref),
                color="rgb" if color == "RGB" else "gray", exact=True, shape=ref.shape)
    # JPEGs: compared within a tolerance (libjpeg-turbo against zune-jpeg).
    jpegs = {
        "q90_420.jpg": dict(quality=90),
        "q95_444.jpg": dict(quality=95, subsampling=0),
        "q75_422.jpg": dict(quality=75, subsampling=1),
        "progressive.jpg": dict(quality=90, progressive=True),
        "restart.jpg": dict(quality=85, restart_marker_blocks=4),
    }
    for name, opts in jpegs.items():
        try:
            base.save(os.path.join(OUT, name), **opts)
        except TypeError:
            opts.pop("restart_marker_blocks", None)
            base.save(os.path.join(OUT, name), **opts)
    base.convert("L").save(os.path.join(OUT, "gray.jpg"), quality=90)
    big = photo(500, 375, 7)
    big.save(os.path.join(OUT, "big_420.jpg"), quality=90)
    # For the region decode's reduced sizes (tests/pillow.rs, region_decode_matches_pillow).
    photo(1000, 750, 8).save(os.path.join(OUT, "large_420.jpg"), quality=90)
    photo(640, 480, 9).save(os.path.join(OUT, "large_444.jpg"), quality=90, subsampling=0)
    photo(320, 1200, 10).save(os.path.join(OUT, "tall_420.jpg"), quality=90)
    for name in list(jpegs) + ["gray.jpg", "big_420.jpg"]:
        img = Image.open(os.path.join(OUT, name))
        for color in ("RGB", "L"):
            ref = np.asarray(img.convert(color))
            add(f"decode {name} {color}", name, "decode", save_ref(f"{name}.{color}", ref),
                color="rgb" if color == "RGB" else "gray", exact=False, shape=ref.shape)


def noise_jpeg_cases():
    """Uniform noise, the worst case for chroma upsampling: 4:2:0, 4:2:2 and 4:4:4 at sides
    that are even but not multiples of 16 (the chroma plane then ends inside a block, and the
    decoders treat the samples past its edge differently), and at multiples of 16 and odd sides
    for contrast. Compared in two parts: the last pixel column and row, and the rest."""
    rng = np.random.RandomState(11)
    sizes = [(24, 24), (40, 40), (56, 24), (72, 40), (100, 75), (136, 120), (8, 8), (42, 26),
             (32, 32), (48, 16), (33, 33), (41, 57)]
    for w, h in sizes:
        for sub, tag in ((2, "420"), (1, "422"), (0, "444")):
            for q in (75, 95):
                img = Image.fromarray(rng.randint(0, 256, (h, w, 3)).astype(np.uint8), "RGB")
                name = f"noise_{w}x{h}_{tag}_q{q}.jpg"
                img.save(os.path.join(OUT, name), quality=q, subsampling=sub)
                ref = np.asarray(Image.open(os.path.join(OUT, name)).convert("RGB"))
                add(f"decode {name} RGB", name, "decode_edges", save_ref(f"{name}.RGB", ref),
                    color="rgb", shape=ref.shape, subsampling=tag)
    # Progressive and with restart markers: the other decoding paths.
    for (w, h), sub, tag, opts in [((40, 24), 2, "420", dict(progressive=True)),
                                   ((56, 40), 1, "422", dict(progressive=True)),
                                   ((72, 56), 2, "420", dict(restart_marker_blocks=2))]:
        img = Image.fromarray(rng.randint(0, 256, (h, w, 3)).astype(np.uint8), "RGB")
        name = f"noise_{w}x{h}_{tag}_{next(iter(opts))}.jpg"
        try:
            img.save(os.path.join(OUT, name), quality=90, subsampling=sub, **opts)
        except TypeError:  # a Pillow without restart_marker_blocks
            continue
        ref = np.asarray(Image.open(os.path.join(OUT, name)).convert("RGB"))
        add(f"decode {name} RGB", name, "decode_edges", save_ref(f"{name}.RGB", ref),
            color="rgb", shape=ref.shape, subsampling=tag)


def write_png(path, size, depth, color_type, rows):
    """A PNG from raw scanlines (filter type 0)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + r for r in rows)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", *size, depth, color_type, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def transform_cases():
    img = Image.open(os.path.join(OUT, "rgb.png")).convert("RGB")  # 157×113
    w, h = img.size
    for (th, tw) in [(50, 64), (211, 300), (37, 200), (113, 157), (1, 1), (113, 40)]:
        ref = np.asarray(img.resize((tw, th), Image.Resampling.BILINEAR))
        add(f"resize {th}x{tw}", "rgb.png", "resize", save_ref(f"resize{th}x{tw}", ref), size=[th, tw])
    gray = Image.open(os.path.join(OUT, "gray.png"))
    ref = np.asarray(gray.resize((45, 70), Image.Resampling.BILINEAR))
    add("resize gray 70x45", "gray.png", "resize", save_ref("resize_gray", ref), size=[70, 45],
        color="gray")

    def resized(n, im=img):
        W, H = im.size
        short, long = (W, H) if W <= H else (H, W)
        new_long = int(n * long / short)
        size = (n, new_long) if W <= H else (new_long, n)  # (w, h)
        return im.resize(size, Image.Resampling.BILINEAR)

    for n in (50, 90, 200):
        ref = np.asarray(resized(n))
        add(f"resize_short {n}", "rgb.png", "resize_short", save_ref(f"short{n}", ref), n=n)
    for n, (ch, cw) in [(60, (48, 48)), (60, (60, 80)), (100, (90, 30)), (40, (64, 50))]:
        r = np.asarray(resized(n))
        H, W = r.shape[:2]
        # torchvision CenterCrop: pad with zeros when the crop is larger, then round().
        pt, pl = max(ch - H, 0) // 2, max(cw - W, 0) // 2
        pb, pr = max(ch - H, 0) - pt, max(cw - W, 0) - pl
        p = np.pad(r, ((pt, pb), (pl, pr), (0, 0)))
        H, W = p.shape[:2]
        top, left = int(round((H - ch) / 2.0)), int(round((W - cw) / 2.0))
        ref = p[top:top + ch, left:left + cw]
        add(f"resize_center {n} {ch}x{cw}", "rgb.png", "resize_center",
            save_ref(f"center{n}_{ch}x{cw}", ref), n=n, crop=[ch, cw])
    # RandomResizedCrop with scale and ratio pinned to one box size; the full height, so only
    # the left edge is random: every position is a candidate.
    for (src, cw, s, pre) in [(img, 120, 64, None), (img, 157, 32, None), (img, 50, 200, None),
                              (resized(80), 70, 24, 80)]:
        W, H = src.size
        cands = [np.asarray(src.crop((j, 0, j + cw, H)).resize((s, s), Image.Resampling.BILINEAR))
                 for j in range(W - cw + 1)]
        tag = f"rrc_{cw}_{s}_{pre}"
        ref = save_ref(tag, np.stack(cands))
        add(f"rrc box {H}x{cw} -> {s}" + (f" after resize {pre}" if pre else ""), "rgb.png", "rrc",
            ref, size=s, box=[H, cw], image=[H, W], candidates=len(cands), resize=pre)
    # ToTensor + Normalize (float32, CHW) of the decoded image, as torchvision computes it.
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    x = np.asarray(img).astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    x = (x - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None, None]
    add("normalize", "rgb.png", "normalize", save_ref("normalize", x.astype(np.float32)),
        mean=mean, std=std)


def region_refs(requests):
    import math
    for i, r in enumerate(json.load(open(requests))):
        path = os.path.join(OUT, r["file"])
        top, left, h, w, out, s = r["top"], r["left"], r["height"], r["width"], r["out"], r["scale"]
        full = Image.open(path).convert("RGB")
        W, H = full.size
        ref_full = full.crop((left, top, left + w, top + h)).resize((out, out), Image.Resampling.BILINEAR)
        im = Image.open(path)
        im.draft("RGB", (W // s, H // s))
        assert im.size == (math.ceil(W / s), math.ceil(H / s)), (im.size, W, H, s)
        im = im.convert("RGB")
        if s == 1:
            ref = im.crop((left, top, left + w, top + h)).resize((out, out), Image.Resampling.BILINEAR)
        else:
            box = (left / s, top / s, (left + w) / s, (top + h) / s)
            ref = im.resize((out, out), Image.Resampling.BILINEAR, box=box)
        save_ref(f"region{i}.draft", np.asarray(ref))
        save_ref(f"region{i}.full", np.asarray(ref_full))
    print(f"pillow_reference: regions (Pillow {Image.__version__})")


if __name__ == "__main__" and "--region" in sys.argv:
    region_refs(sys.argv[sys.argv.index("--region") + 1])
    sys.exit(0)

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    decode_cases()
    noise_jpeg_cases()
    transform_cases()
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(CASES, f, indent=1)
    print(f"pillow_reference: {len(CASES)} cases (Pillow {Image.__version__})")
