"""Tolerances derived from floating-point error analysis, never hand-tuned.

Every bound here is an elementwise bound on ``|computed - exact|`` for ONE implementation that evaluates the
network in the network's dtype (unit roundoff ``u = 2^-24`` for float32, ``2^-53`` for float64), in any
summation order, with or without FMA. Two correct implementations ``a`` and ``b`` therefore satisfy
``|a - b| <= bound_a + bound_b = 2 * bound`` elementwise; that is the agreement test (``Bounds.agree``).

The model (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., 3.1 and 3.5):

- A sum of ``n`` products: ``|fl(a . b) - a . b| <= gamma_n |a| . |b|``, ``gamma_n = n u / (1 - n u)``.
- Forward, layer ``l`` with inner dimension ``n = n_{l-1}`` (the bias adds one term)::

      E_Z(l) = gamma_{n+1} (M_{l-1} |W_l| + |b_l|) + E_{l-1} |W_l|
      E_l    = Lip(sigma) E_Z(l) + c_val u (|sigma(Z)| + |Z|) + tiny
                                       (identity: E_Z; relu, leaky_relu: see _piecewise_linear_error)

  where ``M_{l-1} >= |A_{l-1}|`` bounds any implementation's computed magnitudes (below), ``Lip(sigma)`` is
  the activation's Lipschitz constant (mean-value theorem: ``|sigma(z^) - sigma(z)| <= Lip |z^ - z|``) and the
  second term is the error of evaluating sigma itself (``C_VALUE`` below).
- Backward, with ``D_l = dL/dA_l`` (error bound ``F_l``) and ``delta_l = D_l * sigma'(Z_l)`` (bound ``G_l``)::

      F_L      = E_L + u |A_L - y|                              (the residual, one subtraction)
      S_l      = Lip(sigma') E_Z(l) + c_der u (|sigma'(Z)| + 1) + tiny   (error of sigma'(Z^))
      G_l      = F_l |sigma'| + |D_l| S_l + u |D_l sigma'|
      dW_l     : gamma_m M_{l-1}^T |delta| + E_{l-1}^T |delta| + M_{l-1}^T G_l          (m = batch)
      db_l     : gamma_m sum_batch |delta| + sum_batch G_l
      F_{l-1}  = gamma_{n_l} |delta| |W_l|^T + G_l |W_l|^T                 (dx = D_0, bound F_0)
      loss     : 0.5 (sum F_L (2 |r| + F_L) + gamma_N sum r^2),  r = A_L - y, N = batch * n_L

- Magnitudes: the bounds need ``|A|``, ``|Z|``, ``|D|``, ``|delta|`` of the *exact* computation, and
  bound the rounding of *any* implementation. We take them from the reference evaluated in float64 (exact
  for a float32 network's inputs) and add twice the error bound: the float64 values are within one bound
  of the exact ones, and any implementation's values within one more.
- Kinks: ``Lip(relu') = 0`` holds only away from the kink. Where ``|Z - kink| <= E_Z`` the branch a correct
  implementation takes is not determined by the maths (``Bounds.ambiguous``); properties check each way of
  taking those branches (``gradient_bounds(net, x, y, Kinks(branches=...))``) or reject the draw. Where ``Z``
  sits exactly on the kink *and* ``E_Z = 0`` (every product is exactly zero), every implementation computes
  ``Z == 0`` exactly, and the framework's kink convention decides; the properties compare those through the
  kink table, not through a tolerance.
- Underflow (Higham 2.1, eq. 2.8): a result below the smallest normal number ``tiny`` is not within a
  relative ``u`` of exact. With IEEE gradual underflow a multiplication adds an absolute error of at most half
  the smallest subnormal and additions are exact; but an implementation may also flush subnormal results to
  zero, as XLA does on CPU (jax: ``tiny / 2`` computes to 0 in float32 and float64; numpy and torch keep the
  subnormal; ``properties/test_underflow.py`` records which). Then each operation whose exact result is
  below ``tiny`` loses up to ``tiny``. The model admits both: ``eta = 2 tiny`` per product (its own flush and
  the flush of the addition that accumulates it), so a sum of ``n`` products carries, besides
  ``gamma_n |a| . |b|``, up to ``n eta (1 + gamma_n)`` (the later additions scale each ``eta``); every single
  multiplication (``D * sigma'``, leaky_relu's slope, the loss's squares and its 0.5) adds one ``eta``. The term
  is added only where a product can be nonzero, judged from the zero patterns of its factors
  (``nonzero_products``): elsewhere every product is an exact zero, which nobody rounds or flushes, so exact
  kinks stay exact. It matters only for values near ``tiny`` (float32: 1.2e-38):
  the soak found it missing on a float32 leaky_relu network at the small scale (slope 0.01 and weights
  ``1e-3`` per layer give ``y ~ 7e-21``, whose square is subnormal), where numpy's loss was 22 bounds off and
  jax's was 0.
- Non-finite values: the bounds assume finite, non-overflowing intermediate values; the assert helpers
  compare NaN and infinity positions exactly.

The bounds are computed in float64 for both dtypes (their own rounding is ~1e-16 relative, negligible next to
the factors ``gamma`` they carry), each formula as written above, not regrouped (``gamma M |W| + E |W|`` and
``(gamma M + E) |W|`` round differently), so that a rewrite of the code can be checked bit for bit against the
bounds it replaces.

One network or a stack: the same code computes ``gradient_bounds`` of a ``Network`` and
``gradient_bounds_batched`` of a ``NetworkStack`` (``mlp-crosscheck sweep``'s tolerances), whose arrays carry
a leading network axis: ``@`` multiplies each network's matrices, sums run over each network's own axes.
Network ``k``'s bounds in a stack are bit for bit ``gradient_bounds(stack.network(k), x[k], y[k])``
(tests/test_batched_tolerances.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar, cast

import numpy as np
from mlp_crosscheck.reference import activations
from mlp_crosscheck.reference.batched import BackwardTrace, NetworkStack, forward_batched
from mlp_crosscheck.reference.batched import Cache as StackCache
from mlp_crosscheck.reference.network import Cache, Network, forward


@functools.cache  # these constants are asked for a few times per layer; np.finfo is slow to ask
def unit_roundoff(dtype) -> float:
    """Return ``u``: half the machine epsilon of ``dtype`` (``2^-24`` for float32, ``2^-53`` for float64)."""
    return float(np.finfo(dtype).eps) / 2


@functools.cache
def underflow_unit(dtype) -> float:
    """Return ``eta = 2 tiny``, the absolute error one product may add when it underflows (module docstring).

    Gradual underflow alone would need only half the smallest subnormal; flushing to zero loses up to ``tiny``
    in the product and up to ``tiny`` in the addition that accumulates it.
    """
    return 2 * _tiny(dtype)


@functools.cache
def _tiny(dtype) -> float:
    """Return ``tiny``, the smallest normal number of ``dtype``."""
    return float(np.finfo(dtype).smallest_normal)


def nonzero_products(a_mag: np.ndarray, b_mag: np.ndarray) -> np.ndarray:
    """Return where the matrix product of magnitudes ``a_mag @ b_mag`` has a term that can be nonzero.

    Computed from the zero patterns, not from the product itself: in the float64 arithmetic of the bounds,
    magnitudes of a float64 network near ``tiny`` multiply to 0 although the products are not exactly zero.
    """
    if a_mag.size and b_mag.size and a_mag.min() > 0 and b_mag.min() > 0:
        # No zero at all (and no NaN): every element has a nonzero term. The common case, decided by two
        # reductions, without a matrix product or a mask.
        return np.asarray(True)
    a_nonzero, b_nonzero = a_mag > 0, b_mag > 0
    if a_nonzero.all() and b_nonzero.any(axis=-2).all():
        # Every row of a is nonzero and every column of b has a nonzero entry: likewise.
        return np.asarray(True)
    return (a_nonzero.astype(np.float64) @ b_nonzero.astype(np.float64)) > 0


def with_underflow(bound: np.ndarray, nonzero: np.ndarray, n: int, dtype) -> np.ndarray:
    """Return ``bound`` for a sum of ``n`` products plus their underflow, ``n eta (1 + gamma_n)``.

    Added only where a product can be nonzero (``nonzero``, from ``nonzero_products``): elsewhere every
    product is an exact zero, computed exactly by everyone, so an exact kink keeps ``E_Z = 0``.
    """
    return bound + _underflow(nonzero, n, dtype)


def _underflow(nonzero: np.ndarray, n: int, dtype) -> np.ndarray:
    """Return the underflow term ``with_underflow`` adds: ``n eta (1 + gamma_n)`` where ``nonzero``, else 0."""
    return (n * underflow_unit(dtype) * (1 + gamma(n, dtype))) * nonzero


@functools.cache
def gamma(n, dtype) -> float:
    """Return ``gamma_n = n u / (1 - n u)``, the relative error bound of an ``n``-term sum of products."""
    nu = n * unit_roundoff(dtype)
    if nu >= 1:
        raise ValueError(f"gamma_{n} is undefined in {np.dtype(dtype)}: n u = {nu} >= 1")
    return nu / (1 - nu)


@dataclass(frozen=True)
class ActivationConstants:
    """What the bounds need to know about one activation.

    - lip: sup |sigma'|, the Lipschitz constant of sigma.
    - lip_derivative: sup |sigma''| away from any kink, the Lipschitz constant of sigma'.
    """

    lip: float
    lip_derivative: float


# sup |sigma'| and sup |sigma''|, rounded up; derivations: tanh'' = -2 tanh sech^2, maximal at
# tanh z = 1/sqrt 3, giving 4 / (3 sqrt 3) = 0.76980; sigmoid'' = s(1-s)(1-2s), maximal 1 / (6 sqrt 3) = 0.09623;
# gelu' = Phi + z phi peaks at z = sqrt 2 (1.12890), gelu'' = phi (2 - z^2) peaks at 0 (2 phi(0) = 0.79789);
# silu' = s (1 + z (1 - s)) peaks at 1.09984, silu'' = s (1-s) (2 + z (1 - 2s)) peaks at 0 (0.5);
# elu'' = e^z <= 1 for z < 0; softplus' = sigmoid, so softplus'' = sigmoid' <= 1/4.
CONSTANTS: dict[str, ActivationConstants] = {
    "identity": ActivationConstants(1.0, 0.0),
    "tanh": ActivationConstants(1.0, 0.7699),
    "sigmoid": ActivationConstants(0.25, 0.09623),
    "relu": ActivationConstants(1.0, 0.0),
    "leaky_relu": ActivationConstants(1.0, 0.0),
    "elu": ActivationConstants(1.0, 1.0),
    "softplus": ActivationConstants(1.0, 0.25),
    "gelu": ActivationConstants(1.129, 0.7979),
    "silu": ActivationConstants(1.0999, 0.5),
}

# Accuracy of evaluating an activation and its derivative, in units of u:
#   |fl(sigma(z)) - sigma(z)|   <= C_VALUE u (|sigma(z)| + |z|) + tiny
#   |fl(sigma'(z)) - sigma'(z)| <= C_DERIVATIVE u (|sigma'(z)| + 1) + tiny
# The |z| and +1 terms are there because frameworks use formulas that are accurate in absolute, not
# relative, terms: torch's exact GELU is z (1 + erf(z / sqrt 2)) / 2, which cancels for z << 0; torch's silu
# overflows exp(-z) to inf and returns 0 for z < -710 (true value ~1e-306); tanh' = 1 - tanh^2 and
# sigmoid' = s (1 - s) have absolute error ~u where the true derivative is ~e^-2|z|. "tiny" (the smallest
# normal number) covers results that underflow. The constants are twice the largest ratio measured against
# 60-digit mpmath over 20,000 log-uniform points in 1e-20..800 per dtype (benchmarks/activation_accuracy.py;
# numpy reference, torch 2.13.0, jax 0.10.2: value 4.03 -- torch's float32 gelu --, derivative 18 -- torch
# and jax float64 silu'), rounded up to a power of two. tests/meta/test_activation_accuracy.py rechecks them.
C_VALUE = 16.0
C_DERIVATIVE = 64.0


LossBound = TypeVar("LossBound", bound=float | np.ndarray)  # the loss bound: a float, or (N,) for a stack


class Bounds(NamedTuple, Generic[LossBound]):
    """Elementwise error bounds, shaped like the quantities they bound.

    For one network ``Bounds[float]``; for a stack ``BatchedBounds`` (``Bounds[np.ndarray]``), with a leading
    network axis on every field, ``loss`` an ``(N,)`` array.
    """

    out: np.ndarray
    loss: LossBound
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...] | None
    x: np.ndarray
    # Per layer, True where the pre-activation lies within its error bound of a kink without being exactly
    # on it with zero error: there a correct implementation may take either branch.
    ambiguous: tuple[np.ndarray, ...]
    # Per layer, True where Z is exactly at a kink and every implementation computes it exactly.
    exact_kinks: tuple[np.ndarray, ...]

    def agree(self) -> Bounds[LossBound]:
        """Return the bound for comparing two implementations: ``bound_a + bound_b`` (twice this one).

        Every bound doubled, the kink masks kept.
        """
        return self._replace(
            out=2 * self.out,
            loss=cast(LossBound, 2 * self.loss),  # twice a float is a float, twice an array an array
            weights=tuple(2 * w for w in self.weights),
            biases=None if self.biases is None else tuple(2 * b for b in self.biases),
            x=None if self.x is None else 2 * self.x,
        )


BatchedBounds = Bounds[np.ndarray]


def _t(a: np.ndarray) -> np.ndarray:
    return a.swapaxes(-1, -2)  # each network's matrix transposed


def _sum_over_batch(a: np.ndarray) -> np.ndarray:
    """Return each network's sum over its batch rows (axis -2), in the order one network's ``sum(axis=0)`` adds.

    A stack of networks with two or more columns takes an einsum, which adds the rows in that order (one after
    the other) 5x faster than NumPy's reduction over a middle axis; a single column NumPy sums pairwise, so
    that stays a reduction.
    """
    if a.ndim == 2 or a.shape[-1] == 1:
        return a.sum(axis=-2)
    return np.einsum("...bj->...j", a)


class _Forward(NamedTuple):
    """The forward pass's bounds, per layer ``l = 1..L``, and the magnitudes ``M_0 .. M_L``."""

    e_z: list[np.ndarray]  # E_Z(l)
    e: list[np.ndarray]  # E_l
    mags: list[np.ndarray]  # M_l >= |A_l| of any implementation, M_0 = |x|
    abs_weights: list[np.ndarray]  # |W_l|


