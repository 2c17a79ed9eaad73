"""Claims about ``mlp-crosscheck sweep`` (mlp_crosscheck/commands/sweep.py) and about bounded JAX compilation.

Sweeps here are a few hundred networks in small chunks, so that several chunks, a padded last chunk and a
generation-block boundary are all exercised. Nothing here measures or asserts speed.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from mlp_crosscheck.properties.assertions import assert_gradients_within_bounds
from mlp_crosscheck.properties.tolerances import BatchedBounds, gradient_bounds
from mlp_crosscheck.reference import network
from sweep_helpers import run_sweep, threads_given_back  # noqa: F401 (an autouse fixture)

from mlp_crosscheck import backends
from mlp_crosscheck.commands import sweep as sw

FAULTS = Path(__file__).parent / "faults"
CORRECT_IMPL = FAULTS / "correct_fault_skeleton.py"
PLANTED_IMPL = FAULTS / "faulty_first_layer_gradient_off_by_a_part_per_million.py"
SIGN_IMPL = FAULTS / "faulty_gradient_sign.py"  # every gradient wrong in every network
# The options that narrow the space to the one signature every sweep checked before it drew a space.
TODAYS = ("--arch", "3,4,10,1", "--activation", "tanh", "--dtype", "float64")

BACKENDS = [
    pytest.param(name, id=name, marks=[pytest.mark.skip(reason=backends.missing_reason(name))])
    if backends.missing_reason(name)
    else pytest.param(name, id=name)
    for name in backends.BUILTINS
]


def sweep_backend(name: str, spec: sw.SweepSpec, networks: int = 300, chunk: int = 128) -> sw.SweepReport:
    return sw.sweep(spec, networks, sw.make_evaluators([name], [], min(chunk, networks)), chunk=chunk, sample_every=1)


# -- every backend passes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "spec",
    [
        sw.SweepSpec(),
        sw.SweepSpec(dtype="float32", activations=("gelu",), seed=3),
        sw.SweepSpec(widths=(5, 7, 2), activations=("sigmoid", "softplus"), biases=False, batch=9, seed=11),
        sw.SweepSpec(widths=(2, 3, 3, 3, 1), activations=("elu",), seed=5),
    ],
    ids=["default", "float32-gelu", "5-7-2-nobias-batch9", "deep-elu"],
)
def test_sweep_of_a_correct_backend_finds_no_failure(backend, spec):
    report = sweep_backend(backend, spec)

    (result,) = report.backends
    assert result.skipped is None
    assert result.failures == 0
    assert report.failures == []
    assert result.checked + result.excluded == 300
    for quantity, stats in result.stats.items():
        assert 0 <= stats.max <= 1, quantity
        assert stats.sampled == result.checked  # sample_every=1: every network counted
    assert report.ok


def test_the_default_sampling_keeps_enough_networks_and_is_coarse_only_for_large_sweeps():
    sizes = (1, 4095, 4096, 20_000, 131_072, 10**7)
    assert [sw.default_sample_every(n) for n in sizes] == [1, 1, 2, 9, 64, 64]
    for n in range(2 * sw.SAMPLED_AT_LEAST, 300_000, 997):
        assert n // sw.default_sample_every(n) >= sw.SAMPLED_AT_LEAST


def test_the_sampling_rate_is_printed_as_an_ordinal():
    # The default rate is any K up to 64 now, not only the 8 of old: "every 2th network" read wrong.
    names = [sw.ordinal(k) for k in (1, 2, 3, 4, 8, 11, 12, 13, 21, 22, 23, 64, 111, 112)]
    assert names == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "8th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "23rd",
        "64th",
        "111th",
        "112th",
    ]


def test_sweep_command_checks_every_backend_and_exits_zero(tmp_path):
    path = tmp_path / "sweep.json"

    code, printed, progress = run_sweep("--networks", "300", "--chunk", "128", "--json", path)

    assert code == 0, printed
    assert "no failures" in printed
    assert "sweep: 100%" in progress
    assert "300/300" in progress
    report = json.loads(path.read_text())
    assert report["networks"] == 300
    for name in backends.available():
        assert report["backends"][name]["checked"] == 300
        assert report["backends"][name]["ratios"]["dL/dW_1"]["max"] <= 1


def test_a_correct_impl_passes_the_sweep():
    code, printed, _ = run_sweep("--networks", "200", "--backends", "numpy", "--impl", CORRECT_IMPL, "--quiet")

    assert code == 0, printed
    assert "correct_fault_skeleton" in printed


# -- reproducibility ---------------------------------------------------------------------------------------


def test_same_seed_gives_identical_networks_and_results():
    spec = sw.SweepSpec(seed=123, dtype="float32")  # float32: the numpy backend's ratios are not all 0

    first, second = sweep_backend("numpy", spec), sweep_backend("numpy", spec)

    a, b = sw.generate(spec, 0, 300), sw.generate(spec, 0, 300)
    for u, v in zip([*a[0].weights, *a[0].biases, a[1], a[2]], [*b[0].weights, *b[0].biases, b[1], b[2]], strict=True):
        np.testing.assert_array_equal(u, v)
    results = [_results(report.to_json()["backends"]["numpy"]) for report in (first, second)]
    assert results[0] == results[1]
    assert max(r["max"] for r in results[0]["ratios"].values()) > 0


def _results(backend: dict) -> dict:
    """The parts of a backend's report that depend on the networks, not on the clock."""
    return {k: v for k, v in backend.items() if not k.endswith(("seconds", "_alone"))}


