"""Planted bug (family 1): gelu's forward is the tanh approximation, not z Phi(z) (jax.nn.gelu's default)."""

import math

import numpy as np
from _planted_network import contract
from mlp_crosscheck.reference import activations

NAME = "planted-gelu-tanh-approximation"


def _value(name, z):
    if name != "gelu":
        return activations.apply(name, z)
    inner = math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)
    return (0.5 * z * (1 + np.tanh(inner))).astype(z.dtype)


forward, loss_and_gradients, loss_and_input_gradients = contract(value=_value)
