"""The reference network: forward pass, L2 loss and hand-derived, vectorised backprop, in NumPy only.

Design constraints a reader must not break:
- No framework imports: every backend is compared against this module, so it must not share their code.
- Row-vector convention, as in the seed: ``Z_l = A_{l-1} @ W_l + b_l``, ``A_l = sigma_l(Z_l)``, ``A_0 = x``,
  ``W_l`` of shape ``(n_{l-1}, n_l)``, ``b_l`` of shape ``(n_l,)``; the activation is applied after every
  layer, the last one included.
- Loss is ``0.5 * sum((A_L - y)**2)``: summed over the batch, not averaged.
- Dtype in = dtype out: a float32 network on float32 input computes in float32 throughout.
- Pure functions; inputs are never mutated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from mlp_crosscheck.reference import activations

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass(frozen=True)
class Network:
    """A fully connected network: weights, optional biases and one activation name per layer."""

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

    @property
    def widths(self) -> tuple[int, ...]:
        """``(n_0, n_1, ..., n_L)``."""
        return (self.weights[0].shape[0], *(w.shape[1] for w in self.weights))

    @property
    def dtype(self) -> np.dtype:
        return self.weights[0].dtype

    @property
    def depth(self) -> int:
        return len(self.weights)

    def astype(self, dtype) -> Network:
        """Return the same network with every parameter cast to ``dtype``."""
        cast = lambda arrays: None if arrays is None else tuple(a.astype(dtype) for a in arrays)
        return Network(cast(self.weights), cast(self.biases), self.activations)


def _validate(weights, biases, names) -> None:
    if len(weights) == 0:
        raise ValueError("a network needs at least one weight matrix")
    dtype = weights[0].dtype
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"weights must be float32 or float64, got {dtype}")
    for i, w in enumerate(weights):
        if w.ndim != 2:
            raise ValueError(f"weights[{i}] must be 2-D (n_in, n_out), got shape {w.shape}")
        if w.dtype != dtype:
            raise TypeError(f"weights[{i}] is {w.dtype} but weights[0] is {dtype}: mix no dtypes")
        if i and w.shape[0] != weights[i - 1].shape[1]:
            raise ValueError(
                f"weights[{i}] has shape {w.shape}, but weights[{i - 1}] has {weights[i - 1].shape}: "
                f"expected {weights[i - 1].shape[1]} rows"
            )
    if biases is not None:
        if len(biases) != len(weights):
            raise ValueError(f"{len(weights)} weight matrices but {len(biases)} bias vectors")
        for i, (b, w) in enumerate(zip(biases, weights, strict=True)):
            if b.shape != (w.shape[1],):
                raise ValueError(f"biases[{i}] must have shape ({w.shape[1]},), got {b.shape}")
            if b.dtype != dtype:
                raise TypeError(f"biases[{i}] is {b.dtype} but weights[0] is {dtype}: mix no dtypes")
    if len(names) != len(weights):
        raise ValueError(f"{len(weights)} layers but {len(names)} activation names: give one per layer")
    for name in names:
        activations.get(name)  # raises a ValueError that lists the vocabulary


def check_input(net: Network, x: np.ndarray, name: str = "x") -> np.ndarray:
    """Return ``x`` as an array after checking its shape and dtype against ``net``.

    Raises:
        ValueError: ``x`` is not ``(batch, n_0)``.
        TypeError: ``x``'s dtype is not the network's.
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != net.widths[0]:
        raise ValueError(f"{name} must have shape (batch, {net.widths[0]}), got {x.shape}")
    if x.dtype != net.dtype:
        raise TypeError(f"{name} is {x.dtype} but the network is {net.dtype}; cast one of them explicitly")
    return x


class Cache(NamedTuple):
    """What the backward pass needs from the forward pass: each layer's input and pre-activation."""

    inputs: tuple[np.ndarray, ...]  # A_{l-1} for l = 1..L
    preactivations: tuple[np.ndarray, ...]  # Z_l for l = 1..L


class Gradients(NamedTuple):
    """dL/dW_l, dL/db_l (None for a bias-free network) and dL/dx."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...] | None
    x: np.ndarray


def forward(net: Network, x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Return the network's output ``A_L`` for the batch ``x`` and the cache for ``backward``."""
    a = check_input(net, x)
    inputs, pre = [], []
    for layer, (w, name) in enumerate(zip(net.weights, net.activations, strict=True)):
        z = a @ w  # Z_l = A_{l-1} W_l (+ b_l)
        if net.biases is not None:
            z = z + net.biases[layer]
        inputs.append(a)
        pre.append(z)
        a = activations.apply(name, z)  # A_l = sigma_l(Z_l)
    return a, Cache(tuple(inputs), tuple(pre))


