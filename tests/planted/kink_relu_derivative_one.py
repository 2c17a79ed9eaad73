"""Planted bug (family 9): relu'(0) = 1 (``z >= 0``) while claiming the reference's convention (0)."""

from _planted_network import contract
from mlp_crosscheck.reference import activations

NAME = "planted-relu-derivative-one-at-zero"


def _derivative(name, z):
    if name == "relu":
        return (z >= 0).astype(z.dtype)
    return activations.derivative(name, z)


forward, loss_and_gradients, loss_and_input_gradients = contract(derivative=_derivative)
