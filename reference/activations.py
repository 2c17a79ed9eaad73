"""The activation vocabulary: each function's value and derivative, in NumPy and SciPy only.

Invariants:
- No framework imports here: this module is the independent side of every comparison.
- Every formula is written so that it neither overflows nor cancels for any finite input, in float32 and
  float64; dtype in = dtype out (the Python scalars below never promote a float32 array).
- Derivatives at kinks follow one documented convention (see ``KINK_CONVENTION``):
  relu'(0) = 0 and leaky_relu'(0) = 0.01, i.e. at the kink we take the left-hand branch. That is what
  PyTorch returns for both (its backward tests ``z > 0``). JAX agrees for relu but returns 1 for
  leaky_relu'(0) (``jnp.where(x >= 0, ...)``); the property suite records that difference in its kink table
  instead of hiding it. We chose the left branch for leaky_relu so that relu and leaky_relu share one rule,
  and so that leaky_relu with slope 0 is exactly relu, derivative included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from scipy import special

# Python floats, not NumPy scalars: under NEP 50 a np.float64 scalar would promote float32 arrays.
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
LEAKY_RELU_SLOPE = 0.01
ELU_ALPHA = 1.0


def _stable_sigmoid(z: np.ndarray) -> np.ndarray:
    # sigma(z) = 1 / (1 + e^-z) for z >= 0 and e^z / (1 + e^z) for z < 0: with e = exp(-|z|) <= 1 neither
    # branch can overflow, and neither subtracts nearly equal numbers.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _identity(z):
    return z.copy()


def _d_identity(z):
    return np.ones_like(z)


def _tanh(z):
    return np.tanh(z)


def _d_tanh(z):
    # tanh' = 1 - tanh^2 cancels for large |z|; 1/cosh^2 = 4 e / (1 + e)^2 with e = exp(-2|z|) does not.
    e = np.exp(-2 * np.abs(z))
    return 4 * e / ((1 + e) * (1 + e))


def _sigmoid(z):
    return _stable_sigmoid(z)


def _d_sigmoid(z):
    # sigma' = sigma (1 - sigma) = e / (1 + e)^2 with e = exp(-|z|) (sigma' is even): no 1 - sigma cancellation.
    e = np.exp(-np.abs(z))
    return e / ((1 + e) * (1 + e))


def _relu(z):
    return np.where(z > 0, z, np.zeros_like(z))


def _d_relu(z):
    # Convention: relu'(0) = 0 (left branch), as torch and jax.
    return (z > 0).astype(z.dtype)


def _leaky_relu(z):
    return np.where(z > 0, z, z * z.dtype.type(LEAKY_RELU_SLOPE))


def _d_leaky_relu(z):
    # Convention: leaky_relu'(0) = slope (left branch), as torch; jax returns 1 there (see module docstring).
    return np.where(z > 0, np.ones_like(z), np.full_like(z, LEAKY_RELU_SLOPE))


def _elu(z):
    # expm1 keeps e^z - 1 accurate near 0; the minimum keeps exp from overflowing on the branch not taken.
    return np.where(z > 0, z, ELU_ALPHA * np.expm1(np.minimum(z, 0)))


def _d_elu(z):
    # elu'(z) = 1 for z > 0, alpha e^z otherwise; continuous at 0 when alpha = 1.
    return np.where(z > 0, np.ones_like(z), ELU_ALPHA * np.exp(np.minimum(z, 0)))


def _softplus(z):
    # log(1 + e^z) = max(z, 0) + log1p(e^-|z|): no overflow, and log1p keeps the small tail accurate.
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _d_softplus(z):
    # d/dz log(1 + e^z) = sigma(z).
    return _stable_sigmoid(z)


def _gelu(z):
    # Exact GELU z * Phi(z); Phi(z) = erfc(-z / sqrt 2) / 2 has no cancellation for z << 0, where
    # (1 + erf(z / sqrt 2)) / 2 would subtract nearly equal numbers.
    return z * (0.5 * special.erfc(-z * _SQRT_HALF))


def _d_gelu(z):
    # d/dz z Phi(z) = Phi(z) + z phi(z), phi(z) = exp(-z^2 / 2) / sqrt(2 pi).
    phi = np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return 0.5 * special.erfc(-z * _SQRT_HALF) + z * phi


def _silu(z):
    return z * _stable_sigmoid(z)


def _d_silu(z):
    # d/dz z sigma(z) = sigma(z) + z sigma(z) sigma(-z) = sigma(z) (1 + z sigma(-z)); sigma(-z) replaces the
    # cancelling 1 - sigma(z).
    return _stable_sigmoid(z) * (1 + z * _stable_sigmoid(-z))


@dataclass(frozen=True)
class Activation:
    """One activation: its value, its derivative, and where (if anywhere) it has a kink."""

    name: str
    value: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray]
    kink: float | None = None  # a point where the derivative jumps; the convention there is the left branch


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("identity", _identity, _d_identity),
        Activation("tanh", _tanh, _d_tanh),
        Activation("sigmoid", _sigmoid, _d_sigmoid),
        Activation("relu", _relu, _d_relu, kink=0.0),
        Activation("leaky_relu", _leaky_relu, _d_leaky_relu, kink=0.0),
        Activation("elu", _elu, _d_elu),
        Activation("softplus", _softplus, _d_softplus),
        Activation("gelu", _gelu, _d_gelu),
        Activation("silu", _silu, _d_silu),
    )
}
NAMES: tuple[str, ...] = tuple(ACTIVATIONS)

# What the reference returns for the derivative exactly at each kink.
KINK_CONVENTION: dict[str, float] = {"relu": 0.0, "leaky_relu": LEAKY_RELU_SLOPE}


# activation -> its subdifferential at the kink, (left derivative, right derivative): every valid derivative
# there. relu and leaky_relu are linear on each side, so the one-sided derivatives are those at -1 and +1.
def _one_sided_slopes(act) -> tuple[float, float]:
    left, right = sorted(float(d) for d in act.derivative(np.array([-1.0, 1.0])))
    return left, right


SUBDIFFERENTIALS: dict[str, tuple[float, float]] = {
    name: _one_sided_slopes(act) for name, act in ACTIVATIONS.items() if act.kink is not None
}


def get(name: str) -> Activation:
    """Return the activation called ``name``.

    Raises:
        ValueError: ``name`` is not in the vocabulary; the message lists the names that are.
    """
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; the vocabulary is: {', '.join(NAMES)}") from None


def apply(name: str, z: np.ndarray) -> np.ndarray:
    """Return ``sigma(z)`` for the activation ``name``, in ``z``'s dtype."""
    return get(name).value(z).astype(z.dtype, copy=False)


