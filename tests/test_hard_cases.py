"""Family 12's pinned cases: each kind of case fails on a planted bug of its kind, and passes the control."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import find
from mlp_crosscheck.backends import numpy_backend
from mlp_crosscheck.backends.contract import Implementation
from mlp_crosscheck.properties import profiles
from mlp_crosscheck.properties.claims.hard_cases import (
    CASES,
    as_read,
    check_pinned_case,
    pinned_case,
    subnormal_operand_cases,
)

from mlp_crosscheck import backends

PLANTED = Path(__file__).parent / "faults"
CONTROL = backends.builtin("numpy")


def _nan_for_subnormals(weights, biases, activations, x):
    # BUG: a "denormal guard" that marks subnormal inputs invalid instead of using them (or reading them as 0).
    x = np.where((x != 0) & (np.abs(x) < np.finfo(x.dtype).smallest_normal), np.nan, x).astype(x.dtype)
    return numpy_backend.forward(weights, biases, activations, x)


def _module(name: str, forward, **declared) -> Implementation:
    module = types.ModuleType(name)
    module.NAME, module.forward = name, forward
    module.loss_and_gradients = numpy_backend.loss_and_gradients
    vars(module).update(declared)
    return Implementation(module)


@pytest.mark.parametrize(
    ("case", "fault", "activation", "dtype"),
    [
        ("tiny_preactivations", "faulty_elu_exp_minus_one", "elu", "float32"),
        ("past_exp_range", "faulty_softplus_naive", "softplus", "float64"),
        ("past_exp_range", "faulty_sigmoid_exp_ratio", "sigmoid", "float64"),
    ],
)
def test_a_pinned_case_fails_on_the_fault_of_its_kind(case, fault, activation, dtype) -> None:
    check_pinned_case(CONTROL, pinned_case(case, activation, dtype))
    with pytest.raises(AssertionError, match=r"forward output|loss|dL/d"):
        check_pinned_case(backends.load(str(PLANTED / f"{fault}.py")), pinned_case(case, activation, dtype))


def test_the_subnormal_case_fails_on_an_implementation_that_turns_subnormal_inputs_into_nan() -> None:
    case = pinned_case("subnormal_operands", "tanh", "float32")
    check_pinned_case(CONTROL, case)
    # Found already where its treatment of subnormal inputs is measured (it reads them as neither x nor 0).
    with pytest.raises(AssertionError, match=r"^guarded: 5\.87747\d*e-39 \* 4\.0 computed to nan in float32"):
        check_pinned_case(_module("guarded", _nan_for_subnormals), case)
    # Declared "kept", it is compared on the subnormals as given, and its forward output is NaN.
    with pytest.raises(AssertionError, match="forward output"):
        check_pinned_case(_module("guarded", _nan_for_subnormals, SUBNORMAL_INPUTS="kept"), case)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_case_is_what_its_name_says(dtype) -> None:
    tiny = np.finfo(dtype).smallest_normal
    subnormal = pinned_case("subnormal_operands", "tanh", dtype)
    operands = [subnormal.x, subnormal.y, *subnormal.net.weights, *subnormal.net.biases]
    assert all(((a != 0) & (np.abs(a) < tiny)).any() for a in operands)
    edge = 709.8 if dtype == "float64" else 88.8
    assert (np.abs(pinned_case("past_exp_range", "elu", dtype).net.weights[0]) > edge).all()
    assert np.abs(pinned_case("tiny_preactivations", "elu", dtype).net.weights[0]).max() <= 1e-10
    with pytest.raises(ValueError, match="unknown pinned case 'huge'; the cases are past_exp_range"):
        pinned_case("huge", "elu", dtype)
    assert len(CASES) == 3


def test_an_implementation_that_reads_subnormals_as_zero_is_compared_on_zeros() -> None:
    case = pinned_case("subnormal_operands", "leaky_relu", "float64")
    declared_zero = _module("daz", numpy_backend.forward, SUBNORMAL_INPUTS="zero")
    read = as_read(declared_zero, case)
    assert read.x[0, 0] == 0
    assert read.net.weights[1][2, 0] == 0
    assert read.x[0, 1] == 1.0
    assert as_read(CONTROL, case) is case  # numpy keeps them (measured: it declares "kept" through its row)


def _fails(check, *args) -> bool:
    try:
        check(*args)
    except AssertionError:
        return True
    return False


def test_the_drawn_subnormal_cases_find_an_implementation_that_turns_subnormals_into_nan() -> None:
    guarded = _module("guarded", _nan_for_subnormals, SUBNORMAL_INPUTS="kept")
    found = find(
        subnormal_operand_cases(guarded, "tanh", "float64"),
        lambda case: _fails(check_pinned_case, guarded, case),
        settings=profiles.FIND,
    )
    assert ((found.x != 0) & (np.abs(found.x) < np.finfo(np.float64).smallest_normal)).any()
