"""NumPy backend: the reference network itself, exposed through the implementation contract.

``Batched`` is the batched reference in the networks' own dtype (in float64 it *is* the sweep's baseline).
"""

from __future__ import annotations

from mlp_crosscheck.backends import recorded
from mlp_crosscheck.reference import activations as _activations
from mlp_crosscheck.reference.batched import loss_and_gradients_batched
from mlp_crosscheck.reference.network import Network
from mlp_crosscheck.reference.network import forward as _forward
from mlp_crosscheck.reference.network import loss_and_gradients as _loss_and_gradients

NAME = "numpy"
ACTIVATIONS = _activations.NAMES
DTYPES = ("float32", "float64")
# Recorded behaviours (backends/recorded.json, keyed by numpy's version): the reference's own conventions, the left
# branch at a kink; gradual underflow and subnormal inputs kept; the accuracy of NumPy's functions.
RECORDED_ROW, RECORDED_WITH, KINK_DERIVATIVES, FLUSHES_SUBNORMALS, SUBNORMAL_INPUTS = recorded.declarations("numpy")


def forward(weights, biases, activations, x):
    return _forward(Network(weights, biases, activations), x)[0]


def loss_and_input_gradients(weights, biases, activations, x, y):
    """Return ``(loss, dweights, dbiases, dx)`` from the hand-derived backward pass."""
    loss, g = _loss_and_gradients(Network(weights, biases, activations), x, y)
    return loss, list(g.weights), None if g.biases is None else list(g.biases), g.x


def loss_and_gradients(weights, biases, activations, x, y):
    loss, dws, dbs, _ = loss_and_input_gradients(weights, biases, activations, x, y)
    return loss, dws, dbs


class Batched:
    """The batched reference (``reference.batched``) on a stack of networks."""

    def __init__(self, chunk: int) -> None:
        pass

    def evaluate(self, stack, x, y):
        return loss_and_gradients_batched(stack, x, y)


def activation_and_derivative(name: str, z):
    """Return ``sigma(z)`` and ``sigma'(z)`` as the reference computes them (hand-derived derivative)."""
    return _activations.apply(name, z), _activations.derivative(name, z)
