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

Both entry points: ``backends.contract.Implementation`` calls ``loss_and_input_gradients`` whenever a module
defines it, so for such a module (the three built-in backends among them) the contract's *required*
``loss_and_gradients`` is claimed on its own: it agrees with the reference in the same way ("mixed"
activations, one drawn per layer, and both dtypes, so two tests per implementation cover the vocabulary).
Mutation testing found it unchecked (``docs/mutation.md``). The checks: ``properties/claims/gradient_agreement.py``.
"""

from __future__ import annotations

import pytest
from mlp_crosscheck.properties import helpers
from mlp_crosscheck.properties.claims.gradient_agreement import (
    check_gradients_match_reference,
    required_entry_point_only,
)


@helpers.claim()
def test_gradients_match_reference(impl, dtype, activation, data) -> None:
    helpers.skip_if_unsupported(impl, activation, dtype)
    net, x, y = data.draw(helpers.cases_for(impl, activation, dtype, large=True), label="case")
    check_gradients_match_reference(impl, net, x, y)


@helpers.claim()
def test_required_loss_and_gradients_matches_reference(impl, dtype, data) -> None:
    if not impl.has_input_gradient:
        pytest.skip(f"{impl.name} defines only loss_and_gradients, which family 2 already checks")
    helpers.skip_if_unsupported(impl, helpers.MIXED, dtype)
    net, x, y = data.draw(helpers.cases_for(impl, helpers.MIXED, dtype, large=True), label="case")
    check_gradients_match_reference(required_entry_point_only(impl), net, x, y)
