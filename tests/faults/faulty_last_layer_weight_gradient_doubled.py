"""The last layer's weight gradient is twice the true one; every other gradient, and the loss, are right.
Caught by: gradient agreement

Unlike faulty_gradient_doubled (every gradient doubled), dx and the biases' gradients are right.
Built on _planted_network.py.
"""

from _planted_network import contract

NAME = "faulty_last_layer_weight_gradient_doubled"

forward, _loss_and_gradients, _loss_and_input_gradients = contract()


def loss_and_input_gradients(weights, biases, names, x, y):
    loss, dws, dbs, dx = _loss_and_input_gradients(weights, biases, names, x, y)
    dws[-1] = 2 * dws[-1]  # BUG: doubled
    return loss, dws, dbs, dx


def loss_and_gradients(weights, biases, names, x, y):
    return loss_and_input_gradients(weights, biases, names, x, y)[:3]
