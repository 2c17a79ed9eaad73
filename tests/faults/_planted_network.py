"""A plain NumPy network, the reference's activation functions in a loop, shared by the files built on it.

Each of those files (``correct_planted_network.py``, the control, and the ones whose docstring says "Built on
_planted_network.py") builds its contract functions with ``contract(...)`` and changes one thing: an
activation's value or derivative, a gradient after the fact, or how the call treats its inputs and state;
tests/test_properties_catch_bugs.py also builds hand-derivation slips from it. This module is not itself a
contract implementation (no ``forward`` at module level), and its leading underscore keeps it out of the
kill matrix, which runs only ``faulty_*.py`` and ``correct_*.py``.
"""

from __future__ import annotations

import numpy as np
from mlp_crosscheck.reference import activations


def forward_pass(weights, biases, names, x, value):
    a, inputs, pre = x, [], []
    for layer, (w, name) in enumerate(zip(weights, names, strict=True)):
        z = a @ w if biases is None else a @ w + biases[layer]
        inputs.append(a)
        pre.append(z)
        a = value(name, z)
    return a, inputs, pre


def backward_pass(weights, biases, names, inputs, pre, d_out, derivative, bias_sum, propagate):
    d, dws, dbs = d_out, [], []
    for layer in reversed(range(len(weights))):
        delta = d * derivative(names[layer], pre[layer])
        dws.append(inputs[layer].T @ delta)
        dbs.append(bias_sum(delta))
        d = propagate(delta, weights[layer])  # dL/dA_prev = delta W^T
    return dws[::-1], None if biases is None else dbs[::-1], d


def contract(
    value=activations.apply,
    derivative=activations.derivative,
    bias_sum=lambda delta: delta.sum(axis=0),
    propagate=lambda delta, w: delta @ w.T,
):
    """Return ``(forward, loss_and_gradients, loss_and_input_gradients)`` built from the given pieces."""

    def forward(weights, biases, names, x):
        return forward_pass(weights, biases, names, x, value)[0]

    def loss_and_input_gradients(weights, biases, names, x, y):
        out, inputs, pre = forward_pass(weights, biases, names, x, value)
        r = out - y
        dws, dbs, dx = backward_pass(weights, biases, names, inputs, pre, r, derivative, bias_sum, propagate)
        return float(r.dtype.type(0.5) * np.sum(r * r)), dws, dbs, dx

    def loss_and_gradients(weights, biases, names, x, y):
        return loss_and_input_gradients(weights, biases, names, x, y)[:3]

    return forward, loss_and_gradients, loss_and_input_gradients
