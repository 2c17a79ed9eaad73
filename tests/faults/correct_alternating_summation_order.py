"""Correct but not bitwise reproducible: the forward pass sums its products in a different order on alternate calls.

This models an unordered parallel reduction (set order, GPU atomics, threaded BLAS): the same call can return
different bits, within the rounding-error bound. The order alternates (forward, then reversed) rather than
being random, so that the tests that use it are reproducible. It declares no DETERMINISTIC, so the suite
reports the bitwise difference (an expected failure) and fails it only under --require-bitwise-reproducible.
Built on _planted_network.py (the reference's activations in a plain loop) for its gradients.
"""

import itertools

import numpy as np
from _planted_network import contract
from mlp_crosscheck.reference import activations

NAME = "correct_alternating_summation_order"
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
