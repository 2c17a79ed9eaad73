"""The sweep's error bounds, computed only where they decide something: a cheap lower bound and a cheap majorant.

``properties.tolerances.gradient_bounds_batched`` (the full bound ``B``) costs more per network than the
framework's own call. The sweep needs it to decide three things, and decides each without it where it can:

1. Agreement, ``|a - e| <= 2 B`` elementwise (``Bounds.agree``). ``lower_bounds`` returns ``C <= B``
   elementwise, from values the float64 reference pass already holds; ``|a - e| <= 2 C`` implies agreement.
   Only the networks where that test fails somewhere (and the sampled ones, whose ratios p50/p99 are read from)
   get ``B``, and with it the very comparison, ratios and messages the full path gives them.
2. Exclusion "beyond range": neither the reference's values nor ``B`` may exceed ``limit = u max``
   (``sweep.beyond_range``). ``majorant_decides`` computes, per network, scalars ``>= max B``, ``>=`` every value
   ``beyond_range`` tests (and ``>= max E_Z`` per relu layer) from each array's largest magnitude; a network whose
   majorant is within the limit cannot be excluded by its values or its bound. A chunk whose every network is so
   decided skips ``beyond_range``'s tests of the values (about 40 reductions).
3. Exclusion "kink": a relu/leaky_relu pre-activation with ``|Z| <= 2 E_Z`` (or ``Z == 0 == E_Z``). Where
   ``|Z| > 2 E^`` with ``E^ >= E_Z`` (the majorant) every element is neither ambiguous nor on the kink.
   A network that 2 or 3 cannot decide gets ``B``. The verdict, the excluded sets and the reported ratios of
   every failing network are therefore those of computing ``B`` everywhere (tests/test_sweep_bounds.py).

Why ``C <= B`` (notation of ``properties.tolerances``; ``m`` the batch, ``n_l`` widths, ``|A|, |delta|, |D|``
the float64 reference's values, ``M >= |A|``, ``delta_mag >= |delta|``, ``d_mag >= |D|`` the magnitudes ``B`` uses,
``c_l = C_DERIVATIVE u`` for a smooth layer -- not identity, no kink -- and 0 for identity, relu, leaky_relu; each
inequality up to the rounding of the next item):

- ``B`` is computed as sums of non-negative terms; adding a non-negative float never decreases a float, so
  ``B`` (computed) ``>=`` each of its terms (computed).
- Forward: ``E_l >= e_l |A_l|`` with ``e_l = C_VALUE u`` for a smooth layer (``E >= C_VALUE u (|Z| + |A|)``)
  and ``gamma_{n+1}`` for a piecewise linear one (``E >= E_Z >= gamma_{n+1} |Z|`` on the identity branch and
  near the kink; on the other ``|A|`` is 0 or ``slope |Z|`` and ``E >= slope E_Z``); ``E_0 = 0``.
- Backward: ``G_l >= k_l |delta_l|``: ``G_L >= F_L |sigma'| >= u |r| |sigma'|``, and ``F_{l-1} >= (gamma_{n_l} +
  k_l) |delta_l| |W_l|^T >= (gamma_{n_l} + k_l) |D_{l-1}|``, so ``k_L = u + c_L``, ``k_{l-1} = gamma_{n_l} + k_l +
  c_{l-1}``, where a smooth layer adds ``d_mag S >= |D| c_l (|sigma'| + 1) >= c_l |delta|``; that term also
  gives ``G_l >= k_l |delta_l| + c_l |D_l|`` (``|D| |sigma'| >= |delta|``), which is what ``C`` takes.
- With ``T_l = (gamma_m + e_{l-1} + k_l) |delta_l| + c_l |D_l|``: dW_l: ``B >= (gamma_m M^T) delta_mag +
  E_{l-1}^T delta_mag + M^T G >= |A_{l-1}|^T T_l``; db_l: ``B >= sum_batch (gamma_m + k_l) |delta_l| + c_l |D_l|
  >= rho_l sum_batch T_l`` with ``rho_l = min(1, (gamma_m + k_l) / (gamma_m + e_{l-1} + k_l))`` (scaling every
  term of a sum by at most 1); dx: ``F_0 >= (gamma_{n_1} |delta_1| + G_1) |W_1|^T >= ((gamma_{n_1} + k_1)
  |delta_1| + c_1 |D_1|) |W_1|^T >= rho T_1 |W_1|^T`` with ``rho = min(1, (gamma_{n_1} + k_1) / (gamma_m +
  k_1))``; loss: ``B >= sum f |r| + gamma_N sum r^2 / 2`` with ``f = F_L >= u |r| + E_L``, ``E_L >= C_VALUE u
  (|Z_L| + |A_L|)`` for a smooth last layer and ``>= e_L |A_L|`` otherwise.
- Floating point: ``C`` is that expression times ``(1 - 2^-20)``, computed in float64. Both ``C`` and ``B``
  are within ``K u_64`` (``K`` < 10^4 operations, so < 1e-12) of their exact values wherever no intermediate
  is subnormal; the factor absorbs that. Where one is, the absolute error is at most ``K 2^-1075``, but
  where ``C > 0`` some product of the sum is nonzero, so ``B`` carries its underflow term ``>= 2 tiny`` of
  the dtype there (the products' ``n eta``, ``G``'s ``eta`` for db, the loss's ``eta``), which dwarfs it.
- So ``|a - e| <= 2 C`` (a float comparison; ``2 C`` is exact) implies ``|a - e| <= 2 B``: the full
  comparison (``sweep._elementwise_failures``) accepts the network.

Why the majorant: each line of ``_forward_bounds``/``_gradient_bounds`` is a sum of products of non-negative
arrays, each matrix product a sum of ``n`` terms; replacing every array by its largest element and every
``n``-term sum by ``n`` times its largest term gives a scalar recurrence (``_majorants``) that is ``>=`` every
element exactly. The values take the same recurrence: ``|A_{l-1}| <= M``, ``|Z_l| <= n M |W| + |b|``,
``|delta_l| <= |D_l| |sigma'|``, ``|D_{l-1}| <= n_l |delta_l| |W_l|`` (dx the last), ``|dW_l| <= m M
|delta_l|``, ``|db_l| <= m |delta_l|``, the loss ``<= N r^2 / 2`` with ``N`` the output's elements, ``r`` the
residual's largest magnitude (measured). The computed values and ``B`` exceed those exact bounds by at most
``(1 + u_64)^K``; the test ``majorant (1 + 2^-20) <= limit`` absorbs that and the majorant's own rounding (a
NaN or infinity fails it).
Round to nearest is monotone, so a chunk's majorant (from the chunk's largest values) is ``>=`` each
network's: a chunk that passes decides every network in it, and the decision is each network's own (shards
decide alike).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mlp_crosscheck.properties.tolerances import (
    C_DERIVATIVE,
    C_VALUE,
    CONSTANTS,
    gamma,
    underflow_unit,
    unit_roundoff,
)
from mlp_crosscheck.reference import activations
from mlp_crosscheck.reference.batched import BackwardTrace, Cache, NetworkStack

SLACK = 2.0**-20  # relative margin over every rounding of C, B and the majorant (< 1e-12 each)


def _smooth(name: str) -> bool:
    """Whether sigma' carries the evaluation error S (``C_DERIVATIVE``): not identity, no kink."""
    return name != "identity" and activations.get(name).kink is None


