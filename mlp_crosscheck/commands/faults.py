"""``mlp-crosscheck faults``: the kill matrix -- which properties catch each planted fault, and how fast.

Runs the property suite once, in one pytest session (a subprocess), on every ``faulty_*.py`` and
``correct_*.py`` in the faults directory (each passed as ``--impl``; no built-in backend), and prints for
every planted fault the properties that caught it, the example at which each first failed, and the size of
the shrunk counterexample; for every correct alternative, that nothing fired. Exit code 0 when every fault is
caught and every correct alternative passes, 1 otherwise, 2 when the suite could not run.

    mlp-crosscheck faults                          # the whole matrix, ci profile
    mlp-crosscheck faults -k gradient_sign         # one fault (a pytest -k expression on the test ids)
    mlp-crosscheck faults --first-catch --workers 2 --json matrix.json
    mlp-crosscheck faults --profile dev --seed 3   # one reproducible run of the random dev profile

Invariants:
- The suite runs in a subprocess, so that the faults' module-level state (caches, accumulating buffers:
  some faults are stateful on purpose) and the frameworks never enter the calling process, and so that
  ``mlp-crosscheck --help`` stays free of imports. The per-test records come back through a JSON-lines file
  written by ``commands.faults_plugin``.
- A fault counts as caught only by a property *failing* (the test's call phase), never by an error in
  setup or collection: those mean the suite is broken, and are reported as such.
- ``--first-catch`` stops testing an implementation at its first failure: enough to decide caught/survived
  and false alarm/clean (what ``tests/test_kill_matrix.py`` asserts), at a fraction of the cost; the full
  matrix (the default) runs every property on every implementation.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HELP = "Run the property suite on the planted faults and correct alternatives; print which properties catch each."

REPO = Path(__file__).resolve().parents[2]  # mlp_crosscheck/commands/faults.py -> the repository
DEFAULT_FAULTS_DIR = REPO / "tests" / "faults"
DEFAULT_PROPERTIES = REPO / "properties"
PLUGIN = "mlp_crosscheck.commands.faults_plugin"
LOG_ENV = "MLP_CROSSCHECK_KILL_MATRIX_LOG"  # the plugin's names; repeated so that importing this is cheap
FIRST_CATCH_ENV = "MLP_CROSSCHECK_KILL_MATRIX_FIRST_CATCH"
AFTER_FIRST_FAILURE = "not run: this implementation already failed "


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--faults-dir",
        type=Path,
        default=DEFAULT_FAULTS_DIR,
        help="directory of faulty_*.py and correct_*.py implementations (default: tests/faults)",
    )
    parser.add_argument(
        "-k", dest="keyword", metavar="EXPR", help="pytest -k expression to select tests (ids name the file)"
    )
    parser.add_argument("--workers", type=int, default=1, help="pytest-xdist worker processes (default 1: no xdist)")
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also save the matrix (and every test's record) as JSON"
    )
    parser.add_argument("--profile", default="ci", help="Hypothesis profile (default: ci, derandomized)")
    parser.add_argument(
        "--seed", type=int, help="Hypothesis seed (--hypothesis-seed), for a reproducible run of the random dev profile"
    )
    parser.add_argument(
        "--first-catch",
        action="store_true",
        help="stop testing an implementation at its first failure (decides the verdicts; the matrix is partial)",
    )
    parser.add_argument(
        "--properties",
        type=Path,
        action="append",
        metavar="PATH",
        help="property test files or directories to run (repeatable; default: properties/)",
    )
    parser.add_argument("--show-output", action="store_true", help="print pytest's own output as it runs")


def run(args: argparse.Namespace) -> int:
    faults_dir = args.faults_dir.resolve()
    files = sorted(faults_dir.glob("faulty_*.py")) + sorted(faults_dir.glob("correct_*.py"))
    if not files:
        print(f"mlp-crosscheck faults: no faulty_*.py or correct_*.py in {faults_dir}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    records, returncode, tail = run_suite(
        files,
        properties=args.properties or [DEFAULT_PROPERTIES],
        profile=args.profile,
        keyword=args.keyword,
        workers=args.workers,
        first_catch=args.first_catch,
        show_output=args.show_output,
        seed=args.seed,
    )
    wall = time.perf_counter() - start
    if returncode not in (0, 1) or not records:
        print(
            f"mlp-crosscheck faults: the property suite did not run (pytest exit code {returncode}):", file=sys.stderr
        )
        print(tail, file=sys.stderr)
        return 2
    matrix = build_matrix(records, files)
    matrix["wall_s"] = round(wall, 1)
    matrix["command"] = "mlp-crosscheck faults " + " ".join(_own_options(args))
    print(format_matrix(matrix))
    if args.json:
        args.json.write_text(json.dumps({**matrix, "records": records}, indent=1) + "\n")
        print(f"saved to {args.json}")
    return 0 if matrix["summary"]["ok"] else 1


def _own_options(args: argparse.Namespace) -> list[str]:
    options = []
    if args.faults_dir.resolve() != DEFAULT_FAULTS_DIR:
        options += ["--faults-dir", str(args.faults_dir)]
    if args.keyword:
        options += ["-k", repr(args.keyword)]
    if args.workers != 1:
        options += ["--workers", str(args.workers)]
    if args.profile != "ci":
        options += ["--profile", args.profile]
    if args.first_catch:
        options.append("--first-catch")
    return options


def run_suite(
    files: list[Path],
    *,
    properties: list[Path],
    profile: str = "ci",
    keyword: str | None = None,
    workers: int = 1,
    first_catch: bool = False,
    show_output: bool = False,
    seed: int | None = None,
) -> tuple[list[dict[str, Any]], int, str]:
    """Run the property suite on ``files`` in one pytest subprocess; return (records, exit code, output tail)."""
    with tempfile.TemporaryDirectory(prefix="kill-matrix-") as tmp:
        log = Path(tmp) / "records.jsonl"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            *map(str, properties),
            "--backends=",
            *(f"--impl={f}" for f in files),
            f"--hypothesis-profile={profile}",
            "-p",
            PLUGIN,
            "-p",
            "no:cacheprovider",
            "-q",
            "--tb=no",
            "-rN",
            "--no-header",
        ]
        if keyword:
            cmd += ["-k", keyword]
        if workers > 1:
            cmd += ["-n", str(workers)]
        if seed is not None:
            cmd.append(f"--hypothesis-seed={seed}")
        env = {**os.environ, LOG_ENV: str(log), FIRST_CATCH_ENV: "1" if first_catch else "0"}
        if show_output:
            code = subprocess.run(cmd, cwd=REPO, env=env, check=False).returncode
            tail = ""
        else:
            proc = subprocess.run(cmd, cwd=REPO, env=env, check=False, capture_output=True, text=True)
            code = proc.returncode
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return records, code, tail


# -----------------------------------------------------------------------------------------------------------
# The matrix.


def expected_family(path: Path) -> str | None:
    """Return what a fault's docstring says should catch it (its ``Caught by: ...`` line), if it says."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    except (OSError, SyntaxError):
        return None
    for line in doc.splitlines():
        if line.strip().lower().startswith("caught by:"):
            return line.split(":", 1)[1].strip().rstrip(".")
    return None


