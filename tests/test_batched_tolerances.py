"""Claims about ``properties/batched_tolerances.py``: it is ``tolerances.gradient_bounds``, network by network.

The batched bounds regroup some products (``gamma M |W| + E |W| = (gamma M + E) |W|``), so the float64
arithmetic of the bound itself may round differently: every bound is a sum of non-negative terms, so the
regrouped value is within a few units in the last place of the per-network one (4 ulps measured). ``BOUND_RTOL`` allows
1e-14 relative (about 45 ulps), far below any change to the model, whose terms differ by factors; the
kink masks must be identical.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from mlp_crosscheck.properties import tolerances
from mlp_crosscheck.properties.batched_tolerances import gradient_bounds_batched
from mlp_crosscheck.reference import activations
from mlp_crosscheck.reference.batched import NetworkStack, backward_batched_traced, forward_batched

BOUND_RTOL = 1e-14
ARCHITECTURES = [(3, 4, 10, 1), (2, 5), (4, 3, 3, 2, 6)]
N = 10
BATCH = 4


def random_case(widths, activation, dtype, biased, seed, zero_rows=False):
    """Return a stack of N random networks and batches; ``zero_rows`` zeroes x's first row (exact kinks)."""
    rng = np.random.default_rng(seed)
    weights = tuple(rng.standard_normal((N, a, b)) / np.sqrt(a) for a, b in itertools.pairwise(widths))
    biases = tuple(rng.standard_normal((N, b)) for b in widths[1:]) if biased else None
    stack = NetworkStack(weights, biases, (activation,) * (len(widths) - 1)).astype(dtype)
    x = rng.standard_normal((N, BATCH, widths[0])).astype(dtype)
    if zero_rows:
        x[:, 0, :] = 0
    y = rng.standard_normal((N, BATCH, widths[-1])).astype(dtype)
    return stack, x, y


def assert_bounds_equal_per_network_bounds(stack, x, y, batched) -> None:
    """Assert network k's batched bounds equal ``tolerances.gradient_bounds`` of network k, for every k."""
    for k in range(stack.count):
        expected = tolerances.gradient_bounds(stack.network(k), x[k], y[k])
        where = f"network {k}"
        np.testing.assert_allclose(batched.loss[k], expected.loss, rtol=BOUND_RTOL, err_msg=f"loss, {where}")
        np.testing.assert_allclose(batched.out[k], expected.out, rtol=BOUND_RTOL, err_msg=f"out, {where}")
        np.testing.assert_allclose(batched.x[k], expected.x, rtol=BOUND_RTOL, err_msg=f"x, {where}")
        for i, (b, e) in enumerate(zip(batched.weights, expected.weights, strict=True)):
            np.testing.assert_allclose(b[k], e, rtol=BOUND_RTOL, err_msg=f"weights[{i}], {where}")
        assert (batched.biases is None) == (expected.biases is None)
        for i, (b, e) in enumerate(zip(batched.biases or (), expected.biases or (), strict=True)):
            np.testing.assert_allclose(b[k], e, rtol=BOUND_RTOL, err_msg=f"biases[{i}], {where}")
        for i, (b, e) in enumerate(zip(batched.ambiguous, expected.ambiguous, strict=True)):
            np.testing.assert_array_equal(b[k], e, err_msg=f"ambiguous[{i}], {where}")
        for i, (b, e) in enumerate(zip(batched.exact_kinks, expected.exact_kinks, strict=True)):
            np.testing.assert_array_equal(b[k], e, err_msg=f"exact_kinks[{i}], {where}")


def _case_id(widths, activation, dtype, biased) -> str:
    return f"{'-'.join(map(str, widths))}-{activation}-{np.dtype(dtype).name}-{'bias' if biased else 'nobias'}"


def cases():
    seed = 1000
    for widths in ARCHITECTURES:
        for activation in activations.NAMES:
            for dtype in (np.float32, np.float64):
                for biased in (False, True):
                    seed += 1
                    label = _case_id(widths, activation, dtype, biased)
                    yield pytest.param(widths, activation, dtype, biased, seed, id=label)


@pytest.mark.parametrize(("widths", "activation", "dtype", "biased", "seed"), list(cases()))
def test_batched_bounds_equal_the_per_network_bounds(widths, activation, dtype, biased, seed):
    stack, x, y = random_case(widths, activation, dtype, biased, seed)

    batched = gradient_bounds_batched(stack, x, y)

    assert_bounds_equal_per_network_bounds(stack, x, y, batched)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "identity", "gelu"])
def test_bounds_from_the_reference_pass_equal_the_bounds_computed_afresh(activation, dtype):
    stack, x, y = random_case((3, 4, 10, 1), activation, dtype, True, seed=7)
    wide, x64, y64 = stack.astype(np.float64), x.astype(np.float64), y.astype(np.float64)
    out, cache = forward_batched(wide, x64)
    _, trace = backward_batched_traced(wide, cache, out - y64)

    shared = gradient_bounds_batched(stack, x, y, forward64=(out, cache), backward64=trace)

    afresh = gradient_bounds_batched(stack, x, y)
    for a, b in zip(
        [shared.loss, shared.out, shared.x, *shared.weights, *shared.biases],
        [afresh.loss, afresh.out, afresh.x, *afresh.weights, *afresh.biases],
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=BOUND_RTOL)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_kink_masks_equal_the_per_network_masks(activation):
    # No biases and an all-zero input row: that row's Z is exactly 0 with zero error bound in every layer.
    stack, x, y = random_case((3, 4, 4, 2), activation, np.float64, False, seed=21, zero_rows=True)

    batched = gradient_bounds_batched(stack, x, y)

    assert batched.exact_kinks[0][:, 0, :].all()
    assert_bounds_equal_per_network_bounds(stack, x, y, batched)


def test_agree_doubles_every_bound_and_keeps_the_masks():
    stack, x, y = random_case((3, 4, 1), "relu", np.float64, True, seed=4)
    bounds = gradient_bounds_batched(stack, x, y)

    agree = bounds.agree()

    np.testing.assert_array_equal(agree.loss, 2 * bounds.loss)
    np.testing.assert_array_equal(agree.weights[1], 2 * bounds.weights[1])
    np.testing.assert_array_equal(agree.biases[0], 2 * bounds.biases[0])
    np.testing.assert_array_equal(agree.x, 2 * bounds.x)
    assert agree.ambiguous is bounds.ambiguous


def test_a_trace_without_its_forward_pass_is_refused():
    stack, x, y = random_case((3, 4, 1), "tanh", np.float64, False, seed=2)
    out, cache = forward_batched(stack, x)
    _, trace = backward_batched_traced(stack, cache, out - y)
    with pytest.raises(ValueError, match="forward64"):
        gradient_bounds_batched(stack, x, y, backward64=trace)


@pytest.mark.parametrize(
    ("constant", "factor"), [("C_VALUE", 2.0), ("C_DERIVATIVE", 2.0)], ids=["C_VALUE", "C_DERIVATIVE"]
)
def test_a_change_to_the_per_network_model_is_detected(monkeypatch, constant, factor):
    # The equality check above must have teeth: change the per-network model only, and it must fail.
    stack, x, y = random_case((3, 4, 10, 1), "tanh", np.float64, True, seed=8)
    batched = gradient_bounds_batched(stack, x, y)
    monkeypatch.setattr(tolerances, constant, getattr(tolerances, constant) * factor)

    with pytest.raises(AssertionError):
        assert_bounds_equal_per_network_bounds(stack, x, y, batched)
