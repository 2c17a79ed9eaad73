"""Planted bug: dL/dW_1 comes back scaled by 1 + 1e-6 -- invisible to the eye, tens of millions of float64
rounding-error bounds away, so the sweep must report it for (nearly) every network, each with the seed and
index that rebuild it. Everything else is ``tanh_mlp``'s correct computation.
"""

import tanh_mlp

NAME = "first_layer_gradient_off_by_a_part_per_million"
ACTIVATIONS = tanh_mlp.ACTIVATIONS
DTYPES = ("float64",)
forward = tanh_mlp.forward


def loss_and_gradients(weights, biases, activations, x, y):
    loss, dws, dbs = tanh_mlp.loss_and_gradients(weights, biases, activations, x, y)
    dws[0] = dws[0] * (1 + 1e-6)
    return loss, dws, dbs
