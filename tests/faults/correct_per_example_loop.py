"""Correct: a per-example loop, one example at a time as 1-D vectors, forward and backward.

Each example's gradients are added to running totals, the way a hand-written SGD loop often computes them.

Must pass the whole suite: it computes the same sums as the vectorised form, grouped per example.
"""

import math

import numpy as np
from scipy import special

NAME = "correct_per_example_loop"

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


def _forward_one(weights, biases, activations, x):
    """Forward pass of one example x of shape (n_0,): the output and each layer's input and pre-activation."""
    a, inputs, pre = x, [], []
    for layer, (w, name) in enumerate(zip(weights, activations, strict=True)):
        z = a @ w  # z_j = sum_i a_i W_ij
        if biases is not None:
            z = z + biases[layer]
        inputs.append(a)
        pre.append(z)
        a = _activate(name, z)
    return a, inputs, pre


def forward(weights, biases, activations, x):
    out = np.empty((x.shape[0], weights[-1].shape[1]), dtype=x.dtype)
    for b in range(x.shape[0]):
        out[b] = _forward_one(weights, biases, activations, x[b])[0]
    return out


def loss_and_input_gradients(weights, biases, activations, x, y):
    loss = x.dtype.type(0)
    d_weights = [np.zeros_like(w) for w in weights]
    d_biases = [np.zeros_like(w[0]) for w in weights]
    d_x = np.empty_like(x)
    for b in range(x.shape[0]):
        out, inputs, pre = _forward_one(weights, biases, activations, x[b])
        r = out - y[b]
        loss += 0.5 * np.sum(r * r)  # L = sum over examples of 0.5 |a_L - y|^2
        d_a = r
        for layer in reversed(range(len(weights))):
            delta = d_a * _derivative(activations[layer], pre[layer])  # dL/dz = dL/da * sigma'(z)
            d_weights[layer] += np.outer(inputs[layer], delta)  # dL/dW += a_prev^T delta
            d_biases[layer] += delta  # dL/db += delta
            d_a = weights[layer] @ delta  # dL/da_prev = W delta
        d_x[b] = d_a
    return float(loss), d_weights, None if biases is None else d_biases, d_x


def loss_and_gradients(weights, biases, activations, x, y):
    loss, d_weights, d_biases, _ = loss_and_input_gradients(weights, biases, activations, x, y)
    return loss, d_weights, d_biases
