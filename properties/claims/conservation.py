"""Family 7's checks: gradient descent's conservation laws (the claim: ``properties/test_conservation.py``).

Derivation. ``Q(W - eta G) - Q(W) = -eta (W_l^T G_l + G_l^T W_l) + eta (G_{l+1} W_{l+1}^T + W_{l+1} G_{l+1}^T)
+ eta^2 (G_l^T G_l - G_{l+1} G_{l+1}^T)``, so the law says the first-order terms cancel, i.e.
``S + S^T = T + T^T`` with ``S = W_l^T G_l`` and ``T = G_{l+1} W_{l+1}^T``. With ``Delta_l = dL/dZ_l``:
``G_l = A_{l-1}^T Delta_l`` and ``g_{b_l} = 1^T Delta_l``, so ``W_l^T G_l + b_l g_{b_l}^T = (A_{l-1} W_l + 1 b_l^T)^T
Delta_l = Z_l^T Delta_l``; and ``G_{l+1} W_{l+1}^T = A_l^T Delta_{l+1} W_{l+1}^T = A_l^T dL/dA_l``. For identity units
``Z_l = A_l`` and ``Delta_l = dL/dA_l``, so ``S = T`` exactly. Per unit, only the diagonal is needed:
``sum_n Z_ni Delta_ni = sum_n Z_ni sigma'(Z_ni) dL/dA_ni`` equals ``sum_n A_ni dL/dA_ni`` whenever
``z sigma'(z) = sigma(z)`` -- positive homogeneity, true of relu at every z (at z = 0 both sides are 0, whatever
the framework's derivative there) and false of tanh.

Checking it. With an implementation's gradients ``G^ = G + E``, the eta^2 terms are computed from the same
``G^`` on both sides and cancel exactly, so the residual ``rho = [Q(W - eta G^) - Q(W)] - eta^2 (...G^...)`` is
``-eta (W_l^T E_l + E_l^T W_l) + eta (E_{l+1} W_{l+1}^T + W_{l+1} E_{l+1}^T)``, bounded elementwise by
``eta (|W_l|^T B_l + B_l^T |W_l| + B_{l+1} |W_{l+1}|^T + |W_{l+1}| B_{l+1}^T)`` with ``|E| <= B`` the gradient bound
(``gradient_bounds``; per unit, ``2 eta (|W_l[:, i]| . B_l[:, i] + |b_i| B_b[i] + |W_{l+1}[i, :]| . B_{l+1}[i, :])``).
Everything else is computed exactly (``linear_maps.Exact``: the step ``W - eta G^`` with ``eta = 2^-k`` and
every product), so the only rounding in the comparison is the implementation's; the exact residual is
rounded once to float64 to be compared (a relative ``2^-53``, far inside any bound).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import strategies as st
from mlp_crosscheck.properties import assertions, helpers
from mlp_crosscheck.properties.assertions import assert_arrays_within_bound
from mlp_crosscheck.properties.linear_maps import Exact, exact
from mlp_crosscheck.properties.tolerances import gradient_bounds
from mlp_crosscheck.reference import seed
from mlp_crosscheck.reference.network import Network

# ---------------------------------------------------------------------------------------------------------
# Exact quantities.


def _augmented(weights: np.ndarray, biases: np.ndarray | None) -> np.ndarray:
    """Return ``[W; b^T]`` (the bias as one more input row), or ``W`` without biases."""
    return weights if biases is None else np.concatenate([weights, biases[None, :]], axis=0)


def _step(w: Exact, g: Exact, eta: Fraction) -> Exact:
    return w + Exact(-g.ints, g.scale * eta)


def _balance(w_l: Exact, w_next: Exact) -> Exact:
    """Return ``Q = W_l^T W_l - W_{l+1} W_{l+1}^T`` (W_l possibly augmented by its bias row)."""
    return w_l.T @ w_l + -(w_next @ w_next.T)


def linear_law_residuals(net: Network, result, eta: Fraction) -> list[np.ndarray]:
    """Return ``rho_l = [Q_l(W - eta G) - Q_l(W)] - eta^2 (G_l^T G_l - G_{l+1} G_{l+1}^T)`` per pair of layers.

    Computed exactly from the weights and the gradients in ``result``; rounded once to float64 at the end.
    """
    residuals = []
    for layer in range(net.depth - 1):
        b = None if net.biases is None else net.biases[layer]
        gb = None if result.biases is None else result.biases[layer]
        w_l, g_l = exact(_augmented(net.weights[layer], b)), exact(_augmented(result.weights[layer], gb))
        w_n, g_n = exact(net.weights[layer + 1]), exact(result.weights[layer + 1])
        change = _balance(_step(w_l, g_l, eta), _step(w_n, g_n, eta)) + -_balance(w_l, w_n)
        predicted = _balance(g_l, g_n)
        predicted = Exact(predicted.ints, predicted.scale * eta * eta)
        residuals.append((change + -predicted).to_float64())
    return residuals


def linear_law_bounds(net: Network, bounds, eta: Fraction) -> list[np.ndarray]:
    """Return the bound on each ``rho_l`` (module docstring) from the gradient bounds."""
    out = []
    for layer in range(net.depth - 1):
        b = None if net.biases is None else net.biases[layer]
        bb = None if bounds.biases is None else bounds.biases[layer]
        w_l = np.abs(_augmented(net.weights[layer], b).astype(np.float64))
        e_l = _augmented(bounds.weights[layer], bb)
        w_n = np.abs(net.weights[layer + 1].astype(np.float64))
        e_n = bounds.weights[layer + 1]
        s, t = w_l.T @ e_l, e_n @ w_n.T
        out.append(float(eta) * (s + s.T + t + t.T))
    return out


def unit_law_residuals(net: Network, result, eta: Fraction, layer: int) -> np.ndarray:
    """Return, per unit ``i`` of layer ``layer``, ``[q_i(W - eta G) - q_i(W)] - eta^2 q_i(G)`` exactly."""
    b = None if net.biases is None else net.biases[layer]
    gb = None if result.biases is None else result.biases[layer]
    w_l, g_l = exact(_augmented(net.weights[layer], b)), exact(_augmented(result.weights[layer], gb))
    w_n, g_n = exact(net.weights[layer + 1]), exact(result.weights[layer + 1])

    def q(incoming: Exact, outgoing: Exact) -> Exact:
        # ||incoming[:, i]||^2 - ||outgoing[i, :]||^2 as a row vector
        ins = Exact((incoming.ints * incoming.ints).sum(axis=0)[None, :], incoming.scale**2)
        outs = Exact((outgoing.ints * outgoing.ints).sum(axis=1)[None, :], outgoing.scale**2)
        return ins + -outs

    change = q(_step(w_l, g_l, eta), _step(w_n, g_n, eta)) + -q(w_l, w_n)
    predicted = q(g_l, g_n)
    return (change + -Exact(predicted.ints, predicted.scale * eta * eta)).to_float64()[0]


def unit_law_bound(net: Network, bounds, eta: Fraction, layer: int) -> np.ndarray:
    """Return ``2 eta (|W_l[:, i]| . B_l[:, i] + |b_i| B_b[i] + |W_{l+1}[i, :]| . B_{l+1}[i, :])`` per unit."""
    b = None if net.biases is None else net.biases[layer]
    bb = None if bounds.biases is None else bounds.biases[layer]
    w_l = np.abs(_augmented(net.weights[layer], b).astype(np.float64))
    e_l = _augmented(bounds.weights[layer], bb)
    w_n = np.abs(net.weights[layer + 1].astype(np.float64))
    return 2 * float(eta) * ((w_l * e_l).sum(axis=0) + (w_n * bounds.weights[layer + 1]).sum(axis=1))


# ---------------------------------------------------------------------------------------------------------
# Checks (plain functions: the properties run them on drawn cases, tests/ on planted bugs).


def check_linear_conservation_law(impl, net: Network, x, y, eta: Fraction) -> None:
    """Assert one step with ``impl``'s gradients changes every ``Q_l`` by ``eta^2 (G_l^T G_l - G_{l+1} G_{l+1}^T)``."""
    with helpers.reproduction_on_failure(net, x, y):
        result = impl.loss_and_gradients(net, x, y)
        bounds = gradient_bounds(net, x, y)
        for layer, (rho, allowed) in enumerate(
            zip(linear_law_residuals(net, result, eta), linear_law_bounds(net, bounds, eta), strict=True)
        ):
            assert_arrays_within_bound(
                f"change of Q_{layer + 1} less eta^2 (G_{layer + 1}^T G_{layer + 1} - G_{layer + 2} G_{layer + 2}^T)",
                rho,
                np.zeros_like(rho),
                allowed,
                f"eta = {eta}; {helpers.describe(impl, net)}",
            )


