#!/usr/bin/env python3
"""ONNX import fixtures: small random-weight models exported by PyTorch's
TorchScript exporter (opsets 13 to 17) and its dynamo exporter (opsets 18 to
23), each with PyTorch's own output on two inputs.

Writes crates/model/tests/fixtures/NAME.onnx and NAME.json:
{"input_shape": [...], "inputs": [[...], [...]], "outputs": [[...], [...]],
 "exporter": "torchscript"|"dynamo", "opset": N, "notes": "..."}
and refusal fixtures (unsupported operators, a truncated file, random bytes,
a dynamic spatial shape, weights beyond the fixed-point range, dropout in
training mode).

No exporter of torch 2.15 keeps an inference-mode nn.Dropout or an
nn.Identity (both are stripped, whatever `training=` or
`do_constant_folding=` say), so: `F.dropout(x, 0.0, training=True)` gives a
real exported Dropout (ratio 0, an identity); the dynamo exporter with
`optimize=False` keeps `.clone()` as a real Identity; and
`dropout_inserted_torchscript17` is the real mlp_relu export with an
inference Dropout (ratio 0.3, training_mode false) and an Identity inserted
with the onnx API (its outputs are PyTorch's, since both are identities).

Usage: python3 python/make_fixtures.py [NAME_PREFIX ...]  (default: all)
"""

import json
import os
import sys

import torch
import torch.nn.functional as F
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


class MatMulAdd(nn.Module):
    """`x @ W + b` with parameters: MatMul then Add (not Gemm)."""

    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(6, 8) * 0.5)
        self.b1 = nn.Parameter(torch.randn(8) * 0.1)
        self.w2 = nn.Parameter(torch.randn(8, 3) * 0.5)
        self.b2 = nn.Parameter(torch.randn(3) * 0.1)

    def forward(self, x):
        return torch.relu(x @ self.w1 + self.b1) @ self.w2 + self.b2


class ConstArith(nn.Module):
    """Standalone Sub/Mul/Add/Div by constants: standardisation written out, a
    reflection (constant minus the record), scalings between and after layers."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.randn(6))
        self.register_buffer("inv_std", torch.rand(6) + 0.5)
        self.l1 = nn.Linear(6, 8)
        self.l2 = nn.Linear(8, 3)

    def forward(self, x):
        x = (x - self.mean) * self.inv_std + 0.25
        x = 1.5 - x
        h = torch.relu(self.l1(x)) / 2.0
        h = h * 3.0 - 1.0
        return self.l2(h) / 0.7 + 0.1


class SoftplusLess(nn.Module):
    """Softplus's threshold written with Less: where(h < 20, softplus(h), h)."""

    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(6, 8)
        self.l2 = nn.Linear(8, 3)

    def forward(self, x):
        h = self.l1(x) * 8.0  # some pre-activations beyond the threshold
        return self.l2(torch.where(h < 20.0, F.softplus(h), h))


class DropoutP0(nn.Module):
    """`F.dropout(.., 0.0, training=True)`: the TorchScript exporter keeps a real Dropout (ratio 0)."""

    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(6, 8)
        self.l2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.l2(F.dropout(torch.relu(self.l1(x)), 0.0, training=True))


class CloneMLP(nn.Module):
    """`.clone()`: the dynamo exporter with optimize=False keeps it as Identity."""

    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(6, 8)
        self.l2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.l2(torch.relu(self.l1(x)).clone())


def bn_input_mlp():
    """Batch norm that no linear layer can absorb backwards: on the record, and after a ReLU."""
    return nn.Sequential(nn.BatchNorm1d(6), nn.Linear(6, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 3))


def bn_pool_cnn():
    """Batch norm after max pooling, before a padded strided convolution (folding it
    forward would shift the zero padding); overlapping max pools (3/2 and 3/1, padded)."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2), nn.BatchNorm2d(4),
        nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=1, padding=1),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 3),
    )


class GroupedDepthwise(nn.Module):
    """Grouped (groups 2) and depthwise (groups = channels, MobileNet/Xception) convolutions,
    a 1x1 pointwise one after the depthwise (a separable convolution), ReLU6 between."""

    def __init__(self):
        super().__init__()
        self.grouped = nn.Conv2d(4, 6, 3, padding=1, groups=2)
        self.depthwise = nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.pointwise = nn.Conv2d(6, 4, 1)
        self.head = nn.Linear(4 * 3 * 3, 3)

    def forward(self, x):
        y = torch.relu(self.grouped(x))
        y = F.relu6(self.bn(self.depthwise(y)))
        y = self.pointwise(y)
        return self.head(torch.flatten(y, 1))


class DenseConcat(nn.Module):
    """DenseNet's pattern: every layer reads the channel concatenation of all earlier ones
    (BN, ReLU, conv), three inputs in the last concatenation."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 3, padding=1))
        self.c2 = nn.Sequential(nn.BatchNorm2d(5), nn.ReLU(), nn.Conv2d(5, 2, 3, padding=1))
        self.head = nn.Linear(7, 3)

    def forward(self, x):
        a = torch.cat([x, self.c1(x)], 1)
        b = torch.cat([x, self.c1(x), self.c2(a)], 1)
        return self.head(F.adaptive_avg_pool2d(b, 1).flatten(1))


