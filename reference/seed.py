"""The blog post's experiment as data, and full-batch gradient descent over any contract implementation.

From the author's script (see ``shared/seed/README.md``): x's third column is a constant bias input, the
initial weights come from NumPy's legacy ``RandomState(1234)`` stream (frozen by NumPy, so reproducible
forever), the activation is identity on every layer, learning rate 1e-4, 150 epochs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from mlp_crosscheck.reference.network import Network

LEARNING_RATE = 1e-4
EPOCHS = 150
ARCHITECTURE = (3, 4, 10, 1)


def data(dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Return the post's ``(x, y)``: ``x`` has rank 2 (column 1 + column 3 = column 2), ``y = 8 * (1..4)``."""
    x = np.array([[1, 2, 1], [3, 4, 1], [5, 6, 1], [7, 8, 1]], dtype=dtype)
    y = np.array([[8], [16], [24], [32]], dtype=dtype)
    return x, y


def initial_network(activation: str = "identity", dtype=np.float64, seed: int = 1234) -> Network:
    """Return the post's initial 3-4-10-1 network: ``randn(3,4)``, ``randn(4,10)``, ``randn(10,1)`` in order."""
    # RandomState(seed) is the same legacy stream as np.random.seed(seed), without touching global state.
    rs = np.random.RandomState(seed)
    weights = tuple(rs.randn(m, n).astype(dtype) for m, n in itertools.pairwise(ARCHITECTURE))
    return Network(weights, None, (activation,) * (len(ARCHITECTURE) - 1))


# (net, x, y) -> (loss, dweights, dbiases, ...): an Implementation's checked loss_and_gradients, or the
# reference's reference.network.loss_and_gradients (whose (loss, Gradients) unpacks the same way).
GradientFn = Callable[[Network, np.ndarray, np.ndarray], tuple]


@dataclass(frozen=True)
class TrainingRun:
    """Every epoch's network (before its update), its cost, and the network after the last update."""

    networks: tuple[Network, ...]
    costs: np.ndarray  # costs[e] = loss of networks[e]
    final: Network


def train(loss_and_gradients: GradientFn, net: Network, x, y, lr=LEARNING_RATE, epochs=EPOCHS) -> TrainingRun:
    """Run full-batch gradient descent ``W <- W - lr * dL/dW`` with gradients from ``loss_and_gradients``.

    All gradients of an epoch are computed from the old weights, then every layer is updated, as in the
    post. The update itself is done here in NumPy for every implementation: ``w - lr * g`` is two correctly
    rounded IEEE operations, identical in any framework, so runs differ only where the gradients do.
    """
    lr = net.dtype.type(lr)  # keep float32 runs in float32
    networks, costs = [], []
    for _ in range(epochs):
        loss, dws, dbs = loss_and_gradients(net, x, y)[:3]
        networks.append(net)
        costs.append(loss)
        weights = tuple(w - lr * g for w, g in zip(net.weights, dws, strict=True))
        biases = None if net.biases is None else tuple(b - lr * g for b, g in zip(net.biases, dbs, strict=True))
        net = Network(weights, biases, net.activations)
    return TrainingRun(tuple(networks), np.array(costs), net)
