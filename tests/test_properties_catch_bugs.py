"""Each property family rejects a planted bug: the property's own check, run on a buggy implementation, fails.

The planted implementations live in ``tests/faults/`` and are loaded through the contract loader, as a user's
``--impl`` would be. Each test runs the same ``check_<claim>`` function that the property's ``@given`` test
runs, on a fixed example chosen to expose the bug, and asserts that it raises ``AssertionError`` (a
``ContractError`` is one). The control (``correct_planted_network.py``, a plain network with nothing
wrong) passes every one of those checks on the same example, so a failure is the bug's doing. A few tests
also let Hypothesis find a failing case from the property's own strategy (``hypothesis.find``), which shows the
strategy reaches the regime the bug needs.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import find
from mlp_crosscheck.backends.contract import Implementation
from mlp_crosscheck.properties import helpers, profiles
from mlp_crosscheck.properties.claims.contract import (
    check_calls_keep_contract_and_leave_inputs_alone,
    check_no_state_is_carried_between_calls,
    check_outputs_are_finite_where_the_reference_is,
    check_repeated_calls_agree,
    check_repeated_calls_are_bitwise_identical,
)
from mlp_crosscheck.properties.claims.finite_differences import (
    check_gradients_match_central_differences,
    check_gradients_match_complex_step,
)
from mlp_crosscheck.properties.claims.forward_agreement import check_forward_matches_reference
from mlp_crosscheck.properties.claims.gradient_agreement import check_gradients_match_reference
from mlp_crosscheck.properties.claims.kinks import (
    check_gradients_at_exact_kinks_follow_the_table,
    check_kink_derivative_matches_table,
    exact_kink_cases,
)
from mlp_crosscheck.properties.claims.underflow import (
    check_flushing_matches_declaration,
    measured_flushes_subnormals,
    underflowing_cases,
)
from mlp_crosscheck.reference import activations, network, seed
from mlp_crosscheck.reference.network import Gradients, Network

from mlp_crosscheck import backends

PLANTED = Path(__file__).parent / "faults"
FIND = profiles.FIND  # hypothesis.find's settings for planting and finding counterexamples


def planted(name: str) -> Implementation:
    return backends.load(str(PLANTED / f"{name}.py"))


CONTROL = planted("correct_planted_network")


def _fails(check, *args) -> bool:
    try:
        check(*args)
    except AssertionError:
        return True
    return False


def assert_check_rejects(check, bug: Implementation, *args) -> None:
    """Assert ``check`` passes for the control and fails for ``bug`` on the same example."""
    check(CONTROL, *args)
    with pytest.raises(AssertionError):
        check(bug, *args)


def _net(*weights, biases=None, activations=None) -> Network:
    weights = tuple(np.asarray(w, dtype=np.float64) for w in weights)
    names = activations or ("identity",) * len(weights)
    return Network(weights, None if biases is None else tuple(np.asarray(b, np.float64) for b in biases), names)


RNG = np.random.default_rng(20240607)
X, Y = seed.data()
SMALL_X = X / 8  # moderate pre-activations for the seed network


def _seed(activation, biases=False, dtype=np.float64):
    net = seed.initial_network(activation)
    if biases:
        net = Network(net.weights, tuple(RNG.standard_normal(w.shape[1]) * 0.5 for w in net.weights), net.activations)
    return net.astype(dtype)


# -- family 1: forward agreement ---------------------------------------------------------------------------------


def test_forward_agreement_rejects_the_gelu_tanh_approximation() -> None:
    assert_check_rejects(
        check_forward_matches_reference, planted("faulty_gelu_tanh_approximation"), _seed("gelu"), SMALL_X
    )


def test_forward_agreement_rejects_softplus_cut_off_at_20() -> None:
    # z = 21: the cut-off drops log1p(e^-21) = 7.6e-10, against a float64 bound of ~1e-13.
    net = _net([[21.0]], activations=("softplus",))
    assert_check_rejects(check_forward_matches_reference, planted("faulty_softplus_threshold"), net, np.array([[1.0]]))


def test_forward_agreement_finds_the_gelu_bug_from_its_own_strategy() -> None:
    bug = planted("faulty_gelu_tanh_approximation")
    find(
        helpers.cases_for(bug, "gelu", np.float64),
        lambda case: _fails(check_forward_matches_reference, bug, case.net, case.x),
        settings=FIND,
    )


# -- family 2: gradient agreement --------------------------------------------------------------------------------


def test_gradient_agreement_rejects_a_doubled_last_layer_gradient() -> None:
    assert_check_rejects(
        check_gradients_match_reference, planted("faulty_last_layer_weight_gradient_doubled"), _seed("tanh"), SMALL_X, Y
    )


def test_gradient_agreement_rejects_a_batch_mean_bias_gradient() -> None:
    net = _seed("sigmoid", biases=True)
    assert_check_rejects(check_gradients_match_reference, planted("faulty_bias_gradient_batch_mean"), net, SMALL_X, Y)


def test_gradient_agreement_rejects_an_untransposed_square_layer() -> None:
    net = _net(RNG.standard_normal((3, 3)), RNG.standard_normal((3, 1)), activations=("tanh", "identity"))
    assert_check_rejects(
        check_gradients_match_reference, planted("faulty_backward_untransposed_square_layers"), net, SMALL_X, Y
    )


def test_gradient_agreement_finds_the_bias_bug_from_its_own_strategy() -> None:
    bug = planted("faulty_bias_gradient_batch_mean")
    find(
        helpers.cases_for(bug, "tanh", np.float32, biases=True),
        lambda case: _fails(check_gradients_match_reference, bug, *case),
        settings=FIND,
    )


# -- family 3: hand-derived gradients against complex step and central differences -------------------------------


def _planted_gradients(derivative):
    """Return a ``(net, x, y) -> (loss, Gradients)`` whose backward pass uses ``derivative`` for sigma'."""
    bug = types.SimpleNamespace(NAME="planted-derivative")
    import sys

    sys.path.insert(0, str(PLANTED))
    try:
        from _planted_network import contract
    finally:
        sys.path.remove(str(PLANTED))
    _, _, loss_and_input_gradients = contract(derivative=derivative)

    def gradients(net, x, y):
        loss, dws, dbs, dx = loss_and_input_gradients(list(net.weights), net.biases, list(net.activations), x, y)
        return loss, Gradients(tuple(dws), None if dbs is None else tuple(dbs), dx)

    bug.gradients = gradients
    return gradients


