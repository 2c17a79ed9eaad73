"""Planted bug (family 8): the forward pass sums its products in a different order on alternate calls.

This models an unordered parallel reduction: the same call can return different bits. The order alternates
(forward, then reversed) rather than being random, so that the test that plants it is reproducible.
"""

import itertools

import numpy as np
from _planted_network import contract
from mlp_crosscheck.reference import activations

NAME = "planted-nondeterministic"
_calls = itertools.count()


def forward(weights, biases, names, x):
    reverse = next(_calls) % 2 == 1
    a = x
    for layer, (w, name) in enumerate(zip(weights, names, strict=True)):
        order = range(w.shape[0])
        z = np.zeros((a.shape[0], w.shape[1]), a.dtype)
        for k in reversed(order) if reverse else order:  # one rounding per term
            z = z + a[:, k : k + 1] * w[k : k + 1, :]
        if biases is not None:
            z = z + biases[layer]
        a = activations.apply(name, z)
    return a


_unused_forward, loss_and_gradients, loss_and_input_gradients = contract()
