"""``properties.tolerances.gradient_bounds`` for a stack of networks at once (the sweep's tolerances).

Design constraints a reader must not break:
- Exactly the error model of ``properties/tolerances.py`` (read its module docstring for the derivation):
  the same constants and helpers (``C_VALUE``, ``C_DERIVATIVE``, ``CONSTANTS``, ``gamma``, ``unit_roundoff``,
  ``underflow_unit``, ``with_underflow``, ``nonzero_products`` are imported from it, never copied) and the
  same terms, in the same order of layers. Only the shapes change -- every array gains a leading network
  axis, ``@`` multiplies each network's matrices, sums run over each network's own axes -- and products that
  share a factor are regrouped so that each takes one stacked matmul instead of two or three
  (``gamma M |W| + E |W| = (gamma M + E) |W|``; each regrouping is commented where it is made). Network
  ``k``'s bounds therefore equal ``gradient_bounds(stack.network(k), x[k], y[k])`` up to the rounding of the
  bound's own float64 arithmetic (~1e-16 relative; tests/test_batched_tolerances.py).
- A change to the model is made in ``tolerances.py`` first, then mirrored here; the test above fails until
  both agree.
- The float64 reference pass the magnitudes come from may be handed in (``forward64``, ``backward64``) by a
  caller that has already computed it as its comparison baseline, so the sweep does not evaluate it twice.
  It must be exactly that pass, with the reference's default kink convention, or the bounds are wrong.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from mlp_crosscheck.properties.tolerances import (
    C_DERIVATIVE,
    C_VALUE,
    CONSTANTS,
    _piecewise_linear_error,
    gamma,
    nonzero_products,
    underflow_unit,
    unit_roundoff,
    with_underflow,
)
from mlp_crosscheck.reference import activations
from mlp_crosscheck.reference.batched import BackwardTrace, Cache, NetworkStack, forward_batched, sum_over_batch


class BatchedBounds(NamedTuple):
    """``tolerances.Bounds`` with a leading network axis on every field (``loss`` is an ``(N,)`` array)."""

    out: np.ndarray
    loss: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...] | None
    x: np.ndarray
    ambiguous: tuple[np.ndarray, ...]
    exact_kinks: tuple[np.ndarray, ...]

    def agree(self) -> BatchedBounds:
        """Return the bound for comparing two implementations: ``bound_a + bound_b`` (twice this one)."""
        biases = None if self.biases is None else tuple(2 * b for b in self.biases)
        weights = tuple(2 * w for w in self.weights)
        return self._replace(out=2 * self.out, loss=2 * self.loss, weights=weights, biases=biases, x=2 * self.x)


def _t(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)  # every network's matrix transposed


class _Cache64(NamedTuple):
    """The float64 forward cache with the float64 parameters it was computed from."""

    inputs: tuple[np.ndarray, ...]
    preactivations: tuple[np.ndarray, ...]
    weights64: tuple[np.ndarray, ...]
    biases64: tuple[np.ndarray, ...] | None


def _forward_bounds(stack: NetworkStack, x64: np.ndarray, out: np.ndarray, cache: _Cache64):
    """Return the per-layer bounds ``E_Z``, ``E``, magnitudes ``M`` and ``|W|`` of the forward pass, stacked."""
    u, tiny, eta = unit_roundoff(stack.dtype), float(np.finfo(stack.dtype).smallest_normal), underflow_unit(stack.dtype)
    a_values = [*cache.inputs[1:], out]
    e_prev = None  # E_0 = 0: the input is exact
    m_prev = np.abs(x64)
    e_z, e_a, mags, abs_weights = [], [], [m_prev], []
    for layer, (w, name) in enumerate(zip(cache.weights64, stack.activations, strict=True)):
        aw = np.abs(w)
        abs_weights.append(aw)
        g_n = gamma(w.shape[1] + 1, stack.dtype)
        # E_Z = gamma_{n+1} (M |W| + |b|) + E |W|, regrouped as (gamma_{n+1} M + E) |W| + gamma_{n+1} |b|
        ez = (g_n * m_prev if e_prev is None else g_n * m_prev + e_prev) @ aw
        if cache.biases64 is not None:
            ez = ez + g_n * np.abs(cache.biases64[layer])[:, None, :]
        # + n eta (1 + gamma_n): the n products' underflow
        ez = with_underflow(ez, nonzero_products(m_prev, aw), w.shape[1], stack.dtype)
        a_abs = np.abs(a_values[layer])
        if name == "identity":
            e = ez  # identity is evaluated exactly
        elif name in ("relu", "leaky_relu"):
            # the same piecewise rule as the per-network model (tolerances._piecewise_linear_error)
            sigma_mag = a_abs + 2 * CONSTANTS[name].lip * ez
            e = _piecewise_linear_error(name, cache.preactivations[layer], ez, sigma_mag, u, eta)
        else:
            # E = Lip E_Z + c u (|sigma| + |Z|) + tiny with |sigma| = |A| + 2 Lip E_Z and |Z| = |Z64| + 2 E_Z,
            # regrouped as (Lip + 2 c u (Lip + 1)) E_Z + c u (|A| + |Z64|) + tiny
            lip, cu = CONSTANTS[name].lip, C_VALUE * u
            e = (lip + 2 * cu * (lip + 1)) * ez + cu * (a_abs + np.abs(cache.preactivations[layer])) + tiny
        m_prev, e_prev = a_abs + 2 * e, e
        e_z.append(ez)
        e_a.append(e)
        mags.append(m_prev)
    return e_z, e_a, mags, abs_weights


def gradient_bounds_batched(
    stack: NetworkStack,
    x: np.ndarray,
    y: np.ndarray,
    *,
    forward64: tuple[np.ndarray, Cache] | None = None,
    backward64: BackwardTrace | None = None,
) -> BatchedBounds:
    """Return every network's bounds on its output, loss and gradients (``tolerances.gradient_bounds``).

    Args:
        stack: ``N`` networks; ``x`` ``(N, batch, n_0)`` and ``y`` ``(N, batch, n_L)`` in its dtype.
        forward64: ``forward_batched(wide, x64)`` with ``wide = stack.astype(float64)`` and ``x64`` likewise,
            if the caller already has it (recomputed otherwise).
        backward64: the trace of ``backward_batched_traced(wide, cache, out - y64)`` on that forward pass
            (default kink convention), if the caller already has it; needs ``forward64``.
    """
    if backward64 is not None and forward64 is None:
        raise ValueError("backward64 is only meaningful together with the forward64 it was computed from")
    u, tiny, eta = unit_roundoff(stack.dtype), float(np.finfo(stack.dtype).smallest_normal), underflow_unit(stack.dtype)
    wide = stack if stack.dtype == np.float64 else stack.astype(np.float64)
    x64 = x.astype(np.float64, copy=False)
    out, forward_cache = forward64 if forward64 is not None else forward_batched(wide, x64)
    cache = _Cache64(forward_cache.inputs, forward_cache.preactivations, wide.weights, wide.biases)
    e_z, e_a, mags, abs_weights = _forward_bounds(stack, x64, out, cache)
    r = out - y.astype(np.float64, copy=False)
    f = e_a[-1] + u * (np.abs(r) + 2 * e_a[-1])  # F_L: error of the residual A_L - y
    d = r  # dL/dA_L in float64, backpropagated alongside the bounds
    d_mag = np.abs(d) + 2 * f
    per_network = (1, 2)  # each network's batch and output axes
    loss_bound = 0.5 * (
        np.sum(f * (2 * d_mag + f), axis=per_network)
        + gamma(r[0].size, stack.dtype) * np.sum(d_mag * d_mag, axis=per_network)
    )
    # underflow: up to two multiplications per nonzero term (0.5 r r in some order), then the halving
    nonzero_terms = np.count_nonzero(d_mag, axis=per_network)
    loss_bound = loss_bound + eta * (2 * (1 + gamma(r[0].size, stack.dtype)) * nonzero_terms + 1)
    g_batch = gamma(x.shape[1], stack.dtype)
    d_weights, d_biases, ambiguous, exact = [], [], [], []
    for layer in reversed(range(stack.depth)):
        name, z, ez = stack.activations[layer], cache.preactivations[layer], e_z[layer]
        consts, kink = CONSTANTS[name], activations.get(name).kink
        # sigma'(Z): the reference's own values when its trace is given (the same function on the same Z)
        s = backward64.derivatives[layer] if backward64 is not None else activations.derivative(name, z)
        s_abs = np.abs(s)
        if name == "identity" or kink is not None:
            # s_err = 0: sigma' = 1 exactly, or a constant away from the kink (at it, see tolerances.py);
            # g = F |sigma'| + |D| s_err + u |D| |sigma'| with s_err = 0
            g = (f + u * d_mag) * s_abs
            s_mag = s_abs
        else:
            # S = Lip' E_Z + c' u (|sigma'| + 2 Lip' E_Z + 1) + tiny, regrouped as
            # Lip' (1 + 2 c' u) E_Z + c' u |sigma'| + (c' u + tiny)
            lip_d, cu = consts.lip_derivative, C_DERIVATIVE * u
            s_err = (lip_d * (1 + 2 * cu)) * ez + cu * s_abs + (cu + tiny)
            s_mag = s_abs + s_err
            g = f * s_mag + d_mag * s_err + u * d_mag * s_mag  # error of delta = D * sigma'(Z)
        g = g + eta * ((d_mag > 0) & (s_mag > 0))  # that multiplication's underflow, where it can be nonzero
        if kink is None:
            never = np.zeros(z.shape, bool)
            ambiguous.append(never)
            exact.append(never)
        else:
            on_kink = (z == kink) & (ez == 0)
            ambiguous.append((np.abs(z - kink) <= 2 * ez) & ~on_kink)
            exact.append(on_kink)
        delta = backward64.deltas[layer] if backward64 is not None else d * s
        delta_mag = np.abs(delta) + 2 * g
        m_prev = mags[layer]
        # dW: gamma_m M^T |delta| + E^T |delta| + M^T G  =  [gamma_m M + E ; M]^T [|delta| ; G], the two
        # products stacked along the batch axis so that one matmul sums both
        left = g_batch * m_prev if layer == 0 else g_batch * m_prev + e_a[layer - 1]
        dw = _t(np.concatenate([left, m_prev], axis=1)) @ np.concatenate([delta_mag, g], axis=1)
        d_weights.append(with_underflow(dw, nonzero_products(_t(m_prev), delta_mag), x.shape[1], stack.dtype))
        if stack.biases is not None:
            # db: gamma_m sum_batch |delta| + sum_batch G  =  sum_batch (gamma_m |delta| + G)
            d_biases.append(sum_over_batch(g_batch * delta_mag + g))
        w = cache.weights64[layer]
        # F_{l-1} = gamma_{n_l} |delta| |W|^T + G |W|^T  =  (gamma_{n_l} |delta| + G) |W|^T
        f = (gamma(w.shape[2], stack.dtype) * delta_mag + g) @ _t(abs_weights[layer])
        f = with_underflow(f, nonzero_products(delta_mag, _t(abs_weights[layer])), w.shape[2], stack.dtype)
        if layer == 0:
            break  # F_0 bounds dL/dx; below the first layer there is nothing left to propagate
        # dL/dA_{l-1} = delta W^T: the reference's own value when its trace is given
        d = backward64.d_outputs[layer - 1] if backward64 is not None else delta @ _t(w)
        d_mag = np.abs(d) + 2 * f
    return BatchedBounds(
        out=e_a[-1],
        loss=loss_bound,
        weights=tuple(reversed(d_weights)),
        biases=None if stack.biases is None else tuple(reversed(d_biases)),
        x=f,
        ambiguous=tuple(reversed(ambiguous)),
        exact_kinks=tuple(reversed(exact)),
    )