def _forward_bounds(dtype, wide: Network | NetworkStack, x64: np.ndarray, out: np.ndarray, cache) -> _Forward:
    """Return the bounds of the forward pass of a network (or stack) evaluated in ``dtype``.

    ``wide`` and ``x64`` are the network and its input in float64, ``out, cache`` the reference's forward pass
    on them: the float64 magnitudes.
    """
    u, tiny, eta = unit_roundoff(dtype), _tiny(dtype), underflow_unit(dtype)
    a_values = [*cache.inputs[1:], out]
    e_prev = None  # E_0 = 0: the input is exact
    m_prev = np.abs(x64)
    bounds = _Forward([], [], [m_prev], [])
    for layer, (w, name) in enumerate(zip(wide.weights, wide.activations, strict=True)):
        aw = np.abs(w)
        n = w.shape[-2]
        ez = m_prev @ aw
        if wide.biases is not None:
            ez += np.abs(wide.biases[layer])[..., None, :]
        ez *= gamma(n + 1, dtype)
        _add_product(ez, e_prev, aw)  # E_Z = gamma_{n+1} (M |W| + |b|) + E |W|
        ez += _underflow(nonzero_products(m_prev, aw), n, dtype)  # + n eta (1 + gamma_n): the products' underflow
        z, a_abs = cache.preactivations[layer], np.abs(a_values[layer])
        lip = CONSTANTS[name].lip
        if name == "identity":
            e = ez  # identity is evaluated exactly
        elif name in ("relu", "leaky_relu"):
            e = _piecewise_linear_error(name, z, ez, a_abs + 2 * lip * ez, u, eta)
        else:
            # E = Lip E_Z + c u (|sigma| + |Z|) + tiny, with |sigma| = |A| + 2 Lip E_Z and |Z| = |Z64| + 2 E_Z
            magnitudes = np.abs(z)
            magnitudes += 2 * ez
            magnitudes += a_abs + 2 * lip * ez
            magnitudes *= C_VALUE * u
            e = lip * ez
            e += magnitudes
            e += tiny
        m_prev = 2 * e
        m_prev += a_abs
        e_prev = e
        bounds.e_z.append(ez)
        bounds.e.append(e)
        bounds.mags.append(m_prev)
        bounds.abs_weights.append(aw)
    return bounds


