"""Family 8: every implementation keeps the contract, call by call.

Claims, for every network, batch and target, every activation, float32 and float64:
- outputs have the contract's shapes and the input's dtype (``forward`` is ``(batch, n_L)``, each gradient
  is shaped like its parameter, ``dbiases`` is None exactly when the network has no biases);
- inputs are never mutated;
- calls are deterministic: the same call twice gives the same bits;
- results are finite wherever the reference's (in the same dtype) are finite;
- no state is carried between calls: A, then B, then A again gives the first A's bits.

``backends.contract.Implementation`` already checks shapes, dtypes and mutation on every call (and raises
``ContractError``, an ``AssertionError``); these properties make each of those claims on its own, over
generated cases, so that a breach is reported under the claim's name.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from properties import helpers, strategies
from reference import network


def _snapshot(net, *data) -> list[np.ndarray]:
    return [a.copy() for a in (*net.weights, *(net.biases or ()), *data)]


def _results(impl, net, x, y) -> dict[str, np.ndarray]:
    """Call both contract functions once; return every returned quantity by name (the loss as a 0-d array)."""
    out = impl.forward(net, x)
    result = impl.loss_and_gradients(net, x, y)
    named = {"forward output": out, "loss": np.float64(result.loss)}
    named.update({f"dL/dW_{i + 1}": g for i, g in enumerate(result.weights)})
    named.update({f"dL/db_{i + 1}": g for i, g in enumerate(result.biases or ())})
    if result.x is not None:
        named["dL/dx"] = result.x
    return named


def assert_results_bitwise_equal(first: dict, second: dict, what: str) -> None:
    """Assert two calls returned the same quantities with the same bits (signed zeros and NaNs included)."""
    assert first.keys() == second.keys(), f"{what}: the calls returned different quantities"
    for name, a in first.items():
        b = second[name]
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            raise AssertionError(f"{what}: {name} is {a.shape} {a.dtype}, then {b.shape} {b.dtype}")
        if a.tobytes() != b.tobytes():
            # Bits differ: say where, and by how much (0.0 means a signed zero or a NaN payload).
            differ = np.atleast_1d(
                a.view(np.uint8 if a.dtype.itemsize == 1 else f"u{a.dtype.itemsize}")
                != b.view(np.uint8 if b.dtype.itemsize == 1 else f"u{b.dtype.itemsize}")
            )
            i = tuple(int(v) for v in np.argwhere(differ)[0]) if a.ndim else ()
            gap = abs(float(a[i]) - float(b[i]))
            raise AssertionError(
                f"{what}: {name} differs between the calls in {int(differ.sum())} of {a.size} elements; "
                f"first at {i}: {a[i]!r} then {b[i]!r} (difference {gap:.3e})"
            )


def check_outputs_have_contract_shapes_and_dtypes(impl, net, x, y) -> None:
    """Assert both contract functions return the contract's shapes in the input's dtype."""
    with helpers.reproduction_on_failure(net, x, y):
        out = impl.forward(net, x)
        assert out.shape == (x.shape[0], net.widths[-1]), f"{impl.name}: forward output has shape {out.shape}"
        assert out.dtype == net.dtype, f"{impl.name}: forward output is {out.dtype} for a {net.dtype} input"
        result = impl.loss_and_gradients(net, x, y)
        assert isinstance(result.loss, float), f"{impl.name}: the loss is a {type(result.loss).__name__}"
        for i, (g, w) in enumerate(zip(result.weights, net.weights, strict=True)):
            assert (g.shape, g.dtype) == (w.shape, w.dtype), f"{impl.name}: dL/dW_{i + 1} is {g.shape} {g.dtype}"
        if net.biases is None:
            assert result.biases is None, f"{impl.name}: bias gradients for a network without biases"
        else:
            for i, (g, b) in enumerate(zip(result.biases, net.biases, strict=True)):
                assert (g.shape, g.dtype) == (b.shape, b.dtype), f"{impl.name}: dL/db_{i + 1} is {g.shape} {g.dtype}"
        if result.x is not None:
            assert (result.x.shape, result.x.dtype) == (x.shape, x.dtype), f"{impl.name}: dL/dx is {result.x.shape}"


def check_inputs_are_not_mutated(impl, net, x, y) -> None:
    """Assert the caller's arrays are bit for bit what they were before both contract functions ran."""
    with helpers.reproduction_on_failure(net, x, y):
        before = _snapshot(net, x, y)
        _results(impl, net, x, y)  # the wrapper also checks the copies it hands over (ContractError)
        after = _snapshot(net, x, y)
        for i, (a, b) in enumerate(zip(before, after, strict=True)):
            assert a.tobytes() == b.tobytes(), f"{impl.name}: input array {i} (weights, biases, x, y) was mutated"


