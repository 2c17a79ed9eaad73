"""The reference network: forward pass, L2 loss and hand-derived, vectorised backprop, in NumPy only.

The seed's conventions: row vectors, ``Z_l = A_{l-1} W_l + b_l``, ``A_l = sigma_l(Z_l)``, ``A_0 = x``, with
``W_l`` of shape ``(n_{l-1}, n_l)`` and ``b_l`` of shape ``(n_l,)``; the activation is applied after every
layer, the last one included. The loss is ``0.5 * sum((A_L - y)**2)``, summed over the batch, not averaged.
A float32 network on float32 data computes in float32 throughout; inputs are never mutated; a wrong shape or
dtype is a ValueError. Every backend is compared against this module, so it imports no framework.

The same code serves one ``Network`` and a stack of them (``reference.batched.NetworkStack``): a stack's
arrays carry a leading network axis -- weights ``(N, n_{l-1}, n_l)``, biases ``(N, n_l)``, ``x``
``(N, batch, n_0)`` -- and every line below works on each network's trailing axes: ``@`` multiplies the
trailing two, ``_t`` transposes them, sums run over each network's own batch. Nothing is summed across
networks, so network ``k`` of a stack computes from its own arrays only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Self

import numpy as np
from mlp_crosscheck.reference import activations

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass(frozen=True)
class Parameters:
    """What ``Network`` and ``reference.batched.NetworkStack`` share: weights, optional biases, activation names.

    Every array has the ``LEAD`` axes in front of its own (none for a network, ``N`` for a stack). Lists are
    stored as tuples, a single name as a 1-tuple; a malformed set of parameters is refused with a ValueError.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...] | None
    activations: tuple[str, ...]

    LEAD: ClassVar[tuple[str, ...]] = ()  # names of the leading axes, for messages: () for one network
    NOUN: ClassVar[str] = "the network"  # how error messages name it

    def __post_init__(self) -> None:
        weights = tuple(np.asarray(w) for w in self.weights)
        biases = None if self.biases is None else tuple(np.asarray(b) for b in self.biases)
        names = (self.activations,) if isinstance(self.activations, str) else tuple(self.activations)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "biases", biases)
        object.__setattr__(self, "activations", names)
        _validate(weights, biases, names, self.LEAD)

    @property
    def widths(self) -> tuple[int, ...]:
        """``(n_0, n_1, ..., n_L)``."""
        return (self.weights[0].shape[-2], *(w.shape[-1] for w in self.weights))

    @property
    def dtype(self) -> np.dtype:
        return self.weights[0].dtype

    @property
    def depth(self) -> int:
        return len(self.weights)

    def astype(self, dtype) -> Self:
        """Return the same network (or stack) with every parameter cast to ``dtype``."""
        cast = lambda arrays: tuple(a.astype(dtype) for a in arrays)
        return type(self)(cast(self.weights), None if self.biases is None else cast(self.biases), self.activations)


@dataclass(frozen=True)
class Network(Parameters):
    """A fully connected network: weights ``(n_{l-1}, n_l)``, biases ``(n_l,)`` or None, activation names."""


def _axes(*dims) -> str:
    return "(" + ", ".join(map(str, dims)) + ")"


