"""Family 1's check: forward outputs against the reference's (the claim: ``properties/test_forward_agreement.py``)."""

from __future__ import annotations

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
