"""Planted bug (family 8): the input x is scaled in place (a classic in-place normalisation)."""

from _planted_network import contract

NAME = "planted-mutates-input"

_forward, loss_and_gradients, loss_and_input_gradients = contract()


def forward(weights, biases, names, x):
    out = _forward(weights, biases, names, x)
    x *= 2  # in place: the caller's (here: the contract wrapper's copy of the) input changes
    return out
