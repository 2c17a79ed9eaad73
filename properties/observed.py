"""What an implementation does where the maths leaves a choice, observed through the contract, and the drift
between that and the row recorded for its framework's version (``backends/recorded.py``).

Observed, per implementation (the row ``mlp-crosscheck conventions --record`` writes):
- ``kink_derivatives``: relu'(0) and leaky_relu'(0) (``kink_conventions.measured_derivative``);
- ``flushes_subnormals``: whether ``0.5 * tiny`` computes to 0 (``claims/underflow.py``);
- ``subnormal_inputs``: ``"zero"`` when a subnormal input or weight is read as 0 (``4 * (tiny / 2)`` computes to
  0, not ``2 tiny``: the product is normal, so only denormals-are-zero explains a 0), else ``"kept"``;
- ``accuracy``: the activation accuracy classes of the grid points that are not accurate (``accuracy.py``).
Each is measured in float64 where the implementation supports it (accuracy in every dtype it supports).

Strictness: an installed framework version without a recorded row fails the gate under the ``ci`` profile
or ``--strict-conventions`` (``STRICT``, set by the plugin); otherwise it is a warning in the summary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mlp_crosscheck.properties import accuracy, kink_conventions
from mlp_crosscheck.properties.claims.underflow import measured_flushes_subnormals
from mlp_crosscheck.reference import activations
from mlp_crosscheck.reference.network import Network

# Set by the plugin: the ci profile, or --strict-conventions.
STRICT = False
RECORD_COMMAND = "mlp-crosscheck conventions --record"


def measured_subnormal_inputs(impl: Any, dtype) -> str:
    """Return ``"zero"`` if ``impl`` reads a subnormal input or weight as 0, else ``"kept"``.

    One identity unit: ``x = tiny / 2`` with ``W = 4``, then ``x = 4`` with ``W = tiny / 2``. The exact product
    ``2 tiny`` is normal, so flushing results cannot make it 0; only reading the subnormal operand as 0 can.
    """
    dtype = np.dtype(dtype)
    half_tiny, four = dtype.type(np.finfo(dtype).smallest_normal / 2), dtype.type(4)
    readings = []
    for x, w in ((half_tiny, four), (four, half_tiny)):
        net = Network((np.full((1, 1), w, dtype),), None, ("identity",))
        out = impl.forward(net, np.full((1, 1), x, dtype))[0, 0]
        if out not in (0, 2 * np.finfo(dtype).smallest_normal):
            raise AssertionError(
                f"{impl.name}: {float(x)!r} * {float(w)!r} computed to {float(out)!r} in {dtype.name}, "
                "neither 2 * tiny nor 0 (one identity unit, no bias)"
            )
        readings.append(out == 0)
    return "zero" if any(readings) else "kept"


def behaviours(impl: Any) -> dict[str, Any]:
    """Return the row of behaviours ``impl`` shows now (the shape of a recorded row, JSON-able)."""
    dtype = kink_conventions.preferred_dtype(impl)
    kinked = [a for a in kink_conventions.KINKED if a in impl.activations]
    return {
        "kink_derivatives": {a: kink_conventions.measured_derivative(impl, a, dtype) for a in kinked},
        "flushes_subnormals": measured_flushes_subnormals(impl, dtype),
        "subnormal_inputs": measured_subnormal_inputs(impl, dtype),
        "accuracy": {
            np.dtype(d).name: {
                a: accuracy.classes(accuracy.measure(impl, a, d)) for a in activations.NAMES if a in impl.activations
            }
            for d in impl.dtypes
        },
    }


def differences(observed: dict[str, Any], recorded: dict[str, Any]) -> list[str]:
    """Return one line per behaviour that differs: ``accuracy float32 elu derivative at -40.0: observed
    within_model, recorded accurate``. Accuracy points absent from a row are accurate; only what ``observed``
    covers is compared (an implementation without float32 is not said to differ there)."""
    lines = []
    for name in ("kink_derivatives",):
        for activation, value in observed[name].items():
            if recorded[name].get(activation) != value:
                lines.append(f"{activation}'(0): observed {value!r}, recorded {recorded[name].get(activation)!r}")
    for name in ("flushes_subnormals", "subnormal_inputs"):
        if observed[name] != recorded[name]:
            lines.append(f"{name}: observed {observed[name]!r}, recorded {recorded[name]!r}")
    for dtype, by_activation in observed["accuracy"].items():
        for activation, mine in by_activation.items():
            lines += accuracy_differences(dtype, activation, mine, recorded["accuracy"].get(dtype, {}).get(activation))
    return lines


def accuracy_differences(dtype: str, activation: str, observed: dict, recorded: dict | None) -> list[str]:
    """Return the grid points whose accuracy class differs between two ``accuracy.classes`` records."""
    recorded = recorded or {}
    lines = []
    for quantity in accuracy.QUANTITIES:
        mine, theirs = observed.get(quantity, {}), recorded.get(quantity, {})
        for z in sorted(set(mine) | set(theirs), key=float):
            was, now = theirs.get(z, "accurate"), mine.get(z, "accurate")
            if was != now:
                prime = "'" if quantity == "derivative" else ""
                lines.append(f"{dtype} {activation}{prime}({z}): observed {now}, recorded {was}")
    return lines


def unrecorded_message(impl: Any, lookup: Any, found: list[str]) -> str:
    """The message for an installed version with no row: what differs from the nearest row, and the command."""
    shown = found[:12] + ([f"... and {len(found) - 12} more"] if len(found) > 12 else [])
    what = (
        "observed behaviours that differ from it:\n  " + "\n  ".join(shown)
        if found
        else "every observed behaviour equals that row's"
    )
    return (
        f"{impl.name}: {lookup.framework} {lookup.installed}{lookup.on()} has no recorded row of behaviours; the "
        f"nearest recorded version is {lookup.version} ({lookup.source}); {what}\n"
        f"Record the installed version's row: {record_command(impl.name, lookup.device)}"
    )


def record_command(backend: str, device: str = "cpu") -> str:
    """The command that records ``backend``'s row on ``device``."""
    return f"{RECORD_COMMAND} --backends {backend}" + ("" if device == "cpu" else f" --device {device}")
