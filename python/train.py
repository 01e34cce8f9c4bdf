#!/usr/bin/env python3
"""Train the benchmark and medical models on the real data sets and export
them to ONNX the way PyTorch exports them (TorchScript exporter, opset 17).

Data comes from scripts/prepare_data.py (data/, git-ignored); models go to
models/ with a NAME.json card beside each. Standardisation is the first
operation inside each medical graph, so raw CSV records can be fed; MNIST
models take pixels in [0, 1]. Seeds are fixed; runs are deterministic on
one machine (threads: 2).

  python3 python/train.py medical [--secure-approx approx.json]
  python3 python/train.py mnist [--only secureml-mlp ...] [--acts sigmoid ...] [--epochs 3]
  python3 python/train.py mnist --only --acts sigmoid tanh --secure-approx approx.json
  python3 python/train.py fashion-mnist [--epochs 5]

--secure-approx trains the smooth-activation models with the secure
engine's exact approximations (python/cryptmed_approx.py) and writes
models/<name>-approx.onnx; the exported graph still holds the standard
operator, which the engine evaluates with that same approximation. For
mnist it applies to the --acts variants of secureml-mlp (`--only` with no
names skips the ReLU networks). `approx.json` comes from
`cryptmed approx --export approx.json`.

--threads sets torch's intra-op threads (default 2, as the committed models
were trained; results can differ in the last bits with another count).
"""

import argparse
import csv
import json
import os
import struct
import sys

import numpy as np
import onnx
import torch
from torch import nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "data")
MODELS = os.path.join(ROOT, "models")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

torch.set_num_threads(2)

ACTS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
}
MEDICAL = ["breast-cancer", "diabetes", "heart-disease", "kidney"]


def secure_act(name, tables):
    import cryptmed_approx as ca

    return {
        "sigmoid": lambda: ca.SecureSigmoid(tables),
        "tanh": lambda: ca.SecureTanh(tables),
        "softplus": lambda: ca.SecureSoftplus(tables),
        "elu": lambda: ca.SecureELU(tables),
        "silu": lambda: ca.SecureSiLU(tables),
        "gelu": lambda: ca.SecureGELU(tables),
    }[name]


def load_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    x = np.array([[float(v) for v in r[:-1]] for r in rows[1:]], dtype=np.float32)
    y = np.array([int(float(r[-1])) for r in rows[1:]], dtype=np.int64)
    return rows[0][:-1], x, y