def check_calls_are_deterministic(impl, net, x, y) -> None:
    """Assert the same calls, made twice in a row, return the same bits."""
    with helpers.reproduction_on_failure(net, x, y):
        first = _results(impl, net, x, y)
        second = _results(impl, net, x, y)
        assert_results_bitwise_equal(first, second, f"{impl.name}, the same call twice")


def check_outputs_are_finite_where_the_reference_is(impl, net, x, y) -> None:
    """Assert no NaN or infinity appears where the reference, in the same dtype, is finite."""
    with helpers.reproduction_on_failure(net, x, y):
        # Reference in the network's own dtype: an overflow the dtype forces on everyone is not a defect.
        ref_out = network.forward(net, x)[0]
        ref_loss, ref_grads = network.loss_and_gradients(net, x, y)
        expected = {"forward output": ref_out, "loss": np.float64(ref_loss)}
        expected.update({f"dL/dW_{i + 1}": g for i, g in enumerate(ref_grads.weights)})
        expected.update({f"dL/db_{i + 1}": g for i, g in enumerate(ref_grads.biases or ())})
        expected["dL/dx"] = ref_grads.x
        # Implementation under test.
        actual = _results(impl, net, x, y)
        # Compare finiteness only.
        for name, a in actual.items():
            bad = np.isfinite(expected[name]) & ~np.isfinite(a)
            if bad.any():
                i = tuple(int(v) for v in np.argwhere(np.atleast_1d(bad))[0]) if np.ndim(bad) else ()
                raise AssertionError(
                    f"{impl.name}: {name} is {np.asarray(a)[i]!r} at {i} where the reference's is "
                    f"{np.asarray(expected[name])[i]!r} ({int(np.sum(bad))} such elements)"
                )


def check_no_state_is_carried_between_calls(impl, case_a, case_b) -> None:
    """Assert that A, then B, then A again gives the first A's bits: B leaves no trace in A's results."""
    with helpers.reproduction_on_failure(*case_a):
        first = _results(impl, *case_a)
        _results(impl, *case_b)
        again = _results(impl, *case_a)
        assert_results_bitwise_equal(first, again, f"{impl.name}, case A before and after case B")


# -- the properties ------------------------------------------------------------------------------------------

_matrix = [
    pytest.mark.parametrize("activation", helpers.ACTIVATION_PARAMS),
    pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS),
]


def _property(test):
    for mark in reversed(_matrix):
        test = mark(test)
    return test


def _draw_case(impl, dtype, activation, data) -> strategies.Case:
    helpers.skip_if_unsupported(impl, activation, dtype)
    return data.draw(helpers.cases_for(impl, activation, dtype), label="case")


# A third of the profile's examples: Implementation checks shapes, dtypes and mutation on every call that
# every other property makes, so this test names the claim rather than adding coverage.
@_property
@helpers.fraction_of_examples(1 / 3)
@given(data=st.data())
def test_calls_keep_contract_shapes_and_dtypes_and_leave_inputs_alone(impl, dtype, activation, data) -> None:
    net, x, y = _draw_case(impl, dtype, activation, data)
    check_outputs_have_contract_shapes_and_dtypes(impl, net, x, y)
    check_inputs_are_not_mutated(impl, net, x, y)


@_property
@given(data=st.data())
def test_outputs_are_finite_where_the_reference_is(impl, dtype, activation, data) -> None:
    check_outputs_are_finite_where_the_reference_is(impl, *_draw_case(impl, dtype, activation, data))


# A third of the profile's examples: a nondeterministic reduction or a leaked cache shows on almost any
# case; the value regimes matter less here than for the agreement properties.
@_property
@helpers.fraction_of_examples(1 / 3)
@given(data=st.data())
def test_results_depend_only_on_the_arguments(impl, dtype, activation, data) -> None:
    """Deterministic (A twice: the same bits) and stateless (A, B, then A: the first A's bits)."""
    case_a = _draw_case(impl, dtype, activation, data)
    # Half of the time B has A's architecture, batch and activations (a cache keyed on shapes would hit).
    if data.draw(st.booleans(), label="B has A's shapes"):
        net = case_a.net
        b = strategies.cases(activations=net.activations, dtype=dtype, widths=net.widths, batch=case_a.x.shape[0])
        case_b = data.draw(b, label="case B")
    else:
        case_b = data.draw(helpers.cases_for(impl, activation, dtype), label="case B")
    check_calls_are_deterministic(impl, *case_a)
    check_no_state_is_carried_between_calls(impl, case_a, case_b)