def derivative(name: str, z: np.ndarray, at_kink: float | None = None) -> np.ndarray:
    """Return ``sigma'(z)`` for the activation ``name``, in ``z``'s dtype.

    Args:
        at_kink: if given, the derivative to return where ``z`` is exactly at the activation's kink, instead of
            ``KINK_CONVENTION`` (used to compare with a framework whose convention differs there).
    """
    act = get(name)
    d = act.derivative(z).astype(z.dtype, copy=False)
    if at_kink is not None and act.kink is not None:
        d = np.where(z == act.kink, z.dtype.type(at_kink), d)
    return d


class Kinks(NamedTuple):
    """Which derivative to take where ``Z`` alone does not decide it: at a kink, or near enough to one that
    rounding may put an implementation's ``Z`` on either side.

    Attributes:
        conventions: activation name -> its derivative exactly at its kink, instead of ``KINK_CONVENTION``
            (to reproduce a framework whose convention differs there).
        branches: per layer, None or an array of ``Z_l``'s shape holding ``sigma'(Z_l)`` where it is not NaN:
            the derivative of a branch chosen by the caller, used instead of the derivative at ``Z_l``.
    """

    conventions: Mapping[str, float] = MappingProxyType({})
    branches: Sequence[np.ndarray | None] | None = None

    def derivative(self, layer: int, name: str, z: np.ndarray) -> np.ndarray:
        """Return ``sigma'(Z)`` of layer ``layer`` (activation ``name``) with these choices, in ``z``'s dtype."""
        slope = derivative(name, z, self.conventions.get(name))
        chosen = None if self.branches is None else self.branches[layer]  # per near-kink element; NaN elsewhere
        if chosen is not None:
            slope = np.where(np.isnan(chosen), slope, chosen).astype(slope.dtype)
        return slope


REFERENCE_KINKS = Kinks()  # the reference's own conventions, no branch chosen
