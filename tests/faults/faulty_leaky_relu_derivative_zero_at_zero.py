"""leaky_relu'(0) = 0, below the slope: outside leaky_relu's subdifferential at the kink, [0.01, 1].
Caught by: kink conventions

Only shows where a pre-activation is exactly zero. Built on _planted_network.py.
"""

import numpy as np
from _planted_network import contract
from mlp_crosscheck.reference import activations

NAME = "faulty_leaky_relu_derivative_zero_at_zero"


def _derivative(name, z):
    d = activations.derivative(name, z)
    return np.where(z == 0, z.dtype.type(0), d) if name == "leaky_relu" else d  # BUG: 0 is not in [0.01, 1]


forward, loss_and_gradients, loss_and_input_gradients = contract(derivative=_derivative)