def _add_product(total: np.ndarray, e: np.ndarray | None, b: np.ndarray) -> None:
    """Add ``e @ b`` to ``total`` in place, where ``e`` None is an exact zero error (``E_0``).

    A zero ``e`` gives an exactly zero product, except where a column of ``b`` holds an infinity or a NaN
    (``0 * inf = NaN``): only then is it computed, so that a bound that has overflowed is NaN there.
    """
    if e is not None:
        total += e @ b
    elif not np.isfinite(b).all():
        total += np.zeros((*total.shape[:-1], b.shape[-2])) @ b


def _piecewise_linear_error(name: str, z: np.ndarray, ez: np.ndarray, sigma_mag: np.ndarray, u: float, eta: float):
    """Return E for relu or leaky_relu, which need no accuracy allowance: relu(z^) is exact, and leaky_relu's
    negative branch is one multiplication (error u |sigma|, plus eta if it underflows).

    Where the float64 Z is below -2 E_Z the exact z is below -E_Z, so every implementation's z^ is negative
    too: relu gives exactly 0 on both sides (E = 0), and leaky_relu differs only by the slope times E_Z. Where
    Z > 2 E_Z both are on the identity branch (E = E_Z). In between either branch may be taken, and
    |sigma(z^) - sigma(z)| <= Lip E_Z = E_Z still holds (plus the multiplication's rounding for leaky_relu).
    Keeping dead units at E = 0 is what lets an exactly zero pre-activation downstream of them keep E_Z = 0,
    an exact kink rather than an ambiguous one.
    """
    slope = 0.0 if name == "relu" else activations.LEAKY_RELU_SLOPE
    rounding = 0.0 if name == "relu" else u * sigma_mag + eta * (sigma_mag > 0)  # an exact 0 stays exact
    negative, positive = z < -2 * ez, z > 2 * ez
    return np.where(negative, slope * ez + rounding, np.where(positive, ez, ez + rounding))


