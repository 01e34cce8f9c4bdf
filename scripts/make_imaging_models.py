#!/usr/bin/env python3
"""The imaging benchmark networks: torchvision's ResNet-18, ResNet-50,
DenseNet-121 and MobileNetV2 at 3x224x224 with seeded random weights (for
cost: bytes, rounds and time do not depend on the weights), exported by
PyTorch's TorchScript exporter at opset 17 into the git-ignored
`data/models/NAME.onnx`, each with `NAME.json`: PyTorch's outputs on two
seeded inputs, to check the engine's plaintext and secure results against.

The weights are drawn by torchvision's own initialisers under a fixed seed,
and every batch norm gets seeded running statistics and affine parameters, so
that batch norm is not the identity. The exported bytes are deterministic;
`scripts/imaging_models.sha256` records their SHA-256: a run checks the files
against it (and `--record` rewrites it after a deliberate change).

Usage: python3 scripts/make_imaging_models.py [--record] [NAME ...]
Needs python/requirements-imaging.txt and `pip install --no-deps torchvision==0.29.2`.
"""

import hashlib
import json
import os
import sys

import torch
import torchvision

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "data", "models")
MANIFEST = os.path.join(ROOT, "scripts", "imaging_models.sha256")
NAMES = ["resnet18", "resnet50", "densenet121", "mobilenetv2"]


def build(name):
    make = {
        "resnet18": torchvision.models.resnet18,
        "resnet50": torchvision.models.resnet50,
        "densenet121": torchvision.models.densenet121,
        "mobilenetv2": torchvision.models.mobilenet_v2,
    }[name]
    torch.manual_seed(0)
    model = make(weights=None).eval()
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
    return model


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export(name):
    model = build(name)
    path = os.path.join(OUT, f"{name}.onnx")
    g = torch.Generator().manual_seed(2)
    xs = [torch.rand(1, 3, 224, 224, generator=g) for _ in range(2)]
    with torch.no_grad():
        torch.onnx.export(model, (xs[0],), path, dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"])
        outs = [model(x).flatten().tolist() for x in xs]
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump({"input_shape": [3, 224, 224], "inputs": [x.flatten().tolist() for x in xs],
                   "outputs": outs, "exporter": "torchscript", "opset": 17,
                   "torch": torch.__version__, "torchvision": torchvision.__version__}, f)
    return path


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    record = "--record" in sys.argv
    names = args or NAMES
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(2)
    known = {}
    if os.path.exists(MANIFEST):
        for line in open(MANIFEST):
            digest, file = line.split()
            known[file] = digest
    bad = []
    for name in names:
        path = export(name)
        digest, file = sha256(path), os.path.basename(path)
        if record or file not in known:
            known[file] = digest
            print(f"{file}: {digest} (recorded)")
        elif known[file] != digest:
            bad.append(f"{file}: SHA-256 {digest}, expected {known[file]}")
        else:
            print(f"{file}: SHA-256 checked")
    with open(MANIFEST, "w") as f:
        for file in sorted(known):
            f.write(f"{known[file]}  {file}\n")
    if bad:
        sys.exit("mismatch (another torch/torchvision version? see the header):\n  " + "\n  ".join(bad))


if __name__ == "__main__":
    main()
