"""Family 9: conventions at kinks -- what each framework returns for relu'(0) and leaky_relu'(0).

Claims:
- Every implementation's derivative exactly at the kink is the one it declares (``KINK_DERIVATIVES``; the
  built-in backends declare theirs, measured with the framework version in their ``RECORDED_WITH``: a
  framework that changes its convention fails here, naming both versions, and the declaration is updated on
  purpose), or, undeclared, any value of the subdifferential (reported: ``relu'(0) = 1`` is a valid
  subgradient; 2 is not).
- Agreement at exact kinks goes through the table: on networks whose pre-activations sit exactly on a kink
  (dead units with zero incoming weights and bias in every layer, zero samples with zero first-layer biases),
  every gradient agrees with the reference run with the implementation's convention, within the usual bound.
  Those pre-activations are computed exactly by everyone (each product is an exact zero), so nothing about
  them is filtered away or covered by a widened tolerance.

The checks and the exact-kink strategy: ``properties/claims/kinks.py``.
"""

from __future__ import annotations

from mlp_crosscheck.properties import helpers
from mlp_crosscheck.properties.claims.kinks import (
    check_gradients_at_exact_kinks_follow_the_table,
    check_kink_derivative_matches_table,
    exact_kink_cases,
)


@helpers.claim(activations=helpers.KINKED_ACTIVATION_PARAMS)
def test_kink_derivative_matches_table(impl, dtype, activation) -> None:
    helpers.skip_if_unsupported(impl, activation, dtype)
    check_kink_derivative_matches_table(impl, activation, dtype)


@helpers.claim(activations=helpers.KINKED_ACTIVATION_PARAMS)
def test_gradients_at_exact_kinks_follow_the_table(impl, dtype, activation, data) -> None:
    helpers.skip_if_unsupported(impl, activation, dtype)
    net, x, y = data.draw(exact_kink_cases(impl, activation, dtype), label="case")
    check_gradients_at_exact_kinks_follow_the_table(impl, net, x, y)
