"""Family 12: pinned hard cases -- fixed networks at exp's range, at tiny |z|, and with subnormal operands.

The strategies of the other families draw no subnormal value and reach exp's range only in a scale regime;
these cases are in every profile, for every implementation, activation and dtype (the cases:
``properties/claims/hard_cases.py``).

Claims:
- Forward output, loss and gradients agree with the reference within the usual bounds on each pinned case:
  pre-activations just past exp's range, pre-activations of 1e-10 and 1e-30, and subnormal inputs, weights,
  biases and targets -- these compared with the reference run on what the implementation reads (subnormals
  as 0 for an implementation that reads them as zero, as XLA on the CPU does).
- The same agreement on drawn cases with subnormal inputs, weights and biases sprinkled in (the other
  families' strategies flush subnormals), compared the same way.
"""

from __future__ import annotations

import pytest
from mlp_crosscheck.properties import helpers
from mlp_crosscheck.properties.claims.hard_cases import (
    CASES,
    check_pinned_case,
    pinned_case,
    subnormal_operand_cases,
)


@helpers.claim(activations=helpers.SINGLE_ACTIVATION_PARAMS)
@pytest.mark.parametrize("case", CASES)
def test_pinned_hard_cases_match_reference(impl, dtype, activation, case) -> None:
    net = pinned_case(case, activation, dtype).net
    helpers.skip_if_unsupported(impl, net.activations, dtype)
    check_pinned_case(impl, pinned_case(case, activation, dtype))


@helpers.claim()
def test_gradients_match_reference_with_subnormal_operands(impl, dtype, activation, data) -> None:
    helpers.skip_if_unsupported(impl, activation, dtype)
    check_pinned_case(impl, data.draw(subnormal_operand_cases(impl, activation, dtype), label="case"))
