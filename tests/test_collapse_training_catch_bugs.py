"""Every check of property families 4-7 fails on a planted bug, and passes on the correct implementation.

Each pair below runs one ``check_<claim>`` of ``properties/claims/{collapse,nonlinear_does_not_collapse,training,
conservation}.py`` on one fixed case: ``_should_pass`` with the NumPy reference's backend, ``_should_fail`` with
a planted bug (an implementation of the contract, or a wrong helper: a collapse, a criterion, a trainer) that
the check must reject with an ``AssertionError``. The bugs are small and plausible -- each would survive a
test that only looked at shapes or at rounded outputs. The last section checks the exact helpers of
``properties/linear_maps.py`` against independent computations.
"""

from __future__ import annotations

import itertools
import types
from fractions import Fraction
from unittest import mock

import mpmath
import numpy as np
import pytest
from mlp_crosscheck.backends import numpy_backend
from mlp_crosscheck.backends.contract import Implementation
from mlp_crosscheck.properties import linear_maps
from mlp_crosscheck.properties.claims import collapse, conservation, training
from mlp_crosscheck.properties.claims import nonlinear_does_not_collapse as nonlinear
from mlp_crosscheck.reference import seed
from mlp_crosscheck.reference.network import Network
from mlp_crosscheck.reference.network import collapse as reference_collapse

CORRECT = Implementation(numpy_backend)


def planted(name: str, *, forward=None, loss_and_input_gradients=None) -> Implementation:
    """Return the NumPy backend with ``forward`` and/or ``loss_and_input_gradients`` replaced: a planted bug."""
    module = types.ModuleType(f"planted_{name}")
    module.NAME = f"planted:{name}"
    module.forward = forward or numpy_backend.forward
    module.loss_and_input_gradients = loss_and_input_gradients or numpy_backend.loss_and_input_gradients
    module.loss_and_gradients = lambda *args: module.loss_and_input_gradients(*args)[:3]
    return Implementation(module)


def with_gradients(transform):
    """Return a ``loss_and_input_gradients`` that passes the correct results through ``transform``."""

    def loss_and_input_gradients(weights, biases, activations, x, y):
        loss, dws, dbs, dx = numpy_backend.loss_and_input_gradients(weights, biases, activations, x, y)
        return transform(loss, list(dws), None if dbs is None else list(dbs), dx)

    return loss_and_input_gradients


def network(widths, activations, *, biases=True, dtype=np.float64, seed_=0, scale=1.0) -> Network:
    rng = np.random.default_rng(seed_)
    names = [activations] * (len(widths) - 1) if isinstance(activations, str) else list(activations)
    ws = [(rng.standard_normal((m, n)) * scale / np.sqrt(m)).astype(dtype) for m, n in itertools.pairwise(widths)]
    bs = [(0.5 * rng.standard_normal(n)).astype(dtype) for n in widths[1:]] if biases else None
    return Network(ws, bs, names)


def batch(n_in, size=6, *, dtype=np.float64, seed_=1) -> np.ndarray:
    return np.random.default_rng(seed_).standard_normal((size, n_in)).astype(dtype)


# ---------------------------------------------------------------------------------------------------------
# Family 4: collapse.


def _nonlinear_identity_forward(weights, biases, activations, x):
    # BUG: "identity" is computed as z + 2^-30 z^2: a tiny nonlinearity, invisible in rounded outputs.
    a = x
    for layer, w in enumerate(weights):
        z = a @ w + (0 if biases is None else biases[layer])
        a = z + 2.0**-30 * z * z
    return a


IDENTITY_NET = network((3, 5, 4, 2), "identity")
IDENTITY_X = batch(3)


def test_collapsed_map_check_should_pass():
    collapse.check_identity_network_equals_collapsed_map(CORRECT, IDENTITY_NET, IDENTITY_X)


def test_collapsed_map_check_should_fail_on_a_tiny_nonlinearity():
    with pytest.raises(AssertionError, match="x @ K"):
        collapse.check_identity_network_equals_collapsed_map(
            planted("z_plus_z2", forward=_nonlinear_identity_forward), IDENTITY_NET, IDENTITY_X
        )


