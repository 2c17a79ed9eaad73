"""How accurately an implementation evaluates each activation and its derivative, on a fixed grid, through the contract.

The network-level claims hold an implementation to derived bounds; when one fails on a 3-4-10-1 network, this
module says *which function* changed and where: ``torch elu(-1e-10) = 0.0 in float32; exact -1e-10``.

Invariants:
- Measured through the contract only (``forward`` and ``loss_and_gradients``), so it applies to every
  implementation, not only the built-in backends. One layer of n units, no bias, ``x = [[1]]`` and
  ``W = [[z_1 ... z_n]]``: the pre-activations are ``1 * z_j = z_j`` exactly, the outputs are ``sigma(z_j)``, and
  with ``L = 0.5 sum_j (out_j - y_j)^2`` the gradient is ``dL/dW[0, j] = 1 * sigma'(z_j) * r_j`` with
  ``r_j = out_j - y_j``: the units do not interact, so one call measures every point. With ``y_j = out_j - 1``
  the residual is 1 up to the implementation's rounding of one subtraction, and the derivative is read as
  ``dL/dW[0, j] / r_j`` with ``r_j`` computed exactly here (a harness error of at most ~2 ulps, the same on
  every run, hence well inside ``ACCURATE_ULPS``).
- Exact values come from mpmath at 60 digits, at the grid point as rounded to the dtype (the input the
  implementation actually receives); errors are in ulps of the dtype at the exact value (below the smallest
  normal, one ulp is the smallest subnormal) and in relative terms.
- A subnormal z may reach the activation as 0: an implementation that treats subnormal inputs as zero, or
  flushes the subnormal product ``1 * z``, computes ``sigma(0)``. The point is then judged against ``sigma(0)``
  and ``sigma'(0)`` (what the implementation's own identity layer gives decides, measured the same way); at a
  kink (relu, leaky_relu at 0) the convention table decides, not accuracy, and the point is left out.
- The grid is fixed (no Hypothesis draw): the same points in every profile, so a recorded accuracy class per
  point can be compared across versions (``properties/recorded_behaviours.py``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import mpmath as mp
import numpy as np
from mlp_crosscheck.properties.tolerances import C_DERIVATIVE, C_VALUE, unit_roundoff
from mlp_crosscheck.reference import activations
from mlp_crosscheck.reference.network import Network

# Error, in ulps of the dtype, up to which a point counts as accurate ("a few ulps").
ACCURATE_ULPS = 4.0
QUANTITIES = ("value", "derivative")
# A point's class: "accurate" (<= ACCURATE_ULPS), "within_model" (more ulps, but within the error model the
# network bounds assume: properties/tolerances.py, C_VALUE and C_DERIVATIVE), "outside_model" (beyond it, or
# not finite where the exact value is: every network bound that uses this activation is then void).
CLASSES = ("accurate", "within_model", "outside_model")

# Magnitudes of the grid, each taken with both signs: tiny |z| (down to the subnormals), ordinary values,
# the tails, and the edges of exp's range in float32 (88.7) and float64 (709.8).
TINY = (5e-324, 1e-310, 1e-45, 1e-40, 1e-30, 1e-20, 1e-10, 1e-5)
ORDINARY = (1e-3, 0.1, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
TAILS = (20.0, 36.0, 40.0, 88.0, 89.0, 100.0, 700.0, 709.0, 710.0, 750.0)


def grid(dtype) -> np.ndarray:
    """Return the grid's points in ``dtype``: every magnitude with both signs, and each dtype's smallest normal
    and subnormal; magnitudes that round to 0 in ``dtype`` are left out (0 is the kink family's point)."""
    dtype = np.dtype(dtype)
    info = np.finfo(dtype)
    magnitudes = [*TINY, float(info.smallest_normal), float(info.smallest_subnormal), *ORDINARY, *TAILS]
    with np.errstate(under="ignore"):
        rounded = np.array(magnitudes, dtype=np.float64).astype(dtype)
    rounded = np.unique(rounded[rounded > 0])
    return np.concatenate([-rounded[::-1], rounded])


@functools.cache
def exact(activation: str, z: float) -> tuple[float, float]:
    """Return ``(sigma(z), sigma'(z))`` to 60 digits, rounded to float64 (at a kink, ``z = 0``: the right branch)."""
    with mp.workdps(60):
        t = mp.mpf(z)
        # sigma(t) and 1 - sigma(t) = sigma(-t), each without cancellation: at 60 digits, 1 - sigma(700) is 0.
        sig, sig_minus = 1 / (1 + mp.exp(-t)), 1 / (1 + mp.exp(t))
        if activation == "identity":
            return z, 1.0
        if activation == "tanh":
            return float(mp.tanh(t)), float(1 / mp.cosh(t) ** 2)
        if activation == "sigmoid":
            return float(sig), float(sig * sig_minus)
        if activation == "relu":
            return max(z, 0.0), float(z > 0)
        if activation == "leaky_relu":
            return float(t if t > 0 else t * mp.mpf("0.01")), (1.0 if z > 0 else 0.01)
        if activation == "elu":
            return float(t if t > 0 else mp.expm1(t)), float(1 if t > 0 else mp.exp(t))
        if activation == "softplus":
            return float(mp.log1p(mp.exp(t))), float(sig)
        if activation == "gelu":
            big_phi = mp.erfc(-t / mp.sqrt(2)) / 2
            return float(t * big_phi), float(big_phi + t * mp.exp(-t * t / 2) / mp.sqrt(2 * mp.pi))
        if activation == "silu":
            return float(t * sig), float(sig * (1 + t * sig_minus))
    raise ValueError(f"unknown activation {activation!r}; known: {', '.join(activations.NAMES)}")


@dataclass(frozen=True)
class Point:
    """One grid point's measurement: what the implementation returned, the exact value, and the error."""

    activation: str
    dtype: str
    quantity: str  # "value" or "derivative"
    z: float  # the grid point (in the dtype)
    effective_z: float  # z as the activation received it: 0 where a subnormal z was treated as zero
    got: float
    exact: float
    ulps: float
    relative: float
    model_ratio: float  # error over the error model's bound (properties/tolerances.py); <= 1 is within it
    cls: str

    def describe(self, impl_name: str) -> str:
        """``torch elu(-1e-10) = 0.0 in float32; exact -1e-10 (1.7e+06 ulps, 1 relative; 4.2e+02 x the model)``."""
        prime = "'" if self.quantity == "derivative" else ""
        received = "" if self.effective_z == self.z else f", received as {self.effective_z!r}"
        return (
            f"{impl_name} {self.activation}{prime}({self.z!r}) = {self.got!r} in {self.dtype}{received}; "
            f"exact {self.exact!r} ({self.ulps:.3g} ulps, {self.relative:.3g} relative; "
            f"{self.model_ratio:.3g} x the error model)"
        )


def measure(impl: Any, activation: str, dtype) -> list[Point]:
    """Return every grid point's value and derivative measurement for ``impl`` (two contract calls).

    Points where the activation received an exact kink (a subnormal z treated as 0, for relu and leaky_relu)
    are left out: there the convention table decides (``properties/kink_conventions.py``).
    """
    dtype = np.dtype(dtype)
    z = grid(dtype)
    received = _received(impl, z)
    net = Network((z[None, :].copy(),), None, (activation,))
    one = np.ones((1, 1), dtype)
    with np.errstate(all="ignore"):
        out = np.asarray(impl.forward(net, one), dtype=dtype).reshape(-1)
        # y = out - 1, so that the residual out - y is 1 up to one rounding; non-finite outputs get y = 0.
        y = np.where(np.isfinite(out), out - dtype.type(1), dtype.type(0)).astype(dtype)
        grad = np.asarray(impl.loss_and_gradients(net, one, y[None, :]).weights[0], dtype=np.float64).reshape(-1)
    points = []
    for j, (zj, ej) in enumerate(zip(z.tolist(), received.tolist(), strict=True)):
        if ej == 0 and activation in activations.SUBDIFFERENTIALS:
            continue  # an exact kink: the convention table's business
        value, derivative = exact(activation, ej)
        residual = math.fsum([float(out[j]), -float(y[j])])  # exact out - y, correctly rounded to float64
        measured_derivative = grad[j] / residual if np.isfinite(out[j]) and residual != 0 else math.nan
        points.append(_point(activation, dtype, "value", zj, ej, float(out[j]), value))
        points.append(_point(activation, dtype, "derivative", zj, ej, float(measured_derivative), derivative))
    return points


def _received(impl: Any, z: np.ndarray) -> np.ndarray:
    """Return the pre-activations as ``impl`` computes ``1 * z``: its identity layer, one unit per point.

    Equal to z, except that subnormal points may arrive as zero (denormals treated as zero, or the product
    flushed). Anything else is not a question of accuracy but a broken identity layer.
    """
    net = Network((z[None, :].copy(),), None, ("identity",))
    with np.errstate(all="ignore"):
        got = np.asarray(impl.forward(net, np.ones((1, 1), z.dtype)), dtype=z.dtype).reshape(-1)
    subnormal = np.abs(z) < np.finfo(z.dtype).smallest_normal
    wrong = (got != z) & ~(subnormal & (got == 0))
    if wrong.any():
        j = int(np.argmax(wrong))
        raise AssertionError(
            f"{impl.name}: an identity layer computed 1 * {float(z[j])!r} = {float(got[j])!r} in {z.dtype.name} "
            "(one unit, no bias, x = [[1]]): the activation accuracy grid cannot be measured"
        )
    return got


def _point(activation, dtype, quantity, z, effective_z, got, exact_value) -> Point:
    ulp = float(np.spacing(dtype.type(abs(exact_value)))) if math.isfinite(exact_value) else math.inf
    ulp = max(ulp, float(np.finfo(dtype).smallest_subnormal))
    error = abs(got - exact_value) if math.isfinite(got) else math.inf
    u, tiny = unit_roundoff(dtype), float(np.finfo(dtype).smallest_normal)
    if quantity == "value":
        model = C_VALUE * u * (abs(exact_value) + abs(effective_z)) + tiny
    else:
        model = C_DERIVATIVE * u * (abs(exact_value) + 1) + tiny
    ulps = error / ulp
    ratio = error / model
    cls = "accurate" if ulps <= ACCURATE_ULPS else "within_model" if ratio <= 1 else "outside_model"
    relative = error / abs(exact_value) if exact_value != 0 else (0.0 if error == 0 else math.inf)
    return Point(activation, dtype.name, quantity, z, effective_z, got, exact_value, ulps, relative, ratio, cls)


def classes(points: list[Point]) -> dict[str, dict[str, str]]:
    """Return ``{quantity: {repr(z): class}}`` for the points that are not accurate (the compact record)."""
    found: dict[str, dict[str, str]] = {}
    for p in points:
        if p.cls != "accurate":
            found.setdefault(p.quantity, {})[repr(p.z)] = p.cls
    return found


def table(impl: Any) -> list[dict[str, Any]]:
    """Return one row per dtype x activation x quantity that ``impl`` supports: worst ulps, where, and counts.

    Rows: ``dtype, activation, quantity, worst_ulps, worst_relative, worst_at, got, exact, within_model,
    inaccurate_points, outside_model_points, points``.
    """
    rows = []
    for dtype in impl.dtypes:
        for activation in activations.NAMES:
            if activation not in impl.activations:
                continue
            points = measure(impl, activation, dtype)
            for quantity in QUANTITIES:
                mine = [p for p in points if p.quantity == quantity]
                worst = max(mine, key=lambda p: (p.ulps, abs(p.z)))
                rows.append(
                    {
                        "dtype": np.dtype(dtype).name,
                        "activation": activation,
                        "quantity": quantity,
                        "worst_ulps": worst.ulps,
                        "worst_relative": max(p.relative for p in mine),
                        "worst_at": worst.z,
                        "got": worst.got,
                        "exact": worst.exact,
                        "within_model": all(p.cls != "outside_model" for p in mine),
                        "inaccurate_points": sum(p.cls != "accurate" for p in mine),
                        "outside_model_points": sum(p.cls == "outside_model" for p in mine),
                        "points": len(mine),
                    }
                )
    return rows
