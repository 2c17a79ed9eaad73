"""Family 11: recorded behaviours -- every framework version the gate runs on has a recorded row, and keeps it.

What a framework does where the maths leaves a choice (kink derivatives, subnormal results and inputs,
activation accuracy classes) is recorded per framework and version (``backends/recorded.json``, extended by
``mlp-crosscheck conventions --record``). The kink, underflow and accuracy families hold each built-in
backend to its row; this family makes a version without a row visible.

Claims:
- The installed framework version has a recorded row. Without one, the backend is held to the nearest
  recorded version's row, and under the ``ci`` profile or ``--strict-conventions`` the claim fails with what
  was observed, what the nearest row says, and the command that records the new row; under ``dev`` it is a
  warning in the run's summary, never a silent skip.
- An implementation that declares ``SUBNORMAL_INPUTS`` (``"kept"``, or ``"zero"``: denormals are read as 0, as
  XLA on the CPU does) treats subnormal inputs and weights as it declares; anyone else's treatment is reported.

The checks: ``properties/claims/recorded_behaviours.py``.
"""

from __future__ import annotations

import pytest
from mlp_crosscheck.properties import helpers
from mlp_crosscheck.properties.claims.recorded_behaviours import (
    check_installed_version_is_recorded,
    check_subnormal_inputs_are_treated_as_recorded,
)


@helpers.claim()
def test_installed_version_is_recorded(impl) -> None:
    if getattr(impl.module, "RECORDED_ROW", None) is None and not impl.builtin:
        pytest.skip(f"{impl.name} has no recorded row of behaviours (only the built-in backends do)")
    check_installed_version_is_recorded(impl)


@helpers.claim()
def test_subnormal_inputs_are_treated_as_recorded(impl, dtype) -> None:
    check_subnormal_inputs_are_treated_as_recorded(impl, dtype)
