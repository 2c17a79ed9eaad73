"""Family 0: activation accuracy -- each activation's value and derivative on a fixed grid, against 60-digit mpmath.

The network-level claims hold an implementation to derived bounds on whole networks; these name the function:
``torch elu(-1e-10) = 0.0 in float32; exact -1e-10``. The grid (``properties/accuracy.py``) has tiny |z| down
to the subnormals, ordinary values, the tails up to +-750 and the edges of exp's range, in float32 and
float64, measured through the contract (one layer, one unit per point), so every implementation is covered.

Claims:
- Every point's error is within the error model that every network bound assumes (``C_VALUE``,
  ``C_DERIVATIVE`` in ``properties/tolerances.py``): an implementation beyond it fails, whoever it is.
- For an implementation with a recorded row (the built-in backends: ``backends/recorded.json``, keyed by
  framework and version), every point keeps its recorded accuracy class (accurate to a few ulps, within the
  model, outside it): a framework change that loses accuracy -- a derivative that becomes 0 in a tail where
  the exact value is 4e-18 -- fails here, naming the activation, the input and both values.
"""

from __future__ import annotations

import pytest
from mlp_crosscheck.properties import helpers
from mlp_crosscheck.properties.claims.activation_accuracy import (
    check_accuracy_as_recorded,
    check_accuracy_within_error_model,
)


@helpers.claim(activations=helpers.SINGLE_ACTIVATION_PARAMS)
def test_activation_is_accurate_within_the_error_model(impl, dtype, activation) -> None:
    helpers.skip_if_unsupported(impl, activation, dtype)
    check_accuracy_within_error_model(impl, activation, dtype)


@helpers.claim(activations=helpers.SINGLE_ACTIVATION_PARAMS)
def test_activation_accuracy_is_as_recorded(impl, dtype, activation) -> None:
    helpers.skip_if_unsupported(impl, activation, dtype)
    if getattr(impl.module, "RECORDED_ROW", None) is None:
        pytest.skip(f"{impl.name} has no recorded row of behaviours: its accuracy is judged by the error model only")
    check_accuracy_as_recorded(impl, activation, dtype)