def _value_error(name: str, fan_in: int, dtype) -> float:
    """Return ``e`` with ``E_l >= e |A_l|`` elementwise for a layer of activation ``name``: ``C_VALUE u`` for a
    smooth one (``E >= C_VALUE u (|Z| + |A|)``), ``gamma_{n+1}`` for a piecewise linear one (``E >= E_Z >=
    gamma_{n+1} |Z|`` on the identity branch and near the kink, ``|A| = 0`` or ``slope |Z|`` with ``E >= slope
    E_Z`` on the other)."""
    return C_VALUE * unit_roundoff(dtype) if _smooth(name) else gamma(fan_in + 1, dtype)


class _Coefficients(NamedTuple):
    """The scalar coefficients of ``C`` (module docstring), per layer ``l = 1..L``."""

    delta: list[float]  # of |delta_l| in T_l: scale keep (gamma_m + e_{l-1} + k_l)
    d_output: list[float]  # of |D_l| in T_l: scale keep c_l
    bias: list[float]  # rho_l, T_l's batch sum to db_l
    x: float  # rho, T_1 |W_1|^T to dx, keep included


def _coefficients(stack: NetworkStack, batch: int, scale: float) -> _Coefficients:
    """Return ``C``'s coefficients for networks of ``stack``'s architecture on batches of ``batch``, where ``k_l``
    is the coefficient ``G_l >= k_l |delta_l| + c_l |D_l|`` carries back: ``k_L = u + c_L`` (``F_L >= u |r|``)
    and ``k_{l-1} = gamma_{n_l} + k_l + c_{l-1}`` (``F_{l-1} >= (gamma_{n_l} + k_l) |delta_l| |W_l|^T >=
    (gamma_{n_l} + k_l) |D_{l-1}|``); ``scale`` (a power of 2) multiplies the coefficients of ``T_l``."""
    dtype = stack.dtype
    u, cu = unit_roundoff(dtype), C_DERIVATIVE * unit_roundoff(dtype)
    keep = 1 - SLACK
    g_m = gamma(batch, dtype)
    names = stack.activations
    value_error = [_value_error(name, w.shape[-2], dtype) for name, w in zip(names, stack.weights, strict=True)]
    carried = [0.0] * stack.depth  # k_l
    for layer in reversed(range(stack.depth)):
        own = cu if _smooth(names[layer]) else 0.0
        if layer == stack.depth - 1:
            carried[layer] = u + own  # G_L >= F_L |sigma'| >= u |r| |sigma'| (F_L's E_L is not in |r|)
        else:
            carried[layer] = gamma(stack.weights[layer + 1].shape[-1], dtype) + carried[layer + 1] + own
    delta, d_output, bias = [], [], []
    for layer in range(stack.depth):
        previous = value_error[layer - 1] if layer else 0.0  # E_0 = 0: the input is exact
        delta.append(scale * keep * (g_m + previous + carried[layer]))
        d_output.append(scale * keep * cu if _smooth(names[layer]) else 0.0)
        bias.append(min(1.0, (g_m + carried[layer]) / (g_m + previous + carried[layer])))
    n_1 = stack.weights[0].shape[-1]  # dx: T_1 with gamma_{n_1} for gamma_m, i.e. T_1 scaled by at most 1
    x = min(1.0, (gamma(n_1, dtype) + carried[0]) / (g_m + carried[0])) * keep
    return _Coefficients(delta, d_output, bias, x)


