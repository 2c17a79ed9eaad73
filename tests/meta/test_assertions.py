"""Meta-tests of properties/assertions.py: every assert helper passes when it should and fails when it should.

One ``_should_pass`` / ``_should_fail`` pair per helper and per rule (chex ``asserts_test.py`` style), then the
handling of NaN and infinity positions, and what a failure message must contain: the greatest absolute and
relative difference, where, the values there, and the bound allowed.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from mlp_crosscheck.backends.contract import Result
from mlp_crosscheck.properties.assertions import (
    assert_arrays_within_bound,
    assert_gradients_within_bounds,
    assert_scalars_within_bound,
)
from mlp_crosscheck.properties.tolerances import Bounds

EXPECTED = np.array([[1.0, -2.0, 3.0], [0.0, 5.0, -6.0]])
BOUND = np.full(EXPECTED.shape, 1e-3)


def _shifted(index, by) -> np.ndarray:
    actual = EXPECTED.copy()
    actual[index] += by
    return actual


# -- assert_arrays_within_bound ----------------------------------------------------------------------------------


def test_arrays_within_bound_should_pass_when_equal() -> None:
    assert_arrays_within_bound("a", EXPECTED.copy(), EXPECTED, BOUND)


def test_arrays_within_bound_should_pass_at_exactly_the_bound() -> None:
    assert_arrays_within_bound("a", _shifted((1, 2), 0.5), EXPECTED, np.full(EXPECTED.shape, 0.5))


def test_arrays_within_bound_should_pass_with_a_broadcast_scalar_bound() -> None:
    assert_arrays_within_bound("a", EXPECTED + 1e-4, EXPECTED, 1e-3)


def test_arrays_within_bound_should_pass_with_a_zero_bound_and_equal_values() -> None:
    assert_arrays_within_bound("a", EXPECTED.copy(), EXPECTED, 0.0)


def test_arrays_within_bound_should_fail_beyond_the_bound_in_one_element() -> None:
    with pytest.raises(AssertionError, match="1 of 6 elements exceed"):
        assert_arrays_within_bound("a", _shifted((0, 1), 2e-3), EXPECTED, BOUND)


def test_arrays_within_bound_should_fail_one_ulp_beyond_a_zero_bound() -> None:
    actual = EXPECTED.copy()
    actual[0, 0] = np.nextafter(actual[0, 0], 2.0)
    with pytest.raises(AssertionError, match="exceed"):
        assert_arrays_within_bound("a", actual, EXPECTED, 0.0)


def test_arrays_within_bound_should_fail_against_an_elementwise_bound() -> None:
    # Within the loosest element's bound, but not within its own.
    bound = BOUND.copy()
    bound[0, 0] = 1.0
    with pytest.raises(AssertionError, match="at \\(1, 1\\)"):
        assert_arrays_within_bound("a", _shifted((1, 1), 0.5), EXPECTED, bound)


def test_arrays_within_bound_should_fail_on_different_shapes() -> None:
    with pytest.raises(AssertionError, match="shape"):
        assert_arrays_within_bound("a", EXPECTED.T, EXPECTED, 1.0)


def test_arrays_within_bound_should_raise_value_error_on_a_nan_bound() -> None:
    bound = BOUND.copy()
    bound[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or negative"):
        assert_arrays_within_bound("a", EXPECTED, EXPECTED, bound)


def test_arrays_within_bound_should_raise_value_error_on_a_negative_bound() -> None:
    with pytest.raises(ValueError, match="NaN or negative"):
        assert_arrays_within_bound("a", EXPECTED, EXPECTED, -1e-3)


def test_arrays_within_bound_should_fail_in_float32_too() -> None:
    expected = EXPECTED.astype(np.float32)
    with pytest.raises(AssertionError, match="exceed"):
        assert_arrays_within_bound("a", expected + np.float32(1.0), expected, 0.5)


# -- NaN and infinity positions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_values_should_pass_at_the_same_positions(special) -> None:
    actual, expected = EXPECTED.copy(), EXPECTED.copy()
    actual[1, 0] = expected[1, 0] = special
    assert_arrays_within_bound("a", actual, expected, BOUND)


@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_values_should_fail_where_the_other_side_is_finite(special) -> None:
    actual = EXPECTED.copy()
    actual[1, 0] = special
    with pytest.raises(AssertionError, match=r"non-finite values differ at \(1, 0\)"):
        assert_arrays_within_bound("a", actual, EXPECTED, np.inf)  # no bound excuses a non-finite value
    with pytest.raises(AssertionError, match=r"non-finite values differ at \(1, 0\)"):
        assert_arrays_within_bound("a", EXPECTED, actual, np.inf)  # and symmetrically


def test_infinities_of_opposite_sign_should_fail() -> None:
    actual, expected = EXPECTED.copy(), EXPECTED.copy()
    actual[0, 2], expected[0, 2] = np.inf, -np.inf
    with pytest.raises(AssertionError, match="non-finite values differ"):
        assert_arrays_within_bound("a", actual, expected, np.inf)


def test_nan_against_infinity_should_fail() -> None:
    actual, expected = EXPECTED.copy(), EXPECTED.copy()
    actual[0, 2], expected[0, 2] = np.nan, np.inf
    with pytest.raises(AssertionError, match="non-finite values differ"):
        assert_arrays_within_bound("a", actual, expected, np.inf)


def test_finite_elements_are_still_compared_next_to_matching_non_finite_ones() -> None:
    actual, expected = _shifted((0, 0), 1.0), EXPECTED.copy()
    actual[1, 1] = expected[1, 1] = np.nan
    with pytest.raises(AssertionError, match=r"(?s)1 of 6 elements exceed.*at \(0, 0\)"):
        assert_arrays_within_bound("a", actual, expected, BOUND)


# -- the failure message ------------------------------------------------------------------------------------------


def _message(actual, expected=EXPECTED, bound=BOUND, name="dL/dW_2", context="torch vs reference") -> str:
    with pytest.raises(AssertionError) as info:
        assert_arrays_within_bound(name, actual, expected, bound, context)
    return str(info.value)


def test_failure_message_names_the_quantity_and_the_context() -> None:
    message = _message(_shifted((0, 1), 1.0))
    assert message.startswith("dL/dW_2 (torch vs reference)")


def test_failure_message_gives_the_greatest_absolute_difference_and_where() -> None:
    actual = _shifted((0, 1), 1.0)
    actual[1, 2] += 3.0  # the greatest absolute difference
    message = _message(actual)
    assert re.search(r"greatest absolute difference 3\.000e\+00 at \(1, 2\)", message), message


def test_failure_message_gives_the_greatest_relative_difference_and_where() -> None:
    actual = _shifted((0, 0), 0.5)  # 0.5 / 1.0 = 50 % relative
    actual[1, 2] += 1.0  # bigger in absolute terms, 1/6 relative
    message = _message(actual)
    assert re.search(r"greatest relative difference 5\.000e-01 at \(0, 0\)", message), message


def test_failure_message_gives_the_values_and_the_bound_at_the_worst_element() -> None:
    bound = BOUND.copy()
    bound[0, 1] = 0.25
    message = _message(_shifted((0, 1), 1.0), bound=bound)
    assert "worst against its bound at (0, 1)" in message, message
    assert "got -1.0, expected -2.0" in message, message
    assert "|diff| 1.000e+00 > bound 2.500e-01 (4 x the bound)" in message, message


def test_failure_message_counts_the_elements_beyond_their_bound() -> None:
    message = _message(EXPECTED + 1.0)
    assert "6 of 6 elements exceed" in message, message


# -- assert_scalars_within_bound ----------------------------------------------------------------------------------


def test_scalars_within_bound_should_pass_within_the_bound() -> None:
    assert_scalars_within_bound("loss", 1.0 + 1e-12, 1.0, 1e-11)


def test_scalars_within_bound_should_fail_beyond_the_bound() -> None:
    with pytest.raises(AssertionError, match=r"loss \(jax\): 1 of 1 elements exceed"):
        assert_scalars_within_bound("loss", 1.0 + 1e-10, 1.0, 1e-11, "jax")


def test_scalars_within_bound_should_fail_on_nan_against_a_number() -> None:
    with pytest.raises(AssertionError, match="non-finite"):
        assert_scalars_within_bound("loss", float("nan"), 1.0, 1.0)


# -- assert_gradients_within_bounds -------------------------------------------------------------------------------


def _result(scale: float = 1.0, biases: bool = True, x: bool = True) -> Result:
    return Result(
        loss=2.0 * scale,
        weights=(np.ones((3, 2)) * scale, np.full((2, 1), -1.0) * scale),
        biases=(np.ones(2) * scale, np.ones(1) * scale) if biases else None,
        x=np.full((4, 3), 0.5) * scale if x else None,
    )


def _bounds(width: float = 1e-9) -> Bounds:
    r = _result()
    full = lambda a: np.full(np.shape(a), width)
    return Bounds(
        out=np.full((4, 1), width),
        loss=width,
        weights=tuple(full(w) for w in r.weights),
        biases=tuple(full(b) for b in r.biases),
        x=full(r.x),
        ambiguous=(),
        exact_kinks=(),
    )


def test_gradients_within_bounds_should_pass_when_equal() -> None:
    assert_gradients_within_bounds(_result(), _result(), _bounds())


def test_gradients_within_bounds_should_pass_within_the_bounds() -> None:
    assert_gradients_within_bounds(_result(1 + 1e-10), _result(), _bounds())


@pytest.mark.parametrize(
    ("field", "name"),
    [
        ("loss", "loss"),
        ("weights", "dweights[1] (dL/dW_2)"),
        ("biases", "dbiases[0] (dL/db_1)"),
        ("x", "dx (dL/dx)"),
    ],
)
def test_gradients_within_bounds_should_fail_on_each_quantity(field, name) -> None:
    actual = _result()
    if field == "loss":
        actual = actual._replace(loss=actual.loss + 1e-6)
    elif field == "weights":
        actual = actual._replace(weights=(actual.weights[0], actual.weights[1] + 1e-6))
    elif field == "biases":
        actual = actual._replace(biases=(actual.biases[0] + 1e-6, actual.biases[1]))
    else:
        actual = actual._replace(x=actual.x + 1e-6)
    with pytest.raises(AssertionError, match=re.escape(name) + r" \(ctx\)"):
        assert_gradients_within_bounds(actual, _result(), _bounds(), "ctx")


def test_gradients_within_bounds_should_fail_when_one_side_lacks_bias_gradients() -> None:
    with pytest.raises(AssertionError, match="bias gradients"):
        assert_gradients_within_bounds(_result(biases=False), _result(), _bounds())


def test_gradients_within_bounds_should_pass_without_input_gradients_on_either_side() -> None:
    # An implementation without loss_and_input_gradients is not checked on dL/dx ...
    assert_gradients_within_bounds(_result(x=False), _result(), _bounds())
    assert_gradients_within_bounds(_result(), _result(x=False), _bounds())


def test_gradients_within_bounds_should_still_fail_on_weights_without_input_gradients() -> None:
    # ... but everything else still is.
    actual = _result(x=False)._replace(weights=(np.ones((3, 2)) * 2, np.full((2, 1), -1.0)))
    with pytest.raises(AssertionError, match="dL/dW_1"):
        assert_gradients_within_bounds(actual, _result(), _bounds())


def test_gradients_within_bounds_should_fail_on_a_missing_layer() -> None:
    actual = _result()._replace(weights=_result().weights[:1])
    with pytest.raises((AssertionError, ValueError)):
        assert_gradients_within_bounds(actual, _result(), _bounds())


def test_a_subnormal_bound_reports_the_excess_instead_of_an_overflow_warning() -> None:
    # diff / bound overflows float64 here; the report must be the AssertionError, with "inf x the bound".
    with pytest.raises(AssertionError, match=r"(?s)1 of 1 elements exceed .* \(inf x the bound\)"):
        assert_arrays_within_bound("dL/dW1", np.array([1.0]), np.array([0.0]), np.array([5e-324]))
    assert_arrays_within_bound("dL/dW1", np.array([5e-324]), np.array([0.0]), np.array([5e-324]))
