"""A correct, hand-written tanh/identity network in plain NumPy, following the implementation contract.

The sweep's tests use it as the ``--impl`` that must pass, and its planted sibling as the one that must fail.
"""

import numpy as np

NAME = "tanh_mlp"
ACTIVATIONS = ("identity", "tanh")
DTYPES = ("float32", "float64")


def _forward(weights, biases, activations, x):
    inputs, pre, a = [], [], x
    for layer, (w, name) in enumerate(zip(weights, activations, strict=True)):
        z = a @ w if biases is None else a @ w + biases[layer]
        inputs.append(a)
        pre.append(z)
        a = np.tanh(z) if name == "tanh" else z
    return a, inputs, pre


def forward(weights, biases, activations, x):
    return _forward(weights, biases, activations, x)[0]


def loss_and_input_gradients(weights, biases, activations, x, y):
    out, inputs, pre = _forward(weights, biases, activations, x)
    r = out - y
    loss = 0.5 * float(np.sum(r * r))
    d_a, dws, dbs = r, [], []  # dL/dA_L = A_L - y
    for layer in reversed(range(len(weights))):
        if activations[layer] == "tanh":
            t = np.tanh(pre[layer])
            delta = d_a * (1 - t * t)  # tanh' = 1 - tanh^2
        else:
            delta = d_a
        dws.append(inputs[layer].T @ delta)  # dL/dW = A_prev^T delta
        dbs.append(delta.sum(axis=0))  # dL/db = sum over the batch of delta
        d_a = delta @ weights[layer].T  # dL/dA_prev = delta W^T
    return loss, dws[::-1], None if biases is None else dbs[::-1], d_a


def loss_and_gradients(weights, biases, activations, x, y):
    return loss_and_input_gradients(weights, biases, activations, x, y)[:3]
