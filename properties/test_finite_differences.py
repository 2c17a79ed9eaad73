"""Family 3: the reference's hand-derived gradients agree with complex-step and central-difference derivatives.

Both claims are about ``reference.network`` alone, in float64, on well-scaled cases (moderate magnitudes),
for every activation (and mixed), with and without biases; they check the loss gradient with respect to
every weight, bias and input entry.

How each derivative is computed, and its error bound derived: ``properties/claims/finite_differences.py``.
"""

from __future__ import annotations

from hypothesis import event
from mlp_crosscheck.properties import helpers, strategies
from mlp_crosscheck.properties.claims.finite_differences import (
    FLOAT64,
    check_gradients_match_central_differences,
    check_gradients_match_complex_step,
    sampled_entries,
)


@helpers.claim()
def test_gradients_match_complex_step(activation, data) -> None:
    net, x, y = data.draw(strategies.cases(activations=activation, dtype=FLOAT64, well_scaled=True), label="case")
    check_gradients_match_complex_step(net, x, y)


@helpers.claim()
def test_gradients_match_central_differences(activation, data) -> None:
    net, x, y = data.draw(strategies.cases(activations=activation, dtype=FLOAT64, well_scaled=True), label="case")
    entries = data.draw(sampled_entries(net, x), label="entries")
    checked = check_gradients_match_central_differences(net, x, y, entries)
    total = sum(len(v) for v in entries.values())
    if checked < total:
        event(f"central differences: {total - checked} of {total} entries reach a kink (complex step covers them)")
