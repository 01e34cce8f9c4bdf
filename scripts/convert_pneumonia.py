#!/usr/bin/env python3
"""Converts the Keras pneumonia classifier to ONNX, checked against Keras.

The model (fetched by scripts/fetch_pneumonia.py into data/pneumonia/) is a
Keras 3.3.3 `.keras` archive: `config.json` (the layer graph) and
`model.weights.h5`. This script reads both directly (json, h5py), checks the
architecture against them and against the package's `config.yml` (Keras'
Xception base without its top at 150x150x3, GlobalAveragePooling2D, Dense 128
ReLU, Dropout 0.3, Dense 2 without softmax: logits; classes NORMAL,
PNEUMONIA), and rebuilds it as a PyTorch module that walks the same layer
graph with the weights copied in (NHWC kernels transposed to NCHW; Keras
`same` padding as TensorFlow computes it, the odd pixel at the bottom/right,
as an explicit `F.pad` before the op, -inf for max pooling; it exports as an
ONNX `Pad` that the importer folds into the following Conv or MaxPool).

Keras itself is the oracle: the rebuild's logits on the 16 X-rays, each
prepared by the package's own pipeline (`keras_reference`), must be within
1e-4 of Keras'. Keras runs on the jax backend: XLA pads `same` as TensorFlow
(which trained the model) does, while Keras 3.3.3's torch backend pads the
1x1 stride-2 residual convolutions of even-sized maps by (-1, 0), cropping
the first row and column (its logits differ by up to 2.1 and one X-ray's
label flips); TensorFlow itself is not needed.

The export (PyTorch's TorchScript exporter, opset 17, eval mode, input
`input` [1, 3, 150, 150], output `logits` [1, 2]) goes to
data/models/xception-pneumonia.onnx with the metadata `class_names` and
`preprocessing` (see models/README.md, "xception-pneumonia"); it is
byte-deterministic with the versions in python/requirements-imaging.txt and
its SHA-256 is checked against scripts/pneumonia.sha256.

Usage: python3 scripts/convert_pneumonia.py   (then scripts/pneumonia_reference.py)
"""

import io
import json
import os
import re
import sys
import warnings
import zipfile
from collections import Counter

os.environ["KERAS_BACKEND"] = "jax"  # before Keras is imported: see above

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import yaml  # noqa: E402

from fetch_pneumonia import DATA, OUT, manifest, mismatches  # noqa: E402

