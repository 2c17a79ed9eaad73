"""The NumPy reference: input checks, dtype preservation, numerical safety, collapse and the seed post."""

import itertools

import numpy as np
import pytest
from mlp_crosscheck.reference import activations, seed
from mlp_crosscheck.reference.activations import Kinks
from mlp_crosscheck.reference.batched import NetworkStack
from mlp_crosscheck.reference.network import (
    Network,
    NotCollapsibleError,
    check_input,
    collapse,
    forward,
    loss_and_gradients,
)

from mlp_crosscheck import backends


def _net(dtype="float64", act="tanh", biases=True, widths=(3, 4, 10, 1), seed_=0):
    rng = np.random.default_rng(seed_)
    ws = [rng.standard_normal(s).astype(dtype) for s in itertools.pairwise(widths)]
    bs = [rng.standard_normal(n).astype(dtype) for n in widths[1:]] if biases else None
    return Network(ws, bs, [act] * (len(widths) - 1))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", activations.NAMES)
def test_every_activation_preserves_dtype_and_stays_finite_at_extremes(name, dtype):
    z = np.array([-1e4, -800, -89, -40, -1, -1e-30, 0, 1e-30, 1, 40, 89, 800, 1e4], dtype=dtype)
    # No overflow, invalid or divide-by-zero on any branch; underflow to 0 is the correct rounding there.
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        value, deriv = activations.apply(name, z), activations.derivative(name, z)
    assert value.dtype == deriv.dtype == np.dtype(dtype)
    assert np.isfinite(value).all()
    assert np.isfinite(deriv).all()


def test_kink_conventions_are_the_left_branch():
    z = np.zeros(1)
    assert activations.derivative("relu", z)[0] == 0.0
    assert activations.derivative("leaky_relu", z)[0] == 0.01
    assert activations.derivative("leaky_relu", z, at_kink=1.0)[0] == 1.0
    assert activations.KINK_CONVENTION == {"relu": 0.0, "leaky_relu": 0.01}


def test_unknown_activation_names_the_vocabulary():
    with pytest.raises(ValueError, match=r"unknown activation 'swish'.*tanh"):
        activations.get("swish")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_and_gradients_keep_the_dtype(dtype):
    net = _net(dtype)
    x = np.ones((5, 3), dtype)
    y = np.zeros((5, 1), dtype)
    out, _ = forward(net, x)
    loss, g = loss_and_gradients(net, x, y)
    assert out.dtype == np.dtype(dtype)
    assert isinstance(loss, float)
    assert all(a.dtype == np.dtype(dtype) for a in (*g.weights, *g.biases, g.x))
    assert [a.shape for a in g.weights] == [w.shape for w in net.weights]
    assert [a.shape for a in g.biases] == [b.shape for b in net.biases]


def test_inputs_are_not_mutated():
    net = _net()
    x, y = np.ones((4, 3)), np.zeros((4, 1))
    before = [a.copy() for a in (*net.weights, *net.biases, x, y)]
    loss_and_gradients(net, x, y)
    assert all(np.array_equal(a, b) for a, b in zip((*net.weights, *net.biases, x, y), before, strict=True))


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: Network([np.ones((3, 4)), np.ones((5, 1))], None, ["identity"] * 2), ValueError, "expected 4 rows"),
        (
            lambda: Network([np.ones((3, 4))], [np.ones(3)], ["identity"]),
            ValueError,
            r"biases\[0\] must have shape \(4,\)",
        ),
        (lambda: Network([np.ones((3, 4))], None, ["identity", "tanh"]), ValueError, "1 layers but 2 activation"),
        (
            lambda: Network([np.ones((3, 4), np.float32), np.ones((4, 1))], None, ["tanh"] * 2),
            ValueError,
            r"weights\[1\] is float64 but weights\[0\] is float32: mix no dtypes",
        ),
        (
            lambda: Network([np.ones((3, 4))], [np.ones(4, np.float32)], ["tanh"]),
            ValueError,
            r"biases\[0\] is float32 but weights\[0\] is float64: mix no dtypes",
        ),
        (lambda: Network([np.ones((3, 4), int)], None, ["tanh"]), ValueError, "float32 or float64"),
        (lambda: Network([], None, []), ValueError, "at least one weight"),
        (lambda: Network([np.ones(3)], None, ["tanh"]), ValueError, "must be 2-D"),
    ],
)
def test_malformed_networks_are_rejected_with_a_clear_message(build, error, message):
    with pytest.raises(error, match=message):
        build()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Network([np.ones((3, 4)), np.ones((5, 1))], None, ["identity"] * 2),
            "weights[1] has shape (5, 1), but weights[0] has (3, 4): expected 4 rows",
        ),
        (lambda: Network([np.ones((3, 4))], [np.ones(3)], ["identity"]), "biases[0] must have shape (4,), got (3,)"),
        (
            lambda: Network([np.ones((3, 4))], [np.ones(4), np.ones(1)], ["tanh"]),
            "1 weight matrices but 2 bias vectors",
        ),
        (lambda: Network([np.ones((3, 4), int)], None, ["tanh"]), "weights must be float32 or float64, got int64"),
        (lambda: Network([np.ones(3)], None, ["tanh"]), "weights[0] must be 2-D (n_in, n_out), got shape (3,)"),
        (
            lambda: NetworkStack([np.ones((2, 3, 4)), np.ones((3, 4, 1))], None, ["tanh"] * 2),
            "weights[1] must be 3-D (2, n_in, n_out), got shape (3, 4, 1)",
        ),
        (
            lambda: NetworkStack([np.ones((2, 3, 4)), np.ones((2, 5, 1))], None, ["tanh"] * 2),
            "weights[1] has shape (2, 5, 1), but weights[0] has (2, 3, 4): expected 4 rows",
        ),
        (
            lambda: NetworkStack([np.ones((2, 3, 4))], [np.ones(4)], ["tanh"]),
            "biases[0] must have shape (2, 4), got (4,)",
        ),
        (
            lambda: NetworkStack([np.ones((3, 4))], None, ["tanh"]),
            "weights[0] must be 3-D (N, n_in, n_out), got shape (3, 4)",
        ),
        (
            lambda: check_input(NetworkStack([np.ones((2, 3, 4))], None, ["tanh"]), np.ones((4, 3))),
            "x must have shape (2, batch, 3), got (4, 3)",
        ),
    ],
)
def test_malformed_networks_and_stacks_get_their_whole_message(build, message):
    # The messages name the index, both shapes and the stack's size: a user fixes the call from them alone.
    with pytest.raises(ValueError, match=r"\w") as refused:  # the whole message is compared below
        build()
    assert str(refused.value) == message


