"""dL/dW_1 comes back scaled by 1 + 1e-6: invisible to the eye, far beyond float64's rounding-error bound.
Caught by: gradient agreement

Declares identity and tanh in float64 only, so that tests/test_sweep.py can also show an implementation
skipped with its reason where a sweep asks for more; there, `mlp-crosscheck sweep` reports it for (nearly)
every network, each with the seed and index that rebuild it.
"""

import math

import numpy as np
from scipy import special

NAME = "faulty_first_layer_gradient_off_by_a_part_per_million"
ACTIVATIONS = ("identity", "tanh")
DTYPES = ("float64",)

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _sigmoid(z):
    e = np.exp(-np.abs(z))  # e <= 1, so neither branch overflows
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


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
        return np.where(z > 0, z, 0.01 * z)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
    if name == "softplus":
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))  # log(1 + e^z) without overflow
    if name == "gelu":
        return z * (0.5 * special.erfc(-z * _SQRT_HALF))  # z Phi(z)
    if name == "silu":
        return z * _sigmoid(z)
    raise ValueError(f"unknown activation {name!r}")


def _derivative(name, z):
    if name == "identity":
        return np.ones_like(z)
    if name == "tanh":
        e = np.exp(-2 * np.abs(z))
        return 4 * e / ((1 + e) * (1 + e))  # 1 / cosh^2 z
    if name == "sigmoid":
        e = np.exp(-np.abs(z))
        return e / ((1 + e) * (1 + e))  # sigma (1 - sigma)
    if name == "relu":
        return (z > 0).astype(z.dtype)  # relu'(0) = 0
    if name == "leaky_relu":
        return np.where(z > 0, np.ones_like(z), np.full_like(z, 0.01))
    if name == "elu":
        return np.where(z > 0, np.ones_like(z), np.exp(np.minimum(z, 0)))
    if name == "softplus":
        return _sigmoid(z)
    if name == "gelu":
        return 0.5 * special.erfc(-z * _SQRT_HALF) + z * np.exp(-0.5 * z * z) * _INV_SQRT_2PI  # Phi + z phi
    if name == "silu":
        return _sigmoid(z) * (1 + z * _sigmoid(-z))  # sigma + z sigma (1 - sigma)
    raise ValueError(f"unknown activation {name!r}")


def _forward(weights, biases, activations, x):
    """Return the output and, per layer, its input A_(l-1) and pre-activation Z_l."""
    a, inputs, pre = x, [], []
    for layer, (w, name) in enumerate(zip(weights, activations, strict=True)):
        z = a @ w  # Z = A_prev W + b
        if biases is not None:
            z = z + biases[layer]
        inputs.append(a)
        pre.append(z)
        a = _activate(name, z)  # A = sigma(Z)
    return a, inputs, pre


def forward(weights, biases, activations, x):
    return _forward(weights, biases, activations, x)[0]


def loss_and_input_gradients(weights, biases, activations, x, y):
    out, inputs, pre = _forward(weights, biases, activations, x)
    r = out - y
    loss = float(0.5 * np.sum(r * r))  # L = 0.5 sum (A_L - y)^2
    d_weights, d_biases = [None] * len(weights), [None] * len(weights)
    d_a = r  # dL/dA_L = A_L - y
    for layer in reversed(range(len(weights))):
        delta = d_a * _derivative(activations[layer], pre[layer])  # dL/dZ = dL/dA * sigma'(Z)
        d_weights[layer] = inputs[layer].T @ delta  # dL/dW = A_prev^T delta
        d_biases[layer] = delta.sum(axis=0)  # dL/db = sum of delta over the batch
        d_a = delta @ weights[layer].T  # dL/dA_prev = delta W^T
    d_weights[0] = d_weights[0] * (1 + 1e-6)  # BUG: a part per million too large
    return loss, d_weights, None if biases is None else d_biases, d_a


def loss_and_gradients(weights, biases, activations, x, y):
    loss, d_weights, d_biases, _ = loss_and_input_gradients(weights, biases, activations, x, y)
    return loss, d_weights, d_biases
