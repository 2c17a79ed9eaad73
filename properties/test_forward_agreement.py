"""Family 1: every implementation's forward output agrees with the reference's, within the rounding bound.

Claim: for every network, input and activation of the vocabulary, in float32 and float64, with and without
biases, ``|impl.forward(net, x) - exact| <= forward_bound(net, x)`` for both the implementation and the
reference, hence ``|impl - reference| <= 2 forward_bound`` elementwise (NaN and infinity positions equal).
The forward pass is Lipschitz in every pre-activation, kinks included, so no example is filtered.
The check: ``properties/claims/forward_agreement.py``.
"""

from __future__ import annotations

from mlp_crosscheck.properties import helpers
from mlp_crosscheck.properties.claims.forward_agreement import check_forward_matches_reference


@helpers.claim()
def test_forward_matches_reference(impl, dtype, activation, data) -> None:
    helpers.skip_if_unsupported(impl, activation, dtype)
    net, x, _ = data.draw(helpers.cases_for(impl, activation, dtype, large=True), label="case")
    check_forward_matches_reference(impl, net, x)
