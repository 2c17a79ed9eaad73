"""The lazy bounds (``sweep_bounds``) give the verdict of the full bounds computed everywhere.

A large drawn sweep -- every activation, both dtypes, biases on and off, every value regime (near exp's range and
near underflow included) -- with the built-in backends and planted faults, once with the lazy path and once with
``full_bounds=True``: the same checked, excluded and failing networks, the same ratio per failing network and
quantity, the same messages, the same sampled ratio distribution. Two planted defects show the comparison fails
when the cheap quantities are wrong: a lower bound larger than the full one, a majorant that decides too much.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from mlp_crosscheck.properties.tolerances import gradient_bounds_batched
from mlp_crosscheck.reference.batched import backward_batched_traced, forward_batched, loss_batched

from mlp_crosscheck import backends
from mlp_crosscheck.commands import sweep as sw
from mlp_crosscheck.commands import sweep_bounds
from mlp_crosscheck.commands.sweep_space import SweepSpace, generate_groups

FAULTS = Path(__file__).parent / "faults"
# Faults of different kinds: a part per million (far below allclose, ~10^6 bounds), one quantity doubled, a
# wrong formula near exp's range, a kink convention, a flush of small gradients (near underflow).
PLANTED = [
    "faulty_first_layer_gradient_off_by_a_part_per_million.py",
    "faulty_last_layer_weight_gradient_doubled.py",
    "faulty_softplus_naive.py",
    "faulty_relu_derivative_two_at_zero.py",
    "faulty_gradients_flushed_below_1e30.py",
    "correct_alternating_summation_order.py",
]
# Drawn blocks of every activation, dtype and regime; the planted faults run network by network. Every commit
# runs the smaller sweep, the scheduled job the larger one.
NETWORKS = [4_000, pytest.param(30_000, marks=pytest.mark.slow)]


class _Replayed(sw.ImplLoop):
    """A planted implementation, called network by network in the first sweep and replayed in the second.

    The two sweeps of ``assert_lazy_sweep_matches_full`` evaluate the same groups in the same order; what they
    must agree on is what the bounds decide about those evaluations, so the second gets the first's, exactly (and
    checks that its inputs are the first's). The planted faults run network by network in Python: replaying them
    saves about a quarter of the test's time (4,000 networks: 11.0-12.8 s before, 8.5-9.6 s after).
    """

    def __init__(self, impl) -> None:
        super().__init__(impl)
        self.recorded: list = []
        self.replaying = False

    def evaluate(self, stack, x, y, baseline) -> sw.Evaluation:
        if not self.replaying:
            evaluation = super().evaluate(stack, x, y, baseline)
            self.recorded.append((x.copy(), evaluation))
            return evaluation
        recorded_x, evaluation = self.recorded.pop(0)
        assert np.array_equal(recorded_x, x), f"{self.name}: the second sweep evaluates other networks"
        return evaluation


def _evaluators(chunk: int, planted: bool = True) -> list:
    names = [name for name in backends.BUILTINS if backends.missing_reason(name) is None]
    impls = [_Replayed(backends.load(str(FAULTS / f))) for f in PLANTED] if planted else []
    return sw.make_evaluators(names, [], chunk) + impls


def _verdict(report: sw.SweepReport) -> dict:
    """Everything a sweep decides and reports about its networks, except the max (taken over fewer networks)."""
    per_backend = {}
    for b in report.backends:
        ratios = b.failing_ratios()
        per_backend[b.name] = {
            "counts": (b.checked, b.excluded, b.failures, dict(b.skipped_networks)),
            "failing": b.failing().tolist(),
            "ratios": np.where(np.isnan(ratios), -1.0, ratios).tolist(),  # NaN == NaN here: where it passes
            "signatures": b.failed_signatures,
            "regimes": b.failed_regimes,
            "errors": b.contract_errors,
            "worst": [(f.index, f.ratios, f.message) for f in b.worst],
            "histograms": {q: h.counts.tolist() for q, h in b.stats.items()},
        }
    return {"coverage": report.coverage.to_json(), "backends": per_backend}


def assert_lazy_sweep_matches_full(
    space: SweepSpace, networks: int, chunk: int, planted: bool = True
) -> sw.SweepReport:
    """Run the sweep lazily and with every full bound; raise AssertionError naming what differs; return the
    report of the full bounds."""
    evaluators = _evaluators(chunk, planted)
    # A large sweep's sampling, not a small one's (which samples, and so fully bounds, every network): the cheap
    # tests decide all but one network in 64, as they do in a default run of 200,000.
    every = sw.SAMPLE_EVERY_MOST
    lazy = sw.sweep(space, networks, evaluators, chunk=chunk, sample_every=every)
    for ev in evaluators:
        if isinstance(ev, _Replayed):
            ev.replaying = True
    full = sw.sweep(space, networks, evaluators, chunk=chunk, full_bounds=True, sample_every=every)
    got, expected = _verdict(lazy), _verdict(full)
    assert got["coverage"] == expected["coverage"], "coverage and exclusions differ"
    for name, want in expected["backends"].items():
        for key, value in want.items():
            assert got["backends"][name][key] == value, f"{name}: {key} differs"
    assert not any(ev.recorded for ev in evaluators if isinstance(ev, _Replayed)), "the sweeps differ in groups"
    for a, b in zip(lazy.backends, full.backends, strict=True):
        for q, h in a.stats.items():  # the lazy max is over fewer networks, each with its full ratio
            assert h.max <= b.stats[q].max or (math.isnan(h.max) and math.isnan(b.stats[q].max)), (a.name, q)
    return full


def _space() -> SweepSpace:
    return SweepSpace(seed=11)  # the default space: everything drawn


@pytest.fixture
def edges(monkeypatch) -> SweepSpace:
    """A float32 relu/identity space without biases whose inputs are pushed to the edges: every third network's
    first input row zeroed (pre-activations exactly on the kink), the others' inputs scaled by 10^0 .. 10^38
    (values and bounds beyond float32's range, and in between bounds beyond it while the values are not)."""
    generate_groups = sw.generate_groups

    def generate_at_the_edges(space, start, stop):
        groups = generate_groups(space, start, stop)
        for group in groups:
            index = np.arange(group.start, group.start + group.size)
            group.x[index % 3 == 0, 0, :] = 0
            scale = (10.0 ** (index % 39)).astype(np.float32)
            group.x[index % 3 != 0] *= scale[index % 3 != 0, None, None]
        return groups

    monkeypatch.setattr(sw, "generate_groups", generate_at_the_edges)
    return SweepSpace(seed=5, dtype="float32", activations=("relu", "identity", "leaky_relu"), biases=False)


@pytest.mark.parametrize("networks", NETWORKS)
def test_the_lazy_bounds_give_the_verdict_of_the_full_bounds_everywhere(networks):
    report = assert_lazy_sweep_matches_full(_space(), networks, 512)

    assert sum(b.failures for b in report.backends) > 0, "the sweep must include failing networks"
    assert sum(report.coverage.to_json()["excluded"].values()) > 0, "and excluded ones"


def test_the_lazy_bounds_give_the_verdict_of_the_full_bounds_at_the_edges(edges):
    report = assert_lazy_sweep_matches_full(edges, 3000, 512, planted=False)

    excluded = report.coverage.to_json()["excluded"]
    assert excluded["kink"] > 500, excluded
    assert excluded["beyond range"] > 500, excluded


def test_the_identity_check_fails_for_a_lower_bound_above_the_full_bound(monkeypatch):
    real = sweep_bounds.lower_bounds
    monkeypatch.setattr(sw, "lower_bounds", lambda *args: [1e7 * c for c in real(*args)])  # 10^7 times too large

    with pytest.raises(AssertionError, match="differs"):
        assert_lazy_sweep_matches_full(_space(), 1500, 512)


def test_the_identity_check_fails_for_a_majorant_that_decides_every_network(edges, monkeypatch):
    monkeypatch.setattr(sw, "majorant_decides", lambda stack, *args: np.ones(stack.count, bool))

    with pytest.raises(AssertionError, match="differ"):
        assert_lazy_sweep_matches_full(edges, 3000, 512, planted=False)


def test_a_replayed_evaluation_must_be_of_the_same_networks():
    (group,) = generate_groups(SweepSpace(seed=3, widths=(3, 4, 1), activations="tanh", dtype="float64"), 0, 8)
    replayed = _Replayed(backends.load(str(FAULTS / PLANTED[0])))
    replayed.evaluate(group.stack, group.x, group.y, None)
    replayed.replaying = True

    with pytest.raises(AssertionError, match="other networks"):
        replayed.evaluate(group.stack, group.x + 1, group.y, None)


def _reference_passes(space: SweepSpace, count: int):
    """The first ``count`` networks of ``space``, as groups with their float64 reference pass, as the sweep
    computes it: ``(group, x64, y64, out, cache, gradients, trace)``."""
    for group in sw.generate_groups(space, 0, count):  # sw's: the edges fixture patches it
        wide = group.stack.astype(np.float64)
        x64, y64 = group.x.astype(np.float64), group.y.astype(np.float64)
        with np.errstate(all="ignore"):
            out, cache = forward_batched(wide, x64)
            grads, trace = backward_batched_traced(wide, cache, out - y64)
        yield group, x64, y64, out, cache, grads, trace


def _groups(count: int):
    """The first ``count`` networks of the default space, with their reference pass and their full bounds."""
    for group, x64, _, out, cache, _, trace in _reference_passes(_space(), count):
        with np.errstate(all="ignore"):
            bounds = gradient_bounds_batched(group.stack, group.x, group.y, forward64=(out, cache), backward64=trace)
        yield group, x64, out, cache, trace, bounds


def assert_lower_bounds_within_full_bounds(lower_bounds, count: int) -> None:
    """Raise AssertionError naming the first group and quantity where ``lower_bounds`` exceeds the full bound."""
    for group, _, out, cache, trace, bounds in _groups(count):
        with np.errstate(all="ignore"):
            lower = lower_bounds(group.stack, out, cache, trace)
        for name, c, b in zip(sw.quantity_names(group.spec), lower, sw._quantities(bounds), strict=True):
            finite = np.isfinite(b)
            assert (c[finite] <= b[finite]).all(), (group.spec.label(), name)


def test_the_lower_bounds_never_exceed_the_full_bounds():
    assert_lower_bounds_within_full_bounds(sweep_bounds.lower_bounds, 16000)


def test_the_bound_check_fails_for_lower_bounds_ten_parts_per_million_too_large():
    # somewhere the lower bound is the full bound's own leading term: within 1 - 2^-20 of it
    too_large = lambda *args: [(1 + 1e-5) * c for c in sweep_bounds.lower_bounds(*args)]

    with pytest.raises(AssertionError):
        assert_lower_bounds_within_full_bounds(too_large, 16000)


def test_a_network_the_majorant_decides_is_neither_beyond_range_by_its_bound_nor_at_a_kink():
    decided_somewhere = undecided_somewhere = False
    for group, x64, out, cache, trace, bounds in _groups(16000):
        decided = sweep_bounds.majorant_decides(group.stack, x64, out, cache, trace)
        kink = np.zeros(group.size, bool)
        for mask in (*bounds.ambiguous, *bounds.exact_kinks):
            kink |= mask.reshape(group.size, -1).any(axis=1)
        assert not (decided & (kink | sw.bounds_beyond_range(group.spec.dtype, bounds))).any(), group.spec.label()
        decided_somewhere |= decided.any()
        undecided_somewhere |= (~decided & (kink | sw.bounds_beyond_range(group.spec.dtype, bounds))).any()
    assert decided_somewhere
    assert undecided_somewhere


def _values_beyond_range_where_decided(space: SweepSpace, count: int) -> tuple[int, int]:
    """Return (networks the majorant decides, networks whose values ``beyond_range`` excludes) over ``count``
    networks of ``space``; raise AssertionError naming the signature if some network is both."""
    decided_count = beyond_count = 0
    for group, x64, y64, out, cache, grads, trace in _reference_passes(space, count):
        with np.errstate(all="ignore"):
            baseline = sw.Evaluation(loss_batched(out, y64), grads.weights, grads.biases, grads.x)
            decided = sweep_bounds.majorant_decides(group.stack, x64, out, cache, trace)
            beyond = sw.beyond_range(group.spec.dtype, out, cache, trace, baseline)
        assert not (decided & beyond).any(), group.spec.label()
        decided_count, beyond_count = decided_count + int(decided.sum()), beyond_count + int(beyond.sum())
    return decided_count, beyond_count


def test_a_network_the_majorant_decides_has_every_reference_value_in_range(edges):
    # A chunk the majorant decides skips beyond_range's tests of the values: they must pass there.
    for space, count in ((_space(), 16000), (edges, 3000)):
        decided, beyond = _values_beyond_range_where_decided(space, count)
        assert decided > 0
    assert beyond > 500  # the edges: values beyond float32's range


def test_the_value_check_fails_for_a_majorant_below_the_values(edges, monkeypatch):
    # A majorant capped below the range limit decides every network, the edges' too.
    def capped(stack, x64, out, trace, per_network):
        largest, ez = majorants(stack, x64, out, trace, per_network)
        return np.minimum(largest, 1e-3 * np.finfo(stack.dtype).max * np.finfo(stack.dtype).eps), ez

    majorants = sweep_bounds._majorants
    monkeypatch.setattr(sweep_bounds, "_majorants", capped)
    with pytest.raises(AssertionError):
        _values_beyond_range_where_decided(edges, 3000)


def test_full_bounds_of_some_networks_are_theirs_bit_for_bit():
    group, _, out, cache, trace, bounds = next(_groups(512))
    where = np.arange(1, group.size, 3)
    full = sw._FullBounds(group.stack, group.x, group.y, out, cache, trace)
    for part in (where[::2], where):  # computed in two calls, then joined
        taken = full.take(part)
        for mine, whole in zip(sw._quantities(taken), sw._quantities(bounds), strict=True):
            np.testing.assert_array_equal(mine, whole[part])
