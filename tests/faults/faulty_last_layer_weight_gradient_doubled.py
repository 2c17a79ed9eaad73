"""Planted bug (family 2): the last layer's weight gradient is twice the true one."""

from _planted_network import contract

NAME = "planted-last-layer-gradient-doubled"

forward, _loss_and_gradients, _loss_and_input_gradients = contract()


def loss_and_input_gradients(weights, biases, names, x, y):
    loss, dws, dbs, dx = _loss_and_input_gradients(weights, biases, names, x, y)
    dws[-1] = 2 * dws[-1]
    return loss, dws, dbs, dx


def loss_and_gradients(weights, biases, names, x, y):
    return loss_and_input_gradients(weights, biases, names, x, y)[:3]