def check_unit_conservation_law(impl, net: Network, x, y, eta: Fraction, bounds=None) -> None:
    """Assert one step changes every hidden unit's ``q_i`` by ``eta^2 q_i(G)``, within the bound.

    True when every hidden layer is positively homogeneous (relu; also identity); tanh breaks it (the control).
    ``bounds``: ``gradient_bounds(net, x, y)`` if the caller already has it.
    """
    with helpers.reproduction_on_failure(net, x, y):
        result = impl.loss_and_gradients(net, x, y)
        bounds = bounds if bounds is not None else gradient_bounds(net, x, y)
        for layer in range(net.depth - 1):
            rho = unit_law_residuals(net, result, eta, layer)
            assert_arrays_within_bound(
                f"change of q_i in layer {layer + 1} less eta^2 q_i(G)",
                rho,
                np.zeros_like(rho),
                unit_law_bound(net, bounds, eta, layer),
                f"eta = {eta}; {helpers.describe(impl, net)}",
            )


def unit_law_violation(impl, net: Network, x, y, eta: Fraction) -> float:
    """Return the largest ``|rho_i| / bound_i`` of the per-unit law over the hidden layers (> 1: violated)."""
    result = impl.loss_and_gradients(net, x, y)
    bounds = gradient_bounds(net, x, y)
    ratios = [
        np.abs(unit_law_residuals(net, result, eta, layer)) / unit_law_bound(net, bounds, eta, layer)
        for layer in range(net.depth - 1)
    ]
    return float(max(r.max() for r in ratios))


