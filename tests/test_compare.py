"""``mlp-crosscheck compare A B``: what it calls a regression, what it only reports, and its usage errors.

Two ``check --report`` runs of the same inputs (ci profile, in fresh processes, the observers stubbed as in
test_report.py) are the baseline; every planted difference is an edit of a copy of one of them.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from user_shell import user_environment

from mlp_crosscheck.cli import main
from mlp_crosscheck.commands import compare

REPO = Path(__file__).resolve().parent.parent
TUTORIAL = REPO / "examples" / "tutorial_mlp.py"
# Run before the command (as in test_report.py): the measurements of behaviours and accuracy, stubbed.
FAKE_OBSERVERS = """
import sys, types
fake = types.ModuleType("fake_observers")
fake.behaviours = lambda impl: {"kink_derivatives": {"relu": 0.0, "leaky_relu": 0.01}, "flushes_subnormals": False,
                                "subnormal_inputs": "kept", "accuracy": {"float32": {"elu": {"derivative": {}}}}}
fake.table = lambda impl: [
    {"dtype": "float32", "activation": "elu", "quantity": q, "worst_ulps": ulps, "worst_at": -1e-10, "got": -1e-10,
     "exact": -1e-10, "within_model": True, "inaccurate_points": 0, "points": 52}
    for q, ulps in (("value", 2.5), ("derivative", 1.0))
]
sys.modules["fake_observers"] = fake
from mlp_crosscheck.commands import report
report.OBSERVERS = {"behaviours": ("fake_observers", "behaviours"), "accuracy": ("fake_observers", "table")}
from mlp_crosscheck.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two check --report runs of the same implementation, selection and profile, in separate processes."""
    outs = []
    for name in ("a", "b"):
        cwd = tmp_path_factory.mktemp(f"run-{name}")
        proc = subprocess.run(
            [sys.executable, "-c", FAKE_OBSERVERS, "check", TUTORIAL, "--backends", "numpy", "--profile", "ci",
             "-k", "tanh and forward_matches_reference and float64", "--report", "out"],
            cwd=cwd, env=user_environment(), capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        outs.append(cwd / "out" / "report.json")
    return outs[0], outs[1]


@pytest.fixture
def baseline(two_runs) -> dict:
    return json.loads(two_runs[0].read_text())


def run_compare(*args) -> tuple[int, str, str]:
    """Run ``mlp-crosscheck compare ARGS``; return its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["compare", *args])
    return code, out.getvalue(), err.getvalue()


def planted(tmp_path: Path, report: dict, name: str = "planted") -> Path:
    path = tmp_path / name / "report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report))
    return path


# -- nothing changed ------------------------------------------------------------------------------------------


def test_two_reports_from_the_same_inputs_compare_equal_and_exit_0(two_runs) -> None:
    code, out, _ = run_compare(*two_runs)
    assert code == 0, out
    assert "compared: claims, behaviours, accuracy, worst ratios, seed experiment" in out
    assert "claims: new failures 0, fixed 0, still failing 0 (2 tests in both reports)" in out
    assert "numpy         costs bitwise equal; outputs bitwise equal; K bitwise equal" in out
    assert "environment: the same" in out
    assert out.rstrip().endswith("nothing regressed")


def test_directories_holding_a_report_are_accepted(two_runs) -> None:
    code, out, _ = run_compare(two_runs[0].parent, two_runs[1].parent)
    assert code == 0
    assert f"A: {two_runs[0]}" in out


# -- regressions ----------------------------------------------------------------------------------------------


def test_a_changed_convention_exits_1_and_names_it(tmp_path, two_runs, baseline) -> None:
    baseline["behaviours"]["tutorial_mlp"]["kink_derivatives"]["relu"] = 1.0
    code, out, _ = run_compare(two_runs[0], planted(tmp_path, baseline))
    assert code == 1
    assert "  - behaviour changed: tutorial_mlp kink_derivatives.relu: 0.0 -> 1.0" in out


