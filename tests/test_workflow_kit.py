"""The CI gate kit (.github/workflows/mlp-crosscheck-gate.yml): it parses, and every command it runs exists.

Each ``mlp-crosscheck ...`` command of a ``run:`` step (and of the README's gate section) is parsed with the
command line's own parser, so a renamed subcommand or option fails here, not in a user's CI. PyYAML is not a
dependency: the commands are read with a small reader of the workflow's ``run:`` scalars that needs none, and
where PyYAML is installed the structure is checked too, and the reader against it.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest
from workflow_reader import run_scalars

from mlp_crosscheck.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github" / "workflows" / "mlp-crosscheck-gate.yml"
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")  # a GitHub expression, ${{ github.token }}: any one word will do


def crosscheck_commands(script: str) -> list[list[str]]:
    """Return the arguments of every ``mlp-crosscheck`` command in a shell script (continuations joined)."""
    commands = []
    for line in EXPRESSION.sub("EXPR", script.replace("\\\n", " ")).splitlines():
        for part in re.split(r"&&|\|\||;", line):
            words = shlex.split(part, comments=True)
            if words and words[0] == "mlp-crosscheck":
                commands.append(words[1:])
    return commands


def parse(arguments: list[str]):
    """Return the parsed arguments, or fail the test with argparse's own message."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return build_parser().parse_args(arguments)
    except SystemExit:
        pytest.fail(f"mlp-crosscheck {shlex.join(arguments)}: {err.getvalue().strip()}")


def workflow_commands() -> list[list[str]]:
    return [c for script in run_scalars(WORKFLOW.read_text()) for c in crosscheck_commands(script)]


# -- without PyYAML ---------------------------------------------------------------------------------------------


def test_every_crosscheck_command_of_the_workflow_parses() -> None:
    commands = workflow_commands()
    assert [c[0] for c in commands] == ["check", "check", "compare"]  # the gate, today's report, the comparison
    for arguments in commands:
        parse(arguments)


def test_the_gate_requires_its_backends_and_writes_junit_and_the_report() -> None:
    gate = parse(workflow_commands()[0])
    assert gate.backends == ["numpy", "torch", "jax"]
    assert gate.require_backends is True
    assert gate.profile == "ci"
    assert gate.workers == "auto"
    assert str(gate.junitxml) == "crosscheck-junit.xml"
    assert str(gate.report) == "crosscheck-report"


def test_the_drift_job_compares_the_release_baseline_with_todays_report() -> None:
    today, comparison = (parse(c) for c in workflow_commands()[1:])
    assert comparison.a == "baseline/report.json"
    assert comparison.b == f"{today.report}/report.json"
    text = WORKFLOW.read_text()
    assert "gh release download --pattern report.json --dir baseline" in text
    assert "artifact/crosscheck-report/report.json" in text  # what the baseline job attaches to a release


def test_the_reader_handles_each_kind_of_run_scalar() -> None:
    text = "steps:\n  - run: a b\n  - name: x\n    run: |\n      c \\\n        d\n      e\n    env: {}\n"
    text += "  - run: >-\n      f\n      g\n"
    assert run_scalars(text) == ["a b", "c \\\nd\ne\n", "f g"]
    assert crosscheck_commands('mlp-crosscheck check "$IMPL" \\\n  -n auto && mlp-crosscheck compare a b # c') == [
        ["check", "$IMPL", "-n", "auto"],
        ["compare", "a", "b"],
    ]
    assert crosscheck_commands("gh release upload ${{ github.ref }} x") == []


def test_the_readme_gate_section_commands_parse() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### As a CI regression gate", 1)[1].split("\n## ", 1)[0]
    # Indented code lines, and inline code spans that start with the command.
    code = [line.strip() for line in section.splitlines() if line.startswith("    ")]
    code += re.findall(r"`(mlp-crosscheck [^`]*)`", section)
    commands = [c for line in code for c in crosscheck_commands(line)]
    assert {c[0] for c in commands} >= {"check", "compare"}
    for arguments in commands:
        parse(arguments)


# -- with PyYAML, where installed ---------------------------------------------------------------------------


def test_the_workflow_is_valid_yaml_with_the_triggers_jobs_and_artifacts_of_the_kit() -> None:
    yaml = pytest.importorskip("yaml")  # not a dependency; the tests above need no YAML library
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request", "release", "schedule"} <= set(triggers)
    assert len(triggers["schedule"][0]["cron"].split()) == 5
    jobs = workflow["jobs"]
    assert set(jobs) == {"gate", "baseline", "drift"}
    steps = [step for job in jobs.values() for step in job["steps"]]
    assert [s["run"] for s in steps if "run" in s] == run_scalars(WORKFLOW.read_text())  # the reader agrees
    installs = [s["run"] for s in steps if "pip install" in s.get("run", "")]
    assert installs
    assert all('-c "$CONSTRAINTS"' in command for command in installs)
    assert workflow["env"]["CONSTRAINTS"] == "constraints.txt"
    uploads = [s["with"]["path"] for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert len(uploads) == 2
    for paths in uploads:
        assert {"crosscheck-report/", "crosscheck-junit.xml"} <= set(paths.split())
    assert all(re.fullmatch(r"[\w-]+/[\w-]+@v\d+", s["uses"]) for s in steps if "uses" in s)