class ClipVariants(nn.Module):
    """Clip with both bounds (hardtanh), a lower bound only (clamp(min=)), an upper bound only."""

    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(6, 8)
        self.l2 = nn.Linear(8, 8)
        self.l3 = nn.Linear(8, 8)
        self.l4 = nn.Linear(8, 3)

    def forward(self, x):
        y = F.hardtanh(self.l1(x), -0.5, 1.25)
        y = torch.clamp(self.l2(y), min=-0.25)
        y = torch.clamp(self.l3(y), max=0.75)
        return self.l4(y)


class SamePadPools(nn.Module):
    """Keras `same` padding written in PyTorch: asymmetric F.pad (bottom/right) before a
    strided max pool (-inf) and a strided convolution (zeros); a zero F.pad before a max
    pool of a ReLU's output (zeros never win there); padded average pooling, counting and
    not counting the padding, and after an asymmetric zero F.pad (counted); a 7x7 global
    average (49, not a power of two)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, stride=2)
        self.avg_in = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=True)
        self.avg_ex = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        y = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 3, stride=2)
        y = torch.relu(self.conv(F.pad(y, (0, 1, 0, 1))))
        y = F.max_pool2d(F.pad(y, (1, 1, 1, 1)), 3, stride=1)
        y = self.avg_in(y) + self.avg_ex(y) + F.avg_pool2d(F.pad(y, (0, 2, 0, 2)), 3, stride=1)
        return self.head(F.adaptive_avg_pool2d(y, 1).flatten(1))


def sigmoid_head():
    """A binary classifier with one sigmoid output (the label is p >= 0.5)."""
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())


def logit_head():
    """A binary classifier with one raw logit (the label is logit >= 0)."""
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1))


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

# Operators and patterns the models above do not reach.
EXTRA = {
    "matmul_add": (MatMulAdd, [6]),
    "const_arith": (ConstArith, [6]),
    "softplus_less": (SoftplusLess, [6]),
    "bn_input_mlp": (bn_input_mlp, [6]),
    "bn_pool_cnn": (bn_pool_cnn, [1, 15, 15]),
    "dropout_p0": (DropoutP0, [6]),
    "clone_identity": (CloneMLP, [6]),
}

# The imaging operators (issue 11): each from both exporters.
IMAGING = {
    "grouped_depthwise": (GroupedDepthwise, [4, 6, 6]),
    "dense_concat": (DenseConcat, [3, 5, 5]),
    "clip_variants": (ClipVariants, [6]),
    "same_pad_pools": (SamePadPools, [2, 29, 29]),
    "sigmoid_head": (sigmoid_head, [6]),
    "logit_head": (logit_head, [6]),
}


def export(name, make, shape, exporter, opset, optimize=True):
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
    tag = f"{name}_{exporter}{opset}" + ("" if optimize else "noopt")
    path = os.path.join(OUT, f"{tag}.onnx")
    kw = {} if exporter != "dynamo" or optimize else {"optimize": False}
    try:
        torch.onnx.export(model, (xs[0],), path, dynamo=(exporter == "dynamo"), opset_version=opset, input_names=["input"], output_names=["output"], **kw)
    except Exception as e:  # record, do not hide
        print(f"{tag}: export failed: {type(e).__name__}: {str(e)[:200]}")
        return False
    with torch.no_grad():
        outs = [model(x).flatten().tolist() for x in xs]
    notes = f"torch {torch.__version__}, random weights (seed 1)" + ("" if optimize else ", dynamo optimize=False")
    with open(os.path.join(OUT, f"{tag}.json"), "w") as f:
        json.dump({"input_shape": shape, "inputs": [x.flatten().tolist() for x in xs], "outputs": outs, "exporter": exporter, "opset": opset,
                   "notes": notes}, f)
    print(f"{tag}: ok")
    return True


def dropout_inserted():
    """The real mlp_relu TorchScript export with an inference-mode Dropout (ratio 0.3,
    training_mode false, as ONNX defines it) and an Identity inserted after the first
    Relu with the onnx API; PyTorch's outputs stay right, as both are identities."""
    import onnx
    from onnx import helper, TensorProto

    src = os.path.join(OUT, "mlp_relu_torchscript17")
    m = onnx.load(src + ".onnx")
    g = m.graph
    at = next(i for i, n in enumerate(g.node) if n.op_type == "Relu")
    relu_out = g.node[at].output[0]
    new = [
        helper.make_node("Constant", [], ["inserted_ratio"], name="inserted_ratio", value=helper.make_tensor("r", TensorProto.FLOAT, [], [0.3])),
        helper.make_node("Constant", [], ["inserted_mode"], name="inserted_mode", value=helper.make_tensor("t", TensorProto.BOOL, [], [False])),
        helper.make_node("Dropout", [relu_out, "inserted_ratio", "inserted_mode"], ["inserted_dropout_out", "inserted_dropout_mask"], name="inserted_dropout"),
        helper.make_node("Identity", ["inserted_dropout_out"], ["inserted_identity_out"], name="inserted_identity"),
    ]
    for n in g.node[at + 1 :]:
        for k, v in enumerate(n.input):
            if v == relu_out:
                n.input[k] = "inserted_identity_out"
    for k, n in enumerate(new):
        g.node.insert(at + 1 + k, n)
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, "dropout_inserted_torchscript17.onnx"))
    spec = json.load(open(src + ".json"))
    spec["notes"] += "; mlp_relu_torchscript17 with Dropout (ratio 0.3, training_mode false) and Identity inserted by the onnx API after the first Relu"
    json.dump(spec, open(os.path.join(OUT, "dropout_inserted_torchscript17.json"), "w"))
    print("dropout_inserted_torchscript17: ok")


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