def test_wrong_input_shape_and_dtype_are_rejected():
    net = _net()
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3\), got \(4, 2\)"):
        forward(net, np.ones((4, 2)))
    with pytest.raises(ValueError, match="x is float32 but the network is float64"):
        forward(net, np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"y must have shape \(4, 1\)"):
        loss_and_gradients(net, np.ones((4, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="y is float32 but the network is float64"):
        loss_and_gradients(net, np.ones((4, 3)), np.ones((4, 1), np.float32))


@pytest.mark.parametrize("biases", [False, True])
def test_identity_network_equals_its_collapsed_map(biases):
    net = _net(act="identity", biases=biases)
    x = np.random.default_rng(1).standard_normal((6, 3))
    k, c = collapse(net)
    np.testing.assert_allclose(forward(net, x)[0], x @ k + c, rtol=1e-12, atol=1e-12)


def test_collapse_of_a_nonlinear_network_is_refused_naming_each_nonlinear_layer():
    net = Network([np.ones((3, 4)), np.ones((4, 4)), np.ones((4, 1))], None, ["tanh", "identity", "relu"])
    with pytest.raises(NotCollapsibleError) as refused:
        collapse(net)
    assert str(refused.value) == (
        "only an all-identity network collapses to one affine map x @ K + c; this one has nonlinear activations "
        "(layer 1: tanh, layer 3: relu)"
    )


def test_a_chosen_branch_keeps_the_networks_dtype():
    # Kinks.branches hold float64 slopes (NaN where Z decides); the derivative stays in Z's dtype.
    z = np.array([[-1.0, 2.0**-30, 3.0]], dtype=np.float32)
    kinks = Kinks(branches=(np.array([[np.nan, 1.0, np.nan]]),))
    slope = kinks.derivative(0, "relu", z)
    assert slope.dtype == np.float32
    np.testing.assert_array_equal(slope, [[0.0, 1.0, 1.0]])
    np.testing.assert_array_equal(Kinks({"relu": 1.0}).derivative(0, "relu", np.zeros((1, 2))), [[1.0, 1.0]])


def test_seed_experiment_reproduces_the_post():
    x, y = seed.data()
    run = seed.train(backends.builtin("numpy").loss_and_gradients, seed.initial_network(), x, y)
    out = forward(run.final, x)[0]
    assert run.costs.shape == (150,)
    assert np.array_equal(np.round(out), y)  # the post's "100% accuracy"
    k, c = collapse(run.final)
    assert np.abs(x @ k + c - out).max() < 1e-12
    assert run.costs[-1] < run.costs[0]


def test_seed_initial_weights_are_the_legacy_stream():
    np.random.seed(1234)  # noqa: NPY002 -- the post's own legacy global stream is what is being checked
    expected = [np.random.randn(3, 4), np.random.randn(4, 10), np.random.randn(10, 1)]  # noqa: NPY002
    net = seed.initial_network()
    assert all(np.array_equal(a, b) for a, b in zip(net.weights, expected, strict=True))
    assert np.linalg.matrix_rank(seed.data()[0]) == 2
