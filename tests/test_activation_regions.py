"""How family 5 handles a network that is affine for a reason no identity shows, and the region criterion's checks.

The network of the issue: ``relu(relu(x1 + x2) - relu(x1) - relu(x2) - 1)`` is identically 0 (relu is
subadditive, so the outer pre-activation is at most -1 everywhere). The exact identities of
``linear_maps.affine_analysis`` do not prove it affine, every second difference on the witness lines is exactly
0, so no witness exists either; ``activation_regions.region_analysis`` proves it constant 0 on R^n and the
property then checks the implementation against that. Without the region criterion it would be discarded
(counted, an event), never an error. Each check here comes with the planted bug it must reject.
"""

from __future__ import annotations

import itertools
import types
from fractions import Fraction
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from mlp_crosscheck.backends import numpy_backend
from mlp_crosscheck.backends.contract import Implementation
from mlp_crosscheck.properties import activation_regions, helpers, linear_maps
from mlp_crosscheck.properties.activation_regions import RegionVerdict, region_analysis
from mlp_crosscheck.properties.claims import nonlinear_does_not_collapse as nonlinear
from mlp_crosscheck.reference.network import Network

CORRECT = Implementation(numpy_backend)
DTYPES = [pytest.param(np.dtype(name), id=name) for name in ("float32", "float64")]


def subadditive(dtype=np.float64, activation: str = "relu") -> Network:
    """``sigma(sigma(x1 + x2) - sigma(x1) - sigma(x2) - 1)``, then an identity output layer (so that
    ``exact_forward``'s last pre-activation is the output). Widths (2, 3, 1, 1)."""
    w1 = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])  # units x1 + x2, x1, x2
    w2 = np.array([[1.0], [-1.0], [-1.0]])  # h1 - h2 - h3 ...
    b = [np.zeros(3), np.array([-1.0]), np.zeros(1)]  # ... - 1
    weights = [a.astype(dtype) for a in (w1, w2, np.ones((1, 1)))]
    return Network(weights, [a.astype(dtype) for a in b], (activation, activation, "identity"))


def planted(name: str, forward) -> Implementation:
    module = types.ModuleType(f"planted_{name}")
    module.NAME = f"planted:{name}"
    module.forward = forward
    module.loss_and_input_gradients = numpy_backend.loss_and_input_gradients
    module.loss_and_gradients = lambda *args: module.loss_and_input_gradients(*args)[:3]
    return Implementation(module)


def _relu_as_leaky_forward(weights, biases, activations, x):
    # BUG: relu computed as leaky_relu (the wrong activation function called).
    return numpy_backend.forward(weights, biases, ["leaky_relu" if n == "relu" else n for n in activations], x)


def _relu_as_identity_forward(weights, biases, activations, x):
    # BUG: relu implemented as the identity (a missing activation call).
    return numpy_backend.forward(weights, biases, ["identity" if n == "relu" else n for n in activations], x)


def _exact_outputs(net: Network, x: np.ndarray) -> np.ndarray:
    """The exact outputs of ``net`` (last layer identity) at ``x``, as Fractions."""
    out = linear_maps.exact_forward(net, x)[-1]
    return np.vectorize(lambda v: Fraction(int(v)) * out.scale, otypes=[object])(out.ints)


# ---------------------------------------------------------------------------------------------------------
# The subadditive network: what each criterion says, and what the property does with it.


@pytest.mark.parametrize("dtype", DTYPES)
def test_subadditive_relu_network_is_not_proved_affine_by_exact_identities(dtype):
    analysis = linear_maps.affine_analysis(subadditive(dtype))
    assert not analysis.affine
    assert analysis.nonlinear_terms == (4,)  # relu of a combination of three relu atoms and the constant