def test_another_seed_gives_other_networks():
    a = sw.generate(sw.SweepSpec(seed=1), 0, 10)[0].weights[0]
    b = sw.generate(sw.SweepSpec(seed=2), 0, 10)[0].weights[0]
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(("start", "stop"), [(0, 1), (1000, 1100), (1020, 1030), (5, 3000)])
def test_networks_do_not_depend_on_how_the_range_is_cut(start, stop):
    spec = sw.SweepSpec(seed=9, dtype="float32")
    whole, x, y = sw.generate(spec, 0, 3000)

    part, px, py = sw.generate(spec, start, stop)

    for u, v in zip([*whole.weights, *whole.biases, x, y], [*part.weights, *part.biases, px, py], strict=True):
        np.testing.assert_array_equal(u[start:stop], v)


@pytest.mark.parametrize("index", [0, 7, 1023, 1024, 2500])
def test_rebuild_gives_the_network_the_sweep_checked(index):
    spec = sw.SweepSpec(seed=42, widths=(4, 6, 2), activations=("tanh", "identity"), batch=3)
    stack, x, y = sw.generate(spec, 0, 2600)

    case = sw.rebuild(42, index, widths=(4, 6, 2), activations=("tanh", "identity"), dtype="float64", batch=3)

    expected = stack.network(index)
    assert case.net.activations == expected.activations
    for u, v in zip([*case.net.weights, *case.net.biases], [*expected.weights, *expected.biases], strict=True):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(case.x, x[index])
    np.testing.assert_array_equal(case.y, y[index])


def test_generated_values_follow_the_documented_distribution():
    spec = sw.SweepSpec(seed=0, widths=(3, 4, 10, 1))
    stack, x, _ = sw.generate(spec, 0, 4096)

    for w in stack.weights:
        limit = np.sqrt(3.0 / w.shape[1])  # a = sqrt(3 / fan_in): variance 1 / fan_in
        assert np.abs(w).max() <= limit
        assert abs(w.var() * w.shape[1] - 1) < 0.05
    assert np.abs(x).max() <= np.sqrt(3.0)
    assert abs(x.var() - 1) < 0.05


# -- failures are found and reported with what rebuilds them ------------------------------------------------


