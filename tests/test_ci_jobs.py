"""This repository's own CI: the per-commit test command and the scheduled one run every test between them.

``.ci/run`` (every commit) runs the README's test command, which leaves out the tests marked ``slow``;
``.ci/scheduled`` (nightly, ``.github/workflows/scheduled.yml``) runs the same command on exactly those. A test
marked ``slow`` that nothing scheduled runs, or a per-commit command that drifts from the README's, fails here.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest
from workflow_reader import run_scalars

REPO = Path(__file__).resolve().parent.parent


def pytest_command(script: str) -> list[str]:
    """Return the words of the one ``python -m pytest`` command in a shell script or a README line."""
    (line,) = [line for line in script.splitlines() if "python -m pytest" in line]
    return shlex.split(line[line.index("python -m pytest") :], comments=True)


def _marker_option(words: list[str]) -> int | None:
    """Return where pytest's ``-m`` is among the words (after ``python -m pytest``), None without one."""
    options = words[3:]
    return 3 + options.index("-m") if "-m" in options else None


def marker_expression(words: list[str]) -> str:
    """Return the ``-m`` expression of a pytest command ("" when it selects every test)."""
    i = _marker_option(words)
    return "" if i is None else words[i + 1]


def without_marker_expression(words: list[str]) -> list[str]:
    i = _marker_option(words)
    return words if i is None else words[:i] + words[i + 2 :]


def readme_test_command() -> list[str]:
    readme = (REPO / "README.md").read_text()
    block = readme.split("Run the tests (the command CI runs):", 1)[1].split("\n\n", 2)[1]
    return pytest_command(block)


def test_ci_runs_the_readmes_test_command() -> None:
    assert pytest_command((REPO / ".ci" / "run").read_text()) == readme_test_command()


def test_the_scheduled_job_runs_the_same_command_on_exactly_the_tests_the_per_commit_one_leaves_out() -> None:
    per_commit, scheduled = readme_test_command(), pytest_command((REPO / ".ci" / "scheduled").read_text())
    assert without_marker_expression(scheduled) == without_marker_expression(per_commit)
    assert (marker_expression(per_commit), marker_expression(scheduled)) == ("not slow", "slow")


def test_the_scheduled_workflow_runs_the_scheduled_job_every_night() -> None:
    text = (REPO / ".github" / "workflows" / "scheduled.yml").read_text()
    assert re.search(r'^\s+- cron: "\d+ \d+ \* \* \*"', text, re.MULTILINE)  # daily
    assert "bash .ci/scheduled" in run_scalars(text)


def marks(path: Path, test: str) -> set[str]:
    """Return the ``pytest.mark.NAME`` decorators of a test function, read from its source (a test module is never
    imported by another: tests/test_layout.py)."""
    tree = ast.parse(path.read_text())
    (function,) = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == test]
    return {ast.unparse(d).removeprefix("pytest.mark.") for d in function.decorator_list}


def test_the_kill_matrix_assertion_is_in_the_scheduled_job() -> None:
    test = "test_suite_rejects_every_fault_and_accepts_every_correct_alternative"
    assert "slow" in marks(REPO / "tests" / "test_kill_matrix.py", test)


@pytest.mark.parametrize(
    ("script", "expression"),
    [("python -m pytest -n 2\n", ""), ('x && python -m pytest -n 2 -m "not slow"  # c\n', "not slow")],
)
def test_the_reader_finds_the_marker_expression(script, expression) -> None:
    words = pytest_command(script)
    assert marker_expression(words) == expression
    assert without_marker_expression(words) == ["python", "-m", "pytest", "-n", "2"]
