#!/usr/bin/env python3
"""ONNX import fixtures: small random-weight models exported by PyTorch's
TorchScript exporter (opsets 13 and 17) and, where it works here, its dynamo
exporter (opset 18), each with PyTorch's own output on two inputs.

Writes crates/model/tests/fixtures/NAME.onnx and NAME.json:
{"input_shape": [...], "inputs": [[...], [...]], "outputs": [[...], [...]],
 "exporter": "torchscript"|"dynamo", "opset": N, "notes": "..."}
and refusal fixtures (unsupported operators, a truncated file, random bytes).
"""

import json
import os
import sys

import torch
from torch import nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "model", "tests", "fixtures")
torch.manual_seed(0)
torch.set_num_threads(2)


class Standardise(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.register_buffer("mean", torch.randn(n))
        self.register_buffer("std", torch.rand(n) + 0.5)

    def forward(self, x):
        return (x - self.mean) / self.std


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        y = torch.relu(self.c1(x))
        y = torch.relu(self.c2(y) + y)
        y = nn.functional.adaptive_avg_pool2d(y, 1)
        return self.head(torch.flatten(y, 1))


def mlp(act, d=6):
    return nn.Sequential(Standardise(d), nn.Linear(d, 8), act, nn.Dropout(0.3), nn.Linear(8, 8), nn.BatchNorm1d(8), act, nn.Linear(8, 3))


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4 * 2 * 2, 5), nn.Softmax(dim=-1),
    )


MODELS = {
    "mlp_relu": (lambda: mlp(nn.ReLU()), [6]),
    "mlp_sigmoid": (lambda: mlp(nn.Sigmoid()), [6]),
    "mlp_tanh": (lambda: mlp(nn.Tanh()), [6]),
    "mlp_softplus": (lambda: mlp(nn.Softplus()), [6]),
    "mlp_elu": (lambda: mlp(nn.ELU(alpha=0.7)), [6]),
    "mlp_selu": (lambda: mlp(nn.SELU()), [6]),
    "mlp_leakyrelu": (lambda: mlp(nn.LeakyReLU(0.1)), [6]),
    "mlp_silu": (lambda: mlp(nn.SiLU()), [6]),
    "mlp_gelu": (lambda: mlp(nn.GELU()), [6]),
    "mlp_gelu_tanh": (lambda: mlp(nn.GELU(approximate="tanh")), [6]),
    "cnn_bn_pool_softmax": (cnn, [1, 14, 14]),
    "residual": (Residual, [3, 8, 8]),
}


def export(name, make, shape, exporter, opset):
    torch.manual_seed(1)
    model = make()
    # non-trivial batch-norm statistics
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    xs = [torch.randn(1, *shape) for _ in range(2)]
    tag = f"{name}_{exporter}{opset}"
    path = os.path.join(OUT, f"{tag}.onnx")
    try:
        torch.onnx.export(model, (xs[0],), path, dynamo=(exporter == "dynamo"), opset_version=opset, input_names=["input"], output_names=["output"])
    except Exception as e:  # record, do not hide
        print(f"{tag}: export failed: {type(e).__name__}: {str(e)[:200]}")
        return False
    with torch.no_grad():
        outs = [model(x).flatten().tolist() for x in xs]
    with open(os.path.join(OUT, f"{tag}.json"), "w") as f:
        json.dump({"input_shape": shape, "inputs": [x.flatten().tolist() for x in xs], "outputs": outs, "exporter": exporter, "opset": opset,
                   "notes": f"torch {torch.__version__}, random weights (seed 1)"}, f)
    print(f"{tag}: ok")
    return True


def refusals():
    class Unsupported(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return torch.sin(self.lin(x)) + torch.cos(x)

    m = Unsupported().eval()
    torch.onnx.export(m, (torch.randn(1, 4),), os.path.join(OUT, "refuse_sin_cos.onnx"), dynamo=False, opset_version=17)
    good = open(os.path.join(OUT, "mlp_relu_torchscript17.onnx"), "rb").read()
    open(os.path.join(OUT, "refuse_truncated.onnx"), "wb").write(good[: len(good) // 2])
    open(os.path.join(OUT, "refuse_random.onnx"), "wb").write(bytes((i * 73 + 41) % 256 for i in range(500)))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, (make, shape) in MODELS.items():
        export(name, make, shape, "torchscript", 17)
    for name in ["mlp_relu", "mlp_gelu", "cnn_bn_pool_softmax", "residual"]:
        export(name, MODELS[name][0], MODELS[name][1], "torchscript", 13)
    for name, (make, shape) in MODELS.items():
        export(name, make, shape, "dynamo", 18)
    refusals()
