"""The reference network for a stack of networks at once: the same maths as ``reference/network.py``, batched.

A stack holds ``N`` networks of one architecture, activations and dtype; every array carries a leading
network axis: weights ``(N, n_{l-1}, n_l)``, biases ``(N, n_l)``, inputs ``(N, batch, n_0)``, targets
``(N, batch, n_L)``. Network ``k`` of the stack computes exactly what ``reference.network`` computes for
``stack.network(k)``, up to the summation order of NumPy's stacked matmul (which the error bounds allow).

Design constraints a reader must not break:
- NumPy only, no framework imports: this is the independent side of the sweep's comparisons.
- The derivations are those of ``reference.network.backward``, line for line, with ``@`` a matmul over the
  trailing two axes of every network at once and ``.T`` the swap of those two axes (``_t``).
- The activations are ``reference.activations``' own functions: they are elementwise, so they apply to a
  stacked array unchanged, and the stack shares the per-network reference's numerics exactly.
- Every network's loss and gradients depend on that network's arrays only (nothing is summed across the
  network axis), so one network's values never leak into another's.
- Pure functions; inputs are never mutated. Dtype in = dtype out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from mlp_crosscheck.reference import activations
from mlp_crosscheck.reference.network import FLOAT_DTYPES, Network


@dataclass(frozen=True)
class NetworkStack:
    """``N`` networks of one architecture: weights ``(N, n_{l-1}, n_l)``, biases ``(N, n_l)`` or None."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...] | None
    activations: tuple[str, ...]

    def __post_init__(self) -> None:
        weights = tuple(np.asarray(w) for w in self.weights)
        biases = None if self.biases is None else tuple(np.asarray(b) for b in self.biases)
        names = (self.activations,) if isinstance(self.activations, str) else tuple(self.activations)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "biases", biases)
        object.__setattr__(self, "activations", names)
        _validate(weights, biases, names)

    @classmethod
    def stack(cls, networks: Sequence[Network]) -> NetworkStack:
        """Return the stack of ``networks`` (all of one architecture, activations, dtype and bias-ness)."""
        first = networks[0]
        biases = (
            None
            if first.biases is None
            else tuple(np.stack(b) for b in zip(*(n.biases for n in networks), strict=False))
        )
        return cls(
            tuple(np.stack(w) for w in zip(*(n.weights for n in networks), strict=False)), biases, first.activations
        )

    def network(self, k: int) -> Network:
        """Return network ``k`` of the stack as a ``reference.network.Network`` (copies, not views)."""
        biases = None if self.biases is None else tuple(b[k].copy() for b in self.biases)
        return Network(tuple(w[k].copy() for w in self.weights), biases, self.activations)

    def astype(self, dtype) -> NetworkStack:
        """Return the same stack with every parameter cast to ``dtype``."""
        biases = None if self.biases is None else tuple(b.astype(dtype) for b in self.biases)
        return NetworkStack(tuple(w.astype(dtype) for w in self.weights), biases, self.activations)

    @property
    def count(self) -> int:
        """``N``, the number of networks in the stack."""
        return self.weights[0].shape[0]

    @property
    def widths(self) -> tuple[int, ...]:
        """``(n_0, n_1, ..., n_L)``, shared by every network of the stack."""
        return (self.weights[0].shape[1], *(w.shape[2] for w in self.weights))

    @property
    def dtype(self) -> np.dtype:
        return self.weights[0].dtype

    @property
    def depth(self) -> int:
        return len(self.weights)


def _validate(weights, biases, names) -> None:
    if len(weights) == 0:
        raise ValueError("a network needs at least one weight matrix")
    n, dtype = weights[0].shape[0] if weights[0].ndim == 3 else None, weights[0].dtype
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"weights must be float32 or float64, got {dtype}")
    for i, w in enumerate(weights):
        if w.ndim != 3 or w.shape[0] != n:
            raise ValueError(f"weights[{i}] must be 3-D (N, n_in, n_out) with N = {n}, got shape {w.shape}")
        if w.dtype != dtype:
            raise TypeError(f"weights[{i}] is {w.dtype} but weights[0] is {dtype}: mix no dtypes")
        if i and w.shape[1] != weights[i - 1].shape[2]:
            raise ValueError(f"weights[{i}] has shape {w.shape}, but weights[{i - 1}] has {weights[i - 1].shape}")
    if biases is not None:
        if len(biases) != len(weights):
            raise ValueError(f"{len(weights)} weight stacks but {len(biases)} bias stacks")
        for i, (b, w) in enumerate(zip(biases, weights, strict=True)):
            if b.shape != (n, w.shape[2]) or b.dtype != dtype:
                raise ValueError(f"biases[{i}] must be {dtype} of shape {(n, w.shape[2])}, got {b.dtype} {b.shape}")
    if len(names) != len(weights):
        raise ValueError(f"{len(weights)} layers but {len(names)} activation names: give one per layer")
    for name in names:
        activations.get(name)  # raises a ValueError that lists the vocabulary


def check_input(stack: NetworkStack, x: np.ndarray, name: str = "x") -> np.ndarray:
    """Return ``x`` as an array after checking it is ``(N, batch, n_0)`` in the stack's dtype."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[0] != stack.count or x.shape[2] != stack.widths[0]:
        raise ValueError(f"{name} must have shape ({stack.count}, batch, {stack.widths[0]}), got {x.shape}")
    if x.dtype != stack.dtype:
        raise TypeError(f"{name} is {x.dtype} but the networks are {stack.dtype}; cast one of them explicitly")
    return x


def _t(a: np.ndarray) -> np.ndarray:
    """Return every network's matrix transposed: swap the trailing two axes (a view, no copy)."""
    return np.swapaxes(a, -1, -2)