def _wide(net, x: np.ndarray):
    """Return the network (or stack) and its input in float64."""
    return net if net.dtype == np.float64 else net.astype(np.float64), x.astype(np.float64, copy=False)


def forward_bound(net: Network, x: np.ndarray) -> np.ndarray:
    """Return the elementwise bound on ``|computed forward(net, x) - exact|`` for one implementation."""
    wide, x64 = _wide(net, x)
    return _forward_bounds(net.dtype, wide, x64, *forward(wide, x64)).e[-1]


def _gradient_bounds(
    net: Network | NetworkStack,
    wide: Network | NetworkStack,
    x64: np.ndarray,
    y: np.ndarray,
    forward64: tuple[np.ndarray, Cache | StackCache],
    kinks: activations.Kinks = activations.REFERENCE_KINKS,
    backward64: BackwardTrace | None = None,
) -> BatchedBounds:
    """Return ``gradient_bounds`` of a network or of a stack, on the reference's float64 pass ``forward64``.

    Every array may carry leading (stack) axes; ``loss`` is then an array.
    """
    dtype = net.dtype
    u, tiny, eta = unit_roundoff(dtype), _tiny(dtype), underflow_unit(dtype)
    out, cache = forward64
    fwd = _forward_bounds(dtype, wide, x64, out, cache)
    r = out - y.astype(np.float64, copy=False)
    f = fwd.e[-1] + u * (np.abs(r) + 2 * fwd.e[-1])  # F_L: error of the residual A_L - y
    d = r  # dL/dA_L in float64, backpropagated alongside the bounds
    d_mag = np.abs(d) + 2 * f
    per_network, terms = (-2, -1), r.shape[-2] * r.shape[-1]
    loss_bound = 0.5 * (
        np.sum(f * (2 * d_mag + f), axis=per_network) + gamma(terms, dtype) * np.sum(d_mag**2, axis=per_network)
    )
    # underflow: up to two multiplications per nonzero term (0.5 r r in some order), then the halving
    loss_bound += eta * (2 * (1 + gamma(terms, dtype)) * np.count_nonzero(d_mag, axis=per_network) + 1)
    batch = x64.shape[-2]
    d_weights, d_biases, ambiguous, exact = [], [], [], []
    for layer in reversed(range(net.depth)):
        name, z, ez = net.activations[layer], cache.preactivations[layer], fwd.e_z[layer]
        consts, kink = CONSTANTS[name], activations.get(name).kink
        # sigma'(Z): from the reference's trace when the caller has one (the same function, the same kinks)
        s = backward64.derivatives[layer] if backward64 is not None else kinks.derivative(layer, name, z)
        s_abs = np.abs(s)
        s_err: float | np.ndarray
        if name == "identity" or kink is not None:
            s_err, s_mag = 0.0, s_abs  # sigma' is 1, or constant away from the kink (at it: module docstring)
        else:
            # S = Lip' E_Z + c' u (|sigma'| + 2 Lip' E_Z + 1) + tiny, the error of sigma'(Z^)
            s_err = 2 * consts.lip_derivative * ez
            s_err += s_abs
            s_err += 1
            s_err *= C_DERIVATIVE * u
            s_err += consts.lip_derivative * ez
            s_err += tiny
            s_mag = s_abs + s_err
        if kink is None:
            never = np.zeros(z.shape, bool)
            ambiguous.append(never)
            exact.append(never)
        else:
            on_kink = (z == kink) & (ez == 0)
            ambiguous.append((np.abs(z - kink) <= 2 * ez) & ~on_kink)
            exact.append(on_kink)
        g = f * s_mag  # G = F |sigma'| + |D| S + u |D sigma'|: the error of delta = D * sigma'(Z)
        g += d_mag * s_err
        g += u * d_mag * s_mag
        g += eta * ((d_mag > 0) & (s_mag > 0))  # that multiplication's underflow, where it can be nonzero
        delta = backward64.deltas[layer] if backward64 is not None else d * s
        delta_mag = 2 * g
        delta_mag += np.abs(delta)
        m_t, w_abs_t = _t(fwd.mags[layer]), _t(fwd.abs_weights[layer])
        dw = gamma(batch, dtype) * m_t @ delta_mag  # dW: gamma_m M^T |delta| + E^T |delta| + M^T G
        _add_product(dw, _t(fwd.e[layer - 1]) if layer else None, delta_mag)
        dw += m_t @ g
        dw += _underflow(nonzero_products(m_t, delta_mag), batch, dtype)
        d_weights.append(dw)
        if net.biases is not None:
            db = _sum_over_batch(delta_mag)  # db: gamma_m sum_batch |delta| + sum_batch G
            db *= gamma(batch, dtype)
            db += _sum_over_batch(g)
            d_biases.append(db)
        n = w_abs_t.shape[-2]
        f = gamma(n, dtype) * delta_mag @ w_abs_t  # F_{l-1} = gamma_{n_l} |delta| |W|^T + G |W|^T
        f += g @ w_abs_t
        f += _underflow(nonzero_products(delta_mag, w_abs_t), n, dtype)
        if layer == 0:
            break  # F_0 bounds dL/dx; below the first layer there is nothing left to propagate
        d = backward64.d_outputs[layer - 1] if backward64 is not None else delta @ _t(wide.weights[layer])
        d_mag = 2 * f
        d_mag += np.abs(d)
    return BatchedBounds(
        out=fwd.e[-1],
        loss=loss_bound,
        weights=tuple(reversed(d_weights)),
        biases=None if net.biases is None else tuple(reversed(d_biases)),
        x=f,
        ambiguous=tuple(reversed(ambiguous)),
        exact_kinks=tuple(reversed(exact)),
    )


