"""Correct: extended precision, computed in np.longdouble and rounded back to the input's dtype.

On x86 np.longdouble is the 80-bit format with a 64-bit significand.

Where np.longdouble is no wider than float64 (e.g. some ARM builds) it degenerates to a float64 computation,
still correct for float64 and float32. SciPy's erfc has no long-double loop: gelu evaluates it in float64 and
corrects for the argument's rounding, so gelu is accurate to a float64 ulp or two (far below float32 rounding).
Must pass the whole suite: being more accurate than the reference is within its bounds.
"""

import math

import numpy as np
from scipy import special

NAME = "correct_extended_precision"

_WIDE = np.longdouble
_SQRT_HALF = np.sqrt(_WIDE(0.5))
_PI = _WIDE(math.pi) + _WIDE(1.2246467991473532e-16)  # pi to long-double accuracy (float64 pi + its remainder)
_INV_SQRT_2PI = 1 / np.sqrt(2 * _PI)
_TWO_OVER_SQRT_PI = 2 / np.sqrt(_PI)


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _phi_cdf(z):
    # SciPy has no long-double erfc. Rounding the argument t = -z / sqrt 2 to float64 would cost ~t^2 float64
    # ulps in the tail (erfc's condition number is 2 t^2), so add back the first-order Taylor term:
    # erfc(t + d) = erfc(t) - 2/sqrt(pi) e^(-t^2) d + O(d^2), with d the long-double rounding remainder.
    t_wide = -z * _SQRT_HALF
    t = np.asarray(t_wide, dtype=np.float64)
    return 0.5 * (special.erfc(t) - _TWO_OVER_SQRT_PI * np.exp(-t_wide * t_wide) * (t_wide - t))


def _activate(name, z):
    if name == "identity":
        return z
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, _WIDE("0.01") * z)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
    if name == "softplus":
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    if name == "gelu":
        return z * _phi_cdf(z)
    if name == "silu":
        return z * _sigmoid(z)
    raise ValueError(f"unknown activation {name!r}")


def _derivative(name, z):
    if name == "identity":
        return np.ones_like(z)
    if name == "tanh":
        e = np.exp(-2 * np.abs(z))
        return 4 * e / ((1 + e) * (1 + e))
    if name == "sigmoid":
        e = np.exp(-np.abs(z))
        return e / ((1 + e) * (1 + e))
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z > 0, np.ones_like(z), np.full_like(z, _WIDE("0.01")))
    if name == "elu":
        return np.where(z > 0, np.ones_like(z), np.exp(np.minimum(z, 0)))
    if name == "softplus":
        return _sigmoid(z)
    if name == "gelu":
        return _phi_cdf(z) + z * np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    if name == "silu":
        return _sigmoid(z) * (1 + z * _sigmoid(-z))
    raise ValueError(f"unknown activation {name!r}")


def _wide_forward(weights, biases, activations, x):
    a, inputs, pre = x, [], []
    for layer, (w, name) in enumerate(zip(weights, activations, strict=True)):
        z = a @ w
        if biases is not None:
            z = z + biases[layer]
        inputs.append(a)
        pre.append(z)
        a = _activate(name, z)
    return a, inputs, pre


def _widen(weights, biases, *arrays):
    return (
        [w.astype(_WIDE) for w in weights],
        None if biases is None else [b.astype(_WIDE) for b in biases],
        *(a.astype(_WIDE) for a in arrays),
    )


def forward(weights, biases, activations, x):
    wide_w, wide_b, wide_x = _widen(weights, biases, x)
    return _wide_forward(wide_w, wide_b, activations, wide_x)[0].astype(x.dtype)


def loss_and_input_gradients(weights, biases, activations, x, y):
    wide_w, wide_b, wide_x, wide_y = _widen(weights, biases, x, y)
    out, inputs, pre = _wide_forward(wide_w, wide_b, activations, wide_x)
    r = out - wide_y
    loss = float(0.5 * np.sum(r * r))
    d_weights, d_biases = [None] * len(weights), [None] * len(weights)
    d_a = r
    for layer in reversed(range(len(weights))):
        delta = d_a * _derivative(activations[layer], pre[layer])
        d_weights[layer] = (inputs[layer].T @ delta).astype(x.dtype)
        d_biases[layer] = delta.sum(axis=0).astype(x.dtype)
        d_a = delta @ wide_w[layer].T
    return loss, d_weights, None if biases is None else d_biases, d_a.astype(x.dtype)


def loss_and_gradients(weights, biases, activations, x, y):
    loss, d_weights, d_biases, _ = loss_and_input_gradients(weights, biases, activations, x, y)
    return loss, d_weights, d_biases
