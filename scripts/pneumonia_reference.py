#!/usr/bin/env python3
"""Reference outputs of the pneumonia classifier on its 16 chest X-rays.

Reads the preprocessing and class names from the ONNX model's own metadata
(data/models/xception-pneumonia.onnx, made by scripts/convert_pneumonia.py)
and, for each X-ray in data/pneumonia/val/CLASS/ (scripts/fetch_pneumonia.py):

- prepares it exactly as the metadata declares (`preprocess`: PIL + numpy)
  and saves it as data/pneumonia/inputs/NAME.npy (float32, 3x150x150, CHW);
- runs Keras 3.3.3 on the package's own pipeline (ImageDataGenerator with
  xception.preprocess_input), the PyTorch rebuild on the .npy, and ONNX
  Runtime on the .npy.

Writes data/pneumonia/reference.json: per image its file, true label (from
the folder, which is the name's: NORMAL2-IM-* or person*_bacteria_*), the
three runtimes' logits and ONNX Runtime's predicted label; the plaintext
accuracy of each runtime; the largest differences (inputs: the declared
preprocessing vs the package's pipeline; logits: each runtime vs Keras); and
the model's size (parameters, MACs, ReLUs, layers by kind), also printed.

Usage: python3 scripts/pneumonia_reference.py   (after fetch_pneumonia.py and convert_pneumonia.py)
"""

import json
import os
import sys
from collections import Counter

import numpy as np
import onnx
import onnxruntime
import torch
from PIL import Image

from convert_pneumonia import ONNX_FILE, OUT, XRAYS, keras_reference, load_rebuild
from fetch_pneumonia import sha256

INPUTS = os.path.join(OUT, "inputs")
REFERENCE = os.path.join(OUT, "reference.json")
RESAMPLE = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR}
COLOR = {"rgb": "RGB", "gray": "L"}


def preprocess(path, image):
    """An image file as the `image` preprocessing declares it, as a float32 CHW array: decode (PIL);
    convert to the colour if the file has another mode (`img.convert("RGB")` replicates a grey
    level); `img.resize((width, height), method)`; then per channel `(v / 255 - mean) / std`."""
    img = Image.open(path)
    if img.mode != COLOR[image["color"]]:
        img = img.convert(COLOR[image["color"]])
    img = img.resize((image["width"], image["height"]), RESAMPLE[image["resize"]])
    v = np.asarray(img, dtype=np.float32).reshape(image["height"], image["width"], -1) / np.float32(255)
    mean, std = np.asarray(image["mean"], np.float32), np.asarray(image["std"], np.float32)
    return ((v - mean) / std).transpose(2, 0, 1).copy()


COUNTED = ("Conv", "Gemm", "Relu", "MaxPool", "Add", "Pad", "ReduceMean")  # the computing nodes


