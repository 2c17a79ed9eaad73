"""NumPy backend: the reference network itself, exposed through the implementation contract."""

from __future__ import annotations

from mlp_crosscheck.reference import activations as _activations
from mlp_crosscheck.reference.network import Network
from mlp_crosscheck.reference.network import forward as _forward
from mlp_crosscheck.reference.network import loss_and_gradients as _loss_and_gradients

NAME = "numpy"
ACTIVATIONS = _activations.NAMES
DTYPES = ("float32", "float64")


def forward(weights, biases, activations, x):
    return _forward(Network(weights, biases, activations), x)[0]


def loss_and_input_gradients(weights, biases, activations, x, y):
    """Return ``(loss, dweights, dbiases, dx)`` from the hand-derived backward pass."""
    loss, g = _loss_and_gradients(Network(weights, biases, activations), x, y)
    return loss, list(g.weights), None if g.biases is None else list(g.biases), g.x


def loss_and_gradients(weights, biases, activations, x, y):
    loss, dws, dbs, _ = loss_and_input_gradients(weights, biases, activations, x, y)
    return loss, dws, dbs
