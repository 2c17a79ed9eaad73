"""Claims about ``reference/batched.py``: network ``k`` of a stack computes what ``reference/network.py`` does.

Stacks are drawn from seeded NumPy generators (one seed per parametrization), across every activation, both
dtypes, with and without biases, and several architectures. "Computes the same" means within the error
bounds of ``properties.tolerances`` for two implementations (``Bounds.agree()``): the stacked matmul may sum
in another order than the per-network one.
"""

from __future__ import annotations

import itertools
import re
from typing import NamedTuple

import numpy as np
import pytest
from mlp_crosscheck.properties.assertions import assert_arrays_within_bound, assert_gradients_within_bounds
from mlp_crosscheck.properties.tolerances import gradient_bounds
from mlp_crosscheck.reference import activations, network
from mlp_crosscheck.reference.activations import Kinks
from mlp_crosscheck.reference.batched import (
    NetworkStack,
    backward_batched,
    backward_batched_traced,
    forward_batched,
    loss_and_gradients_batched,
)

ARCHITECTURES = [(3, 4, 10, 1), (2, 5), (4, 3, 3, 2, 6)]
DTYPES = [np.float32, np.float64]
N = 12  # networks per stack
BATCH = 5


class _Result(NamedTuple):
    loss: float
    weights: tuple
    biases: tuple | None
    x: np.ndarray


def random_stack(widths, activation, dtype, biased, seed):
    """Return a stack of N random networks and their batches ``x``, ``y``, all exactly in ``dtype``."""
    rng = np.random.default_rng(seed)
    weights = tuple(rng.standard_normal((N, a, b)) / np.sqrt(a) for a, b in itertools.pairwise(widths))
    biases = tuple(rng.standard_normal((N, b)) for b in widths[1:]) if biased else None
    stack = NetworkStack(weights, biases, (activation,) * (len(widths) - 1)).astype(dtype)
    x = rng.standard_normal((N, BATCH, widths[0])).astype(dtype)
    y = rng.standard_normal((N, BATCH, widths[-1])).astype(dtype)
    return stack, x, y


def _case_id(widths, activation, dtype, biased) -> str:
    return f"{'-'.join(map(str, widths))}-{activation}-{np.dtype(dtype).name}-{'bias' if biased else 'nobias'}"


def cases():
    seed = 0
    for widths in ARCHITECTURES:
        for activation in activations.NAMES:
            for dtype in DTYPES:
                for biased in (False, True):
                    seed += 1
                    yield pytest.param(
                        widths,
                        activation,
                        dtype,
                        biased,
                        seed,
                        id=_case_id(widths, activation, dtype, biased),
                    )


@pytest.mark.parametrize(("widths", "activation", "dtype", "biased", "seed"), list(cases()))
def test_each_network_of_a_stack_matches_the_per_network_reference(widths, activation, dtype, biased, seed):
    stack, x, y = random_stack(widths, activation, dtype, biased, seed)

    out, _ = forward_batched(stack, x)
    losses, grads = loss_and_gradients_batched(stack, x, y)

    assert out.dtype == losses.dtype == grads.x.dtype == np.dtype(dtype)
    for k in range(N):
        net = stack.network(k)
        expected_out, _ = network.forward(net, x[k])
        expected_loss, expected = network.loss_and_gradients(net, x[k], y[k])
        bounds = gradient_bounds(net, x[k], y[k]).agree()
        context = f"network {k} of the stack"
        assert_arrays_within_bound("output", out[k], expected_out, bounds.out, context)
        actual = _Result(
            float(losses[k]),
            tuple(g[k] for g in grads.weights),
            None if grads.biases is None else tuple(g[k] for g in grads.biases),
            grads.x[k],
        )
        assert_gradients_within_bounds(actual, _Result(expected_loss, *expected), bounds, context)


