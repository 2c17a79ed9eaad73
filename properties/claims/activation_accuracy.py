"""Family 0's checks: activation accuracy on a fixed grid (the claims: ``properties/test_activation_accuracy.py``).

The grid, the exact values and the measurement through the contract are ``properties/accuracy.py``.
"""

from __future__ import annotations

import numpy as np
from mlp_crosscheck.properties import accuracy, helpers, observed
from mlp_crosscheck.properties.tolerances import C_DERIVATIVE, C_VALUE

SHOWN = 3  # points named in a failure message, worst first


def check_accuracy_within_error_model(impl, activation: str, dtype) -> None:
    """Assert every grid point's value and derivative error is within the error model of the network bounds."""
    points = accuracy.measure(impl, activation, dtype)
    outside = sorted((p for p in points if p.cls == "outside_model"), key=lambda p: -p.model_ratio)
    if outside:
        shown = "; ".join(p.describe(impl.name) for p in outside[1:SHOWN])
        raise AssertionError(
            f"{outside[0].describe(impl.name)}: beyond the error model every network bound assumes "
            f"(value: {C_VALUE:g} u (|sigma(z)| + |z|) + tiny; derivative: {C_DERIVATIVE:g} u (|sigma'(z)| + 1) + "
            f"tiny); {len(outside)} of the {len(points)} values and derivatives measured on the grid are outside it"
            + (f"; also {shown}" if shown else "")
        )


def check_accuracy_as_recorded(impl, activation: str, dtype) -> None:
    """Assert every grid point's accuracy class is the one recorded for the implementation's framework version.

    Against the installed version's row, a change fails. Against the nearest recorded version's (the installed
    one is unrecorded), it fails under the ci profile or ``--strict-conventions`` and is a warning otherwise.
    """
    lookup = impl.module.RECORDED_ROW  # the claim runs only where there is one
    dtype = np.dtype(dtype).name
    recorded = lookup.row["accuracy"].get(dtype, {}).get(activation, {})
    changed = [
        p
        for p in accuracy.measure(impl, activation, dtype)
        if p.cls != recorded.get(p.quantity, {}).get(repr(p.z), "accurate")
    ]
    if not changed:
        return
    changed.sort(key=lambda p: -p.ulps)
    lines = [
        f"{p.describe(impl.name)}; recorded {recorded.get(p.quantity, {}).get(repr(p.z), 'accurate')}" for p in changed
    ]
    where = f"{lookup.framework} {lookup.version}" + (
        "" if lookup.exact else f" (installed {lookup.installed}{lookup.on()})"
    )
    message = (
        f"{lines[0]} with {where}: the accuracy class of {len(changed)} grid point(s) changed"
        + ("; also " + "; ".join(lines[1:SHOWN]) if len(lines) > 1 else "")
        + f". If the framework changed on purpose, record its row: {observed.record_command(impl.name, lookup.device)}"
    )
    if lookup.exact or observed.STRICT:
        raise AssertionError(message)
    helpers.warn(message)