def test_planted_bug_is_reported_with_seed_and_index_and_exit_code_one(tmp_path):
    path = tmp_path / "sweep.json"

    code, printed, _ = run_sweep(
        "--networks", "150", "--chunk", "64", "--backends", "numpy", "--impl", PLANTED_IMPL, "--seed", "5",
        *TODAYS, "--quiet", "--json", path,
    )  # fmt: skip

    assert code == 1
    assert "FAILURES" in printed
    report = json.loads(path.read_text())
    worst = report["failures"][0]["index"]  # the worst failure is printed first, with its rebuild call
    assert f"mlp_crosscheck.commands.sweep.rebuild(seed=5, index={worst}," in printed
    assert "dL/dW_1" in printed
    assert "exceed the rounding-error bound" in printed
    planted = report["backends"]["faulty_first_layer_gradient_off_by_a_part_per_million"]
    assert planted["failures"] >= 140  # a 1e-6 relative error is caught in (nearly) every network
    assert report["backends"]["numpy"]["failures"] == 0
    failing = report["failing_indices"]["faulty_first_layer_gradient_off_by_a_part_per_million"]
    assert failing == sorted(failing)
    assert set(failing) <= set(range(150))


def test_a_reported_failure_rebuilds_into_a_failing_network():
    impl = backends.load(str(PLANTED_IMPL))
    spec = sw.SweepSpec(seed=5)
    report = sw.sweep(spec, 40, sw.make_evaluators([], [impl], 40), chunk=40)
    index = report.failures[0].index

    case = sw.rebuild(5, index, widths=(3, 4, 10, 1), activations=("tanh",), dtype="float64")

    loss, expected = network.loss_and_gradients(case.net, case.x, case.y)
    bounds = gradient_bounds(case.net, case.x, case.y).agree()
    with pytest.raises(AssertionError, match="dL/dW_1"):
        assert_gradients_within_bounds(
            impl.loss_and_gradients(case.net, case.x, case.y), _result(loss, expected), bounds
        )


def test_a_faulty_impl_prints_a_bounded_summary_and_the_json_holds_every_failure(tmp_path):
    path = tmp_path / "sweep.json"

    code, printed, _ = run_sweep(
        "--networks", "1500", "--chunk", "512", "--backends", "numpy", "--impl", SIGN_IMPL, *TODAYS, "--quiet",
        "--json", path,
    )  # fmt: skip

    assert code == 1
    assert len(printed.splitlines()) < 60  # the old listing printed ~1,100 lines for this
    assert "FAILURES: 1,500 failing networks (faulty_gradient_sign 1,500 of 1,500 checked)" in printed
    assert "per quantity over the bound: dL/dW_1 1,500, dL/dW_2 1,500, dL/dW_3 1,500, dL/db_1 1,500" in printed
    assert "per architecture, activations, dtype: 3-4-10-1 tanh float64 1,500" in printed
    rest = "with its ratio per quantity, signature and regime, and the worst ones' messages"
    assert f"1,495 more than shown), {rest}: in {path}" in printed
    report = json.loads(path.read_text())
    indices = report["failing_indices"]["faulty_gradient_sign"]
    ratios = report["failing_ratios"]["faulty_gradient_sign"]
    assert indices == list(range(1500))
    assert set(ratios) == set(sw.quantity_names(sw.SweepSpec()))
    assert all(len(column) == 1500 for column in ratios.values())
    assert ratios["loss"] == [None] * 1500  # the loss is right: only the gradients' sign is flipped
    assert all(r > 1 for q, column in ratios.items() if q != "loss" for r in column)
    # The printed ones are the five worst of the whole table, worst first, each with the call that rebuilds it.
    worst = sorted(range(1500), key=lambda i: (-max(r for r in (c[i] for c in ratios.values()) if r), i))[:5]
    assert [f["index"] for f in report["failures"]] == [indices[i] for i in worst]
    for i in worst:
        assert f"mlp_crosscheck.commands.sweep.rebuild(seed=7, index={indices[i]}," in printed


def test_contract_errors_are_counted_apart_and_kept_with_their_messages(tmp_path):
    impl = tmp_path / "returns_nothing.py"
    impl.write_text(
        CORRECT_IMPL.read_text()
        + "\nNAME = 'returns_nothing'\ndel loss_and_input_gradients\n\n"
        + "def loss_and_gradients(weights, biases, activations, x, y):\n    return None\n"
    )
    path = tmp_path / "sweep.json"

    code, printed, _ = run_sweep("--networks", "30", "--backends", "numpy", "--impl", impl, "--quiet", "--json", path)

    assert code == 1
    assert "per quantity over the bound: none; contract errors (no values to compare): 30" in printed
    assert "returns_nothing.loss_and_gradients must return a 3-tuple" in printed
    report = json.loads(path.read_text())
    assert len(report["contract_errors"]["returns_nothing"]) == 30
    assert all(r is None for column in report["failing_ratios"]["returns_nothing"].values() for r in column)