def _summary_line(path: Path) -> str:
    try:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    except (OSError, SyntaxError):
        return ""
    return doc.splitlines()[0] if doc else ""


def build_matrix(records: list[dict[str, Any]], files: list[Path]) -> dict[str, Any]:
    """Return the kill matrix: one entry per implementation file, and a summary of the verdicts."""
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_file[record["impl_file"]].append(record)
    entries = []
    for path in files:
        kind = "fault" if path.name.startswith("faulty_") else "correct"
        runs = by_file.get(str(path.resolve()), [])
        entries.append(_entry(path, kind, runs))
    faults = [e for e in entries if e["kind"] == "fault" and e["verdict"] != "not run"]
    correct = [e for e in entries if e["kind"] == "correct" and e["verdict"] != "not run"]
    broken = [e for e in entries if e["errors"]]
    summary = {
        "faults_planted": len(faults),
        "faults_caught": sum(e["verdict"] == "caught" for e in faults),
        "faults_survived": [e["impl"] for e in faults if e["verdict"] == "SURVIVED"],
        "correct_runs": len(correct),
        "false_alarms": [e["impl"] for e in correct if e["verdict"] == "FALSE ALARM"],
        "correct_tests_run": sum(e["passed"] + e["failed"] for e in correct),
        "correct_tests_failed": sum(e["failed"] for e in correct),
        "suite_errors": [e["impl"] for e in broken],
        "not_run": [e["impl"] for e in entries if e["verdict"] == "not run"],
    }
    summary["ok"] = not (summary["faults_survived"] or summary["false_alarms"] or broken) and bool(faults or correct)
    return {"summary": summary, "implementations": entries}


