"""Planted bug (family 8): forward always returns float64 (a float32 input is silently promoted)."""

import numpy as np
from _planted_network import contract

NAME = "planted-float64-output"

_forward, loss_and_gradients, loss_and_input_gradients = contract()


def forward(weights, biases, names, x):
    return _forward(weights, biases, names, x).astype(np.float64)