def test_a_new_inaccurate_point_is_a_changed_behaviour(tmp_path, two_runs, baseline) -> None:
    baseline["behaviours"]["numpy"]["accuracy"]["float32"]["elu"]["derivative"] = {"-40.0": "outside_model"}
    code, out, _ = run_compare(two_runs[0], planted(tmp_path, baseline))
    assert code == 1
    assert "  - behaviour added: numpy accuracy.float32.elu.derivative.-40.0 = 'outside_model' (not in A)" in out


def test_a_changed_seed_experiment_cost_exits_1_and_names_it(tmp_path, two_runs, baseline) -> None:
    costs = baseline["seed_experiment"]["backends"]["numpy"]["costs"]
    was = costs[40]
    costs[40] = was * (1 + 1e-9)
    code, out, _ = run_compare(two_runs[0], planted(tmp_path, baseline))
    assert code == 1
    assert (
        f"  - seed experiment different: numpy costs: max |diff| 4.75e-11 at epoch 41 ({was!r} -> {costs[40]!r})" in out
    )
    assert "x the rounding bound" in out


def test_a_cost_one_ulp_away_is_within_rounding_and_not_a_regression(tmp_path, two_runs, baseline) -> None:
    costs = baseline["seed_experiment"]["backends"]["numpy"]["costs"]
    costs[40] = float(np.nextafter(costs[40], np.inf))
    outputs = baseline["seed_experiment"]["backends"]["tutorial_mlp"]["outputs"]
    outputs[0][0] = float(np.nextafter(outputs[0][0], 0))
    code, out, _ = run_compare(two_runs[0], planted(tmp_path, baseline))
    assert code == 0, out
    assert "numpy         costs within rounding (max |diff| 6.94e-18 at epoch 41" in out
    assert "tutorial_mlp  costs bitwise equal; outputs within rounding (max |diff| 8.88e-16 at [0, 0]" in out


def test_a_new_failure_exits_1_and_a_fixed_one_is_reported(tmp_path, two_runs, baseline) -> None:
    failing = copy.deepcopy(baseline)
    test = failing["tests"][0]
    test.update(outcome="failed", message="tutorial_mlp elu(-1e-10) = 0.0 in float32; exact -1e-10")
    name = test["nodeid"].rpartition("::")[2]
    code, out, _ = run_compare(two_runs[0], planted(tmp_path, failing, "failing"))
    assert code == 1
    assert (
        f"  - new failure: {test['impl']}, forward agreement: {name}: "
        "tutorial_mlp elu(-1e-10) = 0.0 in float32; exact -1e-10"
    ) in out
    code, out, _ = run_compare(planted(tmp_path, failing, "failing"), two_runs[1])
    assert code == 0
    assert f"  fixed        {test['impl']}, forward agreement: {name}" in out


def test_accuracy_worse_beyond_the_factor_exits_1_and_within_it_0(tmp_path, two_runs, baseline) -> None:
    row = baseline["accuracy"]["numpy"][0]  # float32 elu value: 2.5 ulps in the baseline
    row.update(worst_ulps=2.5e6, got=0.0)
    code, out, _ = run_compare(two_runs[0], planted(tmp_path, baseline))
    assert code == 1
    assert (
        "  - accuracy worse: numpy float32 elu value: 2.5 -> 2.5e+06 ulps (worst at z = -1e-10: got 0.0, exact -1e-10)"
    ) in out
    row["worst_ulps"] = 9.0  # 3.6 x: within the default factor 4, beyond a factor 2
    assert run_compare(two_runs[0], planted(tmp_path, baseline))[0] == 0
    assert run_compare(two_runs[0], planted(tmp_path, baseline), "--accuracy-factor", "2")[0] == 1


def test_ulps_below_one_count_as_one(tmp_path, two_runs, baseline) -> None:
    baseline["accuracy"]["numpy"][1]["worst_ulps"] = 0.0  # float32 elu derivative: 1.0 in the baseline
    reverse = run_compare(planted(tmp_path, baseline), two_runs[0])  # 0 -> 1 ulp: no infinite factor
    assert reverse[0] == 0, reverse[1]


def test_a_worst_ratio_up_beyond_10x_exits_1(tmp_path, two_runs, baseline) -> None:
    ratios = baseline["worst_ratio"]["tutorial_mlp"]
    ratios["forward output"] = 0.5  # at most 0.01 (floored) in the baseline
    code, out, _ = run_compare(two_runs[0], planted(tmp_path, baseline))
    assert code == 1
    assert "  - worst ratio up: tutorial_mlp forward output: " in out
    assert "-> 0.5 (50x)" in out