def refusals_extra():
    torch.manual_seed(2)
    # Height and width left symbolic: the layer shapes cannot be resolved.
    c = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3)).eval()
    torch.onnx.export(c, (torch.randn(1, 1, 8, 8),), os.path.join(OUT, "refuse_dynamic_shape.onnx"), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["output"], dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}})
    # A weight of 3e6: beyond the fixed-point range of the engine's products.
    big = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    with torch.no_grad():
        big[2].weight[1, 3] = 3.0e6
    torch.onnx.export(big, (torch.randn(1, 4),), os.path.join(OUT, "refuse_large_weight.onnx"), dynamo=False, opset_version=17)
    # A model exported in training mode: its Dropout drops at random.
    tr = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.3), nn.Linear(4, 2)).train()
    torch.onnx.export(tr, (torch.randn(1, 4),), os.path.join(OUT, "refuse_dropout_training.onnx"), dynamo=False, opset_version=17,
                      training=torch.onnx.TrainingMode.PRESERVE)
    # Where as a threshold that is not softplus's: the identity below the threshold, or a threshold too low.
    class Where(nn.Module):
        def __init__(self, f):
            super().__init__()
            self.l1, self.l2, self.f = nn.Linear(4, 4), nn.Linear(4, 2), f

        def forward(self, x):
            return self.l2(self.f(self.l1(x)))

    for name, f in [("refuse_where_identity_below", lambda h: torch.where(h < 20.0, h, F.softplus(h))),
                    ("refuse_where_low_threshold", lambda h: torch.where(h > 2.0, h, F.softplus(h)))]:
        torch.onnx.export(Where(f).eval(), (torch.randn(1, 4),), os.path.join(OUT, f"{name}.onnx"), dynamo=False, opset_version=17)
    print("refusal fixtures: ok")


def jobs():
    """(name, model, input shape, exporter, opset, optimize): every fixture."""
    out = [(n, mk, sh, "torchscript", 17, True) for n, (mk, sh) in MODELS.items()]
    out += [(n, *MODELS[n], "torchscript", 13, True) for n in ["mlp_relu", "mlp_gelu", "cnn_bn_pool_softmax", "residual"]]
    out += [(n, mk, sh, "dynamo", 18, True) for n, (mk, sh) in MODELS.items()]
    # the opsets between, and the dynamo exporter's later opsets (torch 2.15 exports 18 to 23)
    for opset in (14, 15, 16):
        out += [(n, *MODELS[n], "torchscript", opset, True) for n in ["mlp_relu", "mlp_softplus", "cnn_bn_pool_softmax", "residual"]]
    for opset in (19, 20, 21, 22, 23):
        out += [(n, *MODELS[n], "dynamo", opset, True) for n in ["mlp_gelu", "mlp_gelu_tanh", "mlp_softplus", "cnn_bn_pool_softmax", "residual"]]
    for n, (mk, sh) in EXTRA.items():
        if n == "clone_identity":
            out.append((n, mk, sh, "dynamo", 18, False))
            continue
        out.append((n, mk, sh, "torchscript", 17, True))
        if n != "dropout_p0":  # the dynamo exporter drops a ratio-0 dropout
            out.append((n, mk, sh, "dynamo", 18, True))
    out += [(n, *EXTRA[n], "torchscript", 14, True) for n in ["bn_input_mlp", "matmul_add"]]
    out += [(n, *EXTRA[n], "dynamo", 20, True) for n in ["bn_pool_cnn", "const_arith", "softplus_less"]]
    for n, (mk, sh) in IMAGING.items():
        out += [(n, mk, sh, "torchscript", 17, True), (n, mk, sh, "dynamo", 18, True)]
    return out


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    only = sys.argv[1:]
    for name, make, shape, exporter, opset, optimize in jobs():
        tag = f"{name}_{exporter}{opset}"
        if not only or any(tag.startswith(p) for p in only):
            export(name, make, shape, exporter, opset, optimize)
    if not only or any("dropout_inserted".startswith(p) or p.startswith("dropout_inserted") for p in only):
        dropout_inserted()
    if not only or "refuse" in only:
        refusals()
        refusals_extra()