def loss(out: np.ndarray, y: np.ndarray) -> float:
    """Return ``0.5 * sum((out - y)**2)`` as a Python float (computed in ``out``'s dtype)."""
    r = out - y
    return float(r.dtype.type(0.5) * np.sum(r * r))


def backward(
    net: Network,
    cache: Cache,
    d_out: np.ndarray,
    kink_derivatives: Mapping[str, float] | None = None,
    branches: Sequence[np.ndarray | None] | None = None,
) -> Gradients:
    """Backpropagate ``d_out = dL/dA_L`` through the network; return every gradient.

    Each line's comment is its derivation; ``*`` is elementwise, ``@`` the matrix product.

    Args:
        kink_derivatives: activation name -> the derivative to use exactly at its kink, overriding
            ``activations.KINK_CONVENTION`` (to reproduce another framework's documented convention).
        branches: per layer, None or an array of Z_l's shape holding sigma'(Z_l) where it is not NaN: the
            derivative of a branch chosen by the caller (for a Z_l so close to a kink that an implementation
            may land on either side), used instead of the derivative at Z_l.
    """
    kink_derivatives = kink_derivatives or {}
    d_weights, d_biases = [], []
    d_a = d_out  # dL/dA_L
    for layer in reversed(range(net.depth)):
        a_prev, z = cache.inputs[layer], cache.preactivations[layer]
        name = net.activations[layer]
        slope = activations.derivative(name, z, kink_derivatives.get(name))  # sigma'(Z)
        if branches is not None and branches[layer] is not None:
            slope = np.where(np.isnan(branches[layer]), slope, branches[layer]).astype(slope.dtype)
        delta = d_a * slope  # dL/dZ = dL/dA * sigma'(Z)
        d_weights.append(a_prev.T @ delta)  # dL/dW = A_prev^T delta  (Z = A_prev W: dZ_bj/dW_ij = A_bi)
        if net.biases is not None:
            d_biases.append(delta.sum(axis=0))  # dL/db = sum_batch delta  (b is broadcast over rows)
        d_a = delta @ net.weights[layer].T  # dL/dA_prev = delta W^T  (dZ_bj/dA_bi = W_ij)
    return Gradients(
        tuple(reversed(d_weights)),
        None if net.biases is None else tuple(reversed(d_biases)),
        d_a,  # dL/dx = dL/dA_0
    )


def loss_and_gradients(
    net: Network,
    x: np.ndarray,
    y: np.ndarray,
    kink_derivatives: Mapping[str, float] | None = None,
    branches: Sequence[np.ndarray | None] | None = None,
) -> tuple[float, Gradients]:
    """Return the L2 loss of ``net`` on ``(x, y)`` and its gradients (``backward`` explains the options)."""
    out, cache = forward(net, x)
    y = check_output_target(net, out, y)
    d_out = out - y  # dL/dA_L = A_L - y for L = 0.5 sum (A_L - y)^2
    return loss(out, y), backward(net, cache, d_out, kink_derivatives, branches)


def check_output_target(net: Network, out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return ``y`` as an array after checking it matches the output's shape and dtype."""
    y = np.asarray(y)
    if y.shape != out.shape:
        raise ValueError(f"y must have shape {out.shape} (batch, {net.widths[-1]}), got {y.shape}")
    if y.dtype != net.dtype:
        raise TypeError(f"y is {y.dtype} but the network is {net.dtype}; cast one of them explicitly")
    return y


class NotCollapsibleError(ValueError):
    """Raised when asking for the single linear map of a network with a nonlinear activation."""


def collapse(net: Network) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(K, c)`` with ``forward(net, x) == x @ K + c`` for an all-identity network.

    ``K = W_1 @ ... @ W_L`` and ``c = b_1 W_2...W_L + b_2 W_3...W_L + ... + b_L`` (zero without biases):
    by induction, ``A_l = x W_1...W_l + c_l`` with ``c_l = c_{l-1} W_l + b_l``.

    Raises:
        NotCollapsibleError: a layer's activation is not ``identity``.
    """
    nonlinear = [f"layer {i + 1}: {n}" for i, n in enumerate(net.activations) if n != "identity"]
    if nonlinear:
        raise NotCollapsibleError(
            "only an all-identity network collapses to one affine map x @ K + c; this one has nonlinear "
            "activations (" + ", ".join(nonlinear) + ")"
        )
    k = net.weights[0]
    c = net.biases[0] if net.biases is not None else np.zeros(net.widths[1], net.dtype)
    for layer in range(1, net.depth):
        k = k @ net.weights[layer]  # K_l = K_{l-1} W_l
        c = c @ net.weights[layer]  # c_l = c_{l-1} W_l + b_l
        if net.biases is not None:
            c = c + net.biases[layer]
    return k, c
