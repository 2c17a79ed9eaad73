"""The batched reference passes a kink convention through to the derivative, as the reference does.

``loss_and_gradients_batched`` and ``backward_batched`` take ``kinks`` (jax's leaky_relu'(0) = 1)
and hand it to ``backward_batched_traced``. Mutation testing (``docs/mutation.md``) found that dropping it in
either wrapper passed every test: the sweep excludes networks with exact kinks, and the unit test of the
override (``tests/test_batched_reference.py``) compares ``dL/dW_1``, which at an all-zero input row -- how it
puts every pre-activation of that row exactly on the kink -- does not depend on the derivative there.
``dL/dx`` of that row does: ``delta_1 W_1^T`` with ``delta_1 = sigma'(0) * ...``.

Claim: for every stack of leaky_relu networks without biases (so an all-zero input row puts every layer's
pre-activations of that row exactly on the kink), float32 and float64, and either convention at the kink,
network ``k``'s loss and gradients -- ``dL/dx`` included -- from ``loss_and_gradients_batched`` and from
``backward_batched`` agree with ``reference.network.loss_and_gradients`` on network ``k`` with the same
convention, within the pair's rounding bound.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlp_crosscheck.backends.contract import Result
from mlp_crosscheck.properties import helpers, strategies
from mlp_crosscheck.properties.assertions import assert_gradients_within_bounds
from mlp_crosscheck.properties.tolerances import gradient_bounds
from mlp_crosscheck.reference import network
from mlp_crosscheck.reference.activations import Kinks
from mlp_crosscheck.reference.batched import NetworkStack, backward_batched, forward_batched, loss_and_gradients_batched

CONVENTIONS = [pytest.param(Kinks({"leaky_relu": 1.0}), id="jax"), pytest.param(Kinks({"leaky_relu": 0.5}), id="half")]


@pytest.mark.parametrize("kinks", CONVENTIONS)
@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@given(data=st.data())
def test_batched_reference_follows_the_kink_convention_it_is_given(dtype, kinks, data) -> None:
    nets = [
        data.draw(strategies.networks(activations="leaky_relu", dtype=dtype, biases=False), label="net")
        for _ in range(2)
    ]
    widths = nets[0].widths
    nets[1] = data.draw(strategies.networks(activations="leaky_relu", dtype=dtype, biases=False, widths=widths))
    stack = NetworkStack.stack(nets)
    batch = data.draw(strategies.batch_sizes(widths), label="batch")
    xs = [data.draw(strategies.batches(net, batch=batch), label="x") for net in nets]
    for x in xs:
        x[0] = 0  # every pre-activation of row 0 is exactly 0 in every layer: the kink, exactly
    ys = [data.draw(strategies.targets(net, batch), label="y") for net in nets]
    x, y = np.stack(xs), np.stack(ys)
    losses, grads = loss_and_gradients_batched(stack, x, y, kinks)
    out, cache = forward_batched(stack, x)
    wrapped = backward_batched(stack, cache, out - y, kinks)
    for k, net in enumerate(nets):
        with helpers.reproduction_on_failure(net, xs[k], ys[k]):
            loss, expected = network.loss_and_gradients(net, xs[k], ys[k], kinks)
            bounds = gradient_bounds(net, xs[k], ys[k])
            helpers.assume_no_ambiguous_kinks(bounds)  # near (not on) a kink the two may take either branch
            bounds = bounds.agree()
            reference = Result(loss, expected.weights, None, expected.x)
            for got in (grads, wrapped):
                actual = Result(float(losses[k]), tuple(w[k] for w in got.weights), None, got.x[k])
                assert_gradients_within_bounds(actual, reference, bounds, f"batched network {k}, {kinks}")
