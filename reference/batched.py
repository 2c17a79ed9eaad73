"""The reference network for a stack of networks at once: ``reference.network``'s code, on stacked arrays.

A stack holds ``N`` networks of one architecture, activations and dtype; every array carries a leading
network axis: weights ``(N, n_{l-1}, n_l)``, biases ``(N, n_l)``, inputs ``(N, batch, n_0)``, targets
``(N, batch, n_L)``. The forward and backward passes and the checks are ``reference.network``'s own (written
over leading axes), so network ``k`` computes what ``reference.network`` computes for ``stack.network(k)``,
up to the summation order of NumPy's stacked matmul (which the error bounds allow).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
from mlp_crosscheck.reference.activations import REFERENCE_KINKS, Kinks
from mlp_crosscheck.reference.network import (
    Cache,
    Gradients,
    Network,
    Parameters,
    _backward,
    _loss,
    _loss_and_gradients,
    check_input,
    check_output_target,
    forward,
    sum_over_batch,
)

__all__ = [
    "BackwardTrace",
    "Cache",
    "Gradients",
    "NetworkStack",
    "backward_batched",
    "backward_batched_traced",
    "check_input",
    "check_output_target",
    "forward_batched",
    "loss_and_gradients_batched",
    "loss_batched",
    "sum_over_batch",
]


class BackwardTrace(NamedTuple):
    """The backward pass's intermediate values, per layer ``l = 1..L``, for callers that reuse them."""

    derivatives: tuple[np.ndarray, ...]  # sigma_l'(Z_l)
    deltas: tuple[np.ndarray, ...]  # delta_l = dL/dZ_l
    d_outputs: tuple[np.ndarray, ...]  # dL/dA_l


@dataclass(frozen=True)
class NetworkStack(Parameters):
    """``N`` networks of one architecture: weights ``(N, n_{l-1}, n_l)``, biases ``(N, n_l)`` or None."""

    LEAD: ClassVar[tuple[str, ...]] = ("N",)
    NOUN: ClassVar[str] = "the stack"

    @classmethod
    def stack(cls, networks: Sequence[Network]) -> NetworkStack:
        """Return the stack of ``networks`` (all of one architecture, activations, dtype and bias-ness)."""
        first = networks[0]
        biases = (
            None
            if first.biases is None
            else tuple(np.stack(b) for b in zip(*(n.biases for n in networks), strict=True))
        )
        return cls(
            tuple(np.stack(w) for w in zip(*(n.weights for n in networks), strict=True)), biases, first.activations
        )

    def network(self, k: int) -> Network:
        """Return network ``k`` of the stack as a ``reference.network.Network`` (copies, not views)."""
        biases = None if self.biases is None else tuple(b[k].copy() for b in self.biases)
        return Network(tuple(w[k].copy() for w in self.weights), biases, self.activations)

    @property
    def count(self) -> int:
        """``N``, the number of networks in the stack."""
        return self.weights[0].shape[0]


def forward_batched(stack: NetworkStack, x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Return every network's output ``A_L`` ``(N, batch, n_L)`` on its own batch, and the cache."""
    return forward(stack, x)


def loss_batched(out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return every network's ``0.5 * sum((out - y)**2)``, shape ``(N,)``, in ``out``'s dtype."""
    return _loss(out, y)


def backward_batched(stack: NetworkStack, cache: Cache, d_out: np.ndarray, kinks: Kinks = REFERENCE_KINKS) -> Gradients:
    """Backpropagate ``d_out = dL/dA_L`` ``(N, batch, n_L)`` through every network of the stack.

    The derivations are ``reference.network.backward``'s; see it for ``kinks``.
    """
    return _backward(stack, cache, d_out, kinks)[0]


def backward_batched_traced(
    stack: NetworkStack, cache: Cache, d_out: np.ndarray, kinks: Kinks = REFERENCE_KINKS
) -> tuple[Gradients, BackwardTrace]:
    """Return ``backward_batched``'s gradients and the per-layer values it computed on the way."""
    gradients, steps = _backward(stack, cache, d_out, kinks)
    return gradients, BackwardTrace(*zip(*reversed(steps), strict=True))


def loss_and_gradients_batched(
    stack: NetworkStack, x: np.ndarray, y: np.ndarray, kinks: Kinks = REFERENCE_KINKS
) -> tuple[np.ndarray, Gradients]:
    """Return every network's L2 loss ``(N,)`` and gradients (see ``backward_batched``)."""
    return _loss_and_gradients(stack, x, y, kinks)