def test_failures_are_summarised_even_when_none_is_shown():
    code, printed, _ = run_sweep(
        "--networks", "100", "--backends", "numpy", "--impl", SIGN_IMPL, "--show-failures", "0", "--quiet"
    )

    assert code == 1
    assert "FAILURES: 100 failing networks" in printed
    assert "rebuild(" not in printed
    assert "no failures" not in printed
    assert "rerun with --json PATH" in printed


def _result(loss, g):
    return type("Result", (), {"loss": loss, "weights": g.weights, "biases": g.biases, "x": None})()


def test_an_impl_that_cannot_run_the_sweep_is_refused_before_any_network():
    impl = backends.load(str(PLANTED_IMPL))  # its ACTIVATIONS: identity, tanh

    with pytest.raises(sw.CannotRun, match=r"does not implement relu \(its ACTIVATIONS: identity, tanh\)"):
        sw.sweep(sw.SweepSpec(activations=("relu",)), 10, sw.make_evaluators([], [impl], 10))


def _narrowed_impl(tmp_path: Path, name: str, declaration: str) -> Path:
    """Write the correct skeleton under ``name`` with one more declaration (DTYPES or ACTIVATIONS)."""
    path = tmp_path / f"{name}.py"
    path.write_text(CORRECT_IMPL.read_text() + f"\nNAME = {name!r}\n{declaration}\n")
    return path


def test_a_float32_only_impl_skips_the_drawn_float64_networks_and_says_so(tmp_path):
    impl = _narrowed_impl(tmp_path, "float32_only", "DTYPES = ('float32',)")
    path = tmp_path / "sweep.json"

    code, printed, _ = run_sweep("--networks", "2000", "--backends", "numpy", "--impl", impl, "--quiet", "--json", path)

    assert code == 0, printed
    report = json.loads(path.read_text())
    numpy, narrowed = report["backends"]["numpy"], report["backends"]["float32_only"]
    skipped = narrowed["skipped_networks"]["float32 only: float64 networks skipped for it"]
    assert f"float32_only: float32 only: float64 networks skipped for it ({skipped:,})" in printed
    assert 0 < narrowed["checked"] < numpy["checked"]
    assert narrowed["checked"] + narrowed["excluded"] + skipped == 2000
    assert numpy["skipped_networks"] == {}


def test_a_float32_only_impl_asked_for_float64_is_an_error_not_no_failures(tmp_path):
    impl = _narrowed_impl(tmp_path, "float32_only", "DTYPES = ('float32',)")

    code, printed, err = run_sweep("--networks", "50", "--backends", "numpy", "--impl", impl, "--dtype", "float64")

    assert code == 4
    assert "no failures" not in printed
    assert "float32_only cannot run this sweep" in err
    assert "does not support float64 (its DTYPES: float32)" in err
    assert "--dtype float32" in err
    narrowed, printed, _ = run_sweep("--networks", "50", "--backends", "numpy", "--impl", impl, "--dtype", "float32")
    assert narrowed == 0, printed
    assert "float32_only" in printed


def test_an_impl_that_could_run_none_of_the_drawn_networks_fails_the_run(tmp_path):
    impl = _narrowed_impl(tmp_path, "tanh_only", "ACTIVATIONS = ('tanh',)")  # no drawn block here is tanh only

    code, printed, _ = run_sweep("--networks", "300", "--backends", "numpy", "--impl", impl, "--quiet")

    assert code == 4
    assert "NOTHING CHECKED by tanh_only: it could run none of the networks drawn (300 skipped" in printed
    assert "tanh only: networks using identity, sigmoid, relu" in printed
    assert "no failures" not in printed


