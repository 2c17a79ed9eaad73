"""Planted bug (family 2): dL/dA_prev = delta @ W instead of delta @ W^T wherever W is square (a transpose
bug that runs without a shape error exactly when the layer is square)."""

from _planted_network import contract

NAME = "planted-untransposed-backward"


def _propagate(delta, w):
    return delta @ w if w.shape[0] == w.shape[1] else delta @ w.T


forward, loss_and_gradients, loss_and_input_gradients = contract(propagate=_propagate)