KERAS_FILE = os.path.join(OUT, "pneumonia_xception_model_val-acc_0.861.keras")
PACKAGE_CONFIG = os.path.join(OUT, "config.yml")
XRAYS = os.path.join(OUT, "val")
ONNX_NAME = "models/xception-pneumonia.onnx"
ONNX_FILE = os.path.join(DATA, ONNX_NAME)
SIZE = 150
CLASSES = ["NORMAL", "PNEUMONIA"]
PREPROCESSING = {"image": {"height": SIZE, "width": SIZE, "color": "rgb", "resize": "nearest",
                           "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}
TOLERANCE = 1e-4  # max |logit difference| between the rebuild and Keras

# The package's model.py: its top-level layers, in order, with the settings that decide the function.
HEAD = [
    ("InputLayer", {"batch_shape": [None, SIZE, SIZE, 3]}),
    ("Functional", {"name": "xception"}),
    ("GlobalAveragePooling2D", {"keepdims": False, "data_format": "channels_last"}),
    ("Dense", {"units": 128, "activation": "relu", "use_bias": True}),
    ("Dropout", {"rate": 0.3}),
    ("Dense", {"units": len(CLASSES), "activation": "linear", "use_bias": True}),
]
# Keras' Xception(include_top=False, input_shape=(150, 150, 3)): its layers by kind, the settings
# every layer of a kind shares, and its last layer (no pooling or classifier top).
BASE_KINDS = {"InputLayer": 1, "Conv2D": 6, "SeparableConv2D": 34, "BatchNormalization": 40,
              "Activation": 35, "MaxPooling2D": 4, "Add": 12}
BASE_SETTINGS = {
    "Conv2D": {"activation": "linear", "use_bias": False, "dilation_rate": [1, 1], "groups": 1,
               "data_format": "channels_last"},
    "SeparableConv2D": {"activation": "linear", "use_bias": False, "dilation_rate": [1, 1],
                        "depth_multiplier": 1, "data_format": "channels_last"},
    "BatchNormalization": {"axis": -1, "epsilon": 0.001, "center": True, "scale": True},
    "Activation": {"activation": "relu"},
    "MaxPooling2D": {"pool_size": [3, 3], "strides": [2, 2], "padding": "same", "data_format": "channels_last"},
}
BASE_LAST = "block14_sepconv2_act"


def snake(name):
    """Keras' own class-name-to-snake-case (its weights file names layers this way)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def layer_weights(group, layers):
    """{layer name: its arrays} from a `layers` group of a Keras 3 weights file.

    The file names a model's layers by class in layer order (`conv2d`,
    `conv2d_1`, ...; a nested model is `functional` with its own `layers`),
    each with its arrays as `vars/0`, `vars/1`, ... in the layer's order."""
    out, seen = {}, Counter()
    for lc in layers:
        base = snake(lc["class_name"])
        key = base if seen[base] == 0 else f"{base}_{seen[base]}"
        seen[base] += 1
        if lc["class_name"] == "Functional":
            out.update(layer_weights(group[key]["layers"], lc["config"]["layers"]))
        else:
            found = group[key]["vars"]
            out[lc["config"]["name"]] = [np.asarray(found[str(i)]) for i in range(len(found))]
    return out


def read_archive(path):
    """A .keras archive's model config (config.json) and weights by layer name (model.weights.h5).

    Fails when an array of the weights file is left unused."""
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
        with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as h5:
            weights = layer_weights(h5["layers"], config["config"]["layers"])
            arrays = []
            h5["layers"].visititems(lambda _, obj: arrays.append(obj) if isinstance(obj, h5py.Dataset) else None)
    used = sum(len(w) for w in weights.values())
    if used != len(arrays):
        sys.exit(f"{path}: model.weights.h5 holds {len(arrays)} layer arrays, the layer graph uses {used}")
    return config, weights


def _differences(where, config, want):
    return [f"{where}: {key} is {config.get(key)!r}, expected {value!r}"
            for key, value in want.items() if config.get(key) != value]


def architecture_problems(config, package):
    """What differs between the archive's config.json (and the package's config.yml) and the model this
    script converts: one line per difference, naming the layer."""
    problems = []
    top = config["config"]["layers"]
    kinds = [lc["class_name"] for lc in top]
    if kinds != [k for k, _ in HEAD]:
        return [f"top-level layers are {kinds}, expected {[k for k, _ in HEAD]}"]
    for lc, (_, want) in zip(top, HEAD):
        problems += _differences(f"layer {lc['config']['name']}", lc["config"], want)
    base = top[1]["config"]
    counts = Counter(lc["class_name"] for lc in base["layers"])
    if counts != BASE_KINDS:
        problems.append(f"Xception base layers by kind are {dict(counts)}, expected {BASE_KINDS}")
    if base["layers"][0]["config"].get("batch_shape") != [None, SIZE, SIZE, 3]:
        problems.append(f"Xception base input is {base['layers'][0]['config'].get('batch_shape')}")
    if base["output_layers"] != [[BASE_LAST, 0, 0]]:
        problems.append(f"Xception base ends at {base['output_layers']}, expected {BASE_LAST} (include_top=False)")
    for lc in base["layers"]:
        name, cfg = lc["config"]["name"], lc["config"]
        want = dict(BASE_SETTINGS.get(lc["class_name"], {}))
        if lc["class_name"] in ("Conv2D", "SeparableConv2D"):
            want["padding"] = "valid" if name.startswith("block1_") else "same"
        problems += _differences(f"layer {name}", cfg, want)
    settings = {"class_names": CLASSES, "img_size": SIZE, "drop_rate": HEAD[4][1]["rate"],
                "dense_layer_first_inner_size": HEAD[3][1]["units"]}
    problems += _differences("config.yml", package, settings)
    return problems


def same_pads(size, kernel, stride):
    """TensorFlow's `same` padding along one axis: (before, after), the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class KerasGraph(torch.nn.Module):
    """A Keras functional model's layer graph (its config.json) run with PyTorch operators on NCHW
    tensors, with the model's weights (from `read_archive`) as parameters."""

    def __init__(self, config, weights):
        super().__init__()
        self.config = config["config"]
        self.params = torch.nn.ParameterList()
        self.layers = {}
        for lc in _all_layers(self.config):
            w = weights.get(lc["config"]["name"])
            if w:
                self.layers[lc["config"]["name"]] = [self._param(a) for a in _torch_layout(lc["class_name"], w)]

    def _param(self, array):
        p = torch.nn.Parameter(torch.tensor(array, dtype=torch.float32), requires_grad=False)
        self.params.append(p)
        return p

    def forward(self, x):
        return self._run(self.config, [x])[0]

    def _run(self, model, inputs):
        """Evaluates a functional model's config on its inputs, layer by layer."""
        values = {tuple(name): t for name, t in zip(model["input_layers"], inputs)}
        for lc in model["layers"]:
            if lc["class_name"] == "InputLayer":
                continue
            args = [values[tuple(a["config"]["keras_history"])] for node in lc["inbound_nodes"]
                    for a in _tensors(node["args"])]
            values[(lc["config"]["name"], 0, 0)] = self._apply(lc, args)
        return [values[tuple(o)] for o in model["output_layers"]]

    def _apply(self, lc, args):
        kind, cfg, x = lc["class_name"], lc["config"], args[0]
        w = self.layers.get(cfg.get("name"))
        if kind == "Functional":
            return self._run(cfg, args)[0]
        if kind == "Conv2D":
            x = _pad(x, cfg["kernel_size"], cfg["strides"], cfg["padding"], 0.0)
            return _activation(F.conv2d(x, w[0], w[1] if cfg["use_bias"] else None, stride=cfg["strides"]),
                               cfg["activation"])
        if kind == "SeparableConv2D":
            x = _pad(x, cfg["kernel_size"], cfg["strides"], cfg["padding"], 0.0)
            y = F.conv2d(x, w[0], stride=cfg["strides"], groups=int(x.shape[1]))
            return _activation(F.conv2d(y, w[1], w[2] if cfg["use_bias"] else None), cfg["activation"])
        if kind == "BatchNormalization":
            gamma, beta, mean, var = w
            return F.batch_norm(x, mean, var, gamma, beta, training=False, eps=cfg["epsilon"])
        if kind == "Activation":
            return _activation(x, cfg["activation"])
        if kind == "MaxPooling2D":
            x = _pad(x, cfg["pool_size"], cfg["strides"], cfg["padding"], float("-inf"))
            return F.max_pool2d(x, cfg["pool_size"], cfg["strides"])
        if kind == "Add":
            return sum(args[1:], args[0])
        if kind == "GlobalAveragePooling2D":
            return x.mean(dim=(2, 3))
        if kind == "Dense":
            return _activation(F.linear(x, w[0], w[1]), cfg["activation"])
        if kind == "Dropout":
            return x
        raise ValueError(f"layer {cfg['name']}: kind {kind} is not converted")


def _all_layers(model):
    """Every layer config of a functional model config, nested models' layers included."""
    for lc in model["layers"]:
        yield lc
        if lc["class_name"] == "Functional":
            yield from _all_layers(lc["config"])


def _torch_layout(kind, w):
    """A layer's Keras arrays in PyTorch's layout (NHWC kernels to NCHW)."""
    if kind == "Conv2D":  # kernel (kh, kw, in, out), bias
        return [w[0].transpose(3, 2, 0, 1)] + w[1:]
    if kind == "SeparableConv2D":  # depthwise (kh, kw, in, mult), pointwise (1, 1, in*mult, out), bias
        kh, kw, cin, mult = w[0].shape
        return [w[0].transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw), w[1].transpose(3, 2, 0, 1)] + w[2:]
    if kind == "Dense":  # kernel (in, out), bias
        return [w[0].T] + w[1:]
    if kind == "BatchNormalization":  # gamma, beta, moving mean, moving variance
        return w
    raise ValueError(f"weights of a {kind} layer are not converted")