def test_an_impl_whose_activations_exclude_the_asked_one_is_an_error(tmp_path):
    impl = _narrowed_impl(tmp_path, "smooth_only", "ACTIVATIONS = ('tanh', 'sigmoid')")

    code, printed, err = run_sweep(
        "--networks", "50", "--backends", "numpy", "--impl", impl, "--activation", "relu,tanh,identity", "--quiet"
    )

    assert code == 4
    assert "no failures" not in printed
    assert "smooth_only cannot run this sweep" in err
    assert "does not implement relu, identity (its ACTIVATIONS: tanh, sigmoid)" in err
    assert "--activation" in err


def test_a_named_backend_that_is_not_installed_is_an_error_and_an_unnamed_one_is_skipped(monkeypatch):
    missing_reason = backends.missing_reason
    absent = {"torch": "torch is not installed", "jax": "jax is not installed"}
    monkeypatch.setattr(backends, "missing_reason", lambda name: absent.get(name) or missing_reason(name))

    code, printed, err = run_sweep("--networks", "50", "--backends", "numpy,jax", "--quiet")

    assert code == 4
    assert "no failures" not in printed
    assert "jax cannot run: jax is not installed; leave it out of --backends" in err
    code, printed, _ = run_sweep("--networks", "50", "--quiet")  # every built-in: the missing ones skipped
    assert code == 0, printed
    assert "skipped: jax is not installed" in printed


def test_a_backend_that_compared_no_network_fails_the_run(monkeypatch):
    # Every network's first input row zeroed, without biases: each has pre-activations exactly on leaky_relu's
    # kink, so every network is excluded and the backend checks nothing.
    generate_groups = sw.generate_groups

    def generate_on_the_kink(space, start, stop):
        groups = generate_groups(space, start, stop)
        for group in groups:
            group.x[:, 0, :] = 0
        return groups

    monkeypatch.setattr(sw, "generate_groups", generate_on_the_kink)

    code, printed, _ = run_sweep(
        "--networks", "50", "--backends", "numpy", "--activation", "leaky_relu", "--no-biases", "--quiet"
    )

    assert code == 4
    assert "NOTHING CHECKED by numpy: all 50 of its networks were excluded" in printed
    assert "no failures" not in printed


@pytest.mark.parametrize("backend", BACKENDS)
def test_networks_on_a_kink_are_excluded_and_counted_not_failed(backend, monkeypatch):
    # Zero the first input row of every other network: without biases, each of its pre-activations is then
    # exactly 0 with a zero error bound, where the frameworks' leaky_relu'(0) conventions differ (jax: 1).
    generate_groups = sw.generate_groups

    def generate_with_zero_rows(space, start, stop):
        groups = generate_groups(space, start, stop)
        for group in groups:
            group.x[(group.start % 2) :: 2, 0, :] = 0
        return groups

    monkeypatch.setattr(sw, "generate_groups", generate_with_zero_rows)
    spec = sw.SweepSpec(activations=("leaky_relu",), biases=False, seed=4)

    report = sweep_backend(backend, spec, networks=300, chunk=128)

    (result,) = report.backends
    assert result.excluded == 150
    assert result.checked == 150
    assert result.failures == 0


def test_a_missing_impl_file_is_a_usage_error():
    code, _, err = run_sweep("--networks", "10", "--impl", "no/such/file.py")
    assert code == 2
    assert "no such file" in err


# -- threads: the fast setting by default, and the report says which was used ----------------------------------


@pytest.fixture
def torch_module():
    if backends.missing_reason("torch"):
        pytest.skip(backends.missing_reason("torch"))
    return importlib.import_module("torch")


def test_by_default_torch_runs_on_one_thread_and_the_report_says_so(torch_module):
    torch_module.set_num_threads(2)

    code, printed, _ = run_sweep("--networks", "50", "--backends", "torch", "--quiet")

    assert code == 0, printed
    assert torch_module.get_num_threads() == 1
    assert "threads: --threads 1 (the default): 1 intra-op thread for torch, so their CPU seconds" in printed