class Standardise(nn.Module):
    """(x - mean) / std as constants: exported as Sub and Div in the graph."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, x):
        return (x - self.mean) / self.std


def fit(model, x, y, epochs, lr, batch, seed):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    n = len(x)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    model.eval()


def accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def export(model, example, name, card, class_names):
    path = os.path.join(MODELS, f"{name}.onnx")
    model.eval()
    torch.onnx.export(model, (example,), path, dynamo=False, opset_version=17, input_names=["input"], output_names=["logits"])
    m = onnx.load(path)
    if class_names:
        p = m.metadata_props.add()
        p.key, p.value = "class_names", ",".join(class_names)
    onnx.save(m, path)
    card.update({"file": f"models/{name}.onnx", "exporter": "torchscript", "opset": 17})
    with open(os.path.join(MODELS, f"{name}.json"), "w") as f:
        json.dump(card, f, indent=2)
    print(f"{name}: test accuracy {card['test_accuracy']:.4f}")


def medical(args):
    tables = None
    if args.secure_approx:
        import cryptmed_approx as ca

        tables, _ = ca.load(args.secure_approx)
    for ds in args.only or MEDICAL:
        feats, xtr, ytr = load_csv(os.path.join(DATA, ds, "train.csv"))
        _, xte, yte = load_csv(os.path.join(DATA, ds, "test.csv"))
        meta = json.load(open(os.path.join(DATA, ds, "meta.json")))
        mean, std = xtr.mean(0), xtr.std(0) + 1e-6
        k = int(max(ytr.max(), yte.max()) + 1)
        for act in args.acts or list(ACTS):
            variants = [(act, ACTS[act])]
            if tables is not None and act != "relu":
                variants = [(f"{act}-approx", secure_act(act, tables))]
            for tag, mk in variants:
                torch.manual_seed(0)
                model = nn.Sequential(Standardise(mean, std), nn.Linear(xtr.shape[1], 64), mk(), nn.Linear(64, 32), mk(), nn.Linear(32, k))
                xt, yt = torch.tensor(xtr), torch.tensor(ytr)
                fit(model, xt, yt, epochs=args.epochs or 150, lr=3e-3, batch=32, seed=0)
                acc = accuracy(model, torch.tensor(xte), torch.tensor(yte))
                card = {"dataset": ds, "architecture": f"medical-mlp {xtr.shape[1]}-64-32-{k}", "activation": tag, "test_accuracy": acc,
                        "test_records": len(yte), "input_shape": [xtr.shape[1]], "classes": meta["classes"]}
                if tables is not None and act != "relu":
                    import cryptmed_approx as ca

                    with ca.standard_export(model):
                        export(model, torch.tensor(xte[:1]), f"{ds}-{tag}", card, meta["classes"])
                else:
                    export(model, torch.tensor(xte[:1]), f"{ds}-{tag}", card, meta["classes"])


def mnist_nets(A):
    """The benchmark networks with activation constructor `A`."""
    return {
        "secureml-mlp": lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 128), A(), nn.Linear(128, 128), A(), nn.Linear(128, 10)),
        "chameleon-cnn": lambda: nn.Sequential(nn.Conv2d(1, 5, 5, stride=2, padding=2), A(), nn.Flatten(), nn.Linear(980, 100), A(), nn.Linear(100, 10)),
        "minionn-mnist": lambda: nn.Sequential(nn.Conv2d(1, 16, 5), A(), nn.MaxPool2d(2), nn.Conv2d(16, 16, 5), A(), nn.MaxPool2d(2), nn.Flatten(),
                                               nn.Linear(256, 100), A(), nn.Linear(100, 10)),
        "securenn-lenet": lambda: nn.Sequential(nn.Conv2d(1, 20, 5), A(), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), A(), nn.MaxPool2d(2), nn.Flatten(),
                                                nn.Linear(800, 500), A(), nn.Linear(500, 10)),
    }


def idx_pair(d, images, labels):
    """Pixels in [0, 1] (N x 1 x 28 x 28) and labels from IDX files (gzipped or not)."""
    import gzip

    def read(name):
        raw = open(os.path.join(d, name), "rb").read()
        return gzip.decompress(raw) if name.endswith(".gz") else raw

    def idx(raw):
        rank = raw[3]
        dims = struct.unpack(">" + "I" * rank, raw[4 : 4 + 4 * rank])
        return np.frombuffer(raw[4 + 4 * rank :], dtype=np.uint8).reshape(dims)

    x = torch.tensor(idx(read(images)), dtype=torch.float32).unsqueeze(1) / 255.0
    y = torch.tensor(idx(read(labels)), dtype=torch.int64)
    return x, y


def mnist(args):
    d = os.path.join(DATA, "mnist")
    xtr, ytr = idx_pair(d, "train-images.idx3-ubyte", "train-labels.idx1-ubyte")
    xte, yte = idx_pair(d, "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte")
    tables = None
    if args.secure_approx:
        import cryptmed_approx as ca

        tables, _ = ca.load(args.secure_approx)
    nets = ["secureml-mlp", "chameleon-cnn", "minionn-mnist", "securenn-lenet"] if args.only is None else args.only
    jobs = [(n, "relu") for n in nets]
    jobs += [("secureml-mlp", a) for a in (args.acts or []) if a != "relu"]
    for net, act in jobs:
        approx = tables is not None and act != "relu"
        torch.manual_seed(0)
        model = mnist_nets(secure_act(act, tables) if approx else ACTS[act])[net]()
        fit(model, xtr, ytr, epochs=args.epochs or 3, lr=1e-3, batch=128, seed=0)
        acc = accuracy(model, xte, yte)
        tag = f"{act}-approx" if approx else act
        name = net if act == "relu" else f"{net}-{tag}"
        card = {"dataset": "mnist", "architecture": net, "activation": tag, "test_accuracy": acc, "test_records": len(yte),
                "input_shape": [1, 28, 28], "classes": [str(i) for i in range(10)]}
        if approx:
            import cryptmed_approx as ca

            card["trained_with"] = "the secure engine's approximation (python/cryptmed_approx.py); exported with the standard operator"
            with ca.standard_export(model):
                export(model, xte[:1], name, card, [str(i) for i in range(10)])
        else:
            export(model, xte[:1], name, card, [str(i) for i in range(10)])


FASHION_CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]


def fashion_mnist(args):
    """secureml-mlp (784-128-128-10, ReLU) on Fashion-MNIST, the standard 60k/10k split."""
    d = os.path.join(DATA, "fashion-mnist")
    xtr, ytr = idx_pair(d, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    xte, yte = idx_pair(d, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    torch.manual_seed(0)
    model = mnist_nets(nn.ReLU)["secureml-mlp"]()
    fit(model, xtr, ytr, epochs=args.epochs or 5, lr=1e-3, batch=128, seed=0)
    card = {"dataset": "fashion-mnist", "architecture": "secureml-mlp", "activation": "relu", "test_accuracy": accuracy(model, xte, yte),
            "test_records": len(yte), "input_shape": [1, 28, 28], "classes": FASHION_CLASSES}
    # commas would split the class_names metadata: the slash form is used as is
    export(model, xte[:1], "fashion-secureml-mlp", card, FASHION_CLASSES)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["medical", "mnist", "fashion-mnist"])
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--acts", nargs="*")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--secure-approx")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(MODELS, exist_ok=True)
    {"medical": medical, "mnist": mnist, "fashion-mnist": fashion_mnist}[a.what](a)