@pytest.mark.parametrize("dtype", DTYPES)
def test_subadditive_relu_network_has_every_second_difference_exactly_zero(dtype):
    net = subadditive(dtype)
    lines = linear_maps.witness_lines(2, dtype)
    exact_out = _exact_outputs(net, lines.batch())
    n = len(lines.scales)
    second = exact_out[2 * n :] - 2 * exact_out[n : 2 * n] + exact_out[:n]
    assert all(v == 0 for v in exact_out.ravel())  # identically 0 on every witness point, exactly ...
    assert all(v == 0 for v in second.ravel())  # ... so every exact second difference is 0: no witness exists
    # The float64 reference agrees exactly (every intermediate is exact here), so nothing is "visible".
    reference = linear_maps.reference_second_differences(net, lines)
    assert not reference.value.any()
    facts = nonlinear.network_facts(net)
    assert not (np.abs(facts.reference.value) - facts.reference.bound > 2 * facts.correct_bound).any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_region_criterion_proves_the_subadditive_relu_network_zero_on_rn(dtype):
    net = subadditive(dtype)
    verdict = region_analysis(net)
    assert verdict.affine is True
    assert all(v == 0 for v in verdict.linear_part.ints.ravel())  # K = 0 ...
    zero = np.zeros((1, 2), dtype)
    assert _exact_outputs(net, zero)[0, 0] == 0  # ... and f(0) = 0: f = 0 on all of R^n
    # Independently, on a grid of exact points around every kink (x1 = 0, x2 = 0, x1 + x2 = 0):
    grid = np.array(list(itertools.product([-2.0, -0.5, 0.0, 0.25, 1.0, 3.0], repeat=2)), dtype)
    assert all(v == 0 for v in _exact_outputs(net, grid).ravel())


@pytest.mark.parametrize("dtype", DTYPES)
def test_dichotomy_check_should_pass_deciding_the_subadditive_relu_network_affine(dtype):
    before = sum(helpers.REJECTIONS.values())
    assert nonlinear.check_network_is_witnessed_or_provably_affine(CORRECT, subadditive(dtype)) == "provably affine"
    assert sum(helpers.REJECTIONS.values()) == before  # decided, not discarded


@pytest.mark.parametrize("dtype", DTYPES)
def test_dichotomy_check_should_fail_on_the_subadditive_network_with_relu_computed_as_leaky_relu(dtype):
    # leaky_relu is not subadditive in the same way: the outer unit sees 0.99 x2 - 1 (x1 > 0 > x2, x1 + x2 > 0)
    # and passes a hundredth of it on, which is not constant.
    with pytest.raises(AssertionError, match=r"forward\(p\) against forward\(0\) \+ p K"):
        nonlinear.check_network_is_witnessed_or_provably_affine(
            planted("relu_as_leaky", _relu_as_leaky_forward), subadditive(dtype)
        )


def _undecided(net):
    return RegionVerdict(None, None, 0)


def test_without_the_region_criterion_the_subadditive_network_is_undecided_not_an_error():
    key = "undecided nonlinearity: not provably affine on R^n, and no second difference visible at this precision"
    before = helpers.REJECTIONS[key]
    verdict = nonlinear.check_network_is_witnessed_or_provably_affine(CORRECT, subadditive(), decide=_undecided)
    assert verdict == "undecided"
    assert helpers.REJECTIONS[key] == before + 1


def test_without_the_region_criterion_hypothesis_discards_the_subadditive_network():
    @settings(max_examples=5, database=None, suppress_health_check=list(HealthCheck))
    @given(net=st.just(subadditive()))
    def property_(net):
        nonlinear.check_network_is_witnessed_or_provably_affine(CORRECT, net, decide=_undecided)

    with pytest.raises(Unsatisfiable):  # every example discarded by assume_decided: none failed, none errored
        property_()


# ---------------------------------------------------------------------------------------------------------
# The region criterion on known networks, against the exact identities and the witnesses, and planted bugs.

RELU_NET = Network(
    [np.array([[1.0, -1.0, 0.5], [0.5, 1.0, -1.0]]), np.array([[1.0], [1.0], [-1.0]])],
    [np.array([0.1, -0.2, 0.3]), np.array([0.0])],
    ["relu", "identity"],
)


def test_region_criterion_should_prove_not_affine_with_two_regions_whose_maps_differ():
    for net in (RELU_NET, subadditive(activation="leaky_relu")):
        verdict = region_analysis(net)
        assert verdict.affine is False
        # Independent confirmation: the affine maps at the two interior points it returns differ.
        first, second = (_exact_map_at(net, p) for p in verdict.points)
        assert first != second


