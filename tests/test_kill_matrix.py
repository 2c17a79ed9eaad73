"""The kill matrix as a test: the property suite rejects every planted fault and accepts every correct alternative.

``test_suite_rejects_every_fault_and_accepts_every_correct_alternative`` runs the whole property suite under
the ``ci`` profile on every file in ``tests/faults`` (one pytest session in a subprocess, as
``mlp-crosscheck faults --first-catch`` does): a fault counts as caught at its first failing property, a
correct alternative must pass every property. A survivor is a hole in the suite (a strategy that never reaches
the case, or a missing claim): fix the suite, never this expectation. The other tests check the machinery
that builds the matrix, on small synthetic inputs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mlp_crosscheck.properties import strategies
from mlp_crosscheck.reference.network import Network

from mlp_crosscheck import cli
from mlp_crosscheck.commands import faults as kill_matrix
from mlp_crosscheck.commands import faults_plugin as kill_matrix_plugin

FAULT_DIR = Path(__file__).parent / "faults"
FAULTS = sorted(FAULT_DIR.glob("faulty_*.py"))
CORRECT = sorted(FAULT_DIR.glob("correct_*.py"))


def _verdicts(matrix: dict, kind: str) -> dict[str, str]:
    return {e["impl"]: e["verdict"] for e in matrix["implementations"] if e["kind"] == kind}


@pytest.mark.slow
def test_suite_rejects_every_fault_and_accepts_every_correct_alternative() -> None:
    records, code, tail = kill_matrix.run_suite(
        FAULTS + CORRECT, properties=[kill_matrix.DEFAULT_PROPERTIES], profile="ci", first_catch=True
    )
    assert code in (0, 1), f"the property suite did not run (pytest exit code {code}):\n{tail}"
    assert records, f"the property suite ran no test:\n{tail}"
    matrix = kill_matrix.build_matrix(records, FAULTS + CORRECT)
    summary = matrix["summary"]
    report = kill_matrix.format_matrix(matrix)
    assert not summary["suite_errors"], f"the suite errored (not a property failure) on:\n{report}"
    assert not summary["faults_survived"], f"faults no property caught: {summary['faults_survived']}\n{report}"
    assert not summary["false_alarms"], f"correct alternatives the suite rejected: {summary['false_alarms']}\n{report}"
    assert summary["faults_planted"] == len(FAULTS), report
    assert summary["correct_runs"] == len(CORRECT), report


# -----------------------------------------------------------------------------------------------------------
# The machinery, on small inputs.


def test_faults_subcommand_is_registered() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["faults", "-k", "x", "--workers", "2", "--first-catch"])
    assert args.run is kill_matrix.run
    assert args.keyword == "x"
    assert args.workers == 2
    assert args.first_catch


def test_faults_without_implementations_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert cli.main(["faults", "--faults-dir", tmp_path]) == 2
    assert "no faulty_*.py or correct_*.py" in capsys.readouterr().err


def test_matrix_reports_catches_survivors_and_false_alarms(tmp_path: Path) -> None:
    # One cheap property variant on three implementations: a fault it catches, one it cannot, a control.
    for name in ("faulty_float64_output.py", "faulty_gradient_sign.py", "correct_fault_skeleton.py"):
        shutil.copy(FAULT_DIR / name, tmp_path / name)
    out = tmp_path / "matrix.json"
    code = cli.main(
        ["faults", "--faults-dir", tmp_path, "-k", "test_forward_matches_reference and identity", "--json", out]
    )
    matrix = json.loads(out.read_text())
    assert code == 1  # faulty_gradient_sign survives forward agreement alone
    assert _verdicts(matrix, "fault") == {"faulty_float64_output": "caught", "faulty_gradient_sign": "SURVIVED"}
    assert _verdicts(matrix, "correct") == {"correct_fault_skeleton": "ok"}
    (caught,) = (e for e in matrix["implementations"] if e["impl"] == "faulty_float64_output")
    (by,) = caught["caught_by"]
    assert by["property"] == "test_forward_matches_reference"
    assert by["variants"] == ["float32-identity"]
    assert by["first_failure_at"] == 1  # a dtype slip shows on the first example
    assert by["smallest_counterexample"]["dtype"] == "float32"
    assert matrix["summary"]["faults_survived"] == ["faulty_gradient_sign"]


def _record(impl: str, outcome: str, *, when: str = "call", prop: str = "test_p", **extra) -> dict:
    return {
        "impl": impl,
        "impl_file": str((FAULT_DIR / f"{impl}.py").resolve()),
        "property": prop,
        "module": "m",
        "params": {"dtype": "float64"},
        "nodeid": f"m::{prop}[{impl}]",
        "when": when,
        "outcome": outcome,
        **extra,
    }


def test_build_matrix_verdicts() -> None:
    files = [
        FAULT_DIR / "faulty_gradient_sign.py",
        FAULT_DIR / "faulty_loss_mean.py",
        FAULT_DIR / "faulty_float32_cache.py",
        FAULT_DIR / "correct_fault_skeleton.py",
        FAULT_DIR / "correct_column_layout.py",
        FAULT_DIR / "correct_forward_mode.py",
    ]
    records = [
        _record("faulty_gradient_sign", "failed", first_failure_at=3, counterexample=None),
        _record("faulty_gradient_sign", "passed", prop="test_q"),
        _record("faulty_loss_mean", "passed"),
        _record("faulty_loss_mean", "failed", when="setup"),  # an error in setup is not a catch
        _record("correct_fault_skeleton", "passed"),
        _record("correct_column_layout", "failed", first_failure_at=7),
    ]
    matrix = kill_matrix.build_matrix(records, files)
    verdicts = {e["impl"]: e["verdict"] for e in matrix["implementations"]}
    assert verdicts == {
        "faulty_gradient_sign": "caught",
        "faulty_loss_mean": "SURVIVED",
        "faulty_float32_cache": "not run",
        "correct_fault_skeleton": "ok",
        "correct_column_layout": "FALSE ALARM",
        "correct_forward_mode": "not run",
    }
    s = matrix["summary"]
    assert (s["faults_planted"], s["faults_caught"], s["correct_runs"]) == (2, 1, 2)
    assert s["false_alarms"] == ["correct_column_layout"]
    assert s["suite_errors"] == ["faulty_loss_mean"]
    assert not s["ok"]
    (sign,) = (e for e in matrix["implementations"] if e["impl"] == "faulty_gradient_sign")
    assert [c["property"] for c in sign["caught_by"]] == ["test_p"]
    assert sign["caught_by"][0]["first_failure_at"] == 3
    assert sign["expected"] == "gradient agreement"  # read from the fault's docstring


def _net() -> Network:
    return Network((np.ones((2, 3)), np.ones((3, 1))), (np.zeros(3), np.zeros(1)), ("tanh", "identity"))


def test_counterexample_size_from_the_reproduction_note() -> None:
    net, x = _net(), np.zeros((4, 2))
    exc = AssertionError("differs")
    exc.add_note("Reproduce with:\n" + strategies.network_as_code(net, x, np.zeros((4, 1))))
    size = kill_matrix_plugin.counterexample_size(exc)
    assert size == {
        "widths": [2, 3, 1],
        "activations": ["tanh", "identity"],
        "dtype": "float64",
        "biases": True,
        "parameters": 2 * 3 + 3 * 1 + 3 + 1,
        "batch": 4,
    }


def test_counterexample_size_from_a_hypothesis_draw_and_the_smallest_of_a_group() -> None:
    big = AssertionError("a")
    big.add_note("Draw 1 (case): " + repr(strategies.Case(_net(), np.zeros((4, 2)), np.zeros((4, 1)))))
    small_net = Network((np.ones((1, 1)),), None, ("relu",))
    small = AssertionError("b")
    small.add_note("Draw 1 (case): " + repr(strategies.Case(small_net, np.zeros((1, 1)), np.zeros((1, 1)))))
    group = ExceptionGroup("two bugs", [big, small])
    assert kill_matrix_plugin.counterexample_size(group)["parameters"] == 1
    assert kill_matrix_plugin.counterexample_size(AssertionError("no note")) is None
