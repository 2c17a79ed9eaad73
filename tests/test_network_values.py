"""``Network`` and ``NetworkStack`` are values -- normalised on construction, cast exactly by ``astype``.

Every property builds its networks through ``strategies``, which always pass tuples of arrays and a float64
``astype``; mutation testing (``docs/mutation.md``) found that a ``Network`` which kept the caller's lists (or
spelt an attribute wrongly), read a single activation name as one name per character, or cast with
``astype(None)`` (always float64) passed the whole suite. ``seed.train`` and the backends do pass lists.

Claims, for every network of the strategies, float32 and float64, with and without biases:
- a ``Network`` (and a ``NetworkStack``) built from lists equals the one built from tuples: its weights,
  biases and activations are tuples of arrays, identical element for element;
- a one-layer network may name its activation with a plain string;
- ``astype(d)`` returns parameters of dtype ``d`` equal to ``p.astype(d)``, and round-trips float32 exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlp_crosscheck.properties import helpers, strategies
from mlp_crosscheck.reference.batched import NetworkStack, forward_batched
from mlp_crosscheck.reference.network import Network


def assert_same_parameters(a, b) -> None:
    """Assert two networks (or stacks) hold tuples of identical arrays and the same activation names."""
    assert isinstance(a.weights, tuple), f"weights are a {type(a.weights).__name__}, not a tuple"
    assert (a.biases is None) == (b.biases is None), "one has biases and the other has none"
    assert a.biases is None or isinstance(a.biases, tuple), f"biases are a {type(a.biases).__name__}"
    assert isinstance(a.activations, tuple), f"activations are a {type(a.activations).__name__}"
    assert a.activations == b.activations, f"activations {a.activations} != {b.activations}"
    for p, q in zip((*a.weights, *(a.biases or ())), (*b.weights, *(b.biases or ())), strict=True):
        assert isinstance(p, np.ndarray), f"a parameter is a {type(p).__name__}"
        assert p.dtype == q.dtype, f"{p.dtype} != {q.dtype}"
        assert np.array_equal(p, q), "parameters differ"


@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@given(data=st.data())
def test_network_from_lists_equals_network_from_tuples(dtype, data) -> None:
    net = data.draw(strategies.networks(activations="mixed", dtype=dtype), label="net")
    with helpers.reproduction_on_failure(net):
        biases = None if net.biases is None else list(net.biases)
        assert_same_parameters(Network(list(net.weights), biases, list(net.activations)), net)
        stack = NetworkStack.stack([net, net])
        listed = NetworkStack(
            list(stack.weights), None if stack.biases is None else list(stack.biases), list(stack.activations)
        )
        assert_same_parameters(listed, stack)
        assert_same_parameters(stack.network(1), net)


@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@given(data=st.data())
def test_one_layer_network_takes_its_activation_as_a_string(dtype, data) -> None:
    net = data.draw(
        strategies.networks(activations="mixed", dtype=dtype, widths=strategies.architectures(max_depth=1)), label="net"
    )
    (name,) = net.activations
    assert Network(net.weights, net.biases, name).activations == (name,)
    stack = NetworkStack.stack([net])
    assert NetworkStack(stack.weights, stack.biases, name).activations == (name,)


@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@given(data=st.data())
def test_astype_casts_every_parameter_exactly(dtype, data) -> None:
    net = data.draw(strategies.networks(activations="mixed", dtype=dtype), label="net")
    with helpers.reproduction_on_failure(net):
        for target in (np.dtype(np.float32), np.dtype(np.float64)):
            cast = net.astype(target)
            for p, q in zip((*cast.weights, *(cast.biases or ())), (*net.weights, *(net.biases or ())), strict=True):
                assert p.dtype == target, f"astype({target}) gave {p.dtype}"
                assert np.array_equal(p, q.astype(target)), f"astype({target}) changed a value"
        if net.dtype == np.float32:
            assert_same_parameters(net.astype(np.float64).astype(np.float32), net)  # exact round trip
        stack = NetworkStack.stack([net])
        assert stack.astype(np.float32).dtype == np.float32
        assert stack.astype(np.float64).dtype == np.float64


@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@given(data=st.data())
def test_stack_rejects_weights_and_inputs_that_are_not_3_d(dtype, data) -> None:
    net = data.draw(strategies.networks(activations="mixed", dtype=dtype, widths=strategies.architectures(min_depth=2)))
    stack = NetworkStack.stack([net, net])
    # A 2-D second layer (N, n_1) lines up with the first layer's n_1: only the 3-D check rejects it.
    flat = (stack.weights[0], stack.weights[1][:, :, 0], *stack.weights[2:])
    with pytest.raises(ValueError, match=r"weights\[1\] must be 3-D"):
        NetworkStack(flat, None, stack.activations)
    x = np.zeros((stack.count, net.widths[0]), dtype)  # (N, n_0): one example per network, without a batch axis
    with pytest.raises(ValueError, match="x must have shape"):
        forward_batched(stack, x)
