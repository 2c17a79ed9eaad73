"""Family 7: conservation laws of gradient descent, checked with each implementation's own gradients.

One step ``W_l <- W_l - eta G_l`` (every layer, from the same weights) with the exact gradients changes

- for a linear (all-identity) network, the matrices ``Q_l = W_l^T W_l - W_{l+1} W_{l+1}^T`` by exactly
  ``eta^2 (G_l^T G_l - G_{l+1} G_{l+1}^T)``; with biases, ``W_l`` is augmented by the row ``b_l^T``
  (``Q_l = W_l^T W_l + b_l b_l^T - W_{l+1} W_{l+1}^T``, ``G_l`` by ``g_{b_l}^T``);
- for a relu layer ``l`` (any activation after it), the per-unit quantities
  ``q_i = ||W_l[:, i]||^2 + b_l[i]^2 - ||W_{l+1}[i, :]||^2`` by exactly
  ``eta^2 (||G_l[:, i]||^2 + g_{b_l}[i]^2 - ||G_{l+1}[i, :]||^2)``;
- and for tanh the per-unit law fails: the negative control.

The derivation, and how the laws are checked within a rigorous bound: ``properties/claims/conservation.py``.
"""

from __future__ import annotations

from mlp_crosscheck.properties import helpers, strategies
from mlp_crosscheck.properties.claims.conservation import (
    check_linear_conservation_law,
    check_tanh_network_violates_the_unit_law_beyond_its_bound,
    check_unit_conservation_law,
    steps,
)
from mlp_crosscheck.properties.tolerances import gradient_bounds


def _case(data, activation: str, dtype) -> strategies.Case:
    """A case of two layers or more: each law relates a layer to the next."""
    widths = data.draw(strategies.architectures(min_depth=2), label="widths")
    return data.draw(strategies.cases(activations=activation, dtype=dtype, widths=widths), label="case")


@helpers.claim()
def test_linear_network_balance_changes_by_eta_squared_terms(impl, dtype, data) -> None:
    helpers.skip_if_unsupported(impl, "identity", dtype)
    net, x, y = _case(data, "identity", dtype)
    check_linear_conservation_law(impl, net, x, y, data.draw(steps, label="eta"))


@helpers.claim()
def test_relu_network_unit_balance_changes_by_eta_squared_terms(impl, dtype, data) -> None:
    helpers.skip_if_unsupported(impl, "relu", dtype)
    net, x, y = _case(data, "relu", dtype)
    bounds = gradient_bounds(net, x, y)
    helpers.assume_no_ambiguous_kinks(bounds)
    check_unit_conservation_law(impl, net, x, y, data.draw(steps, label="eta"), bounds)


@helpers.claim()
def test_tanh_network_violates_the_unit_law_beyond_its_bound(impl, dtype) -> None:
    helpers.skip_if_unsupported(impl, "tanh", dtype)
    check_tanh_network_violates_the_unit_law_beyond_its_bound(impl, dtype)