def _exact_map_at(net: Network, point) -> tuple:
    """The network's exact affine map (rows: units; columns: x_1..x_n, 1) on the region containing the rational
    interior ``point``, from the signs of the exact pre-activations at ``point`` (not from the region search)."""
    n = len(point)
    values = [[Fraction(int(i == j)) for j in range(n + 1)] for i in range(n)]  # x_i
    at = list(point)
    for layer, name in enumerate(net.activations):
        w = net.weights[layer]
        b = net.biases[layer] if net.biases is not None else np.zeros(w.shape[1])
        new_values, new_at = [], []
        for j in range(w.shape[1]):
            row = [sum(Fraction(float(w[i, j])) * values[i][c] for i in range(len(values))) for c in range(n + 1)]
            row[n] += Fraction(float(b[j]))
            z = sum(Fraction(float(w[i, j])) * at[i] for i in range(len(at))) + Fraction(float(b[j]))
            # Interior: a pre-activation that depends on x is not 0 there (a constant 0 gives 0 either way).
            assert name == "identity" or z != 0 or not any(row[:n])
            slope = {"identity": 1, "relu": 0, "leaky_relu": Fraction(1, 100)}[name] if z < 0 else 1
            new_values.append([slope * v for v in row])
            new_at.append(slope * z)
        values, at = new_values, new_at
    return tuple(tuple(v) for v in values)


def test_region_criterion_should_prove_a_flipped_pair_affine_with_the_exact_k():
    # relu(z) - relu(-z) = z: 3 (x W + b) read through V = 3 with W = [1, 2]^T, b = 0.5.
    net = Network(
        [np.array([[1.0, -1.0], [2.0, -2.0]]), np.array([[3.0], [-3.0]])],
        [np.array([0.5, -0.5]), np.zeros(1)],
        ["relu", "identity"],
    )
    verdict = region_analysis(net)
    assert verdict.affine is True
    k = verdict.linear_part
    assert [Fraction(int(v)) * k.scale for v in k.ints.ravel()] == [3, 6]


def _small_networks():
    """Small relu / leaky_relu networks, plain and made degenerate (dead units, duplicates, flipped pairs)."""
    rng = np.random.default_rng(20240611)
    for widths, name, biases in itertools.product(
        [(2, 3, 1), (3, 2, 2, 1), (2, 4, 2)], ["relu", "leaky_relu"], [True, False]
    ):
        weights = [rng.integers(-3, 4, size=(m, k)).astype(np.float64) / 2 for m, k in itertools.pairwise(widths)]
        bs = [rng.integers(-2, 3, size=k).astype(np.float64) / 2 for k in widths[1:]] if biases else None
        acts = [name] * (len(widths) - 1)
        yield Network(weights, bs, acts)
        # Degenerate: the first layer's units duplicated with cancelling outgoing weights (constant network).
        w_in = np.concatenate([weights[0], weights[0]], axis=1)
        w_out = np.concatenate([weights[1], -weights[1]], axis=0)
        b_in = None if bs is None else np.concatenate([bs[0], bs[0]])
        yield Network([w_in, w_out, *weights[2:]], None if bs is None else [b_in, *bs[1:]], acts)
        # Degenerate: the first layer dead on R^n for relu (zero weights, negative bias).
        if biases and name == "relu":
            yield Network([0 * weights[0], *weights[1:]], [-np.abs(bs[0]) - 0.5, *bs[1:]], acts)


@pytest.mark.parametrize("net", list(_small_networks()))
def test_region_criterion_agrees_with_exact_identities_and_witnesses(net):
    verdict = region_analysis(net)
    assert verdict.affine is not None  # small: within the budget
    analysis = linear_maps.affine_analysis(net)
    if analysis.affine:  # the identities' proof: the regions must find the same K
        assert verdict.affine is True
        difference = verdict.linear_part + (-analysis.linear_part)
        assert not any(difference.ints.ravel())
    facts = nonlinear.network_facts(net)
    if (np.abs(facts.reference.value) - facts.reference.bound > 0).any():  # a nonzero exact second difference
        assert verdict.affine is False


def _regions_without_pruning_proofs(net):
    # BUG: a branch the current interior point is not in is taken to be empty (no search for another point):
    # regions are lost, and a network looks affine when only one region was seen.
    with (
        mock.patch.object(activation_regions, "interior_point", return_value=None),
        mock.patch.object(activation_regions, "_across", return_value=None),
    ):
        return region_analysis(net)