def _loss_lower_bound(stack: NetworkStack, out: np.ndarray, cache: Cache, trace: BackwardTrace, scale: float):
    """Return the loss's ``C``, ``(N,)``: ``sum f |r| + gamma_N sum r^2 / 2`` with ``f >= u |r| + E_L``."""
    dtype = stack.dtype
    u = unit_roundoff(dtype)
    r = trace.d_outputs[-1]  # A_L - y
    abs_r = np.abs(r)
    terms = r.shape[-2] * r.shape[-1]
    per_element = (u + 0.5 * gamma(terms, dtype)) * abs_r  # f |r| + gamma_N r^2 / 2, f >= u |r| + E_L
    last, fan_in = stack.activations[-1], stack.weights[-1].shape[-2]
    if _smooth(last):
        per_element += C_VALUE * u * (np.abs(cache.preactivations[-1]) + np.abs(out))
    else:
        per_element += _value_error(last, fan_in, dtype) * np.abs(out)
    per_element *= abs_r
    return (scale * (1 - SLACK)) * per_element.reshape(len(r), -1).sum(axis=1)


def lower_bounds(
    stack: NetworkStack, out: np.ndarray, cache: Cache, trace: BackwardTrace, scale: float = 1.0
) -> list[np.ndarray]:
    """Return ``scale C``, ``C`` elementwise at most the full bound, per quantity in the sweep's order (loss, dW,
    db, dx).

    Each is a product of the reference's magnitudes with scalar coefficients per layer (module docstring,
    ``_coefficients``): one matrix product per layer, for dW, and one for dx.

    Args:
        stack: the networks (their dtype sets ``u``); ``out, cache, trace``: the float64 reference's pass.
        scale: a power of 2, folded into the coefficients: the sweep's test ``|a - e| <= 2 C`` takes ``2 C``
            without a pass of its own (exactly ``2 C`` wherever no value is subnormal; where one is, the module
            docstring's underflow argument covers the difference).
    """
    k = _coefficients(stack, out.shape[-2], scale)
    weights, biases, first = [], [], None
    for layer in range(stack.depth):
        # T_l = (gamma_m + e_{l-1} + k_l) |delta_l| + c_l |D_l|: |A_{l-1}|^T T_l bounds dW, its batch sum times
        # rho_l = (gamma_m + k_l) / (gamma_m + e_{l-1} + k_l) <= 1 bounds db
        t = np.abs(trace.deltas[layer])
        t *= k.delta[layer]
        if k.d_output[layer]:
            d_abs = np.abs(trace.d_outputs[layer])
            d_abs *= k.d_output[layer]
            t += d_abs
        if stack.biases is not None:
            db = np.einsum("...bj->...j", t)
            db *= k.bias[layer]
            biases.append(db)
        weights.append(np.abs(cache.inputs[layer]).swapaxes(-1, -2) @ t)
        first = t if layer == 0 else first
    assert first is not None
    dx = first @ np.abs(stack.weights[0].astype(np.float64, copy=False)).swapaxes(-1, -2)
    dx *= k.x
    return [_loss_lower_bound(stack, out, cache, trace, scale), *weights, *biases, dx]