def test_networks_of_a_stack_do_not_influence_each_other():
    stack, x, y = random_stack((3, 4, 10, 1), "tanh", np.float64, True, seed=99)
    losses, grads = loss_and_gradients_batched(stack, x, y)
    changed = NetworkStack(
        tuple(np.where(np.arange(N)[:, None, None] == 3, 7.0 * w, w) for w in stack.weights),
        stack.biases,
        stack.activations,
    )

    changed_losses, changed_grads = loss_and_gradients_batched(changed, x, y)

    others = np.arange(N) != 3
    assert changed_losses[3] != losses[3]
    np.testing.assert_array_equal(changed_losses[others], losses[others])
    for g, h in zip(grads.weights, changed_grads.weights, strict=True):
        np.testing.assert_array_equal(h[others], g[others])


def test_kink_override_reaches_the_derivative_exactly_at_the_kink():
    # x has an all-zero row and the network no biases, so every Z in that row is exactly 0.
    stack, x, y = random_stack((3, 4, 1), "leaky_relu", np.float64, False, seed=5)
    x = x.copy()
    x[:, 0, :] = 0.0
    out, cache = forward_batched(stack, x)

    _, default = backward_batched_traced(stack, cache, out - y)
    _, jax_like = backward_batched_traced(stack, cache, out - y, Kinks({"leaky_relu": 1.0}))

    assert (default.derivatives[0][:, 0, :] == activations.LEAKY_RELU_SLOPE).all()
    assert (jax_like.derivatives[0][:, 0, :] == 1.0).all()
    got = backward_batched(stack, cache, out - y, Kinks({"leaky_relu": 1.0}))
    for k in range(N):
        _, expected = network.loss_and_gradients(stack.network(k), x[k], y[k], Kinks({"leaky_relu": 1.0}))
        np.testing.assert_allclose(got.weights[0][k], expected.weights[0], rtol=1e-12, atol=1e-300)
        # dL/dW_1 = x^T delta does not see the zero row's derivative (its x is 0); dL/dx = delta W^T does.
        np.testing.assert_allclose(got.x[k], expected.x, rtol=1e-12, atol=1e-300)
    default_x = backward_batched(stack, cache, out - y).x
    assert not np.array_equal(default_x[:, 0, :], got.x[:, 0, :]), "the kink override changed nothing"


def test_the_trace_holds_the_values_the_gradients_were_computed_from():
    stack, x, y = random_stack((3, 4, 10, 1), "sigmoid", np.float64, True, seed=11)
    out, cache = forward_batched(stack, x)

    grads, trace = backward_batched_traced(stack, cache, out - y)

    np.testing.assert_array_equal(trace.d_outputs[-1], out - y)
    for layer in range(stack.depth):
        np.testing.assert_array_equal(trace.deltas[layer], trace.d_outputs[layer] * trace.derivatives[layer])
        np.testing.assert_array_equal(
            grads.weights[layer], np.swapaxes(cache.inputs[layer], 1, 2) @ trace.deltas[layer]
        )


