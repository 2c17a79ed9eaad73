"""Planted bug (family 8): gradient buffers are never zeroed, so each call adds to the previous ones."""

from _planted_network import contract

NAME = "planted-accumulates-gradients"

forward, _loss_and_gradients, _loss_and_input_gradients = contract()
_buffers: dict = {}


def loss_and_input_gradients(weights, biases, names, x, y):
    loss, dws, dbs, dx = _loss_and_input_gradients(weights, biases, names, x, y)
    key = tuple(w.shape for w in weights)
    if key in _buffers:
        dws = [g + old for g, old in zip(dws, _buffers[key], strict=True)]
    _buffers[key] = dws
    return loss, dws, dbs, dx


def loss_and_gradients(weights, biases, names, x, y):
    return loss_and_input_gradients(weights, biases, names, x, y)[:3]
