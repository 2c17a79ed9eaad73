"""Gradients near a kink: an implementation may take either branch there, and must agree on the one it took.

A pre-activation within its error bound of a relu-type kink (``Bounds.ambiguous``) may be computed negative,
positive or exactly zero by a correct implementation, so its derivative there is the left slope, the right
slope or its convention at the kink. ``helpers.assert_gradients_agree_on_some_branch`` compares with the
reference on each of those ways; these tests build such a pre-activation exactly and show that each branch is
accepted and anything else rejected.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
from mlp_crosscheck.backends.contract import Implementation
from mlp_crosscheck.properties import helpers, tolerances
from mlp_crosscheck.properties.claims.gradient_agreement import check_gradients_match_reference
from mlp_crosscheck.reference import network
from mlp_crosscheck.reference.activations import Kinks
from mlp_crosscheck.reference.network import Network

# z = 1 * 1 + 1 * -(1 - 2^-23) = 2^-23 exactly in float32 and float64: positive, but far inside its float32
# error bound (about gamma_2 (1 + 1) = 2.4e-7 > 2^-23 = 1.2e-7), so a correct float32 implementation summing in
# another order, or with an FMA, may get any z in [-2.4e-7, 2.4e-7]: negative, zero or positive.
X = np.array([[1.0, 1.0]], dtype=np.float32)
Y = np.array([[0.5]], dtype=np.float32)


def near_kink_network(activation: str) -> Network:
    w1 = np.array([[1.0], [-(1.0 - 2.0**-23)]], dtype=np.float32)
    w2 = np.array([[0.75]], dtype=np.float32)
    return Network((w1, w2), None, (activation, "identity"))


def taking(slope: float, activation: str = "relu") -> Implementation:
    """An implementation whose derivative at the near-kink unit is ``slope`` (the reference's maths otherwise)."""
    branches = (np.full((1, 1), slope), None)

    def loss_and_gradients(weights, biases, activations, x, y):
        net = Network(tuple(weights), biases, tuple(activations))
        loss, grads = network.loss_and_gradients(net, x, y, Kinks(branches=branches))
        return loss, list(grads.weights), None

    def forward(weights, biases, activations, x):
        return network.forward(Network(tuple(weights), biases, tuple(activations)), x)[0]

    # It declares the reference's convention at an exact kink, so only the two branches are right near one.
    convention = {"relu": 0.0, "leaky_relu": 0.01}
    module = types.SimpleNamespace(
        NAME=f"{activation}'={slope} near the kink", forward=forward, KINK_DERIVATIVES=convention
    )
    module.loss_and_gradients = loss_and_gradients
    return Implementation(module)


def test_the_case_is_ambiguous_and_not_an_exact_kink() -> None:
    net = near_kink_network("relu")
    bounds = tolerances.gradient_bounds(net, X, Y)
    assert bounds.ambiguous[0].tolist() == [[True]]
    assert not bounds.exact_kinks[0].any()


@pytest.mark.parametrize(("activation", "slopes"), [("relu", [0.0, 1.0]), ("leaky_relu", [0.01, 1.0])])
def test_either_branch_is_accepted(activation, slopes) -> None:
    net = near_kink_network(activation)
    assert len(helpers.branch_assignments(net, tolerances.gradient_bounds(net, X, Y), taking(1.0, activation))) == 2
    for slope in slopes:
        check_gradients_match_reference(taking(slope, activation), net, X, Y)


@pytest.mark.parametrize(("activation", "slope"), [("relu", 0.5), ("relu", 2.0), ("leaky_relu", 0.0)])
def test_a_derivative_of_neither_branch_is_rejected_with_what_was_tried(activation, slope) -> None:
    # relu'(z) = 0.5 is a valid convention *at* 0, but this z is not 0 for an implementation that declares
    # (or measurably uses) relu'(0) = 0: on neither branch.
    with pytest.raises(AssertionError) as failure:
        check_gradients_match_reference(taking(slope, activation), near_kink_network(activation), X, Y)
    assert "compared on each of the 2 ways of taking their branches" in "\n".join(failure.value.__notes__)


def test_more_ways_than_the_limit_is_a_rejection_not_a_verdict() -> None:
    # Seven near-kink units (2^7 = 128 ways > 64): outside a Hypothesis test the example is refused.
    w1 = np.tile(np.array([[1.0], [-(1.0 - 2.0**-23)]], dtype=np.float32), (1, 7))
    net = Network((w1, np.full((7, 1), 0.25, dtype=np.float32)), None, ("relu", "identity"))
    bounds = tolerances.gradient_bounds(net, X, Y)
    assert int(bounds.ambiguous[0].sum()) == 7
    assert helpers.branch_assignments(net, bounds, taking(1.0)) is None
    with pytest.raises(ValueError, match="more than 64 ways of taking its ambiguous kinks"):
        check_gradients_match_reference(taking(1.0), net, X, Y)


def test_thousands_of_near_kink_units_are_refused_without_counting_their_ways() -> None:
    # 2^1100 ways overflow a float: the count must stop at the limit, not multiply them out.
    w1 = np.tile(np.array([[1.0], [-(1.0 - 2.0**-23)]], dtype=np.float32), (1, 1100))
    net = Network((w1, np.full((1100, 1), 0.25, dtype=np.float32)), None, ("relu", "identity"))
    assert helpers.branch_assignments(net, tolerances.gradient_bounds(net, X, Y), taking(1.0)) is None
