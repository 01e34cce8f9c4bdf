#!/usr/bin/env python3
"""Fixtures of the input pipeline's image readers (crates/input/tests/fixtures):

* synthetic images made here with Pillow (no data, no license question): a
  grey PNG, an RGB PNG and a grey JPEG of odd sizes, and `images.json`
  with Pillow's own results of the preprocessing the Rust readers must
  reproduce (decode, `convert`, `resize` NEAREST and BILINEAR to several
  sizes), so the tests compare byte for byte;
* real DICOM files from Debian's `python3-pydicom` package (Expat licence;
  pydicom's test files, downsized from NEMA's WG04 sample images; see
  fixtures/README.md): a 128x128 CT (rescale slope/intercept, no window)
  and a 64x64 MR (window 600/1600) in explicit little-endian, implicit VR,
  big-endian and RLE transfer syntaxes, and one JPEG-LS file the reader
  must refuse; `dicom.json` holds pydicom's grey levels after the modality
  rescale and the first window (DICOM PS3.3 C.11.2.1.2.1 linear function
  to 0..255), or a min-max normalisation when there is no window;
* NPY files written by numpy's own `np.save` (the reader's tests otherwise
  build their bytes by hand): float64 records of a 30-column model with a
  batch axis, a float32 image-shaped record (1, 28, 28), a single flat
  float32 record, and a Fortran-ordered array the reader must refuse;
  `npy.json` holds their shapes and values (as float64 bytes).

Usage: python3 python/make_input_fixtures.py [npy]  (needs pillow, numpy, pydicom, apt-get;
`npy` makes the NPY files alone)
"""

import glob
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "input", "tests", "fixtures")
DICOM = ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm",
         "MR_small_jpeg_ls_lossless.dcm"]


def synthetic():
    rng = np.random.default_rng(3)
    h, w = 37, 53
    yy, xx = np.mgrid[0:h, 0:w]
    gray = ((xx * 4 + yy * 3) % 256 ^ rng.integers(0, 40, (h, w))).astype(np.uint8)
    rgb = np.stack([gray, (255 - gray), ((xx * 7) % 256).astype(np.uint8)], axis=-1).astype(np.uint8)
    Image.fromarray(gray, "L").save(os.path.join(OUT, "gray_53x37.png"))
    Image.fromarray(rgb, "RGB").save(os.path.join(OUT, "rgb_53x37.png"))
    Image.fromarray(gray, "L").save(os.path.join(OUT, "gray_53x37.jpg"), quality=90)
    cases = []
    for name, mode in [("gray_53x37.png", "L"), ("rgb_53x37.png", "RGB"), ("gray_53x37.jpg", "L")]:
        img = Image.open(os.path.join(OUT, name))
        for color in ["gray", "rgb"]:
            conv = img.convert("L" if color == "gray" else "RGB")
            for (ow, oh) in [(20, 15), (80, 61)]:
                for method, flag in [("nearest", Image.NEAREST), ("bilinear", Image.BILINEAR)]:
                    out = np.asarray(conv.resize((ow, oh), flag)).astype(np.uint8)
                    cases.append({"file": name, "color": color, "width": ow, "height": oh, "resize": method,
                                  "pixels": out.ravel().tobytes().hex()})
    with open(os.path.join(OUT, "images.json"), "w") as f:
        json.dump(cases, f)


def voi(arr, center, width):
    c, w = float(center), float(width)
    y = ((arr - (c - 0.5)) / (w - 1) + 0.5) * 255.0
    y[arr <= c - 0.5 - (w - 1) / 2] = 0
    y[arr > c - 0.5 + (w - 1) / 2] = 255
    return np.clip(y, 0, 255)


def dicom():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "python3-pydicom"], cwd=tmp, check=True, capture_output=True)
        deb = glob.glob(os.path.join(tmp, "python3-pydicom_*.deb"))[0]
        subprocess.run(["dpkg", "-x", deb, os.path.join(tmp, "x")], check=True)
        src = glob.glob(os.path.join(tmp, "x", "usr", "lib", "python3", "dist-packages", "pydicom", "data", "test_files"))[0]
        for name in DICOM:
            shutil.copy(os.path.join(src, name), os.path.join(OUT, name))
    expected = {}
    for name in DICOM[:5]:
        ds = pydicom.dcmread(os.path.join(OUT, name))
        arr = ds.pixel_array.astype(np.float64) * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))
        if "WindowCenter" in ds:
            c, w = ds.WindowCenter, ds.WindowWidth
            c = c[0] if isinstance(c, pydicom.multival.MultiValue) else c
            w = w[0] if isinstance(w, pydicom.multival.MultiValue) else w
            grey = voi(arr, c, w)
        else:
            grey = (arr - arr.min()) / (arr.max() - arr.min()) * 255.0
        expected[name] = {"width": int(ds.Columns), "height": int(ds.Rows),
                          "grey": np.round(grey).astype(np.uint8).ravel().tobytes().hex()}
    with open(os.path.join(OUT, "dicom.json"), "w") as f:
        json.dump(expected, f)


def npy():
    rng = np.random.default_rng(5)
    d = os.path.join(OUT, "npy")
    os.makedirs(d, exist_ok=True)
    # Extremes a reader must carry exactly: zero, negatives, tiny and large magnitudes.
    batch = rng.normal(0, 3, (3, 30))
    batch[0, :4] = [0.0, -0.0, 1e-300, -1.5e300]
    image = (rng.integers(0, 256, (1, 28, 28)) / 255).astype(np.float32)
    flat = np.linspace(-1, 1, 30, dtype=np.float32)
    arrays = {"batch_f8_3x30.npy": batch, "image_f4_1x28x28.npy": image, "flat_f4_30.npy": flat}
    expected = {}
    for name, a in arrays.items():
        np.save(os.path.join(d, name), a)
        # The values as float64, little-endian bytes in hex (exact, unlike decimal text).
        expected[name] = {"shape": list(a.shape), "f64_le_hex": a.astype("<f8").ravel().tobytes().hex()}
    np.save(os.path.join(d, "fortran_f8_30x2.npy"), np.asfortranarray(rng.normal(0, 1, (30, 2))))
    with open(os.path.join(d, "npy.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    if sys.argv[1:] != ["npy"]:
        synthetic()
        dicom()
    npy()
