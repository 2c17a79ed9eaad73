"""Family 2: every implementation's loss and gradients agree with the reference's, within the rounding bound.

Claim: for every network, batch and target, every activation, float32 and float64, with and without biases,
the loss, ``dL/dW_l``, ``dL/db_l`` and -- where the implementation provides it -- ``dL/dx`` are within
``bound_impl + bound_reference`` (``gradient_bounds(...).agree()``) of the reference's, elementwise.

Kinks are handled exactly, never by widening the bound: where a pre-activation sits exactly on a relu-type
kink and every implementation computes it exactly, the reference uses the implementation's documented
convention (``kink_conventions``); where it is merely within its error bound of a kink, the branch is
undetermined, and the implementation must agree with the reference on one of the ways of taking the branches
there (left slope, right slope, or its convention if its z lands exactly on the kink):
``helpers.assert_gradients_agree_on_some_branch``. An example with more than ``MAX_BRANCH_ASSIGNMENTS``
such ways is rejected, counted.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlp_crosscheck.properties import helpers


def check_gradients_match_reference(impl, net, x, y) -> None:
    """Assert ``impl``'s loss and gradients agree with the reference's within the pair's rounding bound."""
    with helpers.reproduction_on_failure(net, x, y):
        # Implementation under test (dL/dx only when it defines loss_and_input_gradients).
        actual = impl.loss_and_gradients(net, x, y)
        # Reference: float64, with impl's convention at exact kinks and, near a kink, on each way of taking the
        # branches; every quantity compared against bound_impl + bound_reference.
        context = helpers.describe(impl, net, "loss_and_gradients")
        helpers.assert_gradients_agree_on_some_branch(impl, net, x, y, actual, context)


@pytest.mark.parametrize("activation", helpers.ACTIVATION_PARAMS)
@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@helpers.claim()
@given(data=st.data())
def test_gradients_match_reference(impl, dtype, activation, data) -> None:
    helpers.skip_if_unsupported(impl, activation, dtype)
    net, x, y = data.draw(helpers.cases_for(impl, activation, dtype, large=True), label="case")
    check_gradients_match_reference(impl, net, x, y)