def _pad(x, kernel, stride, padding, value):
    """Keras `same` padding as an explicit pad (constant pads: Python integers, not shape arithmetic)."""
    if padding == "valid":
        return x
    (t, b), (l, r) = (same_pads(int(x.shape[2]), kernel[0], stride[0]),
                      same_pads(int(x.shape[3]), kernel[1], stride[1]))
    return x if (t, b, l, r) == (0, 0, 0, 0) else F.pad(x, (l, r, t, b), value=value)


def _tensors(args):
    """The Keras tensors among a node's arguments (one, or a list for Add)."""
    for a in args:
        if isinstance(a, list):
            yield from _tensors(a)
        elif isinstance(a, dict) and a.get("class_name") == "__keras_tensor__":
            yield a


def _activation(x, name):
    if name == "linear":
        return x
    if name == "relu":
        return torch.relu(x)
    raise ValueError(f"activation {name} is not converted")


def keras_reference(folder=XRAYS):
    """The package's own pipeline run by Keras 3.3.3 on a folder of class subfolders: file names
    (relative, sorted), class indices, inputs (N, 150, 150, 3) and Keras' logits.

    The package predicts with `ImageDataGenerator(preprocessing_function=xception.preprocess_input)
    .flow_from_dataframe(target_size=(150, 150))` (data_processing/dataset_preprocessor.py);
    `flow_from_directory` is the same loader (Keras' `load_img`: RGB, NEAREST) over a folder, and
    its class indices are the alphabetical order `class_mode="categorical"` trained with."""
    import keras
    from keras.applications.xception import preprocess_input
    from keras.src.legacy.preprocessing.image import ImageDataGenerator  # tf.keras' under Keras 3

    model = keras.saving.load_model(KERAS_FILE, compile=False)
    flow = ImageDataGenerator(preprocessing_function=preprocess_input).flow_from_directory(
        folder, target_size=(SIZE, SIZE), class_mode="categorical", shuffle=False, batch_size=1 << 16)
    x, _ = next(flow)
    return list(flow.filenames), dict(flow.class_indices), x, np.asarray(model.predict(x, verbose=0))