def _collapse_reversed(net):
    # BUG: K multiplied in the wrong order, W_L ... W_1 (which only type-checks for square layers).
    k = net.weights[-1]
    for w in net.weights[-2::-1]:
        k = k @ w
    return k, reference_collapse(net)[1]


def _collapse_dropping_hidden_biases(net):
    # BUG: c = b_L only: the hidden layers' biases are forgotten (they pass through W_{l+1} ... W_L).
    k, _ = reference_collapse(net)
    return k, net.biases[-1]


def test_collapsed_map_check_should_fail_on_k_in_the_wrong_order():
    square = network((3, 3, 3, 3), "identity")
    with pytest.raises(AssertionError, match="x @ K"):
        collapse.check_identity_network_equals_collapsed_map(CORRECT, square, batch(3), collapse=_collapse_reversed)


def test_collapsed_map_check_should_fail_on_c_without_hidden_biases():
    with pytest.raises(AssertionError, match="x @ K"):
        collapse.check_identity_network_equals_collapsed_map(
            CORRECT, IDENTITY_NET, IDENTITY_X, collapse=_collapse_dropping_hidden_biases
        )


def test_jacobian_check_should_pass():
    collapse.check_identity_network_jacobian_is_constant(
        CORRECT, IDENTITY_NET, batch(3, 4, seed_=2), batch(3, 5, seed_=3)
    )


def test_jacobian_check_should_fail_on_an_input_gradient_of_the_mean_loss():
    # BUG: dL/dx divided by the batch size (the gradient of the mean loss), for dx only.
    bug = planted(
        "dx_mean", loss_and_input_gradients=with_gradients(lambda loss, w, b, dx: (loss, w, b, dx / dx.shape[0]))
    )
    with pytest.raises(AssertionError, match="Jacobian"):
        collapse.check_identity_network_jacobian_is_constant(
            bug, IDENTITY_NET, batch(3, 4, seed_=2), batch(3, 5, seed_=3)
        )


def _skip_connection_forward(weights, biases, activations, x):
    # BUG: a "residual" connection adds the first n_L inputs to the output.
    out = numpy_backend.forward(weights, biases, activations, x)
    return out + x[:, : out.shape[1]]


BOTTLENECK = network((4, 1, 4), "identity")


def test_rank_check_should_pass():
    collapse.check_identity_network_rank_is_at_most_narrowest_width(CORRECT, BOTTLENECK)


def test_rank_check_should_fail_on_a_skip_connection():
    with pytest.raises(AssertionError, match="rank must be <= 1"):
        collapse.check_identity_network_rank_is_at_most_narrowest_width(
            planted("skip", forward=_skip_connection_forward), BOTTLENECK
        )


def _targets_at_floor(net, x):
    design = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
    out = numpy_backend.forward(list(net.weights), list(net.biases), list(net.activations), x)
    g = np.random.default_rng(5).standard_normal(out.shape)
    return out + g - design @ np.linalg.lstsq(design, g, rcond=None)[0]


def test_floor_check_should_pass_at_the_floor():
    x = batch(3, 9)
    collapse.check_identity_network_loss_is_at_least_floor(CORRECT, IDENTITY_NET, x, _targets_at_floor(IDENTITY_NET, x))


def test_floor_check_should_fail_on_a_mean_loss():
    # BUG: the loss is averaged over the batch instead of summed.
    bug = planted(
        "mean_loss", loss_and_input_gradients=with_gradients(lambda loss, w, b, dx: (loss / dx.shape[0], w, b, dx))
    )
    x = batch(3, 9)
    with pytest.raises(AssertionError, match="below the least-squares floor"):
        collapse.check_identity_network_loss_is_at_least_floor(bug, IDENTITY_NET, x, _targets_at_floor(IDENTITY_NET, x))


# ---------------------------------------------------------------------------------------------------------
# Family 5: nonlinear networks do not collapse.

