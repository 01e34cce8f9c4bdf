#!/usr/bin/env python3
"""Converts the Keras pneumonia classifier to ONNX, checked against Keras.

The model (fetched by scripts/fetch_pneumonia.py into data/pneumonia/) is a
Keras 3.3.3 functional model: Keras' Xception base (ImageNet weights, frozen)
at 150x150x3, GlobalAveragePooling2D, Dense 128 ReLU, Dropout 0.3, Dense 2
(logits; classes NORMAL, PNEUMONIA). It is loaded with Keras itself
(KERAS_BACKEND=jax: XLA pads `same` exactly as TensorFlow, which trained it;
Keras 3.3.3's torch backend pads strided `same` convolutions on even inputs
differently, and TensorFlow itself is not needed), rebuilt as a PyTorch
module that walks the same layer graph with the Keras weights copied in
(NHWC kernels transposed to NCHW; Keras `same` padding as an explicit
`F.pad`, bottom/right first as TensorFlow pads, -inf for max pooling), and
checked against Keras on the 16 X-rays. It is exported by PyTorch's
TorchScript exporter at opset 17 to data/models/xception-pneumonia.onnx with
the metadata `class_names` and `preprocessing`, the pipeline the package
trains and predicts with (its data_processing/dataset_preprocessor.py:
ImageDataGenerator(preprocessing_function=xception.preprocess_input)
.flow_from_dataframe(target_size=(150, 150)), i.e. Keras' load_img:
`img.convert("RGB")` for a grayscale file, `img.resize((150, 150),
PIL.Image.NEAREST)`, then `x / 127.5 - 1`).

Writes data/pneumonia/reference.json: per image its file, true label (from
the name), and the logits of Keras, of the PyTorch rebuild and of ONNX
Runtime on the same preprocessed input (also saved as
data/pneumonia/inputs/NAME.npy, float32 3x150x150), with the plaintext
accuracy of each.

Usage: python3 scripts/convert_pneumonia.py
Needs python/requirements-imaging.txt (keras 3.3.3, torch, onnx, onnxruntime, pillow).
"""

import glob
import hashlib
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")  # XLA's SAME padding is TensorFlow's