def _validate(weights, biases, names, lead_names: tuple[str, ...]) -> None:
    """Raise a ValueError naming the first thing wrong with these parameters (dtype problems included)."""
    if len(weights) == 0:
        raise ValueError("a network needs at least one weight matrix")
    k, dtype = len(lead_names), weights[0].dtype
    lead = weights[0].shape[:k] if weights[0].ndim == k + 2 else lead_names  # a stack's N, or the name "N"
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"weights must be float32 or float64, got {dtype}")
    for i, w in enumerate(weights):
        if w.ndim != k + 2 or (k and w.shape[:k] != lead):
            raise ValueError(f"weights[{i}] must be {k + 2}-D {_axes(*lead, 'n_in', 'n_out')}, got shape {w.shape}")
        if w.dtype != dtype:
            raise ValueError(f"weights[{i}] is {w.dtype} but weights[0] is {dtype}: mix no dtypes")
        if i and w.shape[-2] != weights[i - 1].shape[-1]:
            raise ValueError(
                f"weights[{i}] has shape {w.shape}, but weights[{i - 1}] has {weights[i - 1].shape}: "
                f"expected {weights[i - 1].shape[-1]} rows"
            )
    if biases is not None:
        if len(biases) != len(weights):
            raise ValueError(f"{len(weights)} weight matrices but {len(biases)} bias vectors")
        for i, (b, w) in enumerate(zip(biases, weights, strict=True)):
            if b.shape != (*lead, w.shape[-1]):
                raise ValueError(f"biases[{i}] must have shape {(*lead, w.shape[-1])}, got {b.shape}")
            if b.dtype != dtype:
                raise ValueError(f"biases[{i}] is {b.dtype} but weights[0] is {dtype}: mix no dtypes")
    if len(names) != len(weights):
        raise ValueError(f"{len(weights)} layers but {len(names)} activation names: give one per layer")
    for name in names:
        activations.get(name)  # raises a ValueError that lists the vocabulary


def check_input(net: Parameters, x: np.ndarray, name: str = "x") -> np.ndarray:
    """Return ``x`` as an array after checking it is ``(batch, n_0)`` (a stack: ``(N, batch, n_0)``) in ``net``'s dtype.

    Raises:
        ValueError: ``x`` has the wrong shape or dtype.
    """
    x = np.asarray(x)
    w = net.weights[0]
    if x.ndim != w.ndim or x.shape[-1] != w.shape[-2] or x.shape[:-2] != w.shape[:-2]:
        raise ValueError(f"{name} must have shape {_axes(*w.shape[:-2], 'batch', w.shape[-2])}, got {x.shape}")
    if x.dtype != w.dtype:
        raise ValueError(f"{name} is {x.dtype} but {net.NOUN} is {w.dtype}; cast one of them explicitly")
    return x


