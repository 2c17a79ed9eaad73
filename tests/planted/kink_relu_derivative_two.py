"""Planted bug (family 9): relu'(0) = 2, outside relu's subdifferential at the kink, [0, 1]."""

import numpy as np
from _planted_network import contract
from mlp_crosscheck.reference import activations

NAME = "planted-relu-derivative-two-at-zero"


def _derivative(name, z):
    if name == "relu":
        return np.where(z == 0, 2.0, z > 0).astype(z.dtype)
    return activations.derivative(name, z)


forward, loss_and_gradients, loss_and_input_gradients = contract(derivative=_derivative)