def export(net, path):
    """The rebuild as ONNX (TorchScript exporter, opset 17) with `class_names` and `preprocessing` metadata."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the Python-int pads are meant constant
        warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False is the project's convention
        warnings.filterwarnings("ignore", "Constant folding - Only steps=1")  # the importer folds the pads
        torch.onnx.export(net, (torch.zeros(1, 3, SIZE, SIZE),), path, dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"])
    m = onnx.load(path)
    for key, value in [("class_names", ",".join(CLASSES)), ("preprocessing", json.dumps(PREPROCESSING))]:
        p = m.metadata_props.add()
        p.key, p.value = key, value
    onnx.checker.check_model(m)
    onnx.save(m, path)


def load_rebuild():
    """The archive read and checked, rebuilt in PyTorch (eval mode)."""
    for path in (KERAS_FILE, PACKAGE_CONFIG):
        if not os.path.isfile(path):
            sys.exit(f"{path} is missing: run python3 scripts/fetch_pneumonia.py first")
    config, weights = read_archive(KERAS_FILE)
    with open(PACKAGE_CONFIG) as f:
        package = yaml.safe_load(f)
    problems = architecture_problems(config, package)
    if problems:
        sys.exit(f"{KERAS_FILE} is not the model this script converts:\n  " + "\n  ".join(problems))
    return KerasGraph(config, weights).eval()


def main():
    torch.set_num_threads(2)
    net = load_rebuild()
    files, classes, x, keras_logits = keras_reference()
    if classes != {c: i for i, c in enumerate(CLASSES)}:
        sys.exit(f"the package's pipeline orders the classes {classes}, expected {CLASSES}")
    with torch.no_grad():
        torch_logits = net(torch.tensor(x.transpose(0, 3, 1, 2))).numpy()
    diff = float(np.abs(keras_logits - torch_logits).max())
    print(f"PyTorch rebuild vs Keras (jax backend) on {len(files)} X-rays: max |logit difference| {diff:.2e}")
    if diff > TOLERANCE:
        sys.exit(f"the rebuild differs from Keras by more than {TOLERANCE}")
    export(net, ONNX_FILE)
    bad = mismatches({ONNX_NAME: manifest()[ONNX_NAME]})
    if bad:
        sys.exit(f"{bad[0]} (torch, onnx not as python/requirements-imaging.txt pins them?)")
    print(f"data/{ONNX_NAME}: SHA-256 checked")


if __name__ == "__main__":
    main()
