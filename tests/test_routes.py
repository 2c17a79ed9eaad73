"""The same implementation gets the same verdict by every route.

Routes: the clone (``python -m pytest properties --impl FILE`` in this repository, under its own
``filterwarnings = error``), the plugin in another project (a test module that calls ``crosscheck_tests``,
under that project's ``filterwarnings = error``), and ``mlp-crosscheck check FILE``. Each runs in a subprocess
under the derandomized ``ci`` profile, on a selection of claims (forward, loss and gradients, repeat calls,
bitwise reproducibility), and reports through ``--junitxml``; the verdicts compared are the exit code and
every test's outcome.

Implementations: a correct tutorial MLP whose textbook formulas overflow in intermediate steps, a correct one
whose summation order alternates between calls (not bitwise reproducible), and a faulty one.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from user_shell import user_environment

REPO = Path(__file__).resolve().parent.parent
OVERFLOWING = REPO / "examples" / "tutorial_mlp.py"
NOT_BITWISE = REPO / "tests" / "faults" / "correct_alternating_summation_order.py"
FAULTY = REPO / "tests" / "faults" / "faulty_gradient_sign.py"
SELECTION = (
    "(forward_matches_reference or gradients_match_reference or results_depend or bitwise) and (tanh or sigmoid)"
)
ROUTES = ("clone", "plugin", "check")


def run_route(route: str, impl: Path, tmp_path: Path, *extra: str) -> tuple[int, dict[str, str], str]:
    """Run the selected claims on ``impl`` by ``route``; return (exit code, {test id: outcome}, output)."""
    junit = tmp_path / f"{route}.xml"
    options = ["-k", SELECTION, *extra]  # a later -k replaces the selection, for pytest and check alike
    pytest_options = ["--hypothesis-profile=ci", f"--junitxml={junit}", "-p", "no:cacheprovider", *options]
    if route == "clone":
        cmd = [sys.executable, "-m", "pytest", "properties", f"--impl={impl}", *pytest_options]
        cwd = REPO
    elif route == "plugin":
        cwd = tmp_path / "project"
        cwd.mkdir()
        (cwd / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
        (cwd / "test_mine.py").write_text(
            textwrap.dedent(
                f"""
                from mlp_crosscheck import crosscheck_tests

                globals().update(crosscheck_tests({str(impl)!r}))
                """
            )
        )
        cmd = [sys.executable, "-m", "pytest", "test_mine.py", *pytest_options]
    else:
        cwd = tmp_path
        cmd = [
            sys.executable,
            "-m",
            "mlp_crosscheck",
            "check",
            str(impl),
            "--profile=ci",
            f"--junitxml={junit}",
            *options,
        ]
    proc = subprocess.run(
        cmd, cwd=cwd, env=user_environment(), capture_output=True, text=True, check=False, timeout=900
    )
    output = proc.stdout + proc.stderr
    return proc.returncode, outcomes(junit) if junit.exists() else {}, output


def outcomes(junit: Path) -> dict[str, str]:
    """Return {test name with parameters: passed | failed | skipped | xfailed} from a JUnit XML report."""
    found = {}
    for case in ET.parse(junit).iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
        found[case.get("name")] = outcome
    return found


def verdicts_by_route(impl: Path, tmp_path: Path, *extra: str) -> dict[str, tuple[int, dict[str, str]]]:
    results = {}
    for route in ROUTES:
        where = tmp_path / route
        where.mkdir()
        code, tests, output = run_route(route, impl, where, *extra)
        assert tests, f"{route}: no test ran (exit {code}):\n{output[-3000:]}"
        results[route] = (code, tests)
    return results


def assert_same_verdicts(results: dict[str, tuple[int, dict[str, str]]], expected_code: int) -> None:
    clone_tests = results["clone"][1]
    for route, (code, tests) in results.items():
        assert code == expected_code, f"{route}: exit {code}, expected {expected_code}"
        differ = {
            k: (tests.get(k), clone_tests.get(k)) for k in {*tests, *clone_tests} if tests.get(k) != clone_tests.get(k)
        }
        assert not differ, f"{route} and the clone disagree (this route, the clone): {differ}"


@pytest.mark.slow
def test_a_correct_implementation_that_overflows_in_intermediate_steps_passes_by_every_route(tmp_path) -> None:
    results = verdicts_by_route(OVERFLOWING, tmp_path)
    assert_same_verdicts(results, 0)
    assert "failed" not in results["clone"][1].values()


@pytest.mark.slow
def test_a_correct_implementation_that_is_not_bitwise_reproducible_is_reported_by_every_route(tmp_path) -> None:
    results = verdicts_by_route(NOT_BITWISE, tmp_path)
    assert_same_verdicts(results, 0)
    bitwise = {k: v for k, v in results["clone"][1].items() if "bitwise" in k}
    assert bitwise, "the bitwise claim did not run"
    assert "xfailed" in bitwise.values(), f"the bitwise difference was not reported: {bitwise}"


@pytest.mark.slow
def test_bitwise_reproducibility_fails_by_every_route_when_required(tmp_path) -> None:
    results = verdicts_by_route(NOT_BITWISE, tmp_path, "--require-bitwise-reproducible", "-k", "bitwise and tanh")
    assert_same_verdicts(results, 1)


@pytest.mark.slow
def test_a_faulty_implementation_fails_by_every_route(tmp_path) -> None:
    results = verdicts_by_route(FAULTY, tmp_path)
    assert_same_verdicts(results, 1)
    failed = [k for k, v in results["clone"][1].items() if v == "failed"]
    assert any("gradients_match_reference" in k for k in failed), failed


@pytest.mark.slow
def test_the_users_own_suite_gives_the_same_verdicts_with_xdist_workers(tmp_path) -> None:
    pytest.importorskip("xdist")
    (tmp_path / "serial").mkdir()
    (tmp_path / "workers").mkdir()
    serial = run_route("plugin", OVERFLOWING, tmp_path / "serial")
    # -p no:benchmark: pytest-benchmark, where installed, warns under xdist, and this project's warnings are errors.
    workers = run_route("plugin", OVERFLOWING, tmp_path / "workers", "-n", "2", "-p", "no:benchmark")
    assert workers[0] == serial[0] == 0, workers[2][-3000:]
    assert workers[1] == serial[1]