def check_output_target(net: Parameters, out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return ``y`` as an array after checking it matches the output's shape and dtype.

    Raises:
        ValueError: ``y`` has the wrong shape or dtype.
    """
    y = np.asarray(y)
    if y.shape != out.shape:
        raise ValueError(f"y must have shape {out.shape}, the output's, got {y.shape}")
    if y.dtype != net.dtype:
        raise ValueError(f"y is {y.dtype} but {net.NOUN} is {net.dtype}; cast one of them explicitly")
    return y


class Cache(NamedTuple):
    """What the backward pass needs from the forward pass: each layer's input and pre-activation."""

    inputs: tuple[np.ndarray, ...]  # A_{l-1} for l = 1..L
    preactivations: tuple[np.ndarray, ...]  # Z_l for l = 1..L


class Gradients(NamedTuple):
    """dL/dW_l, dL/db_l (None without biases) and dL/dx, shaped like W_l, b_l and x."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...] | None
    x: np.ndarray


def _t(a: np.ndarray) -> np.ndarray:
    """Return each network's matrix transposed: the trailing two axes swapped (a view)."""
    return a.T if a.ndim == 2 else np.swapaxes(a, -1, -2)


def sum_over_batch(a: np.ndarray) -> np.ndarray:
    """Return each network's sum over its batch rows: ``a`` ``(batch, n)`` -> ``(n,)``, ``(N, batch, n)`` -> ``(N, n)``.

    A stack's is an einsum: NumPy's reduction over a short middle axis pays a loop overhead per network
    (measured 4x slower than the einsum for batch 4, width 10). One network's stays ``sum(axis=0)``, whose
    order the einsum does not share for a single column.
    """
    return a.sum(axis=0) if a.ndim == 2 else np.einsum("...bj->...j", a)


def forward(net: Parameters, x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Return the network's output ``A_L`` for the batch ``x`` and the cache for ``backward``."""
    a = check_input(net, x)
    inputs, pre = [], []
    for layer, (w, name) in enumerate(zip(net.weights, net.activations, strict=True)):
        z = a @ w  # Z_l = A_{l-1} W_l (+ b_l)
        if net.biases is not None:
            z += net.biases[layer][..., None, :]  # b_l is broadcast over the batch rows
        inputs.append(a)
        pre.append(z)
        a = activations.apply(name, z)  # A_l = sigma_l(Z_l)
    return a, Cache(tuple(inputs), tuple(pre))


def _loss(out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return each network's ``0.5 * sum((out - y)**2)`` over its batch and outputs, in ``out``'s dtype."""
    r = out - y
    return r.dtype.type(0.5) * np.sum(r * r, axis=(-2, -1))


def loss(out: np.ndarray, y: np.ndarray) -> float:
    """Return ``0.5 * sum((out - y)**2)`` as a Python float (computed in ``out``'s dtype)."""
    return float(_loss(out, y))


def _backward(
    net: Parameters,
    cache: Cache,
    d_out: np.ndarray,
    kinks: activations.Kinks = activations.REFERENCE_KINKS,
) -> tuple[Gradients, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Return ``backward``'s gradients and, per layer from the last, ``(sigma_l'(Z_l), delta_l, dL/dA_l)``."""
    d_weights, d_biases, steps = [], [], []
    d_a = d_out  # dL/dA_L (= A_L - y for the L2 loss)
    for layer in reversed(range(net.depth)):
        a_prev, z = cache.inputs[layer], cache.preactivations[layer]
        name = net.activations[layer]
        slope = kinks.derivative(layer, name, z)  # sigma_l'(Z_l)
        delta = d_a * slope  # delta_l = dL/dZ_l = dL/dA_l * sigma_l'(Z_l)
        steps.append((slope, delta, d_a))
        d_weights.append(_t(a_prev) @ delta)  # dW_l = A_{l-1}^T delta_l  (Z_l = A_{l-1} W_l: dZ_bj/dW_ij = A_bi)
        if net.biases is not None:
            d_biases.append(sum_over_batch(delta))  # db_l = sum over the batch of delta_l  (b_l is broadcast)
        d_a = delta @ _t(net.weights[layer])  # dL/dA_{l-1} = delta_l W_l^T  (dZ_bj/dA_bi = W_ij)
    gradients = Gradients(
        tuple(reversed(d_weights)),
        None if net.biases is None else tuple(reversed(d_biases)),
        d_a,  # dL/dx = dL/dA_0
    )
    return gradients, steps


def backward(
    net: Parameters,
    cache: Cache,
    d_out: np.ndarray,
    kinks: activations.Kinks = activations.REFERENCE_KINKS,
) -> Gradients:
    """Backpropagate ``d_out = dL/dA_L`` through the network; return every gradient.

    Args:
        kinks: the derivative to take at a kink (another framework's convention) and, near one, the branch
            chosen by the caller (``activations.Kinks``); by default the reference's conventions.
    """
    return _backward(net, cache, d_out, kinks)[0]


def loss_and_gradients(
    net: Network,
    x: np.ndarray,
    y: np.ndarray,
    kinks: activations.Kinks = activations.REFERENCE_KINKS,
) -> tuple[float, Gradients]:
    """Return the L2 loss of ``net`` on ``(x, y)`` and its gradients (``backward`` explains the options)."""
    value, gradients = _loss_and_gradients(net, x, y, kinks)
    return float(value), gradients


def _loss_and_gradients(
    net: Parameters,
    x: np.ndarray,
    y: np.ndarray,
    kinks: activations.Kinks = activations.REFERENCE_KINKS,
) -> tuple[np.ndarray, Gradients]:
    """Return ``loss_and_gradients`` for any stack: each network's loss, as an array, and the gradients."""
    out, cache = forward(net, x)
    y = check_output_target(net, out, y)
    d_out = out - y  # dL/dA_L = A_L - y for L = 0.5 sum (A_L - y)^2
    return _loss(out, y), backward(net, cache, d_out, kinks)


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