def test_threads_zero_leaves_the_frameworks_their_own_choice(torch_module):
    torch_module.set_num_threads(2)

    code, printed, _ = run_sweep("--networks", "50", "--backends", "torch", "--threads", "0", "--quiet")

    assert code == 0, printed
    assert torch_module.get_num_threads() == 2
    assert "threads: --threads 0: the frameworks' own choice" in printed


def test_the_threads_line_never_claims_a_limit_that_did_not_take_effect(jax_backend):
    # jax is imported (the autouse fixture): XLA has read its threads already and keeps them.
    assert sw.apply_threads(["jax"], 1) == (
        "--threads 1 (the default): jax its own choice (imported before the sweep could limit it)"
    )
    assert sw.apply_threads(["jax"], 2) == "--threads 2: jax its own choice (it can be limited to 1 only)"
    assert sw.apply_threads(["numpy"], 1).endswith(
        "nothing to set (no backend in this sweep has an intra-op thread setting)"
    )


# -- the comparison itself: should-pass / should-fail pairs --------------------------------------------------


def _evaluation(value: float, n: int = 3) -> sw.Evaluation:
    return sw.Evaluation(np.full(n, value), (np.full((n, 2, 2), value),), None, np.full((n, 1, 2), value))


def _bounds(pair_bound: float, n: int = 3) -> BatchedBounds:
    """One implementation's bounds whose pair bound (``agree()``) is ``pair_bound`` everywhere."""
    v = pair_bound / 2
    no_kinks = (np.zeros((n, 1, 2), bool),)
    return BatchedBounds(
        np.full((n, 1, 2), v), np.full(n, v), (np.full((n, 2, 2), v),), None, np.full((n, 1, 2), v), no_kinks, no_kinks
    )


def _compare(actual: sw.Evaluation, expected: sw.Evaluation, bounds: BatchedBounds) -> sw.Comparison:
    spec = sw.SweepSpec(widths=(2, 2), activations=("tanh",), biases=False)
    excluded = np.zeros(len(expected.loss), bool)
    return sw.compare(spec, actual, expected, bounds, sw.inverse_bounds(bounds, excluded))


def test_compare_passes_differences_within_the_bound():
    comparison = _compare(_evaluation(1.0 + 1e-10), _evaluation(1.0), _bounds(2e-10))
    assert len(comparison.failed) == 0
    assert comparison.worst["loss"][0] == pytest.approx(0.5, rel=1e-5)


def test_compare_fails_differences_over_the_bound():
    actual = _evaluation(1.0)
    actual.weights[0][1, 0, 1] += 1e-9
    comparison = _compare(actual, _evaluation(1.0), _bounds(1e-10))
    assert comparison.failed.tolist() == [1]
    assert comparison.worst["dL/dW_1"] == (pytest.approx(10.0, rel=1e-5), 1)


def test_compare_passes_exact_equality_under_a_zero_bound():
    comparison = _compare(_evaluation(0.0), _evaluation(0.0), _bounds(0.0))  # 0 * (1/0) is NaN: no failure
    assert len(comparison.failed) == 0
    assert comparison.worst["loss"][0] == 0


def test_compare_fails_any_difference_under_a_zero_bound():
    actual = _evaluation(0.0)
    actual.x[2, 0, 0] = 5e-324
    comparison = _compare(actual, _evaluation(0.0), _bounds(0.0))
    assert comparison.failed.tolist() == [2]


def test_compare_fails_nan_where_the_reference_is_finite():
    actual = _evaluation(1.0)
    actual.loss[0] = np.nan
    comparison = _compare(actual, _evaluation(1.0), _bounds(1.0))
    assert comparison.failed.tolist() == [0]


def test_compare_passes_equal_infinities():
    actual, expected = _evaluation(1.0), _evaluation(1.0)
    actual.loss[1] = expected.loss[1] = np.inf
    assert len(_compare(actual, expected, _bounds(1.0)).failed) == 0