def sum_over_batch(a: np.ndarray) -> np.ndarray:
    """Return ``a.sum(axis=1)`` for ``a`` of shape ``(N, batch, n)``: each network's sum over its batch rows.

    Written as an einsum because NumPy's reduction over a short middle axis pays a loop overhead per network
    (measured 4x slower than this einsum for batch 4, width 10); the sum is the same.
    """
    return np.einsum("nbj->nj", a)


class Cache(NamedTuple):
    """What the backward pass needs from the forward pass, stacked: each layer's input and pre-activation."""

    inputs: tuple[np.ndarray, ...]  # A_{l-1}, (N, batch, n_{l-1}) for l = 1..L
    preactivations: tuple[np.ndarray, ...]  # Z_l, (N, batch, n_l) for l = 1..L


class Gradients(NamedTuple):
    """dL/dW_l ``(N, n_{l-1}, n_l)``, dL/db_l ``(N, n_l)`` (None without biases), dL/dx ``(N, batch, n_0)``."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...] | None
    x: np.ndarray


def forward_batched(stack: NetworkStack, x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Return every network's output ``A_L`` ``(N, batch, n_L)`` on its own batch, and the cache."""
    a = check_input(stack, x)
    inputs, pre = [], []
    for layer, (w, name) in enumerate(zip(stack.weights, stack.activations, strict=True)):
        z = a @ w  # Z_l = A_{l-1} W_l (+ b_l), one matmul per network of the stack
        if stack.biases is not None:
            z = z + stack.biases[layer][:, None, :]  # b_l (N, n_l) broadcast over each network's batch rows
        inputs.append(a)
        pre.append(z)
        a = activations.apply(name, z)  # A_l = sigma_l(Z_l), elementwise
    return a, Cache(tuple(inputs), tuple(pre))


def loss_batched(out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return every network's ``0.5 * sum((out - y)**2)``, shape ``(N,)``, in ``out``'s dtype."""
    r = out - y
    return r.dtype.type(0.5) * np.sum(r * r, axis=(1, 2))  # sum over each network's batch and outputs only


class BackwardTrace(NamedTuple):
    """The backward pass's intermediate values, per layer ``l = 1..L``, for callers that reuse them."""

    derivatives: tuple[np.ndarray, ...]  # sigma_l'(Z_l)
    deltas: tuple[np.ndarray, ...]  # dL/dZ_l
    d_outputs: tuple[np.ndarray, ...]  # dL/dA_l


def backward_batched(
    stack: NetworkStack, cache: Cache, d_out: np.ndarray, kink_derivatives: Mapping[str, float] | None = None
) -> Gradients:
    """Backpropagate ``d_out = dL/dA_L`` ``(N, batch, n_L)`` through every network of the stack.

    The derivations are ``reference.network.backward``'s; see it for ``kink_derivatives``.
    """
    return backward_batched_traced(stack, cache, d_out, kink_derivatives)[0]


def backward_batched_traced(
    stack: NetworkStack, cache: Cache, d_out: np.ndarray, kink_derivatives: Mapping[str, float] | None = None
) -> tuple[Gradients, BackwardTrace]:
    """Return ``backward_batched``'s gradients and the per-layer values it computed on the way."""
    kink_derivatives = kink_derivatives or {}
    d_weights, d_biases, derivatives, deltas, d_outputs = [], [], [], [], []
    d_a = d_out  # dL/dA_L
    for layer in reversed(range(stack.depth)):
        a_prev, z = cache.inputs[layer], cache.preactivations[layer]
        name = stack.activations[layer]
        s = activations.derivative(name, z, kink_derivatives.get(name))  # sigma'(Z), elementwise
        delta = d_a * s  # dL/dZ = dL/dA * sigma'(Z)
        derivatives.append(s)
        deltas.append(delta)
        d_outputs.append(d_a)
        d_weights.append(_t(a_prev) @ delta)  # dL/dW = A_prev^T delta, per network (dZ_bj/dW_ij = A_bi)
        if stack.biases is not None:
            d_biases.append(sum_over_batch(delta))  # dL/db = sum over the network's batch of delta (b broadcast)
        d_a = delta @ _t(stack.weights[layer])  # dL/dA_prev = delta W^T, per network (dZ_bj/dA_bi = W_ij)
    gradients = Gradients(
        tuple(reversed(d_weights)),
        None if stack.biases is None else tuple(reversed(d_biases)),
        d_a,  # dL/dx = dL/dA_0
    )
    trace = BackwardTrace(tuple(reversed(derivatives)), tuple(reversed(deltas)), tuple(reversed(d_outputs)))
    return gradients, trace


def loss_and_gradients_batched(
    stack: NetworkStack, x: np.ndarray, y: np.ndarray, kink_derivatives: Mapping[str, float] | None = None
) -> tuple[np.ndarray, Gradients]:
    """Return every network's L2 loss ``(N,)`` and gradients (see ``backward_batched``)."""
    out, cache = forward_batched(stack, x)
    y = check_output_target(stack, out, y)
    # dL/dA_L = A_L - y for L = 0.5 sum (A_L - y)^2, each network's residual against its own targets
    return loss_batched(out, y), backward_batched(stack, cache, out - y, kink_derivatives)


def check_output_target(stack: NetworkStack, out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return ``y`` as an array after checking it matches the outputs' shape and dtype."""
    y = np.asarray(y)
    if y.shape != out.shape:
        raise ValueError(f"y must have shape {out.shape} (N, batch, {stack.widths[-1]}), got {y.shape}")
    if y.dtype != stack.dtype:
        raise TypeError(f"y is {y.dtype} but the networks are {stack.dtype}; cast one of them explicitly")
    return y