def test_environment_differences_are_listed_but_not_regressions(tmp_path, two_runs, baseline) -> None:
    baseline["environment"]["torch"] = "2.4.0"
    baseline["environment"]["blas"] = "mkl 2024.1"
    code, out, _ = run_compare(two_runs[0], planted(tmp_path, baseline))
    assert code == 0
    assert "environment differences that could explain them:" in out
    assert "  blas: scipy-openblas" in out
    assert " -> mkl 2024.1" in out
    assert " -> 2.4.0" in out


def test_a_seed_experiment_with_another_configuration_is_not_comparable(tmp_path, two_runs, baseline) -> None:
    baseline["seed_experiment"]["config"]["epochs"] = 10
    code, out, _ = run_compare(two_runs[0], planted(tmp_path, baseline))
    assert code == 1
    assert "  - seed experiment not comparable: the configurations differ (epochs 150 vs 10)" in out


# -- the two kinds of report ----------------------------------------------------------------------------------


def test_a_reproduce_report_compares_with_a_check_report_on_the_seed_experiment(tmp_path, two_runs) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["reproduce", "--backends", "numpy", "--out", tmp_path / "reproduce"]) == 0
    code, out, _ = run_compare(tmp_path / "reproduce", two_runs[1])
    assert code == 0, out
    assert "compared: seed experiment" in out
    assert "not compared: claims (only in B)" in out
    assert "  tutorial_mlp: only in B" in out
    assert "numpy  costs bitwise equal; outputs bitwise equal; K bitwise equal" in out


# -- --json -----------------------------------------------------------------------------------------------------


def test_json_writes_the_differences_for_machines(tmp_path, two_runs, baseline) -> None:
    baseline["behaviours"]["numpy"]["subnormal_inputs"] = "zero"
    target = tmp_path / "diff.json"
    code, _, _ = run_compare(two_runs[0], planted(tmp_path, baseline), "--json", target)
    assert code == 1
    diff = json.loads(target.read_text())
    assert diff["regressions"] == ["behaviour changed: numpy subnormal_inputs: 'kept' -> 'zero'"]
    assert diff["sections"]["behaviours"]["changes"] == [
        {"implementation": "numpy", "behaviour": "subnormal_inputs", "change": "changed", "a": "kept", "b": "zero"}
    ]
    assert diff["sections"]["seed_experiment"]["backends"]["numpy"]["costs"]["verdict"] == "bitwise equal"
    assert set(diff) >= {"a", "b", "compared", "not_compared", "sections", "environment", "regressions"}


def test_json_dash_prints_only_json(two_runs) -> None:
    code, out, _ = run_compare(*two_runs, "--json", "-")
    assert code == 0
    assert json.loads(out)["regressions"] == []


# -- usage errors: one line naming the file, exit 2 -------------------------------------------------------------


def test_a_missing_file_is_a_usage_error(tmp_path, two_runs) -> None:
    missing = tmp_path / "nowhere" / "report.json"
    assert run_compare(two_runs[0], missing) == (
        2,
        "",
        f"mlp-crosscheck compare: error: {missing}: no such file or directory\n",
    )


def test_a_directory_without_a_report_is_a_usage_error(tmp_path, two_runs) -> None:
    assert run_compare(tmp_path, two_runs[0]) == (
        2,
        "",
        f"mlp-crosscheck compare: error: {tmp_path}: a directory without a report.json\n",
    )


def test_a_file_that_is_not_json_is_a_usage_error(tmp_path, two_runs) -> None:
    broken = tmp_path / "report.json"
    broken.write_text('{"environment": ')
    assert run_compare(two_runs[0], broken) == (
        2,
        "",
        f"mlp-crosscheck compare: error: {broken}: not JSON (Expecting value, line 1 column 17)\n",
    )


