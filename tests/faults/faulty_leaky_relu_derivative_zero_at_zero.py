"""Planted bug (family 9): leaky_relu'(0) = 0, below the slope: outside the subdifferential at the kink, [0.01, 1]."""

import numpy as np
from _planted_network import contract
from mlp_crosscheck.reference import activations

NAME = "planted-leaky-derivative-zero"


def _derivative(name, z):
    d = activations.derivative(name, z)
    return np.where(z == 0, z.dtype.type(0), d) if name == "leaky_relu" else d


forward, loss_and_gradients, loss_and_input_gradients = contract(derivative=_derivative)
