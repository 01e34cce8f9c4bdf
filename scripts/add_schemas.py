#!/usr/bin/env python3
"""Adds each medical model's feature schema to its ONNX metadata.

For every committed `models/<set>-*.onnx` of the four medical data sets this
writes three metadata keys (weights and graph untouched: the script checks
that the graph's serialised bytes are the same before and after):

- `feature_names`: the columns in the model's order, as `scripts/prepare_data.py`
  names them (data/<set>/meta.json; also the headers of testdata/*.csv);
- `feature_units`: the unit where the data set's source documents one (UCI's
  descriptions of the Pima diabetes, Cleveland heart disease and chronic
  kidney disease sets; the breast-cancer features are measured on digitised
  images and carry none), empty otherwise;
- `feature_ranges`: per column `[low, high]`, the training split's minimum
  and maximum widened by half their span on each side (clamped at 0 for a
  column never negative in training). Real patients step beyond a few
  hundred training rows: the held-out test splits reach 34% of the span past
  them (kidney's red cell count 8.0 against a training maximum of 6.5, 17
  pregnancies against 14), so half the span admits every one of them while
  still refusing absurd values (a mean radius of 1e6). The engine derives
  each column's input precision from these ranges
  (`FeatureSchema::input_exponents`), and the client checks records
  against them.

Needs data/<set>/train.csv: run `python3 scripts/prepare_data.py` first.
Usage: python3 scripts/add_schemas.py [MODEL.onnx ...]   (default: every medical model)
"""

import csv
import glob
import hashlib
import json
import os
import sys

import onnx

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SETS = ["breast-cancer", "diabetes", "heart-disease", "kidney"]
MARGIN = 0.50

UNITS = {
    "diabetes": {"preg": "pregnancies", "plas": "mg/dL", "pres": "mm Hg", "skin": "mm", "insu": "mu U/mL",
                 "mass": "kg/m^2", "age": "years"},
    "heart-disease": {"age": "years", "rest SBP": "mm Hg", "cholesterol": "mg/dL", "max HR": "beats/min"},
    "kidney": {"age": "years", "bp": "mm Hg", "bgr": "mg/dL", "bu": "mg/dL", "sc": "mg/dL", "sod": "mEq/L",
               "pot": "mEq/L", "hemo": "g/dL", "wbcc": "cells/uL", "rbcc": "millions/uL"},
}


def schema(name):
    """Names, units and ranges of data set `name` from its training split."""
    path = os.path.join(ROOT, "data", name, "train.csv")
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: run `python3 scripts/prepare_data.py {name}` first")
    rows = list(csv.reader(open(path)))
    head, body = rows[0][:-1], [[float(v) for v in r[:-1]] for r in rows[1:]]
    ranges = []
    for j in range(len(head)):
        col = [r[j] for r in body]
        lo, hi = min(col), max(col)
        m = MARGIN * (hi - lo)
        ranges.append([round(max(lo - m, 0.0) if lo >= 0 else lo - m, 6), round(hi + m, 6)])
    units = [UNITS.get(name, {}).get(h, "") for h in head]
    for h in head:
        if "," in h:
            sys.exit(f"{name}: column {h!r} has a comma, which feature_names cannot carry")
    return head, units, ranges


def graph_digest(model):
    return hashlib.sha256(model.graph.SerializeToString()).hexdigest()


def main():
    files = sys.argv[1:] or sorted(f for s in SETS for f in glob.glob(os.path.join(ROOT, "models", f"{s}-*.onnx")))
    cache = {}
    for f in files:
        name = next((s for s in SETS if os.path.basename(f).startswith(s + "-")), None)
        if name is None:
            sys.exit(f"{f}: not a model of {', '.join(SETS)}")
        if name not in cache:
            cache[name] = schema(name)
        head, units, ranges = cache[name]
        model = onnx.load(f)
        inputs = model.graph.input[0].type.tensor_type.shape.dim
        if inputs[-1].dim_value != len(head):
            sys.exit(f"{f}: takes {inputs[-1].dim_value} values, the data set has {len(head)} columns")
        before = graph_digest(model)
        keep = [p for p in model.metadata_props if not p.key.startswith("feature_")]
        del model.metadata_props[:]
        model.metadata_props.extend(keep)
        for key, value in [("feature_names", ",".join(head)), ("feature_units", ",".join(units)),
                           ("feature_ranges", json.dumps(ranges))]:
            p = model.metadata_props.add()
            p.key, p.value = key, value
        assert graph_digest(model) == before, f"{f}: the graph changed"
        onnx.save(model, f)
        print(f"{os.path.relpath(f, ROOT)}: {len(head)} columns, graph sha256 {before[:16]} unchanged")


if __name__ == "__main__":
    main()
