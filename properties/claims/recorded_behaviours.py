"""Family 11's checks: recorded behaviours (the claims: ``properties/test_recorded_behaviours.py``)."""

from __future__ import annotations

import numpy as np
from mlp_crosscheck.backends import recorded
from mlp_crosscheck.properties import helpers, kink_conventions, observed


def check_installed_version_is_recorded(impl) -> None:
    """Assert the implementation's framework version has a recorded row (a warning unless strict)."""
    lookup = getattr(impl.module, "RECORDED_ROW", None)
    if lookup is None:  # a built-in backend whose framework has no row at all (a package without recorded.json)
        message = (
            f"{impl.name}: no recorded behaviours for its framework at all (looked in {recorded.PACKAGED} and "
            f"{recorded.overlay_path()}); record the installed version's row: "
            f"{observed.RECORD_COMMAND} --backends {impl.name}"
        )
    elif lookup.exact:
        return
    else:
        found = observed.differences(observed.behaviours(impl), lookup.row)
        message = observed.unrecorded_message(impl, lookup, found)
    if observed.STRICT:
        raise AssertionError(message)
    helpers.warn(message.replace("\n", " "))


def check_subnormal_inputs_are_treated_as_recorded(impl, dtype) -> None:
    """Assert ``impl`` reads subnormal inputs as it declares in ``SUBNORMAL_INPUTS``, or report what it does."""
    measured = observed.measured_subnormal_inputs(impl, dtype)
    declared = getattr(impl.module, "SUBNORMAL_INPUTS", None)
    name = np.dtype(dtype).name
    if declared is None:
        helpers.report(
            f"{'reads subnormal inputs as zero' if measured == 'zero' else 'keeps subnormal inputs'} in {name}"
        )
        return
    if measured != declared:
        raise AssertionError(
            f"{impl.name}: subnormal inputs are {measured!r} in {name} (4 * (tiny / 2) computed to "
            f"{'0' if measured == 'zero' else '2 tiny'}), but it declares SUBNORMAL_INPUTS = {declared!r}"
            f"{kink_conventions.recorded_with(impl)}; if the framework changed, record its row: "
            f"{observed.RECORD_COMMAND} --backends {impl.name}"
        )