def _tanh_derivative_without_square(name, z):
    # tanh' written as 1 - tanh(z) instead of 1 - tanh(z)^2: a slip in a hand derivation
    return 1 - np.tanh(z) if name == "tanh" else activations.derivative(name, z)


def _silu_derivative_without_product_rule(name, z):
    # silu' written as sigma(z), forgetting the z sigma'(z) term of the product rule
    return activations.apply("sigmoid", z) if name == "silu" else activations.derivative(name, z)


HAND_DERIVATION_SLIPS = [
    pytest.param(_tanh_derivative_without_square, "tanh", id="tanh-missing-square"),
    pytest.param(_silu_derivative_without_product_rule, "silu", id="silu-missing-product-rule"),
]


def _well_scaled_seed(activation):
    net = seed.initial_network(activation)
    return Network(tuple(w / 4 for w in net.weights), None, net.activations), SMALL_X, Y / 32


@pytest.mark.parametrize(("derivative", "activation"), HAND_DERIVATION_SLIPS)
def test_complex_step_rejects_a_hand_derivation_slip(derivative, activation) -> None:
    net, x, y = _well_scaled_seed(activation)
    check_gradients_match_complex_step(net, x, y)  # the reference's own derivation passes
    with pytest.raises(AssertionError):
        check_gradients_match_complex_step(net, x, y, gradients=_planted_gradients(derivative))


