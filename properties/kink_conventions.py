"""What each framework returns for the derivative of relu and leaky_relu exactly at the kink, z == 0.

The derivative does not exist there, so every framework picks a convention; they differ, and a comparison
at an exact kink must go through this table rather than filter such points away. The table was recorded by
calling each backend's own autodiff through the contract (``properties/test_kink_conventions.py`` does the
same on every run, so a framework that changes its convention fails that test and the table is updated on
purpose, never silently):

    activation   reference (numpy)   torch 2.13.0          jax 0.10.2
    relu         0                   0                     0
    leaky_relu   0.01 (the slope)    0.01 (backward z > 0) 1.0 (jnp.where(x >= 0, x, slope * x))

``-0.0`` follows the same convention everywhere (each rule compares ``z > 0`` or ``z >= 0``, and ``-0.0 == 0``),
but whether a matrix product yields ``-0.0`` or ``+0.0`` depends on the BLAS, so the table is about ``+0.0``.

Design constraints a reader must not break:
- Keys are the built-in backends (``numpy``, the reference; ``torch``; ``jax``), and a row applies to an
  implementation by its identity (``Implementation.builtin``), never by its ``NAME`` or file name: a user's
  correct NumPy code saved as ``jax.py`` is not held to jax's conventions.
- Anyone else's implementation may declare its own convention in a module-level
  ``KINK_DERIVATIVES = {"leaky_relu": 1.0}``. Where it declares nothing, any valid choice is accepted: a
  derivative in the subdifferential (``relu'(0)`` in [0, 1], ``leaky_relu'(0)`` in [0.01, 1]), measured
  through the contract and then used as its convention; a value outside it is held to the reference's.
- Each framework's row records the version it was measured with; ``installed_version`` says what is here now.
"""

from __future__ import annotations

import importlib.metadata
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
from mlp_crosscheck.reference import activations
from mlp_crosscheck.reference.network import Network

# implementation name -> {activation: derivative at exactly 0}
TABLE: dict[str, dict[str, float]] = {
    "numpy": dict(activations.KINK_CONVENTION),  # the reference: the left branch (relu'(0) = 0, slope)
    "torch": {"relu": 0.0, "leaky_relu": 0.01},
    "jax": {"relu": 0.0, "leaky_relu": 1.0},
}

# implementation name -> the distribution whose version the row was recorded with, and that version.
# (The numpy row is this repository's reference, not NumPy's: it has no version of its own.)
RECORDED_WITH: dict[str, tuple[str, str]] = {
    "torch": ("torch", "2.13.0"),
    "jax": ("jax", "0.10.2"),
}

SUBDIFFERENTIALS = activations.SUBDIFFERENTIALS  # activation -> (left, right) derivative at its kink
KINKED = tuple(SUBDIFFERENTIALS)


def derivatives_at_kinks(impl: Any) -> dict[str, float]:
    """Return ``{activation: derivative at its kink}`` that ``impl`` is expected to use.

    Args:
        impl: a built-in backend's name, or a ``backends.Implementation`` (its row is its built-in identity's,
            if any; a module-level ``KINK_DERIVATIVES`` mapping, if it defines one, overrides the row).
    """
    row = impl if isinstance(impl, str) else impl.builtin
    expected = dict(TABLE.get(row or "numpy", TABLE["numpy"]))
    declared: Mapping[str, float] | None = None
    if not isinstance(impl, str):
        declared = getattr(impl.module, "KINK_DERIVATIVES", None)
    if declared:  # checked when loaded (backends.contract): kinked activations, subgradients only
        expected.update({k: float(v) for k, v in declared.items()})
    if not isinstance(impl, str):
        for activation in undeclared(impl):
            choice = measured_choice(impl, activation)
            if choice is not None:
                expected[activation] = choice
    return expected


def undeclared(impl: Any) -> tuple[str, ...]:
    """Return the kinked activations that ``impl`` implements without a recorded or declared convention."""
    if impl.builtin is not None:
        return ()
    declared = getattr(impl.module, "KINK_DERIVATIVES", None) or {}
    return tuple(a for a in KINKED if a in impl.activations and a not in declared)


def is_valid_choice(value: float, activation: str, dtype: Any) -> bool:
    """Return whether ``value`` lies in ``activation``'s subdifferential at the kink (its ends rounded to ``dtype``)."""
    lo, hi = SUBDIFFERENTIALS[activation]
    rounded = np.dtype(dtype).type
    return min(lo, float(rounded(lo))) <= value <= max(hi, float(rounded(hi)))


_MEASURED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def measured_derivative(impl: Any, activation: str, dtype: Any) -> float:
    """Return ``sigma'(0)`` as ``impl``'s own code computes it, through the contract (measured once per dtype).

    One unit, no bias: ``x = 1``, ``W = 0``, so ``z = 1 * 0 = +0.0`` exactly; ``y = -1`` and ``sigma(0) = 0``
    give ``dL/dA = sigma(0) - y = 1``, hence ``dL/dW = x * sigma'(0) * 1 = sigma'(0)``.
    """
    dtype = np.dtype(dtype)
    cache = _MEASURED.setdefault(impl, {})
    if (activation, dtype.name) not in cache:
        net = Network((np.zeros((1, 1), dtype),), None, (activation,))
        x, y = np.ones((1, 1), dtype), -np.ones((1, 1), dtype)
        cache[(activation, dtype.name)] = float(impl.loss_and_gradients(net, x, y).weights[0][0, 0])
    return cache[(activation, dtype.name)]


def measured_choice(impl: Any, activation: str) -> float | None:
    """Return an undeclared implementation's own derivative at ``activation``'s kink if it is a valid choice.

    Measured in float64 where the implementation supports it, and snapped to the subdifferential's ends or the
    reference's convention when it equals one of them in that dtype (float32's 0.01 is 0.009999999776...).
    None when the value is not a valid choice: the implementation is then held to the reference's convention.
    """
    dtype = "float64" if "float64" in impl.dtypes else "float32"
    value = measured_derivative(impl, activation, dtype)
    if not is_valid_choice(value, activation, dtype):
        return None
    for exact in (*SUBDIFFERENTIALS[activation], activations.KINK_CONVENTION[activation]):
        if value == float(np.dtype(dtype).type(exact)):
            return float(exact)
    return value


def overrides(impl: Any) -> dict[str, float]:
    """Return only the kink derivatives where ``impl``'s convention differs from the reference's.

    This is the ``kink_derivatives`` argument of ``reference.network.loss_and_gradients`` that makes the
    reference reproduce ``impl``'s convention.
    """
    return {k: v for k, v in derivatives_at_kinks(impl).items() if v != activations.KINK_CONVENTION[k]}


def _base_version(version: str) -> str:
    return version.split("+", 1)[0]  # "2.13.0+cpu" -> "2.13.0": the local build tag changes no maths


def installed_version(impl_name: str | None) -> str | None:
    """Return the installed version of the framework behind ``impl_name``'s row, or None if it has no row."""
    if impl_name not in RECORDED_WITH:
        return None
    distribution, _ = RECORDED_WITH[impl_name]
    try:
        return _base_version(importlib.metadata.version(distribution))
    except importlib.metadata.PackageNotFoundError:
        return None


def recorded_version(impl_name: str | None) -> str | None:
    """Return the framework version ``impl_name``'s row was recorded with, or None if it has no row."""
    return RECORDED_WITH[impl_name][1] if impl_name in RECORDED_WITH else None
