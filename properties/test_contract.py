"""Family 8: every implementation keeps the contract, call by call.

Claims, for every network, batch and target, every activation, float32 and float64:
- outputs have the contract's shapes and the input's dtype (``forward`` is ``(batch, n_L)``, each gradient
  is shaped like its parameter, ``dbiases`` is None exactly when the network has no biases);
- inputs are never mutated;
- results depend only on the arguments: the same call twice, and A again after B, agree within the
  rounding-error bound (two correct evaluations may differ by up to twice it: a reduction whose order is not
  fixed, GPU atomics, a threaded BLAS);
- results are finite wherever the reference's (in the same dtype) are finite;
- bitwise reproducibility is its own claim, reported (how many elements differ, by how many ulps) and
  required only when asked for: ``--require-bitwise-reproducible``, or ``DETERMINISTIC = True`` in the module.

``backends.contract.Implementation`` itself checks shapes, dtypes and mutation on every call, and raises
``ContractError`` (an ``AssertionError``) on a breach: that claim's property makes the calls over generated
cases, so that a breach is reported under the claim's name, and asserts nothing the wrapper already did. The
checks: ``properties/claims/contract.py``.
"""

from __future__ import annotations

from hypothesis import strategies as st
from mlp_crosscheck.properties import helpers, strategies
from mlp_crosscheck.properties.claims.contract import (
    check_bitwise_reproducibility,
    check_calls_keep_contract_and_leave_inputs_alone,
    check_no_state_is_carried_between_calls,
    check_outputs_are_finite_where_the_reference_is,
    check_repeated_calls_agree,
)


def _draw_case(impl, dtype, activation, data) -> strategies.Case:
    helpers.skip_if_unsupported(impl, activation, dtype)
    return data.draw(helpers.cases_for(impl, activation, dtype, large=True), label="case")


# A third of the profile's examples: Implementation checks shapes, dtypes and mutation on every call that
# every other property makes, so this test names the claim rather than adding coverage.
@helpers.claim(1 / 3)
def test_calls_keep_contract_shapes_and_dtypes_and_leave_inputs_alone(impl, dtype, activation, data) -> None:
    net, x, y = _draw_case(impl, dtype, activation, data)
    check_calls_keep_contract_and_leave_inputs_alone(impl, net, x, y)


@helpers.claim()
def test_outputs_are_finite_where_the_reference_is(impl, dtype, activation, data) -> None:
    check_outputs_are_finite_where_the_reference_is(impl, *_draw_case(impl, dtype, activation, data))


# A third of the profile's examples: a nondeterministic reduction or a leaked cache shows on almost any
# case; the value regimes matter less here than for the agreement properties.
@helpers.claim(1 / 3)
def test_results_depend_only_on_the_arguments(impl, dtype, activation, data) -> None:
    """Repeatable (A twice) and stateless (A, B, then A), both within the rounding-error bound."""
    case_a = _draw_case(impl, dtype, activation, data)
    # Half of the time B has A's architecture, batch and activations (a cache keyed on shapes would hit).
    if data.draw(st.booleans(), label="B has A's shapes"):
        net = case_a.net
        b = strategies.cases(activations=net.activations, dtype=dtype, widths=net.widths, batch=case_a.x.shape[0])
        case_b = data.draw(b, label="case B")
    else:
        case_b = data.draw(helpers.cases_for(impl, activation, dtype, large=True), label="case B")
    check_repeated_calls_agree(impl, *case_a)
    check_no_state_is_carried_between_calls(impl, case_a, case_b)


@helpers.claim()
def test_repeated_calls_are_bitwise_reproducible(impl, dtype, activation, bitwise_required) -> None:
    """Reported: whether the same call twice gives the same bits; a failure only when it is required.

    Required by ``--require-bitwise-reproducible`` or ``DETERMINISTIC = True`` in the module; otherwise an
    implementation whose bits vary (and whose results agree within the bound, which
    ``test_results_depend_only_on_the_arguments`` claims) is reported as an expected failure with the figures.
    """
    helpers.skip_if_unsupported(impl, activation, dtype)
    check_bitwise_reproducibility(impl, activation, dtype, bitwise_required)
