"""The secure engine's smooth-function approximations, for training.

Loads the tables exported by ``cryptmed approx --export approx.json`` (add
``--elu-alpha A`` for ELU at other alphas) and evaluates exactly the same
piecewise polynomials (breakpoints, coefficients, exact affine tails and
fixed-point slopes, output scales) as the secure protocol, so a model can be
trained with the very function it will be evaluated with.

One core, :func:`apply`, works on numpy arrays and on torch tensors alike
(the same code path: only the handful of array primitives in ``_Ops`` differ),
so the values the agreement test checks with numpy are the values training
computes with torch.

- ``evaluate(entry, x)``: one table at a float, array or tensor ``x``.
- ``SecureSigmoid``, ``SecureTanh``, ``SecureSoftplus``, ``SecureELU(alpha=1.0)``,
  ``SecureSELU``, ``SecureSiLU``, ``SecureGELU(approximate='none'|'tanh')``,
  ``SecureErf``, ``SecureExp``: drop-in ``torch.nn.Module`` activations
  (differentiable), when PyTorch is installed.
- ``standard_export(model)``: a context manager that swaps them back to the
  standard ``torch.nn`` modules for ``torch.onnx.export``, so the ONNX file
  holds the standard operators (Sigmoid, Tanh, Selu, ...) that the secure
  engine evaluates with these very tables.

Usage: ``python3 cryptmed_approx.py --grid approx.json > approx_grid.json``
writes the module's outputs (numpy) on a grid, which a Rust test compares
with the engine's own evaluation.
"""

import contextlib
import json
import sys

import numpy as np


def load(path):
    """Tables by key (``sigmoid``, ..., ``elu`` for alpha 1, ``elu@0.5`` for
    other alphas), and the fractional bits, from the exported JSON."""
    with open(path) as f:
        doc = json.load(f)
    return {key(e): e for e in doc["functions"]}, doc["frac_bits"]


def key(entry):
    """The table key of an exported entry."""
    alpha = entry.get("alpha")
    if alpha is None or alpha == 1.0:
        return entry["function"]
    return "%s@%r" % (entry["function"], float(alpha))


def find(tables, function, alpha=None):
    """The entry of ``function`` (at ``alpha`` for a parametric one), or a clear error."""
    for e in tables.values():
        if e["function"] == function and (alpha is None or float(e.get("alpha", 1.0)) == float(alpha)):
            return e
    have = sorted(tables)
    hint = " (export it with `cryptmed approx --export FILE --elu-alpha %r`)" % alpha if alpha is not None else ""
    raise KeyError("no table for %s%s in the export; it has %s%s" % (
        function, "" if alpha is None else " alpha=%r" % alpha, ", ".join(have), hint))


def params(entry):
    """A table's pieces decoded to reals: breakpoints, and per piece the
    slope, offset, center and coefficients of the polynomial in ``x - center``."""
    t = entry["table"]
    f = t["frac_bits"]
    o = t.get("out_frac_bits", f)
    s, so = float(1 << f), float(2 ** o)
    pieces = t["pieces"]
    deg = max(len(p["coeffs"]) for p in pieces)
    return {
        "scale": s,
        "breaks": [float(b) for b in t["breakpoints"]],
        "slope": [p["slope"] / 2.0 ** p.get("slope_frac", 0) * s / so for p in pieces],
        "offset": [p["offset"] / so for p in pieces],
        "center": [p["center"] / s for p in pieces],
        "coeffs": [[(p["coeffs"][k] / 2.0 ** (p["scale"] - k * f)) if k < len(p["coeffs"]) else 0.0
                    for k in range(deg)] for p in pieces],
    }


class _Ops:
    """The array primitives the core needs, for numpy arrays or torch tensors."""

    def __init__(self, like):
        self.torch = _is_tensor(like)

    def f64(self, x):
        if self.torch:
            return x.to(torch.float64)
        return np.asarray(x, dtype=np.float64)

    def const(self, values, like):
        if self.torch:
            return torch.tensor(values, dtype=torch.float64, device=like.device)
        return np.asarray(values, dtype=np.float64)

    def floor(self, x):
        return torch.floor(x) if self.torch else np.floor(x)

    def piece(self, breaks, xi):
        """Index of the piece of the fixed-point input ``xi`` (breakpoint ``<= xi`` counts)."""
        if self.torch:
            return torch.searchsorted(breaks, xi.contiguous(), right=True)
        return np.searchsorted(breaks, xi, side="right")

    def back(self, y, like):
        if self.torch:
            return y.to(like.dtype)
        return y