def gradient_bounds(
    net: Network,
    x: np.ndarray,
    y: np.ndarray,
    kinks: activations.Kinks = activations.REFERENCE_KINKS,
) -> Bounds[float]:
    """Return the bounds on the output, loss and every gradient of ``0.5 sum((forward(x) - y)^2)``.

    Args:
        kinks: ``kinks.conventions``, the derivative an implementation uses exactly at a kink, per activation
            (as in ``reference.network.backward``), sets the magnitude |sigma'| the bounds propagate there.
            ``kinks.branches``: the derivative of the branch an implementation takes at a pre-activation within
            its bound of a kink. A relu-type sigma' is constant on each branch, so the chosen one is exact (no
            S_l) and sets |sigma'| there, as at an exact kink. The forward bounds need nothing: they already
            hold on either branch (``_piecewise_linear_error``).
    """
    wide, x64 = _wide(net, x)
    b = _gradient_bounds(net, wide, x64, y, forward(wide, x64), kinks)
    return Bounds(b.out, float(b.loss), b.weights, b.biases, b.x, b.ambiguous, b.exact_kinks)


def gradient_bounds_batched(
    stack: NetworkStack,
    x: np.ndarray,
    y: np.ndarray,
    *,
    forward64: tuple[np.ndarray, StackCache] | None = None,
    backward64: BackwardTrace | None = None,
) -> BatchedBounds:
    """Return every network's ``gradient_bounds`` at once (the sweep's tolerances), bit for bit network ``k``'s.

    Args:
        stack: ``N`` networks; ``x`` ``(N, batch, n_0)`` and ``y`` ``(N, batch, n_L)`` in its dtype.
        forward64: ``forward_batched(wide, x64)`` with ``wide = stack.astype(float64)`` and ``x64`` likewise,
            if the caller already has it as its comparison baseline (recomputed otherwise). It must be exactly
            that pass, or the magnitudes the bounds start from are wrong.
        backward64: the trace of ``backward_batched_traced(wide, cache, out - y64)`` on that forward pass,
            with the reference's default kink convention, if the caller already has it; needs ``forward64``.
    """
    if backward64 is not None and forward64 is None:
        raise ValueError("backward64 is only meaningful together with the forward64 it was computed from")
    wide, x64 = _wide(stack, x)
    if forward64 is None:
        forward64 = forward_batched(wide, x64)
    return _gradient_bounds(stack, wide, x64, y, forward64, backward64=backward64)


