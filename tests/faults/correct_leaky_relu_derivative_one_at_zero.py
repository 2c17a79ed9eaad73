"""Not a bug: jax's leaky_relu'(0) = 1, undeclared; a valid choice (the subdifferential is [0.01, 1])."""

import numpy as np
from _planted_network import contract
from mlp_crosscheck.reference import activations

NAME = "planted-undeclared-leaky-convention"


def _derivative(name, z):
    d = activations.derivative(name, z)
    return np.where(z == 0, z.dtype.type(1), d) if name == "leaky_relu" else d


forward, loss_and_gradients, loss_and_input_gradients = contract(derivative=_derivative)