# ---------------------------------------------------------------------------------------------------------
# The steps the properties draw, and the negative control.

steps = st.integers(0, 12).map(lambda k: Fraction(1, 2**k))  # eta = 2^-k: the step W - eta G is exact

# The negative control: the seed's network and data with tanh units, one step of 2^-4.
TANH_CONTROL_STEP = Fraction(1, 16)


def check_tanh_network_violates_the_unit_law_beyond_its_bound(impl, dtype) -> None:
    """Assert the negative control: on the seed's network with tanh units, the per-unit law fails by far.

    ``z tanh'(z) != tanh(z)``: the first-order terms do not cancel, by far more than rounding can explain, so
    the ratio of the residual to its bound must exceed 1000, and ``check_unit_conservation_law`` must reject it.
    """
    net = seed.initial_network("tanh", dtype)
    x, y = seed.data(dtype)
    ratio = unit_law_violation(impl, net, x, y, TANH_CONTROL_STEP)
    if not ratio > 1e3:
        raise AssertionError(
            f"tanh's per-unit residual is only {ratio:.3g} x its rounding bound; the control shows nothing"
        )
    # A comparison meant to fail: its ratio is evidence of the control, not an error of the implementation.
    with assertions.not_recorded(), pytest.raises(AssertionError, match="exceed the rounding-error bound"):
        check_unit_conservation_law(impl, net, x, y, TANH_CONTROL_STEP)
