"""'Denormal protection' at the wrong threshold: every gradient entry below 1e-30 in magnitude is zeroed.
Caught by: underflow

Flushing subnormals (below float32's 1.2e-38) is admitted; 1e-30 is a normal number, so this loses real
values. Only shows where gradients are that small. Built on _planted_network.py.
"""

import numpy as np
from _planted_network import contract

NAME = "faulty_gradients_flushed_below_1e30"

forward, _loss_and_gradients, _loss_and_input_gradients = contract()


def _flush(a):
    return np.where(np.abs(a) < 1e-30, np.zeros_like(a), a)  # BUG: 1e-30 is no subnormal threshold


def loss_and_input_gradients(weights, biases, names, x, y):
    loss, dws, dbs, dx = _loss_and_input_gradients(weights, biases, names, x, y)
    return loss, [_flush(g) for g in dws], None if dbs is None else [_flush(g) for g in dbs], _flush(dx)


def loss_and_gradients(weights, biases, names, x, y):
    return loss_and_input_gradients(weights, biases, names, x, y)[:3]
