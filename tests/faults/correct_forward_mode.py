"""Correct: forward mode, Jacobians pushed forward from each layer and contracted with the residual.

Tangent propagation only, no reverse sweep.

dOut/dZ_l is built by pushing diag(sigma_l'(Z_l)) through layers l+1..L, T <- (T W_k) * sigma_k'(Z_k); then
dL/dZ_l = dOut/dZ_l . (A_L - y) per example, dL/dW_l = A_(l-1)^T dL/dZ_l, and dL/dx pushes the identity from
the input. Must pass the whole suite: the same products, associated in the other order.
"""

import math

import numpy as np
from scipy import special

NAME = "correct_forward_mode"

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


def _push(tangent, weights, activations, pre, start):
    """Push per-example tangents (batch, k, n_start) through layers start..L-1: returns (batch, k, n_L)."""
    for layer in range(start, len(weights)):
        tangent = (tangent @ weights[layer]) * _derivative(activations[layer], pre[layer])[:, None, :]
    return tangent


def loss_and_input_gradients(weights, biases, activations, x, y):
    out, inputs, pre = _forward(weights, biases, activations, x)
    r = out - y
    loss = float(0.5 * np.sum(r * r))
    d_weights, d_biases = [], []
    for layer in range(len(weights)):
        s = _derivative(activations[layer], pre[layer])  # (batch, n_l)
        n = s.shape[1]
        jac = _push(np.eye(n, dtype=s.dtype)[None, :, :] * s[:, None, :], weights, activations, pre, layer + 1)
        delta = np.einsum("bjk,bk->bj", jac, r)  # dL/dZ_l = dOut/dZ_l . (A_L - y)
        d_weights.append(inputs[layer].T @ delta)
        d_biases.append(delta.sum(axis=0))
    eye = np.broadcast_to(np.eye(x.shape[1], dtype=x.dtype), (x.shape[0], x.shape[1], x.shape[1]))
    d_x = np.einsum("bik,bk->bi", _push(eye, weights, activations, pre, 0), r)  # dL/dx = dOut/dx . (A_L - y)
    return loss, d_weights, None if biases is None else d_biases, d_x


def loss_and_gradients(weights, biases, activations, x, y):
    loss, d_weights, d_biases, _ = loss_and_input_gradients(weights, biases, activations, x, y)
    return loss, d_weights, d_biases
