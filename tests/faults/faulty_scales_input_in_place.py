"""The forward pass doubles its input in place (x *= 2, an in-place rescaling), changing the caller's x.
Caught by: contract checks

Unlike faulty_clips_input_in_place, it writes on every call, whatever the input's size; the output is right.
Built on _planted_network.py (the reference's activations in a plain loop), as the other files built on it.
"""

from _planted_network import contract

NAME = "faulty_scales_input_in_place"

_forward, loss_and_gradients, loss_and_input_gradients = contract()


def forward(weights, biases, names, x):
    out = _forward(weights, biases, names, x)
    x *= 2  # BUG: in place: the caller's (here: the contract wrapper's copy of the) input changes
    return out
