"""``mlp-crosscheck check``: exit codes, the summary table, the JSON result, and only the claims that apply.

Each test runs the command in a subprocess from a temporary directory, as a user would, on a narrow ``-k``
selection so that it stays fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from user_shell import user_environment

from mlp_crosscheck.commands.check import format_summary, summarize

REPO = Path(__file__).resolve().parent.parent
TUTORIAL = REPO / "examples" / "tutorial_mlp.py"
FAULTY = REPO / "tests" / "faults" / "faulty_gradient_sign.py"


def check(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlp_crosscheck", "check", *args],
        cwd=cwd,
        env=user_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_a_correct_implementation_passes_with_a_summary_and_a_json_result(tmp_path) -> None:
    (tmp_path / "tutorial_mlp.py").write_text(TUTORIAL.read_text())
    proc = check(
        tmp_path,
        "tutorial_mlp.py",
        "-k",
        "tanh and (forward or gradients_match) and not underflow and not subnormal",
        "--json",
        "out.json",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "tutorial_mlp    forward agreement            passed  2       0       0    " in proc.stdout
    assert "tutorial_mlp    loss and gradient agreement  passed  2       0       0    " in proc.stdout
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["exit_code"] == 0
    assert {"numpy", "scipy", "hypothesis", "blas", "python"} <= set(result["environment"])
    assert {r["family"] for r in result["summary"]} == {"forward_agreement", "gradient_agreement"}
    ratios = result["worst_ratio"]["tutorial_mlp"]
    assert 0 < ratios["forward output"] <= 1
    assert 0 < ratios["dweights[0] (dL/dW_1)"] <= 1
    test = result["tests"][0]
    assert test["outcome"] == "passed"
    assert test["examples"] >= 25  # the dev profile's examples (more if some were rejected)
    assert test["calls"] > 0  # the implementation was really called


def test_only_claims_about_the_implementation_run_and_no_builtin_backend_unless_asked(tmp_path) -> None:
    proc = check(tmp_path, str(TUTORIAL), "-k", "forward and tanh", "--json", "out.json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    tests = json.loads((tmp_path / "out.json").read_text())["tests"]
    assert {t["impl"] for t in tests} == {"tutorial_mlp"}
    proc = check(tmp_path, str(TUTORIAL), "--backends", "numpy", "-k", "forward and tanh", "--json", "out.json")
    assert {t["impl"] for t in json.loads((tmp_path / "out.json").read_text())["tests"]} == {"tutorial_mlp", "numpy"}


def test_a_faulty_implementation_fails_with_its_first_reason_and_a_junit_report(tmp_path) -> None:
    proc = check(tmp_path, str(FAULTY), "-k", "gradients_match_reference and identity", "--junitxml", "out.xml")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    assert "loss and gradient agreement  FAILED" in proc.stdout
    assert "first failure in test_gradients_match_reference[faulty_gradient_sign-" in proc.stdout
    assert "faulty_gradient_sign.loss_and_input_gradients(weights, biases, activations, x, y)" in proc.stdout
    assert "dweights[" in proc.stdout
    failures = [c for c in ET.parse(tmp_path / "out.xml").iter("testcase") if c.find("failure") is not None]
    assert failures


@pytest.mark.slow  # the whole suite on an nn.Module (~15 s); .ci/user-install-check runs `check` end to end
def test_an_nn_module_implementation_passes(tmp_path) -> None:
    pytest.importorskip("torch")
    module = REPO / "examples" / "torch_module_mlp.py"
    proc = check(tmp_path, str(module), "-k", "(tanh or softplus) and (forward or gradients_match_reference)")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "torch_module_mlp  loss and gradient agreement  passed" in proc.stdout


def test_a_failure_report_stays_short(tmp_path) -> None:
    proc = check(tmp_path, str(FAULTY), "-x", "-k", "gradients_match_reference and identity and float64")
    assert proc.returncode == 1
    report = proc.stdout.split("= FAILURES =")[1].split("stopping after 1 failures")[0]
    assert len(report.splitlines()) <= 60, report


def test_exit_codes_follow_pytest(tmp_path) -> None:
    assert check(tmp_path, str(TUTORIAL), "-k", "no_claim_is_called_this").returncode == 5  # nothing ran
    unloadable = check(tmp_path, str(tmp_path / "missing.py"))
    assert unloadable.returncode == 4
    assert "missing.py': no such file" in unloadable.stderr
    directory = check(tmp_path, str(tmp_path))
    assert directory.returncode == 4
    assert "is a directory" in directory.stderr


def test_a_module_name_is_found_from_the_current_directory(tmp_path) -> None:
    (tmp_path / "my_mlp.py").write_text(TUTORIAL.read_text())
    proc = check(tmp_path, "my_mlp", "-k", "forward and tanh and float64")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "my_mlp" in proc.stdout


def test_the_summary_marks_families_not_applicable_and_reported() -> None:
    records = [
        {"impl": "a", "family": "forward_agreement", "outcome": "skipped", "message": "no elu", "nodeid": "x::t"},
        {"impl": "a", "family": "contract", "outcome": "passed", "ratios": {"loss": 0.5}, "nodeid": "x::u"},
        {"impl": "a", "family": "contract", "outcome": "xfailed", "message": "not bitwise", "nodeid": "x::v"},
        {"impl": "a", "family": "gradient_agreement", "outcome": "failed", "message": "dweights[0]", "nodeid": "x::w"},
    ]
    rows = {r["family"]: r for r in summarize(records)}
    assert rows["forward_agreement"]["result"] == "not applicable"
    assert rows["contract"]["result"] == "reported"
    assert rows["contract"]["worst_ratio"] == 0.5
    assert rows["gradient_agreement"]["result"] == "FAILED"
    text = format_summary(list(rows.values()))
    assert "a, loss and gradient agreement: first failure in w: dweights[0]" in text
    assert "a, contract: not bitwise" in text


def test_an_undeclared_valid_kink_convention_is_reported_and_an_invalid_one_fails(tmp_path) -> None:
    faults = REPO / "tests" / "faults"
    valid = check(tmp_path, str(faults / "correct_relu_derivative_one_at_zero.py"), "-k", "kink_derivative_matches")
    assert valid.returncode == 0, valid.stdout[-3000:]
    assert "kink conventions: relu'(0) = 1 (not declared; a valid choice in [0, 1])" in valid.stdout
    invalid = check(tmp_path, str(faults / "faulty_relu_derivative_two_at_zero.py"), "-k", "kink_derivative_matches")
    assert invalid.returncode == 1
    assert "relu'(0) is 2.0 in float32, outside the subdifferential [0, 1]" in invalid.stdout
