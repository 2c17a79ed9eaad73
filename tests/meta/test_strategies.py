"""Meta-tests of properties/strategies.py: what each strategy guarantees, and that every regime really occurs.

"Occurs" claims use ``hypothesis.find`` (derandomized, generation only): it fails with ``NoSuchExample`` when
none of the first ``max_examples`` examples shows the regime, so a regime that silently stopped being drawn
is caught. Validity claims use ``@given`` over every option combination that changes the code path.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument, NoSuchExample
from mlp_crosscheck.properties import profiles
from mlp_crosscheck.properties import strategies as ps
from mlp_crosscheck.properties.strategies import Case
from mlp_crosscheck.reference import activations as vocabulary
from mlp_crosscheck.reference.network import Network, forward, loss_and_gradients

FIND = profiles.FIND  # hypothesis.find's settings for planting and finding counterexamples
VALIDITY = settings(max_examples=60, derandomize=True, database=None, deadline=None)
MIXED_CASES = ps.cases(activations="mixed", dtype="float64")


def some(strategy, condition, max_examples: int = 300):
    """Return the first example of ``strategy`` satisfying ``condition``; fail if none in ``max_examples``."""
    return find(strategy, condition, settings=settings(FIND, max_examples=max_examples))


def over_all_examples_so_far(claim):
    """Return a ``find`` condition that holds once ``claim(examples)`` holds for the examples drawn so far."""
    examples: list = []

    def condition(example) -> bool:
        examples.append(example)
        return claim(examples)

    return condition


def preactivations(case: Case) -> tuple[np.ndarray, ...]:
    return forward(case.net, case.x)[1].preactivations


def bits(a: np.ndarray) -> np.ndarray:
    """The array's bit patterns, so that equality is exact (-0.0 differs from 0.0, NaN equals itself)."""
    return np.ascontiguousarray(a).view(np.uint32 if a.dtype == np.float32 else np.uint64)


