#!/usr/bin/env python3
"""Writes the committed image test subsets from the prepared data sets:
testdata/mnist_test_200.csv and testdata/fashion_mnist_test_200.csv, the first
200 test images of each (784 pixels scaled to [0, 1], printed with `%g` to 6
significant digits, then the label), one record per line, no header.

Run after `python3 scripts/prepare_data.py mnist fashion-mnist`.
"""

import gzip
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return shape, data[4 + 4 * dims:]


def find(folder, stem):
    for name in os.listdir(folder):
        if name.startswith(stem):
            return os.path.join(folder, name)
    raise SystemExit(f"no {stem}* in {folder}: run scripts/prepare_data.py first")


def subset(name, out, n=200):
    folder = os.path.join(ROOT, "data", name)
    (count, h, w), pixels = idx(find(folder, "t10k-images"))
    (_,), labels = idx(find(folder, "t10k-labels"))
    size = h * w
    with open(os.path.join(ROOT, "testdata", out), "w") as f:
        for i in range(min(n, count)):
            row = pixels[i * size:(i + 1) * size]
            cells = ["%g" % float("%.6g" % (p / 255.0)) for p in row]
            f.write(",".join(cells + [str(labels[i])]) + "\n")
    print(f"wrote testdata/{out}")


if __name__ == "__main__":
    subset("mnist", "mnist_test_200.csv")
    subset("fashion-mnist", "fashion_mnist_test_200.csv")