def _largest(a: np.ndarray, n: int, per_network: bool):
    """Return the largest magnitude of ``a``: per network ``(n,)`` or over the whole chunk; NaN propagates."""
    if per_network:
        flat = a.reshape(n, -1)
        return np.maximum(flat.max(axis=1), -flat.min(axis=1)).astype(np.float64)  # float32's: float64 here
    return np.float64(np.maximum(a.max(), -a.min()))


# Activations whose computed values lie in [-1, 1] (tanh, sigmoid): their largest |A| is at most 2, rounding
# included; every other activation satisfies |sigma(z)| <= 1 + Lip |z| (sigma(0) <= ln 2, elu >= -1), and the
# piecewise linear ones |sigma(z)| <= |z|, computed exactly up to leaky_relu's slope (< 1).
BOUNDED = ("tanh", "sigmoid")
PIECEWISE_LINEAR = ("identity", "relu", "leaky_relu")


def _majorants(stack: NetworkStack, x64: np.ndarray, out: np.ndarray, trace: BackwardTrace, per_network: bool):
    """Return (a majorant of every value and every element of every bound that ``beyond_range`` and
    ``bounds_beyond_range`` test, a majorant of ``E_Z`` per layer): scalars, or ``(n,)`` arrays per network.

    Line by line ``_forward_bounds`` and ``_gradient_bounds`` with every array replaced by a majorant of its
    elements and every ``n``-term sum by ``n`` times its largest term. Only ``|x|``, ``|W|``, ``|b|`` and the
    residual are measured (one reduction each); the rest follows: ``|Z_l| <= n M_{l-1} |W_l| + |b_l|`` (times
    ``1 + SLACK`` for its rounding), ``|A_l|`` from ``|Z_l|`` (``BOUNDED``, ``PIECEWISE_LINEAR``), every
    computed ``|sigma'| <= 2 Lip``, ``|delta_l| <= |D_l| |sigma'|`` and ``|D_{l-1}| <= n_l |delta_l| |W_l|``
    (times ``1 + SLACK``).
    """
    dtype = stack.dtype
    u, eta, tiny = unit_roundoff(dtype), underflow_unit(dtype), underflow_unit(dtype) / 2
    n_nets = stack.count
    big = lambda a: _largest(a, n_nets, per_network)
    grow = 1 + SLACK
    w_max = [big(w) for w in stack.weights]
    mags, errors, ez_all = [big(x64)], [0.0], []
    values = mags[0]  # the largest |value| of the reference's pass: beyond_range's arrays
    for layer, name in enumerate(stack.activations):
        n, wl = stack.weights[layer].shape[-2], w_max[layer]
        bl = big(stack.biases[layer]) if stack.biases is not None else 0.0
        ez = gamma(n + 1, dtype) * (n * mags[-1] * wl + bl) + n * errors[-1] * wl + n * eta * (1 + gamma(n, dtype))
        lip = CONSTANTS[name].lip
        z = (n * mags[-1] * wl + bl) * grow
        a = 2.0 if name in BOUNDED else z if name in PIECEWISE_LINEAR else 2 * (1 + lip * z)
        if name == "identity":
            e = ez
        elif name in ("relu", "leaky_relu"):
            e = ez + u * (a + 2 * lip * ez) + eta
        else:
            e = lip * ez + C_VALUE * u * (z + 2 * ez + a + 2 * lip * ez) + tiny
        ez_all.append(ez)
        errors.append(e)
        mags.append(a + 2 * e)
        values = np.maximum(values, np.maximum(z, mags[-1]))  # Z_l, and A_l (the output the last)
    r = big(trace.d_outputs[-1])
    f = errors[-1] + u * (r + 2 * errors[-1])
    d, d_mag = r, r + 2 * f
    terms = out.shape[-2] * out.shape[-1]
    g_n = gamma(terms, dtype)
    largest = 0.5 * (terms * f * (2 * d_mag + f) + g_n * terms * d_mag**2) + eta * (2 * (1 + g_n) * terms + 1)
    values = np.maximum(values, np.maximum(r, 0.5 * terms * r * r))  # dL/dA_L = r, and the loss
    batch, g_m = x64.shape[-2], gamma(x64.shape[-2], dtype)
    for layer in reversed(range(stack.depth)):
        name, ez = stack.activations[layer], ez_all[layer]
        s = 2 * CONSTANTS[name].lip
        if _smooth(name):
            lipd = CONSTANTS[name].lip_derivative
            s_err = (2 * lipd * ez + s + 1) * (C_DERIVATIVE * u) + lipd * ez + tiny
        else:
            s_err = 0.0
        s_mag = s + s_err
        g = f * s_mag + d_mag * s_err + u * d_mag * s_mag + eta
        delta = d * s * grow
        delta_mag = 2 * g + delta
        m_prev = mags[layer]
        dw = batch * (g_m * m_prev * delta_mag + errors[layer] * delta_mag + m_prev * g) + batch * eta * (1 + g_m)
        db = batch * (g_m * delta_mag + g)
        n, wl = stack.weights[layer].shape[-1], w_max[layer]
        f = n * (gamma(n, dtype) * delta_mag * wl + g * wl) + n * eta * (1 + gamma(n, dtype))
        largest = np.maximum(largest, np.maximum(dw, np.maximum(db, f)))
        d = n * delta * wl * grow
        d_mag = 2 * f + d
        # delta_l, D_{l-1} (dx below the first layer), |dW_l| <= m M delta and |db_l| <= m delta
        values = np.maximum(values, np.maximum(np.maximum(delta, d), batch * delta * np.maximum(m_prev, 1.0)))
    return np.maximum(largest, values), ez_all