def assert_arrays_bitwise_equal(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_array_equal(bits(actual), bits(expected))


def assert_array_finite_normal_or_zero(name: str, a: np.ndarray, dtype: np.dtype) -> None:
    assert a.dtype == dtype, f"{name} is {a.dtype}, expected {dtype}"
    assert np.isfinite(a).all(), f"{name} has NaN or infinity"
    subnormal = (a != 0) & (np.abs(a) < np.finfo(dtype).tiny)
    assert not subnormal.any(), f"{name} has subnormal values {a[subnormal]}"


def paired_units(net: Network, sign: float) -> list[tuple[int, int, int]]:
    """(layer, i, j): unit i's incoming weights and bias are ``sign`` times unit j's, i != j.

    Only columns with two distinct nonzero magnitudes count, so that pairs made by chance (a one-row layer,
    or a column that the repeats regime filled with +-v) do not.
    """
    found = []
    for layer, w in enumerate(net.weights):
        b = None if net.biases is None else net.biases[layer]
        for j in range(w.shape[1]):
            if len(np.unique(np.abs(w[:, j][w[:, j] != 0]))) < 2:
                continue
            for i in range(w.shape[1]):
                same_bias = b is None or b[i] == sign * b[j]
                if i != j and np.array_equal(w[:, i], sign * w[:, j]) and same_bias:
                    found.append((layer, i, j))
    return found


def has_scattered_zeros(a: np.ndarray) -> bool:
    """A zero in a column that is not all zero (a zeroed unit alone does not count)."""
    return bool(((a == 0) & a.any(axis=0)).any())


def has_repeated_value_with_both_signs(a: np.ndarray) -> bool:
    """A nonzero magnitude at least four times in one row or column, with both signs there.

    Paired units copy a value at most three times along a row (the unit, its duplicate, its flip) and twice
    along a column (cancelling outgoing weights), so only the repeats regime passes this.
    """
    for line in (*a, *a.T):
        magnitudes, counts = np.unique(np.abs(line[line != 0]), return_counts=True)
        if any(np.isin(m, line) and np.isin(-m, line) for m in magnitudes[counts >= 4]):
            return True
    return False


# --- Architectures and batch sizes -----------------------------------------------------------------------


def test_the_seed_architecture_is_the_first_example():
    assert some(ps.architectures(), lambda w: w == ps.SEED_ARCHITECTURE, max_examples=1) == (3, 4, 10, 1)
    first = some(MIXED_CASES, lambda c: c.net.widths == ps.SEED_ARCHITECTURE, max_examples=1)
    assert first.net.widths == (3, 4, 10, 1)


def test_the_seed_architecture_recurs_after_the_first_example():
    # architectures() alone has a single seed example (Hypothesis never repeats a choice sequence); within
    # cases the seed architecture comes back with other values.
    def seed_thrice(cases: list[Case]) -> bool:
        return [c.net.widths for c in cases].count(ps.SEED_ARCHITECTURE) >= 3

    some(MIXED_CASES, over_all_examples_so_far(seed_thrice), max_examples=60)


@settings(VALIDITY, max_examples=100)
@given(ps.architectures(min_depth=2, max_depth=3, min_width=2, max_width=5))
def test_architectures_respect_their_bounds(widths):
    assert 2 <= len(widths) - 1 <= 3
    assert all(2 <= w <= 5 for w in widths)


@settings(VALIDITY)
@given(ps.architectures(max_depth=st.integers(1, 2), max_width=st.sampled_from([1, 3])))
def test_architecture_bounds_may_be_strategies(widths):
    assert 1 <= len(widths) - 1 <= 2
    assert all(w <= 3 for w in widths)


def test_bottleneck_architectures_occur():
    some(ps.architectures(), lambda w: len(w) > 2 and min(w[1:-1]) < min(w[0], w[-1]), max_examples=100)


def test_batches_of_one_occur():
    some(MIXED_CASES, lambda c: c.x.shape[0] == 1 and c.net.widths != (1, 1))


@pytest.mark.parametrize("layer", ["input", "hidden", "output"])
def test_batch_sizes_equal_to_a_layer_width_occur(layer):
    def matches(c: Case) -> bool:
        widths = {"input": c.net.widths[:1], "hidden": c.net.widths[1:-1], "output": c.net.widths[-1:]}[layer]
        return c.x.shape[0] >= 2 and c.x.shape[0] in widths

    some(MIXED_CASES, matches)


# --- Size regimes -------------------------------------------------------------------------------------------

LARGE_CASES = ps.cases(activations="tanh", dtype="float64", large=True)


def is_large(case: Case) -> bool:
    return len(case.net.widths) - 1 >= ps.LARGE.depth[0]


@pytest.mark.parametrize(
    ("what", "condition"),
    [
        ("depth 8", lambda s: len(s[0]) - 1 == ps.LARGE.depth[1]),
        ("a width of 64", lambda s: max(s[0]) == ps.LARGE.width[1]),
        ("batch 128", lambda s: s[1] == ps.LARGE.batch[1]),
        ("batch 1 on a large network", lambda s: len(s[0]) - 1 >= ps.LARGE.depth[0] and s[1] == 1),
        ("depth 5 and batch 17, where the size bugs start", lambda s: len(s[0]) == 6 and s[1] == 17),
    ],
)
def test_large_shapes_reach_every_bound_of_the_large_regime(what, condition):
    some(ps.shapes(large=True), condition, max_examples=3000)


def test_cases_take_their_shape_from_the_large_regime():
    some(LARGE_CASES, lambda c: len(c.net.widths) - 1 > 4 and c.x.shape[0] > 16, max_examples=100)


@settings(VALIDITY, max_examples=200)
@given(ps.shapes(large=True))
def test_shapes_stay_within_the_small_or_the_large_regime(shape):
    widths, batch = shape
    regime = ps.LARGE if len(widths) - 1 >= ps.LARGE.depth[0] else ps.SMALL
    assert regime.depth[0] <= len(widths) - 1 <= regime.depth[1]
    assert all(regime.width[0] <= w <= regime.width[1] for w in widths)
    assert batch == 1 or regime.batch[0] <= batch <= regime.batch[1]


def test_without_large_no_case_is_large():
    with pytest.raises(NoSuchExample):
        some(ps.cases(activations="tanh", dtype="float64"), is_large, max_examples=300)


def size_bug_draws(profile: settings, seed: int | None) -> tuple[int, int]:
    """Return how many of one Hypothesis run's cases are deeper than 4 layers, and how many batches exceed 16."""
    deep = long = 0

    @settings(profile, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(LARGE_CASES)
    def draw(case: Case) -> None:
        nonlocal deep, long
        deep += len(case.net.widths) - 1 > 4
        long += case.x.shape[0] > 16

    (draw if seed is None else hypothesis_seed(seed)(draw))()
    return deep, long


@pytest.mark.slow  # two whole claim-family runs (~16 s); in the scheduled job
@pytest.mark.parametrize("profile", ["dev", "ci"])
def test_each_profiles_run_of_a_claim_family_draws_cases_that_show_the_size_bugs(profile):
    # One run of a claim family is one Hypothesis run per activation x dtype (18), each of the profile's
    # max_examples. Over them there must be cases deep enough (> 4 layers) and batches long enough (> 16) to
    # show the planted size bugs: in each of 10 dev runs (random; seeded here) and in the ci run (derandomized).
    from mlp_crosscheck.properties import profiles

    seeds = [[1000 * s + run for run in range(18)] for s in range(10)] if profile == "dev" else [[None] * 18]
    for run_seeds in seeds:
        counts = [size_bug_draws(profiles.PROFILES[profile], seed) for seed in run_seeds]
        deep, long = (sum(c) for c in zip(*counts, strict=True))
        assert deep >= 18, (profile, run_seeds[0], counts)
        assert long >= 18, (profile, run_seeds[0], counts)


@settings(VALIDITY, max_examples=100)
@given(st.data())
def test_batch_sizes_stay_between_one_and_max_batch(data):
    widths = data.draw(ps.architectures(), label="widths")
    max_batch = data.draw(st.integers(1, 20), label="max_batch")
    assert 1 <= data.draw(ps.batch_sizes(widths, max_batch=max_batch), label="batch") <= max_batch


# --- Every case is well formed -----------------------------------------------------------------------------


@pytest.mark.parametrize("well_scaled", [False, True], ids=["regimes", "well_scaled"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(VALIDITY)
@given(data=st.data())
def test_every_case_is_well_formed(data, dtype, well_scaled):
    net, x, y = data.draw(ps.cases(activations="mixed", dtype=dtype, well_scaled=well_scaled), label="case")
    dtype = np.dtype(dtype)
    widths = net.widths
    assert 1 <= net.depth <= 4
    assert all(1 <= w <= 16 for w in widths)
    assert len(net.activations) == net.depth
    assert set(net.activations) <= set(vocabulary.NAMES)
    assert 1 <= x.shape[0] <= ps.MAX_BATCH
    assert x.shape == (x.shape[0], widths[0])
    assert y.shape == (x.shape[0], widths[-1])
    for i, w in enumerate(net.weights):
        assert w.shape == (widths[i], widths[i + 1])
        assert_array_finite_normal_or_zero(f"weights[{i}]", w, dtype)
    for i, b in enumerate(net.biases or ()):
        assert b.shape == (widths[i + 1],)
        assert_array_finite_normal_or_zero(f"biases[{i}]", b, dtype)
    assert_array_finite_normal_or_zero("x", x, dtype)
    assert_array_finite_normal_or_zero("y", y, dtype)
    if well_scaled:
        for i, w in enumerate(net.weights):
            assert np.abs(w).max() <= 2 / math.sqrt(widths[i]) * (1 + 1e-6)
        assert all(np.abs(b).max() <= 0.5 for b in net.biases or ())
        assert np.abs(x).max() <= 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(VALIDITY, max_examples=100)
@given(data=st.data())
def test_the_reference_stays_finite_on_every_case(data, dtype):
    # The large regimes approach overflow on purpose (e^z for |z| ~ 1e3) but must not produce a loss or
    # gradient that a correct float32 implementation cannot represent.
    net, x, y = data.draw(ps.cases(activations="mixed", dtype=dtype), label="case")
    loss, grads = loss_and_gradients(net, x, y)
    assert math.isfinite(loss)
    for g in (*grads.weights, *(grads.biases or ()), grads.x):
        assert np.isfinite(g).all()


@settings(VALIDITY)
@given(data=st.data())
def test_networks_batches_and_targets_compose(data):
    net = data.draw(ps.networks(activations="relu", dtype="float32", biases=True), label="net")
    batch = data.draw(ps.batch_sizes(net.widths), label="batch")
    x = data.draw(ps.batches(net, batch=batch), label="x")
    y = data.draw(ps.targets(net, batch, x=x), label="y")
    assert net.activations == ("relu",) * net.depth
    assert net.biases is not None
    assert (net.dtype, x.dtype, y.dtype) == (np.float32,) * 3
    assert x.shape == (batch, net.widths[0])
    assert y.shape == (batch, net.widths[-1])


@settings(VALIDITY)
@given(data=st.data())
def test_well_scaled_networks_compose_with_well_scaled_batches(data):
    net = data.draw(ps.well_scaled_networks(activations="tanh", dtype="float64"), label="net")
    x = data.draw(ps.well_scaled_batches(net), label="x")
    assert np.abs(x).max() <= 1
    assert x.shape[1] == net.widths[0]


# --- Options are honoured ------------------------------------------------------------------------------------


@settings(VALIDITY)
@given(ps.networks(activations=("tanh", "relu"), dtype="float32", biases=False))
def test_a_sequence_of_activations_fixes_the_depth(net):
    assert net.activations == ("tanh", "relu")
    assert net.biases is None
    assert net.dtype == np.float32


@settings(VALIDITY)
@given(ps.networks(activations="gelu", dtype=np.float64, widths=(2, 7, 3), biases=True))
def test_fixed_options_are_used_as_given(net):
    assert net.widths == (2, 7, 3)
    assert net.activations == ("gelu", "gelu")
    assert net.biases is not None


def test_options_drawn_from_strategies_take_every_value():
    nets = ps.networks(activations=st.sampled_from(["tanh", "relu"]), dtype=st.sampled_from(["float32", "float64"]))
    combinations = lambda ns: {(n.activations[0], n.dtype, n.biases is None) for n in ns}
    some(nets, over_all_examples_so_far(lambda ns: len(combinations(ns)) == 8))


def test_mixed_activations_cover_the_vocabulary_and_mix_within_a_network():
    names_seen = lambda cs: {name for c in cs for name in c.net.activations}
    some(MIXED_CASES, over_all_examples_so_far(lambda cs: names_seen(cs) == set(vocabulary.NAMES)))
    some(MIXED_CASES, lambda c: len(set(c.net.activations)) >= 3)


def test_mixed_activations_can_be_drawn_from_a_smaller_vocabulary():
    pool = ("relu", "gelu", "sigmoid")
    nets = ps.networks(activations="mixed", dtype="float32", mixed_from=pool)
    some(nets, over_all_examples_so_far(lambda ns: {name for n in ns for name in n.activations} == set(pool)))


@settings(VALIDITY)
@given(ps.cases(activations="mixed", dtype="float64", mixed_from=["tanh", "elu"]))
def test_mixed_activations_stay_in_their_vocabulary(case):
    assert set(case.net.activations) <= {"tanh", "elu"}


# --- Every regime occurs -------------------------------------------------------------------------------------


REGIMES = {
    "zeros scattered in the weights": lambda c: any(has_scattered_zeros(w) for w in c.net.weights),
    "zeros scattered in the biases": lambda c: any(has_scattered_zeros(b[:, None]) for b in c.net.biases or ()),
    "a unit with all incoming weights zero": lambda c: any((~w.any(axis=0)).any() for w in c.net.weights),
    "a weight value repeated with both signs": lambda c: any(
        has_repeated_value_with_both_signs(w) for w in c.net.weights
    ),
    "an input value repeated with both signs": lambda c: has_repeated_value_with_both_signs(c.x),
    "zeros scattered in the inputs": lambda c: has_scattered_zeros(c.x) and has_scattered_zeros(c.x.T),
    "duplicated units": lambda c: bool(paired_units(c.net, 1.0)),
    "duplicated units with cancelling outgoing weights": lambda c: any(
        layer + 1 < c.net.depth and np.array_equal(c.net.weights[layer + 1][i], -c.net.weights[layer + 1][j])
        for layer, i, j in paired_units(c.net, 1.0)
    ),
    "sign-flipped units": lambda c: bool(paired_units(c.net, -1.0)),
    "pre-activations of magnitude 1000": lambda c: max(np.abs(z).max() for z in preactivations(c)) >= 1000,
    "pre-activations above 50 in a saturating layer": lambda c: any(
        name in ("tanh", "sigmoid", "softplus") and np.abs(z).max() >= 50
        for name, z in zip(c.net.activations, preactivations(c), strict=True)
    ),
    "all weights below 1e-2": lambda c: max(np.abs(w).max() for w in c.net.weights) <= 1e-2,
    "with biases": lambda c: c.net.biases is not None,
    "without biases": lambda c: c.net.biases is None,
    "a zero sample": lambda c: (~c.x.any(axis=1)).any() and c.x.any(),
    "a zero feature": lambda c: (~c.x.any(axis=0)).any() and c.x.any(),
    "duplicated samples": lambda c: len(np.unique(c.x, axis=0)) < len(c.x) and c.x.any(),
    "sign-flipped samples": lambda c: any(
        c.x[i].any() and np.array_equal(c.x[i], -c.x[j]) for i in range(len(c.x)) for j in range(len(c.x))
    ),
    "a feature that is the sum of two others": lambda c: any(
        c.x[:, k].any() and np.array_equal(c.x[:, k], c.x[:, i] + c.x[:, j])
        for i in range(c.x.shape[1])
        for j in range(c.x.shape[1])
        for k in range(c.x.shape[1])
        if len({i, j, k}) == 3
    ),
    "integer inputs": lambda c: c.x.size >= 4 and np.array_equal(c.x, np.round(c.x)) and np.abs(c.x).max() >= 2,
    "inputs of magnitude 100": lambda c: np.abs(c.x).max() >= 100,
    "inputs below 1e-2": lambda c: 0 < np.abs(c.x).max() <= 1e-2,
    "targets equal to the output": lambda c: np.array_equal(c.y, forward(c.net, c.x)[0]),
    "targets near the output": lambda c: (
        not np.array_equal(c.y, out := forward(c.net, c.x)[0])
        and np.abs(c.y - out).max() <= 1e-2 * (1 + np.abs(out).max())
    ),
    "zero targets": lambda c: (c.y == 0).any(),
}


@pytest.mark.parametrize("regime", REGIMES)
def test_regime_occurs(regime):
    some(MIXED_CASES, REGIMES[regime])


RELU_CASES = ps.cases(activations="relu", dtype="float32")


def test_relu_units_lie_on_both_sides_of_the_kink():
    some(RELU_CASES, lambda c: any(((z > 0).any(axis=0) & (z < 0).any(axis=0)).any() for z in preactivations(c)))


def test_relu_units_lie_exactly_on_the_kink():
    some(RELU_CASES, lambda c: any((z == 0).any() for z in preactivations(c)))


def test_flipped_relu_pairs_with_cancelling_outgoing_weights_occur():
    # relu(z) - relu(-z) = z: a pair that makes a relu network partly linear (a degenerate family).
    def linear_pair(c: Case) -> bool:
        return any(
            layer + 1 < c.net.depth and np.array_equal(c.net.weights[layer + 1][i], -c.net.weights[layer + 1][j])
            for layer, i, j in paired_units(c.net, -1.0)
        )

    some(RELU_CASES, linear_pair)


# --- Bad options fail up front, with the option's name ------------------------------------------------------

NET = Network((np.ones((3, 2)),), None, ("tanh",))
BAD_OPTIONS = {
    "min_depth 0": (lambda: ps.architectures(min_depth=0), r"min_depth=.*integer >= 1, got 0"),
    "max_width float": (lambda: ps.architectures(max_width=2.5), r"max_width=.*got 2\.5"),
    "min_depth > max_depth": (lambda: ps.architectures(min_depth=3, max_depth=2), "greater than max_depth"),
    "unknown activation": (lambda: ps.networks(activations="softmax", dtype="float64"), "unknown activation"),
    "unknown activation in a list": (lambda: ps.networks(activations=["tanh", "swish"], dtype="float64"), "swish"),
    "float16": (lambda: ps.networks(activations="tanh", dtype="float16"), "float32 or float64"),
    "biases string": (lambda: ps.networks(activations="tanh", dtype="float64", biases="yes"), "True, False or None"),
    "too few activations": (
        lambda: ps.networks(activations=["tanh", "relu"], dtype="float64", widths=(3, 4)),
        "2 activation names",
    ),
    "one width": (lambda: ps.batch_sizes((3,)), "at least two widths"),
    "max_batch 0": (lambda: ps.batch_sizes((3, 4), max_batch=0), "max_batch"),
    "batch 0": (lambda: ps.batches(NET, batch=0), r"batch=.*got 0"),
    "not a network": (lambda: ps.batches("net"), "must be a reference.network.Network"),  # type: ignore[arg-type]
    "x of the wrong width": (lambda: ps.targets(NET, 2, x=np.ones((2, 4))), r"targets\(x=...\)"),
    "x of the wrong batch": (lambda: ps.targets(NET, 3, x=np.ones((2, 3))), "x has 2 rows"),
    "well_scaled string": (lambda: ps.cases(activations="tanh", dtype="float64", well_scaled="yes"), "well_scaled"),  # type: ignore[arg-type]
    "cases dtype": (lambda: ps.cases(activations="tanh", dtype=int), "float32 or float64"),
    "mixed_from a name": (lambda: ps.networks(activations="mixed", dtype="float64", mixed_from="relu"), "mixed_from"),
    "mixed_from unknown": (lambda: ps.cases(activations="mixed", dtype="float64", mixed_from=["nope"]), "nope"),
}


@pytest.mark.parametrize("option", BAD_OPTIONS)
def test_a_bad_option_fails_when_the_strategy_is_built(option):
    build, message = BAD_OPTIONS[option]
    with pytest.raises(InvalidArgument, match=message):
        build()


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        (ps.architectures(min_depth=st.just(0)), "min_depth"),
        (ps.architectures(min_width=st.just(5), max_width=st.just(4)), "greater than max_width"),
        (ps.networks(activations=st.just("softmax"), dtype="float64"), "unknown activation"),
        (ps.networks(activations=st.just(["tanh"]), dtype="float64", widths=(1, 2, 3)), "1 activation names"),
        (ps.batches(NET, batch=st.just(-1)), "batch"),
    ],
    ids=["depth", "width bounds", "activation", "depth of activations", "batch"],
)
def test_a_bad_option_drawn_from_a_strategy_fails_when_drawn(strategy, message):
    with pytest.raises(InvalidArgument, match=message):
        some(strategy, lambda _: True, max_examples=1)


# --- Cases print as code that rebuilds them exactly ---------------------------------------------------------


def rebuild(code: str) -> dict:
    namespace: dict = {}
    exec(code, namespace)
    return namespace


def assert_networks_bitwise_equal(actual: Network, expected: Network) -> None:
    assert actual.activations == expected.activations
    assert (actual.biases is None) == (expected.biases is None)
    for a, e in zip(actual.weights + (actual.biases or ()), expected.weights + (expected.biases or ()), strict=True):
        assert_arrays_bitwise_equal(a, e)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(VALIDITY, max_examples=30)
@given(data=st.data())
def test_network_as_code_rebuilds_the_case_bit_for_bit(data, dtype):
    case = data.draw(ps.cases(activations="mixed", dtype=dtype), label="case")
    namespace = rebuild(ps.network_as_code(*case))
    assert_networks_bitwise_equal(namespace["net"], case.net)
    assert_arrays_bitwise_equal(namespace["x"], case.x)
    assert_arrays_bitwise_equal(namespace["y"], case.y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(VALIDITY, max_examples=20)
@given(data=st.data())
def test_the_repr_of_a_case_rebuilds_it_bit_for_bit(data, dtype):
    case = data.draw(ps.cases(activations="mixed", dtype=dtype), label="case")
    rebuilt = eval(repr(case), {"np": np, "Network": Network, "Case": Case})
    assert_networks_bitwise_equal(rebuilt.net, case.net)
    assert_arrays_bitwise_equal(rebuilt.x, case.x)
    assert_arrays_bitwise_equal(rebuilt.y, case.y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_array_as_code_keeps_every_bit_of_awkward_values(dtype):
    info = np.finfo(dtype)
    rng = np.random.default_rng(0)
    uint = np.uint32 if dtype == np.float32 else np.uint64
    random_bits = rng.integers(0, np.iinfo(uint).max, 5000, dtype=uint, endpoint=True).view(dtype)
    special = np.array([0.0, -0.0, info.tiny, -info.tiny, info.smallest_subnormal, info.max, -info.max, 0.1], dtype)
    values = np.concatenate([special, random_bits[np.isfinite(random_bits)]])
    rebuilt = eval(ps.array_as_code(values.reshape(-1, 1)), {"np": np})
    assert_arrays_bitwise_equal(rebuilt.ravel(), values)
    non_finite = eval(ps.array_as_code(np.array([np.inf, -np.inf, np.nan], dtype)), {"np": np})
    assert np.isposinf(non_finite[0])
    assert np.isneginf(non_finite[1])
    assert np.isnan(non_finite[2])