def test_json_that_is_not_a_report_is_a_usage_error(tmp_path, two_runs) -> None:
    other = tmp_path / "package.json"
    other.write_text('{"name": "left-pad"}')
    assert run_compare(other, two_runs[0]) == (
        2,
        "",
        f"mlp-crosscheck compare: error: {other}: not an mlp-crosscheck report (expected the report.json of "
        "'check --report' or 'reproduce', or check's --json: an 'environment' and at least one of tests, "
        "behaviours, accuracy, seed_experiment, backends)\n",
    )


def test_an_unreadable_file_is_a_usage_error(tmp_path, two_runs, monkeypatch) -> None:
    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", denied)  # chmod does not stop root, who may run the tests
    assert run_compare(two_runs[0], two_runs[1]) == (
        2,
        "",
        f"mlp-crosscheck compare: error: {two_runs[0]}: cannot be read: Permission denied\n",
    )


def test_reports_with_no_section_in_common_are_a_usage_error(tmp_path) -> None:
    claims_only = planted(tmp_path, {"environment": {}, "tests": []}, "claims")
    seed_only = planted(tmp_path, {"environment": {}, "config": {}, "backends": {}}, "seed")
    assert run_compare(claims_only, seed_only) == (
        2,
        "",
        f"mlp-crosscheck compare: error: {claims_only} and {seed_only}: nothing to compare: A has claims, "
        "B has seed_experiment\n",
    )


def test_a_malformed_section_is_a_usage_error_not_a_traceback(tmp_path, two_runs, baseline) -> None:
    for test in baseline["tests"]:
        del test["impl"]
    bad = planted(tmp_path, baseline)
    assert run_compare(two_runs[0], bad) == (
        2,
        "",
        f"mlp-crosscheck compare: error: {two_runs[0]} and {bad}: the claims section is malformed (KeyError: 'impl')\n",
    )


def test_a_json_path_that_cannot_be_written_is_a_usage_error(tmp_path, two_runs) -> None:
    target = tmp_path / "missing-dir" / "diff.json"
    code, _, err = run_compare(*two_runs, "--json", target)
    assert code == 2
    assert err == f"mlp-crosscheck compare: error: --json {target}: No such file or directory\n"


# -- the derived bound ------------------------------------------------------------------------------------------


def test_seed_bounds_are_the_tolerances_of_the_reference_trajectory(baseline) -> None:
    from mlp_crosscheck.properties import tolerances
    from mlp_crosscheck.reference import seed

    bounds, why = compare.seed_bounds(baseline["seed_experiment"]["config"])
    assert why == ""
    assert bounds is not None
    x, y = seed.data()
    # Epoch 1: both runs hold the same initial network, so twice its loss bound is exact, not a model.
    assert bounds["costs"][0] == tolerances.gradient_bounds(seed.initial_network(), x, y).agree().loss
    assert bounds["costs"].shape == (150,)
    assert bounds["outputs"].shape == (4, 1)
    assert bounds["K"].shape == (3, 1)
    assert np.all(bounds["costs"] > 0)


def test_judge_tells_bitwise_equal_within_rounding_and_different() -> None:
    bound = np.array([1e-3, 1e-3])
    assert compare.judge([1.0, 2.0], [1.0, 2.0], bound)["verdict"] == "bitwise equal"
    assert compare.judge([0.0], [-0.0], bound[:1])["verdict"] == "within rounding"  # equal, not bitwise
    assert compare.judge([1.0, 2.0], [1.0, 2.0005], bound)["verdict"] == "within rounding"
    different = compare.judge([1.0, 2.0], [1.0, 2.5], bound)
    assert different["verdict"] == "different"
    assert different["detail"] == "max |diff| 0.5 at epoch 2 (2.0 -> 2.5), 500 x the rounding bound 0.001"
    assert compare.judge([None], [None], bound[:1])["verdict"] == "bitwise equal"  # both diverged alike
    assert compare.judge([1.0], [None], bound[:1])["verdict"] == "different"


def test_behaviours_flatten_to_dotted_leaves_and_empty_dictionaries_have_none() -> None:
    tree = {"kink_derivatives": {"relu": 0.0}, "accuracy": {"float32": {"elu": {}}}, "subnormal_inputs": "kept"}
    assert compare.flatten(tree) == {"kink_derivatives.relu": 0.0, "subnormal_inputs": "kept"}