def _decides(stack, x64, out, cache, trace, per_network: bool):
    """Return whether the majorants decide "neither beyond range by its bound nor at a kink": one bool for the
    chunk, or ``(n,)`` per network."""
    largest, ez_all = _majorants(stack, x64, out, trace, per_network)
    limit = unit_roundoff(stack.dtype) * float(np.finfo(stack.dtype).max)
    with np.errstate(invalid="ignore", over="ignore"):
        ok = largest * (1 + SLACK) <= limit  # NaN and infinity fail
        for layer, name in enumerate(stack.activations):
            kink = activations.get(name).kink
            if kink is None:
                continue
            z = cache.preactivations[layer]
            reach = 2 * (1 + SLACK) * ez_all[layer]
            if per_network:
                far = np.abs(z - kink) > np.asarray(reach)[:, None, None]
                ok = ok & far.reshape(stack.count, -1).all(axis=1)
            else:
                ok = ok & bool((np.abs(z - kink) > reach).all())
    return ok


def majorant_decides(stack: NetworkStack, x64: np.ndarray, out: np.ndarray, cache: Cache, trace: BackwardTrace):
    """Return, per network, whether neither its reference values nor its full bound can exceed the range limit,
    nor its bound put a pre-activation within reach of a kink (module docstring): True where it is not excluded,
    and the full bound is not needed to say so.

    The chunk's largest values first (a few flat reductions); only a chunk they do not decide is taken network by
    network, with each network's own largest values.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if bool(_decides(stack, x64, out, cache, trace, per_network=False)):
            return np.ones(stack.count, bool)
        return np.asarray(_decides(stack, x64, out, cache, trace, per_network=True), bool)