def test_stack_and_network_are_inverse():
    stack, _, _ = random_stack((2, 5, 3), "gelu", np.float32, True, seed=3)

    again = NetworkStack.stack([stack.network(k) for k in range(N)])

    assert again.widths == stack.widths == (2, 5, 3)
    assert again.count == N
    assert again.dtype == np.float32
    for a, b in zip([*again.weights, *again.biases], [*stack.weights, *stack.biases], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: NetworkStack((np.zeros((2, 3, 4)), np.zeros((2, 5, 1))), None, ("tanh", "tanh")), "weights"),
        (lambda: NetworkStack((np.zeros((3, 4)),), None, ("tanh",)), "3-D"),
        (lambda: NetworkStack((np.zeros((2, 3, 4)),), (np.zeros((2, 5)),), ("tanh",)), "biases"),
        (lambda: NetworkStack((np.zeros((2, 3, 4)),), None, ("tanh", "relu")), "activation"),
        (lambda: NetworkStack((np.zeros((2, 3, 4)),), None, ("swish",)), "vocabulary"),
        (lambda: NetworkStack((np.zeros((2, 3, 4), np.int64),), None, ("tanh",)), "float"),
        (lambda: NetworkStack((np.zeros((2, 3, 4)), np.zeros((3, 4, 1))), None, ("tanh",) * 2), r"weights\[1\]"),
        (lambda: NetworkStack((np.zeros((2, 3, 4)),), (np.zeros((2, 4), np.float32),), ("tanh",)), "mix no dtypes"),
    ],
)
def test_malformed_stacks_are_rejected_with_a_reason(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_inputs_of_the_wrong_shape_or_dtype_are_rejected():
    stack, x, y = random_stack((3, 4, 1), "tanh", np.float64, False, seed=1)
    with pytest.raises(ValueError, match="shape"):
        forward_batched(stack, x[:, :, :2])
    with pytest.raises(ValueError, match="x is float32 but the stack is float64"):
        forward_batched(stack, x.astype(np.float32))
    with pytest.raises(ValueError, match="x must have shape"):
        forward_batched(stack, x[:3])  # a batch for fewer networks than the stack holds
    with pytest.raises(ValueError, match="y must have shape"):
        loss_and_gradients_batched(stack, x, y[:, :2])


def _w(*shape, dtype=np.float64):
    return np.ones(shape, dtype)


# (weights, biases, activations, x, y) of one network, each with one thing wrong.
BAD_INPUTS = {
    "bias dtype": ([_w(3, 4)], [_w(4, dtype=np.float32)], ["tanh"], _w(2, 3), _w(2, 4)),
    "weight dtypes mixed": ([_w(3, 4), _w(4, 1, dtype=np.float32)], None, ["tanh"] * 2, _w(2, 3), _w(2, 1)),
    "integer weights": ([_w(3, 4, dtype=np.int64)], None, ["tanh"], _w(2, 3), _w(2, 4)),
    "weights not 2-D": ([_w(3)], None, ["tanh"], _w(2, 3), _w(2, 4)),
    "rows do not chain": ([_w(3, 4), _w(5, 1)], None, ["tanh"] * 2, _w(2, 3), _w(2, 1)),
    "bias shape": ([_w(3, 4)], [_w(3)], ["tanh"], _w(2, 3), _w(2, 4)),
    "bias count": ([_w(3, 4), _w(4, 1)], [_w(4)], ["tanh"] * 2, _w(2, 3), _w(2, 1)),
    "activation count": ([_w(3, 4)], None, ["tanh"] * 2, _w(2, 3), _w(2, 4)),
    "unknown activation": ([_w(3, 4)], None, ["swish"], _w(2, 3), _w(2, 4)),
    "no layers": ([], None, [], _w(2, 3), _w(2, 4)),
    "x dtype": ([_w(3, 4)], None, ["tanh"], _w(2, 3, dtype=np.float32), _w(2, 4)),
    "x width": ([_w(3, 4)], None, ["tanh"], _w(2, 2), _w(2, 4)),
    "y dtype": ([_w(3, 4)], None, ["tanh"], _w(2, 3), _w(2, 4, dtype=np.float32)),
    "y shape": ([_w(3, 4)], None, ["tanh"], _w(2, 3), _w(2, 3)),
}


def _error(run) -> tuple[type, str]:
    try:
        run()
    except Exception as exc:  # whichever it is: the type is compared
        return type(exc), str(exc)
    raise AssertionError("no error raised")


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_a_network_and_a_stack_of_it_raise_the_same_error(case):
    weights, biases, names, x, y = BAD_INPUTS[case]
    lead = lambda arrays: None if arrays is None else [a[None] for a in arrays]  # the stack of this one network

    def per_network():
        network.loss_and_gradients(network.Network(weights, biases, names), x, y)

    def stacked():
        loss_and_gradients_batched(NetworkStack(lead(weights), lead(biases), names), x[None], y[None])

    (error, message), (stack_error, stack_message) = _error(per_network), _error(stacked)
    assert stack_error is error is ValueError
    # The same message but for the shapes it quotes (the stack's have a leading axis) and the stack's name.
    template = lambda text: re.sub(r"\([^()]*\)", "(shape)", text.replace("3-D", "2-D").replace("stack", "network"))
    assert template(stack_message) == template(message)