@pytest.mark.parametrize(("derivative", "activation"), HAND_DERIVATION_SLIPS)
def test_central_differences_reject_a_hand_derivation_slip(derivative, activation) -> None:
    net, x, y = _well_scaled_seed(activation)
    assert check_gradients_match_central_differences(net, x, y) > 0  # the reference passes, on checked entries
    with pytest.raises(AssertionError):
        check_gradients_match_central_differences(net, x, y, gradients=_planted_gradients(derivative))


def test_central_differences_reject_a_gradient_off_by_one_part_in_a_million() -> None:
    # The derived bound is tight enough for more than factor-2 bugs.
    net, x, y = _well_scaled_seed("gelu")

    def slightly_off(net, x, y):
        loss, g = network.loss_and_gradients(net, x, y)
        return loss, g._replace(weights=tuple(w * (1 + 1e-6) for w in g.weights))

    with pytest.raises(AssertionError):
        check_gradients_match_central_differences(net, x, y, gradients=slightly_off)


# -- family 8: the contract ----------------------------------------------------------------------------------------


def test_contract_rejects_a_mutated_input() -> None:
    check = check_calls_keep_contract_and_leave_inputs_alone
    assert_check_rejects(check, planted("faulty_scales_input_in_place"), _seed("tanh"), SMALL_X, Y)


def test_contract_rejects_a_dtype_change() -> None:
    case = _seed("tanh", dtype=np.float32), SMALL_X.astype(np.float32), Y.astype(np.float32)
    assert_check_rejects(check_calls_keep_contract_and_leave_inputs_alone, planted("faulty_float64_output"), *case)


def test_bitwise_check_rejects_an_unfixed_summation_order_that_the_bound_accepts() -> None:
    # Correct code whose reduction order varies (set order, GPU atomics, threaded BLAS): its repeated calls
    # agree within the rounding-error bound, so only the bitwise claim -- when required -- rejects it.
    net = _net(RNG.standard_normal((3, 16)), RNG.standard_normal((16, 1)) / 4, activations=("tanh", "identity"))
    x = RNG.standard_normal((4, 3))
    impl = planted("correct_alternating_summation_order")
    check_repeated_calls_agree(impl, net, x, Y)
    assert_check_rejects(check_repeated_calls_are_bitwise_identical, impl, net, x, Y)


def test_contract_rejects_accumulated_gradients() -> None:
    bug = planted("faulty_gradient_accumulates")
    case_a = (_seed("tanh"), SMALL_X, Y)
    case_b = (_seed("tanh", biases=False), SMALL_X[::-1].copy(), Y)
    assert_check_rejects(check_repeated_calls_agree, bug, *case_a)
    assert_check_rejects(check_no_state_is_carried_between_calls, bug, case_a, case_b)


def test_contract_rejects_an_overflowing_softplus() -> None:
    # z = 1000: exp overflows float64 (e^710) and float32 (e^89); the reference's softplus returns 1000.
    for dtype in (np.float64, np.float32):
        net = _net([[1000.0]], activations=("softplus",)).astype(dtype)
        x, y = np.ones((1, 1), dtype), np.zeros((1, 1), dtype)
        assert_check_rejects(
            check_outputs_are_finite_where_the_reference_is, planted("faulty_softplus_naive"), net, x, y
        )


def test_contract_finds_the_overflow_from_its_own_strategy() -> None:
    # Only the strategies' "large" regime reaches e^89: this shows it is drawn.
    bug = planted("faulty_softplus_naive")
    find(
        helpers.cases_for(bug, "softplus", np.float32),
        lambda case: _fails(check_outputs_are_finite_where_the_reference_is, bug, *case),
        settings=FIND,
    )


# -- family 9: kink conventions --------------------------------------------------------------------------------------


def _dead_unit_case(activation: str):
    # Unit 2 of the first layer has no incoming weight and no bias: z = 0 exactly for every sample.
    w1 = np.array([[0.5, 0.0, -0.25], [-0.3, 0.0, 0.4], [0.2, 0.0, 0.1]])
    w2 = np.array([[0.7], [-0.9], [0.3]])
    net = _net(w1, w2, biases=([0.1, 0.0, -0.1], [0.05]), activations=(activation, "identity"))
    return net, SMALL_X, Y / 32