def _is_tensor(x):
    return torch is not None and isinstance(x, torch.Tensor)


def apply(p, x, buffers=None):
    """The table with decoded parameters ``p`` (see :func:`params`) at ``x``:
    a numpy array or a torch tensor (``buffers``: ``p``'s arrays already as
    tensors, as the torch module keeps them)."""
    ops = _Ops(x)
    xd = ops.f64(x)
    b = buffers or {k: ops.const(v, xd) for k, v in p.items() if k != "scale"}
    # The piece is chosen on the fixed-point grid, as the engine does.
    idx = ops.piece(b["breaks"], ops.floor(xd * p["scale"]))
    d = xd - b["center"][idx]
    y = b["slope"][idx] * xd + b["offset"][idx]
    pw = d * 0.0 + 1.0
    for k in range(b["coeffs"].shape[1]):
        y = y + b["coeffs"][idx, k] * pw
        pw = pw * d
    return ops.back(y, x)


def evaluate(entry, x):
    """The table of ``entry`` (one exported function) at ``x``: a float (returns a float), array or tensor."""
    scalar = isinstance(x, (int, float))
    y = apply(params(entry), np.asarray([x], dtype=np.float64) if scalar else x)
    return float(y[0]) if scalar else y


try:  # PyTorch modules, when available.
    import torch

    class _Piecewise(torch.nn.Module):
        """A table as a differentiable torch module."""

        def __init__(self, entry, standard):
            super().__init__()
            self.standard = standard
            self.p = params(entry)
            for k, v in self.p.items():
                if k != "scale":
                    self.register_buffer(k, torch.tensor(v, dtype=torch.float64))

        def forward(self, x):
            bufs = {k: getattr(self, k) for k in self.p if k != "scale"}
            return apply(self.p, x, bufs)

    def _make(name, standard):
        def ctor(tables):
            return _Piecewise(find(tables, name), standard)
        return ctor

    SecureSigmoid = _make("sigmoid", torch.nn.Sigmoid)
    SecureTanh = _make("tanh", torch.nn.Tanh)
    SecureSoftplus = _make("softplus", torch.nn.Softplus)
    SecureSELU = _make("selu", torch.nn.SELU)
    SecureSiLU = _make("silu", torch.nn.SiLU)
    SecureErf = _make("erf", None)
    SecureExp = _make("exp", None)

    def SecureELU(tables, alpha=1.0):
        """ELU at ``alpha`` (exported with ``--elu-alpha`` unless 1)."""
        return _Piecewise(find(tables, "elu", alpha), lambda: torch.nn.ELU(alpha=alpha))

    def SecureGELU(tables, approximate="none"):
        name = "gelu" if approximate == "none" else "gelu_tanh"
        return _Piecewise(find(tables, name), lambda: torch.nn.GELU(approximate=approximate))

    @contextlib.contextmanager
    def standard_export(model):
        """Temporarily replace every secure activation by its standard module (for ONNX export)."""
        swapped = []
        for parent in model.modules():
            for name, child in list(parent.named_children()):
                if isinstance(child, _Piecewise) and child.standard is not None:
                    setattr(parent, name, child.standard())
                    swapped.append((parent, name, child))
        try:
            yield model
        finally:
            for parent, name, child in swapped:
                setattr(parent, name, child)

except ImportError:  # pragma: no cover - torch is optional for the grid check
    torch = None


def grid_inputs():
    """The grid the agreement test uses: a fine grid on [-20, 20] and far points."""
    return [i / 64.0 for i in range(-20 * 64, 20 * 64 + 1, 7)] + [-1e6, -123.456, 1e-5, 0.0, 77.7, 1e6]


def grid(tables):
    """The module's outputs (numpy) on :func:`grid_inputs`, one object per exported table."""
    xs = np.asarray(grid_inputs(), dtype=np.float64)
    out = []
    for k in sorted(tables):
        e = tables[k]
        out.append({"function": e["function"], "alpha": e.get("alpha"),
                    "x": xs.tolist(), "y": apply(params(e), xs).tolist()})
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--grid":
        tables, _ = load(sys.argv[2])
        json.dump(grid(tables), sys.stdout)
    else:
        print(__doc__)
        sys.exit(2)