def collapse_bound(net: Network, x: np.ndarray) -> np.ndarray:
    """Return the bound on ``|fl(x @ K + c) - exact|`` where ``K, c`` are themselves computed by chained products.

    ``K = W_1 ... W_L`` is formed left to right: ``K_l = fl(K_{l-1} W_l)`` with error
    ``H_l = gamma_{n_{l-1}} |K_{l-1}^| |W_l| + H_{l-1} |W_l|`` (H_1 = 0); ``c`` likewise with the biases
    (one more term each). Then ``x @ K + c`` adds ``gamma_{n_0 + 1} (|x| |K^| + |c^|) + |x| H_K + H_c``.
    Each product of matrices also carries its underflow (``with_underflow``).
    """
    wide = net.astype(np.float64)
    xw = np.abs(x.astype(np.float64))
    k_mag = np.abs(wide.weights[0])
    h_k = np.zeros_like(k_mag)
    c_mag = np.abs(wide.biases[0]) if wide.biases is not None else np.zeros(k_mag.shape[1])
    h_c = np.zeros_like(c_mag)
    for layer in range(1, net.depth):
        aw = np.abs(wide.weights[layer])
        nonzero = nonzero_products(k_mag, aw)
        h_k = with_underflow(gamma(aw.shape[0], net.dtype) * k_mag @ aw + h_k @ aw, nonzero, aw.shape[0], net.dtype)
        k_mag = k_mag @ aw + 2 * h_k
        b = np.abs(wide.biases[layer]) if wide.biases is not None else 0.0
        nonzero = nonzero_products(c_mag[None, :], aw).reshape(-1)
        h_c = gamma(aw.shape[0] + 1, net.dtype) * (c_mag @ aw + b) + h_c @ aw
        h_c = with_underflow(h_c, nonzero, aw.shape[0], net.dtype)
        c_mag = c_mag @ aw + b + 2 * h_c
    value = gamma(x.shape[1] + 1, net.dtype) * (xw @ k_mag + c_mag) + xw @ h_k + h_c
    return with_underflow(value, nonzero_products(xw, k_mag), x.shape[1], net.dtype)
