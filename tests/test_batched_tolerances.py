"""Claims about ``tolerances.gradient_bounds_batched``: network ``k``'s bounds are ``gradient_bounds`` of network
``k``, bit for bit.

Both are one code path (properties/tolerances.py); these tests check that nothing in it depends on the
leading network axis -- a stacked matmul, a sum over the batch, a reduction over each network's axes -- on
stacks of networks drawn by the suite's strategies (exact zeros, ties, kinks, small and large scales) and on
seeded stacks at the edges the strategies do not reach: values near underflow, bounds that overflow to
infinity and NaN, pre-activations exactly on a kink.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlp_crosscheck.properties import helpers, strategies, tolerances
from mlp_crosscheck.properties.tolerances import gradient_bounds_batched
from mlp_crosscheck.reference import activations
from mlp_crosscheck.reference.batched import NetworkStack, backward_batched_traced, forward_batched

STACK = 3  # networks per drawn stack


def assert_same_bits(actual, expected, what: str) -> None:
    """Assert two arrays are identical: shape, dtype, every value, NaN positions and the sign of zeros."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert (actual.shape, actual.dtype) == (expected.shape, expected.dtype), f"{what}: shape or dtype differs"
    if actual.dtype == bool:
        same = actual == expected
    else:
        both_nan = np.isnan(actual) & np.isnan(expected)
        same = ((actual == expected) & (np.signbit(actual) == np.signbit(expected))) | both_nan
    assert same.all(), f"{what}: {np.count_nonzero(~same)} of {same.size} values differ, e.g. {actual[~same][:3]}"


def _fields(bounds) -> dict[str, np.ndarray]:
    named = {"out": bounds.out, "loss": bounds.loss, "x": bounds.x}
    named.update({f"weights[{i}]": w for i, w in enumerate(bounds.weights)})
    named.update({f"biases[{i}]": b for i, b in enumerate(bounds.biases or ())})
    named.update({f"ambiguous[{i}]": a for i, a in enumerate(bounds.ambiguous)})
    named.update({f"exact_kinks[{i}]": e for i, e in enumerate(bounds.exact_kinks)})
    return named


def assert_network_k_is_gradient_bounds(stack: NetworkStack, x, y, batched) -> None:
    """Assert network k's batched bounds are ``tolerances.gradient_bounds`` of network k, bit for bit, every k."""
    assert (batched.biases is None) == (stack.biases is None)
    stacked = _fields(batched)
    for k in range(stack.count):
        expected = _fields(tolerances.gradient_bounds(stack.network(k), x[k], y[k]))
        assert stacked.keys() == expected.keys()
        for name, value in expected.items():
            assert_same_bits(stacked[name][k], value, f"{name}, network {k}")


def traced(stack: NetworkStack, x, y) -> dict:
    """Return the sweep's arguments: the float64 reference pass (forward and traced backward) of the stack."""
    wide, x64, y64 = stack.astype(np.float64), x.astype(np.float64), y.astype(np.float64)
    out, cache = forward_batched(wide, x64)
    _, trace = backward_batched_traced(wide, cache, out - y64)
    return {"forward64": (out, cache), "backward64": trace}


# -- drawn stacks ------------------------------------------------------------------------------------------------


@st.composite
def stacks(draw, activation, dtype) -> tuple[NetworkStack, np.ndarray, np.ndarray]:
    """A stack of networks of one drawn architecture and activations, each with its own batch and targets."""
    first = draw(strategies.cases(activations=activation, dtype=dtype), label="first network")
    net, batch = first.net, first.x.shape[0]
    nets, xs, ys = [net], [first.x], [first.y]
    for k in range(1, STACK):
        more = strategies.networks(
            activations=net.activations, dtype=dtype, widths=net.widths, biases=net.biases is not None
        )
        other = draw(more, label=f"network {k}")
        x = draw(strategies.batches(other, batch=batch), label=f"x {k}")
        nets.append(other)
        xs.append(x)
        ys.append(draw(strategies.targets(other, batch, x=x), label=f"y {k}"))
    return NetworkStack.stack(nets), np.stack(xs), np.stack(ys)


@pytest.mark.parametrize("activation", helpers.ACTIVATION_PARAMS)
@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@given(data=st.data())
def test_batched_bounds_are_the_per_network_bounds_bit_for_bit(dtype, activation, data):
    stack, x, y = data.draw(stacks(activation, dtype), label="stack")

    afresh = gradient_bounds_batched(stack, x, y)
    from_the_reference_pass = gradient_bounds_batched(stack, x, y, **traced(stack, x, y))  # as the sweep calls it

    assert_network_k_is_gradient_bounds(stack, x, y, afresh)
    assert_network_k_is_gradient_bounds(stack, x, y, from_the_reference_pass)