def _entry(path: Path, kind: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    failed = [r for r in runs if r["outcome"] == "failed" and r["when"] == "call"]
    errors = [r for r in runs if r["outcome"] == "failed" and r["when"] != "call"]
    stopped = [r for r in runs if r["outcome"] == "skipped" and AFTER_FIRST_FAILURE in r.get("message", "")]
    skipped = [r for r in runs if r["outcome"] == "skipped" and r not in stopped]
    passed = [r for r in runs if r["outcome"] == "passed" and r["when"] == "call"]
    by_property: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if r["when"] == "call" and r["outcome"] in ("passed", "failed"):
            by_property[(r["module"], r["property"])].append(r)
    caught_by = []
    for (module, prop), rs in by_property.items():
        fails = [r for r in rs if r["outcome"] == "failed"]
        if not fails:
            continue
        ordinals = [r["first_failure_at"] for r in fails if r.get("first_failure_at")]
        fastest = min((r for r in fails if r.get("first_failure_at")), key=lambda r: r["first_failure_at"], default={})
        sizes = [r["counterexample"] for r in fails if r.get("counterexample")]
        caught_by.append(
            {
                "property": prop,
                "module": module,
                "failed": len(fails),
                "run": len(rs),
                "variants": [_variant(r) for r in fails],
                "first_failure_at": min(ordinals) if ordinals else None,
                "rejected_before_first_failure": fastest.get("rejected"),
                "median_first_failure_at": statistics.median(ordinals) if ordinals else None,
                "smallest_counterexample": min(sizes, key=lambda s: (s["parameters"], s["batch"] or 0))
                if sizes
                else None,
                "message": fails[0].get("message", ""),
            }
        )
    if not runs:
        verdict = "not run"
    elif kind == "fault":
        verdict = "caught" if failed else "SURVIVED"
    else:
        verdict = "FALSE ALARM" if failed or errors else "ok"
    return {
        "impl": runs[0]["impl"] if runs else path.stem,
        "file": _relative(path),
        "kind": kind,
        "bug": _summary_line(path),
        "expected": expected_family(path) if kind == "fault" else None,
        "verdict": verdict,
        "passed": len(passed),
        "failed": len(failed),
        "skipped": len(skipped),
        "not_run_after_first_failure": len(stopped),
        "errors": [f"{r['nodeid']} ({r['when']}): {r.get('message', '')}" for r in errors],
        "caught_by": caught_by,
    }


def _variant(record: dict[str, Any]) -> str:
    return "-".join(str(v) for v in record["params"].values()) or record["nodeid"]


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def format_counterexample(size: dict[str, Any] | None) -> str:
    """Return e.g. ``3-1 identity float32 no biases, batch 2 (4 parameters)``."""
    if not size:
        return "counterexample not printed"
    names = size["activations"]
    acts = names[0] if len(set(names)) == 1 else "/".join(names)
    return (
        f"{'-'.join(map(str, size['widths']))} {acts} {size['dtype']} {'with' if size['biases'] else 'no'} biases, "
        f"batch {size['batch']} ({size['parameters']} parameters)"
    )


def format_matrix(matrix: dict[str, Any]) -> str:
    """Return the matrix as text: every fault with what caught it, every correct alternative, the summary."""
    entries = matrix["implementations"]
    s = matrix["summary"]
    lines = [f"PLANTED FAULTS: {s['faults_caught']} of {s['faults_planted']} caught"]
    for e in (e for e in entries if e["kind"] == "fault" and e["verdict"] != "not run"):
        lines.append(f"  {e['verdict']:8}  {e['impl']}  (expected: {e['expected'] or '?'})")
        for c in sorted(e["caught_by"], key=lambda c: (c["first_failure_at"] or 10**9, c["property"])):
            at = "?" if c["first_failure_at"] is None else str(c["first_failure_at"])
            if c.get("rejected_before_first_failure"):
                at += f" ({c['rejected_before_first_failure']} of them rejected by assume)"
            if c["failed"] > 1 and c["median_first_failure_at"] is not None:
                at += f", median {c['median_first_failure_at']:g}"
            lines.append(
                f"            {c['property']}: {c['failed']}/{c['run']} variants, first failure at example {at}; "
                f"smallest: {format_counterexample(c['smallest_counterexample'])}"
            )
        if e["not_run_after_first_failure"]:
            lines.append(f"            ({e['not_run_after_first_failure']} tests not run after the first failure)")
    lines.append("")
    lines.append(
        f"CORRECT ALTERNATIVES: {s['correct_runs'] - len(s['false_alarms'])} of {s['correct_runs']} clean "
        f"({s['correct_tests_failed']} failing tests of {s['correct_tests_run']} run)"
    )
    for e in (e for e in entries if e["kind"] == "correct" and e["verdict"] != "not run"):
        detail = f"{e['passed']} passed, {e['skipped']} skipped"
        lines.append(f"  {e['verdict']:8}  {e['impl']}  ({detail})")
        for c in e["caught_by"]:
            lines.append(
                f"            {c['property']}: {c['failed']}/{c['run']} variants failed: {', '.join(c['variants'][:6])}"
                f"; {c['message'][:160]}"
            )
    for e in entries:
        for err in e["errors"]:
            lines.append(f"  SUITE ERROR  {err[:300]}")
    if s["not_run"]:
        lines.append(f"\n{len(s['not_run'])} implementations had no test selected (-k)")
    lines.append("")
    lines.append(
        f"Summary: faults caught {s['faults_caught']}/{s['faults_planted']}; "
        f"false alarms {len(s['false_alarms'])}/{s['correct_runs']} correct implementations "
        f"({s['correct_tests_failed']}/{s['correct_tests_run']} tests); wall time {matrix.get('wall_s', '?')} s"
    )
    return "\n".join(lines)