RELU_NET = Network(
    [np.array([[1.0, -1.0, 0.5], [0.5, 1.0, -1.0]]), np.array([[1.0], [1.0], [-1.0]])],
    [np.array([0.1, -0.2, 0.3]), np.array([0.0])],
    ["relu", "identity"],
)


def _relu_as_identity_forward(weights, biases, activations, x):
    # BUG: relu implemented as the identity (a missing activation call).
    return numpy_backend.forward(weights, biases, ["identity" if n == "relu" else n for n in activations], x)


def test_dichotomy_check_should_pass():
    assert nonlinear.check_network_is_witnessed_or_provably_affine(CORRECT, RELU_NET) == "witnessed"


def test_dichotomy_check_should_fail_on_a_linearised_relu():
    with pytest.raises(AssertionError, match="computes an affine map"):
        nonlinear.check_network_is_witnessed_or_provably_affine(
            planted("relu_identity", forward=_relu_as_identity_forward), RELU_NET
        )


def _tanh_pair(parity: float) -> Network:
    """``tanh(z) + parity tanh(-z)`` through the output: affine (0) for parity +1, 2 tanh(z) for parity -1."""
    w, b, v = np.array([[0.8, -0.3], [0.4, 0.9]]), np.array([0.2, -0.1]), np.array([[1.0], [-0.5]])
    return Network(
        [np.concatenate([w, -w], 1), np.concatenate([v, parity * v])],
        [np.concatenate([b, -b]), np.zeros(1)],
        ["tanh", "identity"],
    )


def _analysis_with_tanh_even(net):
    # BUG: the criterion's reflection rule for tanh has the wrong sign (tanh(-t) = +tanh(t)).
    with mock.patch.dict(linear_maps.REFLECTIONS, {"tanh": (1, Fraction(0), Fraction(0))}):
        return linear_maps.affine_analysis(net)


def test_dichotomy_check_should_pass_on_both_tanh_pairs():
    assert nonlinear.check_network_is_witnessed_or_provably_affine(CORRECT, _tanh_pair(+1.0)) == "provably affine"
    assert nonlinear.check_network_is_witnessed_or_provably_affine(CORRECT, _tanh_pair(-1.0)) == "witnessed"


def test_dichotomy_check_should_fail_on_a_criterion_with_a_wrong_identity():
    with pytest.raises(AssertionError, match="float64 reference second differences"):
        nonlinear.check_network_is_witnessed_or_provably_affine(
            CORRECT, _tanh_pair(-1.0), analyse=_analysis_with_tanh_even
        )


def _analysis_without_merging(net):
    # BUG: the atom table is forgotten between units, so a duplicate unit never meets its original.
    original = linear_maps._nonlinear_unit

    def fresh_atoms(name, row, z_scale, z_range, depends, ranges, atoms, const):
        atoms.clear()
        return original(name, row, z_scale, z_range, depends, ranges, atoms, const)

    with mock.patch.object(linear_maps, "_nonlinear_unit", fresh_atoms):
        return linear_maps.affine_analysis(net)


CANCELLING_PAIR = Network(
    [np.array([[0.7, 0.7]]), np.array([[1.5], [-1.5]])], [np.array([0.2, 0.2]), np.array([0.3])], ["tanh", "tanh"]
)


def test_constant_check_should_pass_on_cancelling_duplicates():
    nonlinear.check_network_is_constant(CORRECT, CANCELLING_PAIR, batch(1))


def test_constant_check_should_fail_on_a_criterion_that_misses_cancelling_duplicates():
    with pytest.raises(AssertionError, match="does not prove"):
        nonlinear.check_network_is_constant(CORRECT, CANCELLING_PAIR, batch(1), analyse=_analysis_without_merging)


def test_constant_check_should_fail_on_an_implementation_that_breaks_the_cancellation():
    # BUG: the first unit's incoming weights are rounded to float32 inside a float64 forward pass, so the
    # duplicate units differ in their last bits and no longer cancel exactly.
    def forward(weights, biases, activations, x):
        w = [weights[0].copy(), *weights[1:]]
        w[0][:, 0] = w[0][:, 0].astype(np.float32)
        return numpy_backend.forward(w, biases, activations, x)

    with pytest.raises(AssertionError, match="constant network"):
        nonlinear.check_network_is_constant(planted("float32_unit", forward=forward), CANCELLING_PAIR, batch(1))


