#!/usr/bin/env python3
"""Byte-level token corpus for `make demo-text` from the fortune files of Debian's `fortunes`
and `fortunes-min` packages (English text, ~2.6 MB).

    prepare_text.py SRC_DIR OUT_DIR

Every fortune file in SRC_DIR (the `.dat` indexes and `.u8` links are skipped) is split into its
fortunes at the `%` lines. Within each file, in file order, the last tenth of the fortunes goes to
validation and the rest to training, so both sets draw on every topic and no fortune is cut in
two. A fortune's bytes are written followed by the separator line "%\\n", as in the files, so the
model learns where one ends. Tokens are the bytes (vocabulary 256) stored as u16 in native byte
order: OUT_DIR/train.bin and OUT_DIR/val.bin, the layout nanoGPT-style loaders and thresher's
`tokens` source read. Standard library only, so it runs before any venv exists.
"""

import array
import os
import sys


def fortunes(path):
    """The fortunes of one file, each as bytes ending in a newline."""
    with open(path, "rb") as f:
        text = f.read()
    out, cur = [], []
    for line in text.splitlines(keepends=True):
        if line.rstrip(b"\r\n") == b"%":
            if cur:
                out.append(b"".join(cur))
            cur = []
        else:
            cur.append(line)
    if cur and b"".join(cur).strip():
        out.append(b"".join(cur))
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    names = sorted(
        n
        for n in os.listdir(src)
        if not n.endswith((".dat", ".u8")) and os.path.isfile(os.path.join(src, n))
    )
    if not names:
        sys.exit(f"prepare_text: no fortune files in {src}")
    train, val = bytearray(), bytearray()
    counts = [0, 0]
    for name in names:
        fs = fortunes(os.path.join(src, name))
        n_val = len(fs) // 10
        for i, fortune in enumerate(fs):
            dest = val if i >= len(fs) - n_val else train
            dest += fortune + b"%\n"
            counts[dest is val] += 1
    os.makedirs(dst, exist_ok=True)
    for name, data in (("train.bin", train), ("val.bin", val)):
        tmp = os.path.join(dst, name + ".tmp")
        with open(tmp, "wb") as f:
            array.array("H", list(data)).tofile(f)
        os.replace(tmp, os.path.join(dst, name))
    print(
        f"prepare_text: {len(names)} files, {counts[0]} + {counts[1]} fortunes, "
        f"{len(train)} training and {len(val)} validation tokens in {dst}"
    )


if __name__ == "__main__":
    main()