# -- seeded stacks at the edges ------------------------------------------------------------------------------------

EDGES = ("underflow", "overflow", "exact kinks")
# (weights, x, biases, y) scale factors per dtype: products and squares well below tiny, or past float64's max
SCALES = {
    ("underflow", "float32"): (1e-4, 1e-18, 1e-36, 1e-30),
    ("underflow", "float64"): (1e-40, 1e-150, 1e-305, 1e-300),
    ("overflow", "float32"): (1e6, 1e20, 1e30, 1e30),
    ("overflow", "float64"): (1e60, 1e200, 1e250, 1e300),
}


def edge_stack(edge: str, activation: str, dtype, seed: int, n: int = 4):
    """Return a stack of ``n`` random networks of random depth (1-8) and width (1-8) at one edge."""
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 9))
    widths = tuple(int(w) for w in rng.integers(1, 9, depth + 1))
    if edge == "exact kinks":  # small integers and no biases: an all-zero sample is exactly on every kink
        draw = lambda shape: rng.integers(-2, 3, shape).astype(np.float64)
        scales, biased = (1.0, 1.0, 1.0, 1.0), False
    else:
        draw = rng.standard_normal
        scales, biased = SCALES[edge, np.dtype(dtype).name], bool(rng.integers(2))
    w_scale, x_scale, b_scale, y_scale = scales
    weights = tuple(draw((n, a, b)) * w_scale for a, b in itertools.pairwise(widths))
    biases = tuple(draw((n, b)) * b_scale for b in widths[1:]) if biased else None
    batch = int(rng.integers(1, 6))
    x, y = draw((n, batch, widths[0])) * x_scale, draw((n, batch, widths[-1])) * y_scale
    if edge == "exact kinks":
        x[:, 0, :] = 0
    cast = lambda arrays: None if arrays is None else tuple(a.astype(dtype) for a in arrays)
    return NetworkStack(cast(weights), cast(biases), (activation,) * depth), x.astype(dtype), y.astype(dtype)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("activation", activations.NAMES)
@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@pytest.mark.parametrize("edge", EDGES)
def test_batched_bounds_are_the_per_network_bounds_at_the_edges(edge, dtype, activation, seed):
    stack, x, y = edge_stack(edge, activation, dtype, seed=1000 * EDGES.index(edge) + seed)
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow edge overflows, by design
        batched = gradient_bounds_batched(stack, x, y)
        assert_network_k_is_gradient_bounds(stack, x, y, batched)

    if edge == "overflow" and dtype == np.float64:
        assert not all(np.isfinite(b).all() for b in _fields(batched).values()), "no bound overflowed"
    if edge == "exact kinks" and activations.get(activation).kink is not None:
        assert batched.exact_kinks[0][:, 0, :].all()


# -- the rest of the interface -------------------------------------------------------------------------------------


def test_same_bits_sees_one_ulp_a_nan_and_the_sign_of_zero():
    # The bit-for-bit check above must have teeth.
    value = np.array([1.0, 0.0, np.inf])
    assert_same_bits(value, value.copy(), "itself")
    for changed in (np.array([np.nextafter(1.0, 2.0), 0.0, np.inf]), [1.0, -0.0, np.inf], [1.0, 0.0, np.nan]):
        with pytest.raises(AssertionError, match="values differ"):
            assert_same_bits(changed, value, "changed")


def test_agree_doubles_every_bound_and_keeps_the_masks():
    stack, x, y = edge_stack("exact kinks", "relu", np.float64, seed=4)
    bounds = gradient_bounds_batched(stack, x, y)

    agree = bounds.agree()

    assert_same_bits(agree.loss, 2 * bounds.loss, "loss")
    for i, (a, b) in enumerate(zip(agree.weights, bounds.weights, strict=True)):
        assert_same_bits(a, 2 * b, f"weights[{i}]")
    assert_same_bits(agree.x, 2 * bounds.x, "x")
    assert agree.ambiguous is bounds.ambiguous
    assert agree.exact_kinks is bounds.exact_kinks


def test_a_trace_without_its_forward_pass_is_refused():
    stack, x, y = edge_stack("exact kinks", "tanh", np.float64, seed=2)
    with pytest.raises(ValueError, match="forward64"):
        gradient_bounds_batched(stack, x, y, backward64=traced(stack, x, y)["backward64"])