def test_ratio_quantiles_bound_the_exact_quantiles_within_one_bin():
    ratios = np.random.default_rng(0).lognormal(mean=-8, sigma=2, size=10_000)
    stats = sw.RatioStats()
    stats.add(ratios)

    for q in (0.5, 0.99):
        exact = np.quantile(ratios, q, method="inverted_cdf")
        assert exact <= stats.quantile(q) <= exact * 10 ** (1 / stats.PER_DECADE)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_reports_networks_and_rate_on_a_terminal_and_in_a_log():
    terminal, log, quiet = Terminal(), io.StringIO(), io.StringIO()
    for stream in (terminal, log):
        progress = sw.progress_bar(1000, stream=stream)
        progress.update(400)
        progress.update(600)
        progress.close()
        assert "1000/1000" in stream.getvalue()
        assert "networks/s" in stream.getvalue()
    sw.progress_bar(1000, enabled=False, stream=quiet).close()
    assert quiet.getvalue() == ""


# -- JAX compiles a bounded number of times ----------------------------------------------------------------


@pytest.fixture
def jax_backend():
    if backends.missing_reason("jax"):
        pytest.skip(backends.missing_reason("jax"))
    from mlp_crosscheck.backends import jax_backend

    return jax_backend


def test_sweep_compiles_jax_once_for_every_chunk_including_the_padded_last(jax_backend):
    spec = sw.SweepSpec(widths=(3, 5, 2), activations=("silu", "tanh"), seed=1)  # a signature no other test uses
    before = jax_backend.BATCHED_COMPILATIONS.copy()

    sweep_backend("jax", spec, networks=300, chunk=64)  # 5 chunks, the last 44 networks padded to 64
    sweep_backend("jax", spec, networks=300, chunk=64)  # a second sweep in the same process

    gained = jax_backend.BATCHED_COMPILATIONS - before
    assert sum(gained.values()) <= 2  # one per sweep (each sweep builds its own evaluator), not per chunk
    assert len(gained) == 1


def test_jax_backend_compiles_once_for_every_architecture_and_batch_in_one_bucket(jax_backend):
    rng = np.random.default_rng(0)
    before = sum(jax_backend.COMPILATIONS.values())
    impl = backends.builtin("jax")

    for _ in range(25):  # depth 3, every width and batch within the first bucket (<= 16)
        widths = tuple(int(n) for n in rng.integers(1, 17, size=4))
        batch = int(rng.integers(1, 17))
        net = network.Network(
            tuple(rng.standard_normal((a, b)) for a, b in itertools.pairwise(widths)),
            tuple(rng.standard_normal(b) for b in widths[1:]),
            ("softplus", "softplus", "identity"),
        )
        impl.loss_and_gradients(net, rng.standard_normal((batch, widths[0])), rng.standard_normal((batch, widths[-1])))

    assert sum(jax_backend.COMPILATIONS.values()) - before <= 1


def test_jax_backend_compilations_grow_with_buckets_not_with_shapes(jax_backend):
    rng = np.random.default_rng(1)
    before = sum(jax_backend.COMPILATIONS.values())
    impl = backends.builtin("jax")

    batches = range(1, 101)  # 100 batch sizes -> buckets 16 and 128
    for batch in batches:
        net = network.Network((rng.standard_normal((3, 4)), rng.standard_normal((4, 1))), None, ("elu", "elu"))
        impl.loss_and_gradients(net, rng.standard_normal((batch, 3)), rng.standard_normal((batch, 1)))

    assert sum(jax_backend.COMPILATIONS.values()) - before <= 2


def test_jax_backend_compiles_once_per_width_bucket_not_per_layer_widths(jax_backend):
    # Depth 6, widths anywhere in 17..64: every layer is padded to the widest one's bucket (128 here).
    rng = np.random.default_rng(2)
    before = sum(jax_backend.COMPILATIONS.values())
    impl = backends.builtin("jax")
    for _ in range(10):
        widths = (*(int(n) for n in rng.integers(17, 64, size=6)), 64)
        net = network.Network(
            tuple(rng.standard_normal((a, b)) for a, b in itertools.pairwise(widths)), None, ("tanh",) * 6
        )
        impl.loss_and_gradients(net, rng.standard_normal((20, widths[0])), rng.standard_normal((20, widths[-1])))

    assert sum(jax_backend.COMPILATIONS.values()) - before <= 1
