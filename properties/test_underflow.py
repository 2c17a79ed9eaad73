"""Family 10: results that underflow -- below the smallest normal number ``tiny``, where rounding is absolute.

Found by the no-false-positive soak (seeds 17 and 23, dev profile): a float32 leaky_relu network at the small
scale had targets of ``7e-21``, whose squares are subnormal; numpy's loss was 22 bounds off the reference
(gradual underflow) and jax's was 0 (XLA flushes subnormal results to zero). The bound model lacked an
underflow term; ``properties/tolerances.py`` (docstring, "Underflow") now has one that admits both behaviours.

Claims:
- Loss and gradients agree with the reference within the rounding bound on cases scaled into underflow: a
  drawn case whose inputs, biases and targets are multiplied by a power of two ``2^-k``, chosen so that the
  products fall between about ``sqrt(tiny)`` and ``tiny`` -- for every implementation, activation and dtype.
- An implementation that declares ``FLUSHES_SUBNORMALS`` keeps subnormal results or flushes them to zero as it
  declares (the built-in backends declare theirs, measured with the version in ``RECORDED_WITH``: jax flushes,
  numpy and torch keep): a real framework difference, reported here rather than hidden; the bounds admit
  both. A framework that changes fails here, and its declaration is updated on purpose. Anyone else's
  behaviour is reported, not assumed.

The checks and the underflow strategy: ``properties/claims/underflow.py``.
"""

from __future__ import annotations

from mlp_crosscheck.properties import helpers
from mlp_crosscheck.properties.claims.gradient_agreement import check_gradients_match_reference
from mlp_crosscheck.properties.claims.underflow import (
    check_subnormal_results_are_kept_or_flushed_as_recorded,
    underflowing_cases,
)


@helpers.claim()
def test_gradients_match_reference_in_underflow(impl, dtype, activation, data) -> None:
    helpers.skip_if_unsupported(impl, activation, dtype)
    net, x, y = data.draw(underflowing_cases(impl, activation, dtype), label="case")
    check_gradients_match_reference(impl, net, x, y)


@helpers.claim()
def test_subnormal_results_are_kept_or_flushed_as_recorded(impl, dtype) -> None:
    check_subnormal_results_are_kept_or_flushed_as_recorded(impl, dtype)
