"""Correct: a different but exact formulation of every activation and derivative.

Each formula avoids overflow and cancellation for every finite input, so it stays within a few ulps of the
true value (relative to the value itself), for huge and tiny inputs alike:
- tanh z = sign(z) * -m / (2 + m), m = expm1(-2|z|) (no e^z - 1 cancellation near 0, no overflow);
- sigmoid z = (1 + tanh(|z|/2)) / 2 for z >= 0 and e^z sigmoid(-z) for z < 0 (1 + tanh never cancels);
- relu = max(z, 0) with the Heaviside step H(z, 0) as derivative; leaky_relu = max(z, 0.01 z);
- elu z = tanh(z/2) (1 + e^z) for z <= 0 (that is e^z - 1, accurate near 0);
- softplus = logaddexp(0, z); gelu = z * ndtr(z) (ndtr is accurate in the lower tail);
- tanh' = 4 sigmoid(2z) sigmoid(-2z), sigmoid' = sigmoid(z) sigmoid(-z) (products, never 1 - s).
Must pass the whole suite.
"""

import math

import numpy as np
from scipy import special

NAME = "correct_alternative_formulas"

_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _tanh(z):
    m = np.expm1(-2 * np.abs(z))  # e^(-2|z|) - 1 in (-1, 0]
    return np.sign(z) * (-m / (2 + m))  # (1 - e^(-2|z|)) / (1 + e^(-2|z|))


def _sigmoid(z):
    s = 0.5 * (1 + np.tanh(0.5 * np.abs(z)))  # sigmoid(|z|) >= 1/2: 1 + tanh adds numbers of one sign
    return np.where(z >= 0, s, np.exp(-np.abs(z)) * s)  # sigmoid(z) = e^z sigmoid(-z)


def _activate(name, z):
    if name == "identity":
        return z
    if name == "tanh":
        return _tanh(z)
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.maximum(z, 0.01 * z)
    if name == "elu":
        n = np.minimum(z, 0)
        return np.where(z > 0, z, np.tanh(0.5 * n) * (1 + np.exp(n)))  # e^n - 1 = tanh(n/2) (e^n + 1)
    if name == "softplus":
        return np.logaddexp(0, z)
    if name == "gelu":
        return z * special.ndtr(z)
    if name == "silu":
        return z * _sigmoid(z)
    raise ValueError(f"unknown activation {name!r}")


def _derivative(name, z):
    if name == "identity":
        return np.ones_like(z)
    if name == "tanh":
        return 4 * _sigmoid(2 * z) * _sigmoid(-2 * z)  # 1 - tanh^2 = 4 sigma(2z) sigma(-2z)
    if name == "sigmoid":
        return _sigmoid(z) * _sigmoid(-z)
    if name == "relu":
        return np.heaviside(z, 0)  # H(0) = 0: relu'(0) = 0
    if name == "leaky_relu":
        return np.where(z > 0, np.ones_like(z), np.full_like(z, 0.01))
    if name == "elu":
        return np.where(z > 0, np.ones_like(z), np.exp(np.minimum(z, 0)))
    if name == "softplus":
        return _sigmoid(z)
    if name == "gelu":
        return special.ndtr(z) + z * np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    if name == "silu":
        s = _sigmoid(z)
        return s + z * s * _sigmoid(-z)
    raise ValueError(f"unknown activation {name!r}")


def _forward(weights, biases, activations, x):
    a, inputs, pre = x, [], []
    for layer, (w, name) in enumerate(zip(weights, activations, strict=True)):
        z = a @ w
        if biases is not None:
            z = z + biases[layer]
        inputs.append(a)
        pre.append(z)
        a = _activate(name, z)
    return a, inputs, pre


def forward(weights, biases, activations, x):
    return _forward(weights, biases, activations, x)[0]


def loss_and_input_gradients(weights, biases, activations, x, y):
    out, inputs, pre = _forward(weights, biases, activations, x)
    r = out - y
    loss = float(0.5 * np.sum(r * r))
    d_weights, d_biases = [None] * len(weights), [None] * len(weights)
    d_a = r
    for layer in reversed(range(len(weights))):
        delta = d_a * _derivative(activations[layer], pre[layer])
        d_weights[layer] = inputs[layer].T @ delta
        d_biases[layer] = delta.sum(axis=0)
        d_a = delta @ weights[layer].T
    return loss, d_weights, None if biases is None else d_biases, d_a


def loss_and_gradients(weights, biases, activations, x, y):
    loss, d_weights, d_biases, _ = loss_and_input_gradients(weights, biases, activations, x, y)
    return loss, d_weights, d_biases
