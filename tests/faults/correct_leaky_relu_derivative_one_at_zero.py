"""leaky_relu'(0) = 1 (jax's choice), undeclared: a valid subgradient (the subdifferential at 0 is [0.01, 1]).

torch and the reference choose 0.01; an implementation that declares nothing may choose any value of the
subdifferential, which the suite measures, accepts and reports (``leaky_relu'(0) = 1 (not declared; ...)``).
Built on _planted_network.py (the reference's activations in a plain loop).
"""

import numpy as np
from _planted_network import contract
from mlp_crosscheck.reference import activations

NAME = "correct_leaky_relu_derivative_one_at_zero"


def _derivative(name, z):
    d = activations.derivative(name, z)
    return np.where(z == 0, z.dtype.type(1), d) if name == "leaky_relu" else d


forward, loss_and_gradients, loss_and_input_gradients = contract(derivative=_derivative)
