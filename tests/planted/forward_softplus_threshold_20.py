"""Planted bug (family 1): softplus(z) = z for z > 20, as torch's default threshold (off by log1p(e^-20) ~ 2e-9)."""

import numpy as np
from _planted_network import contract
from mlp_crosscheck.reference import activations

NAME = "planted-softplus-threshold-20"


def _value(name, z):
    value = activations.apply(name, z)
    return np.where(z > 20, z, value) if name == "softplus" else value


forward, loss_and_gradients, loss_and_input_gradients = contract(value=_value)
