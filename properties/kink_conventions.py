"""The derivative of relu and leaky_relu exactly at the kink, z == 0, that an implementation is held to.

The derivative does not exist there, so every framework picks a convention, and they differ (torch's
leaky_relu'(0) is the slope, jax's is 1). A comparison at an exact kink goes through the convention rather
than filtering such points away. An implementation states its convention in a module-level
``KINK_DERIVATIVES = {"leaky_relu": 1.0}`` (the built-in backends declare theirs, with the framework version it
was measured with, beside their code); where it declares nothing, any valid choice is accepted: a derivative in
the subdifferential (``relu'(0)`` in [0, 1], ``leaky_relu'(0)`` in [0.01, 1]), measured through the contract and
then used as its convention; a value outside it is held to the reference's. Never by name: a user's correct
NumPy code saved as ``jax.py`` declares nothing and is held to nothing of jax's.
"""

from __future__ import annotations

import importlib.metadata
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
from mlp_crosscheck.reference import activations
from mlp_crosscheck.reference.network import Network

SUBDIFFERENTIALS = activations.SUBDIFFERENTIALS  # activation -> (left, right) derivative at its kink
KINKED = tuple(SUBDIFFERENTIALS)


def derivatives_at_kinks(impl: Any) -> dict[str, float]:
    """Return ``{activation: derivative at its kink}`` that ``impl`` (a ``backends.Implementation``) is held to.

    Its declared ``KINK_DERIVATIVES``, else its own valid choice (measured), else the reference's convention.
    """
    expected = dict(activations.KINK_CONVENTION)
    declared: Mapping[str, float] = getattr(impl.module, "KINK_DERIVATIVES", None) or {}
    # checked when loaded (backends.contract): kinked activations, subgradients only
    expected.update({k: float(v) for k, v in declared.items()})
    for activation in undeclared(impl):
        choice = measured_choice(impl, activation)
        if choice is not None:
            expected[activation] = choice
    return expected


def undeclared(impl: Any) -> tuple[str, ...]:
    """Return the kinked activations that ``impl`` implements without a declared convention."""
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


def preferred_dtype(impl: Any) -> str:
    """The dtype a behaviour is measured in: float64 where ``impl`` supports it, else float32."""
    return "float64" if "float64" in impl.dtypes else "float32"


def measured_choice(impl: Any, activation: str) -> float | None:
    """Return an undeclared implementation's own derivative at ``activation``'s kink if it is a valid choice.

    Measured in float64 where the implementation supports it, and snapped to the subdifferential's ends or the
    reference's convention when it equals one of them in that dtype (float32's 0.01 is 0.009999999776...).
    None when the value is not a valid choice: the implementation is then held to the reference's convention.
    """
    dtype = preferred_dtype(impl)
    value = measured_derivative(impl, activation, dtype)
    if not is_valid_choice(value, activation, dtype):
        return None
    for exact in (*SUBDIFFERENTIALS[activation], activations.KINK_CONVENTION[activation]):
        if value == float(np.dtype(dtype).type(exact)):
            return float(exact)
    return value


def overrides(impl: Any) -> dict[str, float]:
    """Return only the kink derivatives where ``impl``'s convention differs from the reference's.

    As ``activations.Kinks(conventions=...)``, the argument of ``reference.network.loss_and_gradients`` that
    makes the reference reproduce ``impl``'s convention.
    """
    return {k: v for k, v in derivatives_at_kinks(impl).items() if v != activations.KINK_CONVENTION[k]}


def recorded_with(impl: Any) -> str:
    """Return ``" (recorded with torch 2.13.0, installed 2.14.0)"`` for a module that declares ``RECORDED_WITH``.

    A built-in backend records the framework version its declared behaviours were measured with; a message
    about a changed behaviour names both versions. Empty for anyone else.
    """
    recorded = getattr(impl.module, "RECORDED_WITH", None)
    if recorded is None:
        return ""
    distribution, version = recorded
    try:
        installed = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        installed = "not installed"
    return f" (recorded with {distribution} {version}, installed {installed})"
