"""The secure engine's smooth-function approximations, for training.

Loads the tables exported by ``cryptmed approx --export approx.json`` and
evaluates exactly the same piecewise polynomials (breakpoints, coefficients,
exact affine tails) as the secure protocol, so a model can be trained with
the very function it will be evaluated with.

- ``evaluate(table, x)``: pure Python, no dependency (the reference the
  agreement test uses).
- ``SecureSigmoid``, ``SecureTanh``, ``SecureSoftplus``, ``SecureELU``,
  ``SecureSiLU``, ``SecureGELU(approximate='none'|'tanh')``, ``SecureErf``:
  drop-in ``torch.nn.Module`` activations (differentiable), when PyTorch is
  installed.
- ``standard_export(model)``: a context manager that swaps them back to the
  standard ``torch.nn`` modules for ``torch.onnx.export``, so the ONNX file
  holds the standard operators (Sigmoid, Tanh, ...) that the secure engine
  evaluates with these very tables.

Usage: ``python3 cryptmed_approx.py --grid approx.json > approx_grid.json``
writes the module's outputs on a grid, which a Rust test compares with the
engine's own evaluation.
"""

import contextlib
import json
import math
import sys


def load(path):
    """Tables by function name, from the exported JSON."""
    with open(path) as f:
        doc = json.load(f)
    return {t["function"]: t for t in doc["functions"]}, doc["frac_bits"]


def evaluate(entry, x):
    """The table of ``entry`` (one exported function) at real ``x``, in float64."""
    t = entry["table"]
    f = t["frac_bits"]
    s = float(1 << f)
    xi = math.floor(x * s)
    j = 0
    for b in t["breakpoints"]:
        if b <= xi:
            j += 1
        else:
            break
    p = t["pieces"][j]
    y = p["slope"] * x + p["offset"] / s
    d = x - p["center"] / s
    pw = 1.0
    for k, c in enumerate(p["coeffs"]):
        y += c / 2.0 ** (p["scale"] - k * f) * pw
        pw *= d
    return y


try:  # PyTorch modules, when available.
    import torch

    class _Piecewise(torch.nn.Module):
        """A table as a differentiable torch module."""

        def __init__(self, entry, standard):
            super().__init__()
            t = entry["table"]
            f = t["frac_bits"]
            s = float(1 << f)
            self.standard = standard
            self.register_buffer("breaks", torch.tensor([b / s for b in t["breakpoints"]], dtype=torch.float64))
            deg = max(len(p["coeffs"]) for p in t["pieces"])
            coeffs = [[(p["coeffs"][k] / 2.0 ** (p["scale"] - k * f)) if k < len(p["coeffs"]) else 0.0 for k in range(deg)] for p in t["pieces"]]
            self.register_buffer("coeffs", torch.tensor(coeffs, dtype=torch.float64))
            self.register_buffer("slope", torch.tensor([float(p["slope"]) for p in t["pieces"]], dtype=torch.float64))
            self.register_buffer("offset", torch.tensor([p["offset"] / s for p in t["pieces"]], dtype=torch.float64))
            self.register_buffer("center", torch.tensor([p["center"] / s for p in t["pieces"]], dtype=torch.float64))
            self.scale = s

        def forward(self, x):
            xd = x.to(torch.float64)
            # floor to the fixed-point grid for the piece choice, as the engine does
            idx = torch.bucketize(torch.floor(xd * self.scale) / self.scale, self.breaks, right=True)
            d = xd - self.center[idx]
            y = self.slope[idx] * xd + self.offset[idx]
            pw = torch.ones_like(xd)
            for k in range(self.coeffs.shape[1]):
                y = y + self.coeffs[idx, k] * pw
                pw = pw * d
            return y.to(x.dtype)

    def _make(name, standard):
        def ctor(tables):
            return _Piecewise(tables[name], standard)
        return ctor

    SecureSigmoid = _make("sigmoid", torch.nn.Sigmoid)
    SecureTanh = _make("tanh", torch.nn.Tanh)
    SecureSoftplus = _make("softplus", torch.nn.Softplus)
    SecureELU = _make("elu", torch.nn.ELU)
    SecureSiLU = _make("silu", torch.nn.SiLU)
    SecureErf = _make("erf", None)

    def SecureGELU(tables, approximate="none"):
        name = "gelu" if approximate == "none" else "gelu_tanh"
        return _Piecewise(tables[name], lambda: torch.nn.GELU(approximate=approximate))

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


def grid(tables):
    """The module's outputs on a fixed grid of inputs, per function."""
    xs = [i / 64.0 for i in range(-20 * 64, 20 * 64 + 1, 7)] + [-1e6, -123.456, 1e-5, 0.0, 77.7, 1e6]
    return {name: {"x": xs, "y": [evaluate(e, x) for x in xs]} for name, e in sorted(tables.items())}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--grid":
        tables, _ = load(sys.argv[2])
        json.dump(grid(tables), sys.stdout)
    else:
        print(__doc__)
        sys.exit(2)