def test_affine_map_check_should_fail_on_a_leaky_relu_with_the_wrong_slope():
    # BUG: leaky_relu with slope 0.1: the pair leaky(z) - leaky(-z) is then 1.1 z, not 1.01 z.
    def forward(weights, biases, activations, x):
        a = x
        for layer, (w, name) in enumerate(zip(weights, activations, strict=True)):
            z = a @ w + (0 if biases is None else biases[layer])
            a = np.where(z > 0, z, 0.1 * z) if name == "leaky_relu" else z
        return a

    w, b, v = np.array([[0.8, -0.3], [0.4, 0.9]]), np.array([0.2, -0.1]), np.array([[1.0], [-0.5]])
    net = Network(
        [np.concatenate([w, -w], 1), np.concatenate([v, -v])],
        [np.concatenate([b, -b]), np.zeros(1)],
        ["leaky_relu", "identity"],
    )
    k = linear_maps.Exact(
        linear_maps.exact(w).ints, linear_maps.exact(w).scale * Fraction(101, 100)
    ) @ linear_maps.exact(v)
    c = linear_maps.Exact(
        linear_maps.exact(b[None, :]).ints, linear_maps.exact(b[None, :]).scale * Fraction(101, 100)
    ) @ linear_maps.exact(v)
    c = c + linear_maps.exact(np.zeros((1, 1)))
    nonlinear.check_network_equals_affine_map(CORRECT, net, batch(2), k, c)
    with pytest.raises(AssertionError, match="x K \\+ c"):
        nonlinear.check_network_equals_affine_map(planted("leaky_slope", forward=forward), net, batch(2), k, c)


# ---------------------------------------------------------------------------------------------------------
# Family 6: training.


def test_training_checks_should_pass():
    x, y = seed.data()
    recorded = training.train_recorded(CORRECT, seed.initial_network(), x, y)
    training.check_gradients_match_reference_at_every_epoch(CORRECT, recorded, x, y)
    training.check_run_is_gradient_descent(recorded)
    training.check_outputs_round_to_targets(CORRECT, recorded.run.final, x, y)
    training.check_collapse_at_every_epoch(CORRECT, recorded, x)


def test_epoch_gradient_check_should_fail_on_a_gradient_off_by_a_factor():
    # BUG: every weight gradient is (1 + 2^-30) times too large: invisible in the costs, far above rounding.
    bug = planted(
        "factor",
        loss_and_input_gradients=with_gradients(lambda loss, w, b, dx: (loss, [g * (1 + 2.0**-30) for g in w], b, dx)),
    )
    x, y = seed.data()
    recorded = training.train_recorded(bug, seed.initial_network(), x, y, epochs=3)
    with pytest.raises(AssertionError, match="dL/dW"):
        training.check_gradients_match_reference_at_every_epoch(bug, recorded, x, y)


def _train_skipping_last_layer(loss_and_gradients, net, x, y, lr=seed.LEARNING_RATE, epochs=seed.EPOCHS):
    # BUG: the update loop stops one layer short (range(len(weights) - 1)).
    lr = net.dtype.type(lr)
    networks, costs = [], []
    for _ in range(epochs):
        loss, dws, _ = loss_and_gradients(net, x, y)[:3]
        networks.append(net)
        costs.append(loss)
        weights = [w - lr * g if i < len(dws) - 1 else w for i, (w, g) in enumerate(zip(net.weights, dws, strict=True))]
        net = Network(weights, None, net.activations)
    return seed.TrainingRun(tuple(networks), np.array(costs), net)


def test_update_check_should_fail_on_an_update_that_skips_a_layer():
    x, y = seed.data()
    recorded = training.train_recorded(
        CORRECT, seed.initial_network(), x, y, epochs=3, train=_train_skipping_last_layer
    )
    with pytest.raises(AssertionError, match="W_3 after the update"):
        training.check_run_is_gradient_descent(recorded)