import keras  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "data", "pneumonia")
KERAS_FILE = os.path.join(DATA, "pneumonia_xception_model_val-acc_0.861.keras")
ONNX_FILE = os.path.join(ROOT, "data", "models", "xception-pneumonia.onnx")
SIZE = 150
CLASSES = ["NORMAL", "PNEUMONIA"]
# The export is byte-deterministic with torch 2.15.0 and onnx 1.23.2 (python/requirements-imaging.txt).
ONNX_SHA256 = "83445fd9bd4cb639db037cf172050541a15d8b5b4b08ce86e0dc782d22971a91"
PREPROCESSING = {"image": {"height": SIZE, "width": SIZE, "color": "rgb", "resize": "nearest",
                           "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}


def preprocess(path):
    """Keras' load_img(path, target_size=(150, 150)) + xception.preprocess_input, as CHW float32."""
    img = Image.open(path)
    if img.mode != "RGB":
        img = img.convert("RGB")
    img = img.resize((SIZE, SIZE), Image.NEAREST)
    x = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return x.transpose(2, 0, 1).copy()


def same_pads(size, kernel, stride):
    """TensorFlow's `same` padding along one axis: (before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class KerasGraph(torch.nn.Module):
    """A Keras functional model's layer graph, executed with PyTorch operators."""

    def __init__(self, model):
        super().__init__()
        self.layers = {}
        self.params = torch.nn.ParameterList()
        self.model = model
        self._collect(model)

    def _param(self, array):
        p = torch.nn.Parameter(torch.tensor(np.asarray(array), dtype=torch.float32), requires_grad=False)
        self.params.append(p)
        return p

    def _collect(self, model):
        for layer in model.layers:
            kind = layer.__class__.__name__
            w = layer.get_weights()
            if kind == "Functional":
                self._collect(layer)
            elif kind == "Conv2D":
                assert layer.groups == 1 and tuple(layer.dilation_rate) == (1, 1), layer.name
                self.layers[layer.name] = ("conv", self._param(w[0].transpose(3, 2, 0, 1)),
                                           self._param(w[1]) if layer.use_bias else None)
            elif kind == "SeparableConv2D":
                depth, point = w[0], w[1]  # (kh, kw, in, mult), (1, 1, in*mult, out)
                kh, kw, cin, mult = depth.shape
                dw = depth.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
                self.layers[layer.name] = ("separable", self._param(dw), self._param(point.transpose(3, 2, 0, 1)),
                                           self._param(w[2]) if layer.use_bias else None)
            elif kind == "BatchNormalization":
                gamma, beta, mean, var = w
                self.layers[layer.name] = ("bn", self._param(gamma), self._param(beta), self._param(mean),
                                           self._param(var), float(layer.epsilon))
            elif kind == "Dense":
                self.layers[layer.name] = ("dense", self._param(w[0].T), self._param(w[1]))

    def forward(self, x):
        return self._run(self.model, [x])[0]

    def _run(self, model, inputs):
        """Evaluates `model`'s graph from its config on NCHW tensors."""
        config = model.get_config()
        values = {}
        for name, t in zip([i[0] for i in config["input_layers"]], inputs):
            values[(name, 0, 0)] = t
        for lc in config["layers"]:
            name, kind = lc["name"], lc["class_name"]
            if kind == "InputLayer":
                continue
            args = [values[tuple(a["config"]["keras_history"])] for node in lc["inbound_nodes"]
                    for a in _tensors(node["args"])]
            layer = model.get_layer(name)
            values[(name, 0, 0)] = self._apply(layer, kind, args)
        return [values[tuple(o)] for o in config["output_layers"]]

    def _apply(self, layer, kind, args):
        x = args[0]
        if kind == "Functional":
            return self._run(layer, args)[0]
        if kind in ("Conv2D", "SeparableConv2D"):
            x = self._pad(x, layer.kernel_size, layer.strides, layer.padding, 0.0)
            if kind == "Conv2D":
                _, w, b = self.layers[layer.name]
                y = F.conv2d(x, w, b, stride=layer.strides)
            else:
                _, dw, pw, b = self.layers[layer.name]
                y = F.conv2d(F.conv2d(x, dw, stride=layer.strides, groups=int(x.shape[1])), pw, b)
            return _activation(y, layer.activation.__name__)
        if kind == "BatchNormalization":
            _, g, b, m, v, eps = self.layers[layer.name]
            return F.batch_norm(x, m, v, g, b, training=False, eps=eps)
        if kind == "Activation":
            return _activation(x, layer.activation.__name__)
        if kind == "MaxPooling2D":
            x = self._pad(x, layer.pool_size, layer.strides, layer.padding, float("-inf"))
            return F.max_pool2d(x, layer.pool_size, layer.strides)
        if kind == "Add":
            y = args[0]
            for a in args[1:]:
                y = y + a
            return y
        if kind == "GlobalAveragePooling2D":
            return x.mean(dim=(2, 3))
        if kind == "Dense":
            _, w, b = self.layers[layer.name]
            return _activation(F.linear(x, w, b), layer.activation.__name__)
        if kind == "Dropout":
            return x
        raise ValueError(f"layer {layer.name} of kind {kind} is not converted")

    @staticmethod
    def _pad(x, kernel, stride, padding, value):
        if padding == "valid":
            return x
        # Python integers: the exported graph gets constant pads, not shape arithmetic.
        h, w = int(x.shape[2]), int(x.shape[3])
        (t, b), (l, r) = same_pads(h, kernel[0], stride[0]), same_pads(w, kernel[1], stride[1])
        if (t, b, l, r) == (0, 0, 0, 0):
            return x
        return F.pad(x, (l, r, t, b), value=value)


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
    raise ValueError(f"activation {name}")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    if not os.path.exists(KERAS_FILE):
        sys.exit(f"{KERAS_FILE} is missing: run python3 scripts/fetch_pneumonia.py first")
    torch.set_num_threads(2)
    model = keras.saving.load_model(KERAS_FILE, compile=False)
    net = KerasGraph(model).eval()
    images = sorted(glob.glob(os.path.join(DATA, "val", "*", "*.jpeg")))
    os.makedirs(os.path.join(DATA, "inputs"), exist_ok=True)
    xs = []
    for path in images:
        x = preprocess(path)
        np.save(os.path.join(DATA, "inputs", os.path.basename(path)[:-5] + ".npy"), x)
        xs.append(x)
    batch = np.stack(xs)
    keras_out = np.asarray(model.predict(batch.transpose(0, 2, 3, 1), verbose=0))
    with torch.no_grad():
        torch_out = net(torch.tensor(batch)).numpy()
    diff = float(np.abs(keras_out - torch_out).max())
    print(f"PyTorch rebuild vs Keras on the 16 X-rays: max |logit difference| {diff:.2e}")
    if diff > 1e-3:
        sys.exit("the rebuild does not match Keras")
    os.makedirs(os.path.dirname(ONNX_FILE), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(net, (torch.tensor(batch[:1]),), ONNX_FILE, dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"])
    m = onnx.load(ONNX_FILE)
    for key, value in [("class_names", ",".join(CLASSES)), ("preprocessing", json.dumps(PREPROCESSING))]:
        p = m.metadata_props.add()
        p.key, p.value = key, value
    onnx.save(m, ONNX_FILE)
    session = onnxruntime.InferenceSession(ONNX_FILE, providers=["CPUExecutionProvider"])
    ort_out = np.concatenate([session.run(None, {"input": x[None]})[0] for x in xs])
    print(f"ONNX Runtime vs Keras: max |logit difference| {float(np.abs(keras_out - ort_out).max()):.2e}")
    truth = [CLASSES.index(os.path.basename(os.path.dirname(p))) for p in images]
    rows = [{"file": os.path.basename(p), "label": t, "class": CLASSES[t],
             "keras_logits": k.tolist(), "torch_logits": q.tolist(), "onnxruntime_logits": o.tolist(),
             "predicted": int(np.argmax(o))}
            for p, t, k, q, o in zip(images, truth, keras_out, torch_out, ort_out)]
    accuracy = {name: float(np.mean(np.argmax(out, axis=1) == truth))
                for name, out in [("keras", keras_out), ("torch", torch_out), ("onnxruntime", ort_out)]}
    with open(os.path.join(DATA, "reference.json"), "w") as f:
        json.dump({"images": rows, "accuracy": accuracy, "onnx_sha256": sha256(ONNX_FILE),
                   "max_abs_diff_torch_vs_keras": diff}, f, indent=1)
    print(f"accuracy on the 16 X-rays: {accuracy}")
    digest = sha256(ONNX_FILE)
    if digest != ONNX_SHA256:
        sys.exit(f"{ONNX_FILE}: SHA-256 {digest}, expected {ONNX_SHA256} (another torch or onnx version?)")
    print(f"{os.path.relpath(ONNX_FILE, ROOT)}: SHA-256 checked")


if __name__ == "__main__":
    main()
