"""Planted bug (family 8): softplus as log(1 + exp(z)), which overflows to inf where the reference is finite."""

import numpy as np
from _planted_network import contract
from mlp_crosscheck.reference import activations

NAME = "planted-naive-softplus"


def _value(name, z):
    if name != "softplus":
        return activations.apply(name, z)
    with np.errstate(over="ignore"):
        return np.log(1 + np.exp(z))


forward, loss_and_gradients, loss_and_input_gradients = contract(value=_value)