def test_rounding_check_should_fail_when_training_used_the_wrong_sign():
    # BUG: gradient ascent (every gradient negated): the outputs run away from y.
    bug = planted(
        "ascent", loss_and_input_gradients=with_gradients(lambda loss, w, b, dx: (loss, [-g for g in w], b, dx))
    )
    x, y = seed.data()
    recorded = training.train_recorded(bug, seed.initial_network(), x, y, epochs=3)
    with pytest.raises(AssertionError, match="does not round"):
        training.check_outputs_round_to_targets(bug, recorded.run.final, x, y)


def test_collapse_check_along_training_should_fail_on_a_tiny_nonlinearity():
    x, y = seed.data()
    recorded = training.train_recorded(CORRECT, seed.initial_network(), x, y, epochs=2)
    with pytest.raises(AssertionError, match="x @ K"):
        training.check_collapse_at_every_epoch(planted("z_plus_z2", forward=_nonlinear_identity_forward), recorded, x)


def test_floor_checks_should_pass_on_xor():
    x, y = training.XOR_X.astype(float), training.XOR_Y.astype(float)
    identity = training.train_recorded(
        CORRECT, seed.initial_network("identity"), x, y, training.XOR_IDENTITY_LEARNING_RATE, 20
    )
    training.check_loss_never_below_floor(CORRECT, identity, x, y)
    tanh = training.train_recorded(
        CORRECT, seed.initial_network("tanh"), x, y, training.XOR_TANH_LEARNING_RATE, training.XOR_EPOCHS
    )
    training.check_loss_ends_below_floor(CORRECT, tanh, x, y)


def test_floor_check_should_fail_on_a_mean_loss_along_training():
    bug = planted(
        "mean_loss", loss_and_input_gradients=with_gradients(lambda loss, w, b, dx: (loss / dx.shape[0], w, b, dx))
    )
    x, y = training.XOR_X.astype(float), training.XOR_Y.astype(float)
    recorded = training.train_recorded(
        bug, seed.initial_network("identity"), x, y, training.XOR_IDENTITY_LEARNING_RATE, 20
    )
    with pytest.raises(AssertionError, match="below the least-squares floor"):
        training.check_loss_never_below_floor(bug, recorded, x, y)


def test_below_floor_check_should_fail_when_tanh_does_not_learn():
    # BUG: the hidden layers' gradients are dropped (only the last layer learns): 150 epochs are not enough.
    bug = planted(
        "last_layer_only",
        loss_and_input_gradients=with_gradients(
            lambda loss, w, b, dx: (loss, [*(0 * g for g in w[:-1]), w[-1]], b, dx)
        ),
    )
    x, y = training.XOR_X.astype(float), training.XOR_Y.astype(float)
    recorded = training.train_recorded(
        bug, seed.initial_network("tanh"), x, y, training.XOR_TANH_LEARNING_RATE, training.XOR_EPOCHS
    )
    with pytest.raises(AssertionError, match="not below the least-squares floor"):
        training.check_loss_ends_below_floor(bug, recorded, x, y)


# ---------------------------------------------------------------------------------------------------------
# Family 7: conservation laws.

LINEAR_NET = network((4, 3, 5, 2), "identity", seed_=7)
RELU_DEEP = network((4, 6, 5, 2), "relu", seed_=8)
ETA = Fraction(1, 8)


def test_linear_law_check_should_pass():
    conservation.check_linear_conservation_law(CORRECT, LINEAR_NET, batch(4, 7), batch(2, 7, seed_=9), ETA)


def test_linear_law_check_should_fail_on_one_layer_off_by_a_factor():
    # BUG: the second layer's weight gradient is (1 + 2^-30) times too large.
    bug = planted(
        "layer_factor",
        loss_and_input_gradients=with_gradients(
            lambda loss, w, b, dx: (loss, [w[0], w[1] * (1 + 2.0**-30), *w[2:]], b, dx)
        ),
    )
    with pytest.raises(AssertionError, match="change of Q_"):
        conservation.check_linear_conservation_law(bug, LINEAR_NET, batch(4, 7), batch(2, 7, seed_=9), ETA)