def test_region_criterion_without_pruning_proofs_is_wrong_on_a_relu_network():
    assert _regions_without_pruning_proofs(RELU_NET).affine is True  # the planted bug is a real one


def test_dichotomy_check_should_fail_on_a_region_criterion_without_pruning_proofs():
    with pytest.raises(AssertionError, match="float64 reference second differences"):
        nonlinear.check_network_is_witnessed_or_provably_affine(
            CORRECT, RELU_NET, analyse=_regions_without_pruning_proofs
        )


def test_dichotomy_check_should_fail_on_a_region_criterion_with_a_wrong_k():
    # BUG: the decided K is not the network's (ones instead of zeros): the implementation cannot match it.
    def wrong_k(net):
        return RegionVerdict(True, linear_maps.Exact(np.full((2, 1), 1, dtype=object), Fraction(1)), 1)

    with pytest.raises(AssertionError, match=r"forward\(p\) against forward\(0\) \+ p K"):
        nonlinear.check_network_is_witnessed_or_provably_affine(CORRECT, subadditive(), decide=wrong_k)


def test_interior_point_should_find_a_strict_solution_or_prove_there_is_none():
    # x > 0, y > 0, x + y < 1: a triangle's interior; x > 0, y > 0, x + y < 0: empty; x >= 0 and -x >= 0 (as
    # strict: x > 0, -x > 0): empty, although the closed set {x = 0} is not.
    triangle = [(1, 0, 0), (0, 1, 0), (-1, -1, 1)]
    p = activation_regions.interior_point(triangle, 2)
    assert p is not None
    assert all(a * p[0] + b * p[1] + c > 0 for a, b, c in triangle)
    assert activation_regions.interior_point([(1, 0, 0), (0, 1, 0), (-1, -1, 0)], 2) is None
    assert activation_regions.interior_point([(1, 0, 0), (-1, 0, 0)], 2) is None
    assert activation_regions.interior_point([], 3) == (0, 0, 0)


# ---------------------------------------------------------------------------------------------------------
# All-active relu networks: affine on their data, and not affine on a witness line.

ALL_ACTIVE_X = np.array([[1.0, 1.0], [2.0, 0.5], [1.5, 2.0]])  # every pre-activation of RELU_NET_ACTIVE > 0
RELU_NET_ACTIVE = Network(
    [np.array([[1.0, -1.0, 0.5], [0.5, 1.0, -1.0]]), np.array([[1.0, 0.5], [1.0, 1.0], [-1.0, 2.0]])],
    [np.array([1.0, 3.0, 2.5]), np.array([5.0, 0.0])],
    ["relu", "relu"],
)


def test_all_active_case_is_all_active():
    assert all(all(v > 0 for v in z.ints.ravel()) for z in linear_maps.exact_forward(RELU_NET_ACTIVE, ALL_ACTIVE_X))


def test_all_active_checks_should_pass():
    nonlinear.check_all_active_relu_network_is_affine_on_its_data(CORRECT, RELU_NET_ACTIVE, ALL_ACTIVE_X)
    assert nonlinear.check_network_is_witnessed_or_provably_affine(CORRECT, RELU_NET_ACTIVE) == "witnessed"


def test_all_active_witness_check_should_fail_on_a_linearised_relu_that_the_data_check_misses():
    bug = planted("relu_identity", _relu_as_identity_forward)
    nonlinear.check_all_active_relu_network_is_affine_on_its_data(bug, RELU_NET_ACTIVE, ALL_ACTIVE_X)  # passes
    with pytest.raises(AssertionError, match="computes an affine map"):
        nonlinear.check_network_is_witnessed_or_provably_affine(bug, RELU_NET_ACTIVE)


def test_region_criterion_is_undecided_outside_its_scope():
    tanh = Network(RELU_NET.weights, RELU_NET.biases, ["tanh", "identity"])
    assert region_analysis(tanh).affine is None  # not piecewise linear: no regions
    wide = Network([np.ones((2, 30)), np.ones((30, 1))], None, ["relu", "identity"])
    assert region_analysis(wide).affine is None  # over MAX_UNITS: undecided, never a guess
