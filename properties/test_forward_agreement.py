"""Family 1: every implementation's forward output agrees with the reference's, within the rounding bound.

Claim: for every network, input and activation of the vocabulary, in float32 and float64, with and without
biases, ``|impl.forward(net, x) - exact| <= forward_bound(net, x)`` for both the implementation and the
reference, hence ``|impl - reference| <= 2 forward_bound`` elementwise (NaN and infinity positions equal).
The forward pass is Lipschitz in every pre-activation, kinks included, so no example is filtered.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlp_crosscheck.properties import helpers
from mlp_crosscheck.properties.assertions import assert_arrays_within_bound
from mlp_crosscheck.properties.tolerances import forward_bound


def check_forward_matches_reference(impl, net, x) -> None:
    """Assert ``impl``'s forward output is within twice the forward rounding bound of the reference's."""
    with helpers.reproduction_on_failure(net, x):
        # Reference: float64 on the exact cast (within the float64 bound of exact).
        expected = helpers.reference_forward(net, x)
        # Implementation under test, in the network's dtype.
        actual = impl.forward(net, x)
        # Compare: bound_impl + bound_reference.
        bound = 2 * forward_bound(net, x)
        assert_arrays_within_bound("forward output", actual, expected, bound, helpers.describe(impl, net, "forward"))


@pytest.mark.parametrize("activation", helpers.ACTIVATION_PARAMS)
@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@helpers.claim()
@given(data=st.data())
def test_forward_matches_reference(impl, dtype, activation, data) -> None:
    helpers.skip_if_unsupported(impl, activation, dtype)
    net, x, _ = data.draw(helpers.cases_for(impl, activation, dtype, large=True), label="case")
    check_forward_matches_reference(impl, net, x)