def test_unit_law_check_should_pass():
    conservation.check_unit_conservation_law(CORRECT, RELU_DEEP, batch(4, 7), batch(2, 7, seed_=9), ETA)


def test_unit_law_check_should_fail_on_a_bias_gradient_of_the_mean_loss():
    # BUG: the bias gradients are averaged over the batch, the weight gradients summed.
    bug = planted(
        "bias_mean",
        loss_and_input_gradients=with_gradients(lambda loss, w, b, dx: (loss, w, [g / dx.shape[0] for g in b], dx)),
    )
    with pytest.raises(AssertionError, match="change of q_i"):
        conservation.check_unit_conservation_law(bug, RELU_DEEP, batch(4, 7), batch(2, 7, seed_=9), ETA)


def test_tanh_negative_control_violates_the_unit_law():
    x, y = seed.data()
    assert (
        conservation.unit_law_violation(CORRECT, seed.initial_network("tanh"), x, y, conservation.TANH_CONTROL_STEP)
        > 1e3
    )


# ---------------------------------------------------------------------------------------------------------
# The exact helpers themselves, against independent computations.


def test_least_squares_floor_matches_200_digit_arithmetic_on_a_nearly_dependent_column():
    # x's third column is the *rounded* sum of the first two: x has full rank, and lstsq's rank cut-off would
    # treat it as rank-deficient and report a floor that is too high. mpmath at 200 digits agrees with the
    # exact floor.
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((9, 5)), rng.standard_normal((9, 2))
    x[:, 2] = x[:, 0] + x[:, 1]
    floor = linear_maps.least_squares_floor(x, y, intercept=True)
    mpmath.mp.dps = 200
    design = mpmath.matrix([[mpmath.mpf(float(v)) for v in row] + [1] for row in x])
    total = mpmath.mpf(0)
    for j in range(y.shape[1]):
        target = mpmath.matrix([mpmath.mpf(float(v)) for v in y[:, j]])
        beta = mpmath.lu_solve(design.T * design, design.T * target)
        total += sum(r**2 for r in design * beta - target)
    assert floor.rank == 6
    assert abs(mpmath.mpf(floor.value.numerator) / floor.value.denominator - total / 2) < mpmath.mpf(10) ** -150
    naive = 0.5 * np.sum((np.c_[x, np.ones(9)] @ np.linalg.lstsq(np.c_[x, np.ones(9)], y, rcond=None)[0] - y) ** 2)
    assert naive > float(floor.value) * (1 + 1e-6), "lstsq's floor was expected to be too high here"


def test_least_squares_floor_of_the_seed_and_of_xor():
    x, y = seed.data()
    assert linear_maps.least_squares_floor(x, y, intercept=False) == (Fraction(0), 2)  # y = 4 x_1 + 4 x_3 exactly
    assert linear_maps.least_squares_floor(
        training.XOR_X.astype(float), training.XOR_Y.astype(float), intercept=False
    ).value == Fraction(1, 2)
    assert linear_maps.least_squares_floor(
        training.XOR_X[:, :2].astype(float), training.XOR_Y.astype(float), intercept=False
    ).value == Fraction(2, 3)


def test_exact_rank_and_collapse():
    assert linear_maps.exact_rank(seed.data()[0]) == 2
    k, c = linear_maps.exact_collapse(IDENTITY_NET)
    k_ref, c_ref = reference_collapse(IDENTITY_NET)
    assert np.allclose(k.to_float64(), k_ref, rtol=1e-13)
    assert np.allclose(c.to_float64()[0], c_ref, rtol=1e-13, atol=1e-15)


def test_exact_forward_agrees_with_the_reference_on_piecewise_linear_networks():
    net = network((3, 4, 2), ("leaky_relu", "relu"))
    x = batch(3)
    pre = linear_maps.exact_forward(net, x)
    from mlp_crosscheck.reference.network import forward

    _, cache = forward(net, x)
    for exact_z, z in zip(pre, cache.preactivations, strict=True):
        assert np.allclose(exact_z.to_float64(), z, rtol=1e-12, atol=1e-14)