def output_shapes(model):
    """Each computing node's output shape at batch 1, from one ONNX Runtime run on zeros (ONNX
    shape inference stops at the exported pads, whose amounts are computed by constant nodes)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    names = [n.output[0] for n in probe.graph.node if n.op_type in COUNTED]
    del probe.graph.output[:]
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
    session = onnxruntime.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    dims = session.get_inputs()[0].shape
    outputs = session.run(None, {"input": np.zeros([1] + dims[1:], np.float32)})
    return {n: o.shape for n, o in zip(names, outputs)}


def model_size(model):
    """Parameters, MACs, ReLUs, max-pool outputs and computing layers by kind of an ONNX graph at
    batch 1 (the nodes that compute an exported pad's amounts are not layers)."""
    shapes = output_shapes(model)
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    size = {"parameters": int(sum(np.prod(d) for d in weights.values())), "macs": 0, "relus": 0,
            "max_pool_outputs": 0, "layers": Counter()}
    for node in model.graph.node:
        if node.op_type not in COUNTED:
            continue
        out, kind = int(np.prod(shapes[node.output[0]])), node.op_type
        if kind == "Conv":
            w = weights[node.input[1]]
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            size["macs"] += out * int(np.prod(w[1:]))
            kind = f"Conv {w[2]}x{w[3]} " + ("depthwise" if group > 1 else "full")
        elif kind == "Gemm":
            size["macs"] += int(np.prod(weights[node.input[1]]))
        elif kind == "Relu":
            size["relus"] += out
        elif kind == "MaxPool":
            size["max_pool_outputs"] += out
        size["layers"][kind] += 1
    size["layers"] = dict(sorted(size["layers"].items()))
    return size


def main():
    if not os.path.isfile(ONNX_FILE):
        sys.exit(f"{ONNX_FILE} is missing: run python3 scripts/convert_pneumonia.py first")
    torch.set_num_threads(2)
    model = onnx.load(ONNX_FILE)
    meta = {p.key: p.value for p in model.metadata_props}
    classes, image = meta["class_names"].split(","), json.loads(meta["preprocessing"])["image"]

    files, class_indices, keras_x, keras_logits = keras_reference()
    if class_indices != {c: i for i, c in enumerate(classes)}:
        sys.exit(f"the package's pipeline orders the classes {class_indices}, the model {classes}")
    xs = np.stack([preprocess(os.path.join(XRAYS, f), image) for f in files])
    input_diff = float(np.abs(xs - keras_x.transpose(0, 3, 1, 2)).max())
    os.makedirs(INPUTS, exist_ok=True)
    for f, x in zip(files, xs):
        np.save(os.path.join(INPUTS, os.path.splitext(os.path.basename(f))[0] + ".npy"), x)

    net = load_rebuild()
    with torch.no_grad():
        torch_logits = net(torch.tensor(xs)).numpy()
    session = onnxruntime.InferenceSession(ONNX_FILE, providers=["CPUExecutionProvider"])
    ort_logits = np.concatenate([session.run(None, {"input": x[None]})[0] for x in xs])

    truth = [classes.index(os.path.dirname(f)) for f in files]
    outputs = {"keras": keras_logits, "torch": torch_logits, "onnxruntime": ort_logits}
    rows = [{"file": os.path.basename(f), "label": t, "class": classes[t],
             "keras_logits": k.tolist(), "torch_logits": q.tolist(), "onnxruntime_logits": o.tolist(),
             "predicted": int(np.argmax(o)), "predicted_class": classes[int(np.argmax(o))]}
            for f, t, k, q, o in zip(files, truth, keras_logits, torch_logits, ort_logits)]
    # Keras counts batch-norm statistics as parameters; the rebuild holds exactly the Keras arrays.
    size = dict(model_size(model), keras_parameters=sum(p.numel() for p in net.parameters()))
    reference = {
        "model": os.path.basename(ONNX_FILE), "onnx_sha256": sha256(ONNX_FILE), "classes": classes,
        "preprocessing": image, "images": rows,
        "accuracy": {k: float(np.mean(np.argmax(v, axis=1) == truth)) for k, v in outputs.items()},
        "max_abs_diff": {"inputs_declared_vs_package_pipeline": input_diff,
                         "torch_vs_keras": float(np.abs(torch_logits - keras_logits).max()),
                         "onnxruntime_vs_keras": float(np.abs(ort_logits - keras_logits).max()),
                         "onnxruntime_vs_torch": float(np.abs(ort_logits - torch_logits).max())},
        "size": size,
    }
    with open(REFERENCE, "w") as f:
        json.dump(reference, f, indent=1)
    report(reference)


def report(reference):
    """The reference's summary on stdout."""
    for row in reference["images"]:
        print(f"{row['file']:32} {row['class']:9} -> {row['predicted_class']:9} "
              f"ONNX Runtime logits {np.round(row['onnxruntime_logits'], 4).tolist()}")
    n = len(reference["images"])
    for runtime, acc in reference["accuracy"].items():
        print(f"accuracy ({runtime}): {round(acc * n)}/{n} = {acc:.4f}")
    for what, d in reference["max_abs_diff"].items():
        print(f"max |difference| {what}: {d:.2e}")
    size = reference["size"]
    print("| parameters (Keras / ONNX, BN folded) | MACs | ReLUs | max-pool outputs |")
    print(f"| {size['keras_parameters']:,} / {size['parameters']:,} | {size['macs']:,} | {size['relus']:,} "
          f"| {size['max_pool_outputs']:,} |")
    print("layers: " + ", ".join(f"{k} x{v}" for k, v in size["layers"].items()))
    print(f"wrote {os.path.relpath(REFERENCE)} and {n} inputs in {os.path.relpath(INPUTS)}")


if __name__ == "__main__":
    main()
