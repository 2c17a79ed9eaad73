"""The activation-accuracy constants of the tolerance model hold for the installed frameworks.

C_VALUE and C_DERIVATIVE (properties/tolerances.py) were set to twice the largest error ratio measured by
benchmarks/activation_accuracy.py; this rechecks the ratios on a smaller sample so that a framework upgrade
that makes an activation less accurate is noticed here, not as a puzzling property failure.
"""

import numpy as np
import pytest
from mlp_crosscheck.properties.accuracy import exact as _exact
from mlp_crosscheck.properties.tolerances import C_DERIVATIVE, C_VALUE, unit_roundoff
from mlp_crosscheck.reference import activations

from benchmarks.activation_accuracy import _evaluate, _points
from mlp_crosscheck import backends


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", activations.NAMES)
@pytest.mark.parametrize("backend", list(backends.BUILTINS))
def test_activation_errors_stay_within_the_model(backend, name, dtype):
    if backends.missing_reason(backend):
        pytest.skip(backends.missing_reason(backend))
    z = _points(300, dtype)
    exact = np.array([_exact(name, float(t)) for t in z])
    value, deriv = _evaluate(backend, name, z)
    u, tiny = unit_roundoff(dtype), float(np.finfo(dtype).smallest_normal)
    value_ratio = np.abs(value.astype(np.float64) - exact[:, 0]) / (u * (np.abs(exact[:, 0]) + np.abs(z)) + tiny)
    deriv_ratio = np.abs(deriv.astype(np.float64) - exact[:, 1]) / (u * (np.abs(exact[:, 1]) + 1) + tiny)
    kink = z == 0  # at an exact kink the convention table decides (properties/test_kink_conventions.py)
    assert value_ratio[~kink].max() <= C_VALUE, f"value error {value_ratio.max():.3g} u at z={z[value_ratio.argmax()]}"
    assert deriv_ratio[~kink].max() <= C_DERIVATIVE, (
        f"derivative {deriv_ratio.max():.3g} u at z={z[deriv_ratio.argmax()]}"
    )