@pytest.mark.parametrize(
    ("bug", "activation"),
    [("faulty_relu_derivative_two_at_zero", "relu"), ("faulty_leaky_relu_derivative_zero_at_zero", "leaky_relu")],
)
def test_kink_table_rejects_an_undocumented_convention(bug, activation) -> None:
    for dtype in (np.float32, np.float64):
        assert_check_rejects(check_kink_derivative_matches_table, planted(bug), activation, dtype)
    assert_check_rejects(check_gradients_at_exact_kinks_follow_the_table, planted(bug), *_dead_unit_case(activation))


def test_an_undeclared_valid_convention_is_accepted_and_reported() -> None:
    # jax's leaky_relu'(0) = 1 in a user's implementation that declares nothing: a valid subgradient.
    impl = planted("correct_leaky_relu_derivative_one_at_zero")
    with helpers.recording_notes() as notes:
        check_kink_derivative_matches_table(impl, "leaky_relu", np.float64)
    assert notes == ["leaky_relu'(0) = 1 (not declared; a valid choice in [0.01, 1])"]
    check_gradients_at_exact_kinks_follow_the_table(impl, *_dead_unit_case("leaky_relu"))


def test_kink_table_accepts_a_declared_convention() -> None:
    # The same implementation, declaring KINK_DERIVATIVES, passes both checks: the table is the mechanism.
    module = planted("correct_leaky_relu_derivative_one_at_zero").module
    declared = Implementation(
        types.SimpleNamespace(
            NAME="planted-declared-leaky-convention",
            KINK_DERIVATIVES={"leaky_relu": 1.0},
            forward=module.forward,
            loss_and_gradients=module.loss_and_gradients,
            loss_and_input_gradients=module.loss_and_input_gradients,
        )
    )
    check_kink_derivative_matches_table(declared, "leaky_relu", np.float64)
    check_gradients_at_exact_kinks_follow_the_table(declared, *_dead_unit_case("leaky_relu"))


def test_kink_property_finds_the_relu_bug_from_its_own_strategy() -> None:
    bug = planted("faulty_relu_derivative_two_at_zero")
    find(
        exact_kink_cases(bug, "relu", np.float64),
        lambda case: _fails(check_gradients_at_exact_kinks_follow_the_table, bug, *case),
        settings=FIND,
    )


# -- family 10: results that underflow ----------------------------------------------------------------------------


def test_underflow_agreement_finds_a_flush_at_a_normal_threshold_from_its_own_strategy() -> None:
    bug = planted("faulty_gradients_flushed_below_1e30")
    case = find(
        underflowing_cases(bug, "identity", np.float32),
        lambda case: _fails(check_gradients_match_reference, bug, *case),
        settings=FIND,
    )
    check_gradients_match_reference(CONTROL, *case)  # the control passes there: the failure is the bug's doing


def test_flush_declaration_rejects_an_unrecorded_change() -> None:
    class Flushing:  # a torch backend (declared: keeps subnormals) that flushes them
        NAME = "torch"
        FLUSHES_SUBNORMALS = False
        RECORDED_WITH = ("torch", "2.13.0")

        @staticmethod
        def forward(weights, biases, names, x):
            out = x @ weights[0]
            return np.where(np.abs(out) < np.finfo(out.dtype).smallest_normal, np.zeros_like(out), out)

        loss_and_gradients = staticmethod(lambda *a: None)

    bug = Implementation(Flushing, builtin="torch")
    assert measured_flushes_subnormals(bug, np.float32)
    assert not measured_flushes_subnormals(CONTROL, np.float32)
    with pytest.raises(AssertionError, match=r"declares FLUSHES_SUBNORMALS = False \(recorded with torch 2\.13\.0"):
        check_flushing_matches_declaration(bug, np.float32)
