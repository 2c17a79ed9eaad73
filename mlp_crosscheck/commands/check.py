"""``mlp-crosscheck check TARGET [TARGET ...]``: every claim that applies to your implementations, then a summary.

    mlp-crosscheck check mine.py                       # a file, from any directory
    mlp-crosscheck check mypkg.mlp --profile ci        # an importable module; derandomized examples
    mlp-crosscheck check mine.py --backends numpy,jax --json result.json --junitxml result.xml
    mlp-crosscheck check mine.py --backends numpy,torch,jax --require-backends --profile ci -n auto \
        --report crosscheck-report                     # the CI gate: report.json, report.md, report.png

Runs the installed claims (``mlp_crosscheck.properties``) against each TARGET -- only the claims about an
implementation, not the suite's own tests, and the built-in backends only when ``--backends`` names them --
and ends with one row per implementation x claim family: passed / FAILED / not applicable / reported, the
worst error-to-bound ratio seen, and the first failure's reason. ``--report DIR`` also writes the
reproducibility report (``commands/report.py``; compare two with ``mlp-crosscheck compare``). Exit codes are
pytest's: 0 all passed, 1 a claim failed, 2 interrupted, 3 internal error, 4 usage error (a target that cannot
be loaded, a backend that fails ``--require-backends``, a ``--report`` path that is a file), 5 nothing ran.

Invariants:
- The verdict must be the one the plugin gives in the user's own project and in the clone: the same claims,
  the same profile objects, the same implementation wrapper. So the run is isolated from the caller's
  pytest configuration (an empty ini file in a temporary rootdir), and judged only by the claims.
- The summary is built from the records the plugin attaches to each report (``plugin.RECORD_KEY``), so it
  is the same with and without pytest-xdist workers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from mlp_crosscheck.commands import arguments

HELP = "check implementations of the contract against the reference; print a summary per claim family"
FAMILY_TITLES = {
    "activation_accuracy": "activation accuracy",
    "forward_agreement": "forward agreement",
    "gradient_agreement": "loss and gradient agreement",
    "contract": "contract",
    "underflow": "underflow",
    "kink_conventions": "kink conventions",
    "recorded_behaviours": "recorded behaviours",
    "hard_cases": "pinned hard cases",
    "collapse": "identity collapse",
    "nonlinear_does_not_collapse": "non-collapse",
    "conservation": "conservation laws",
    "training": "training",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="+", metavar="TARGET", help="a .py file or an importable module name")
    parser.add_argument(
        "--profile",
        choices=("dev", "ci", "thorough"),
        help="Hypothesis profile: dev (25 examples), ci (60, derandomized), thorough (1000); "
        "default $MLP_CROSSCHECK_PROFILE, else dev",
    )
    parser.add_argument(
        "--backends",
        type=arguments.optional_backend_names,
        default=[],
        metavar="NAMES",
        help="also check these built-in backends (e.g. numpy,torch,jax)",
    )
    parser.add_argument("--device", help="device for the torch and jax backends (default cpu)")
    parser.add_argument("--junitxml", type=Path, metavar="PATH", help="also write a JUnit XML report")
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write the result as JSON: environment, each test's status, examples, calls, worst ratios",
    )
    parser.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failing claim")
    parser.add_argument("-k", dest="keyword", metavar="EXPR", help="only run claims matching this pytest -k expression")
    parser.add_argument(
        "--require-bitwise-reproducible",
        action="store_true",
        help="fail an implementation whose repeated calls differ in any bit (default: reported only)",
    )
    parser.add_argument(
        "--require-backends",
        action="store_true",
        help="every built-in backend named by --backends must import and compute (one tiny call each) before any "
        "claim runs; a broken one is a usage error naming its cause (exit 4), never a skip",
    )
    parser.add_argument(
        "--strict-conventions",
        action="store_true",
        help="fail when an installed framework version has no recorded row of behaviours (default with --profile "
        "ci; otherwise a warning in the summary)",
    )
    parser.add_argument(
        "--hypothesis-seed",
        type=int,
        metavar="N",
        help="Hypothesis's seed for the claims' random draws, to reproduce a run (recorded in --report)",
    )
    parser.add_argument(
        "-n",
        "--workers",
        type=workers,
        default=0,
        metavar="N|auto",
        help="pytest-xdist worker processes, or auto: one per CPU (default: none)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="also write the reproducibility report into DIR (created if missing): report.json, report.md and "
        "report.png -- the environment, every claim's result, observed behaviours, activation accuracy and the "
        "seed experiment (see docs/report.md)",
    )


def workers(text: str) -> int | str:
    """``"auto"`` (pytest-xdist: one worker per CPU) or a number of worker processes, 0 for none."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number of worker processes, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number of worker processes, got {text!r}")
    return value


def pytest_arguments(args: argparse.Namespace, rootdir: Path) -> list[str]:
    """Return the pytest command line that runs the claims on ``args.targets`` in isolation under ``rootdir``."""
    ini = rootdir / "pytest.ini"
    # The caller's own pytest configuration does not apply to the claims. Deprecation warnings are libraries'
    # business (Hypothesis's failure explainer imports libcst, which warns through mypy_extensions), and
    # pytest cannot rewrite the asserts of mlp_crosscheck itself, imported already to run this command.
    ini.write_text(
        "[pytest]\nfilterwarnings =\n    ignore::DeprecationWarning\n    ignore::pytest.PytestAssertRewriteWarning\n"
    )
    argv = ["--pyargs", "mlp_crosscheck.properties", "-c", str(ini), "--rootdir", str(rootdir)]
    argv += ["-p", "no:cacheprovider", "-q", "--tb=short", "-rN", f"--backends={','.join(args.backends)}"]
    argv += [f"--impl={_absolute(target)}" for target in args.targets]
    if args.profile:
        argv.append(f"--hypothesis-profile={args.profile}")
    if args.device:
        argv.append(f"--device={args.device}")
    if args.junitxml:
        argv.append(f"--junitxml={args.junitxml.resolve()}")
    if args.exitfirst:
        argv.append("-x")
    if args.keyword:
        argv += ["-k", args.keyword]
    if args.require_bitwise_reproducible:
        argv.append("--require-bitwise-reproducible")
    if args.require_backends:
        argv.append("--require-backends")
    if args.strict_conventions:
        argv.append("--strict-conventions")
    if args.hypothesis_seed is not None:
        argv.append(f"--hypothesis-seed={args.hypothesis_seed}")
    if args.workers:
        argv += ["-n", str(args.workers)]
    return argv


def _absolute(target: str) -> str:
    """A path that exists (or names a .py file) made absolute: the run's rootdir is a temporary directory."""
    path = Path(target)
    return str(path.resolve()) if target.endswith(".py") or path.exists() else target


class Collector:
    """A pytest plugin (this process only) that gathers the claims' records and drops every other test."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.selection: Any = None  # the plugin's Selection: the implementations it checked, the device

    def pytest_sessionfinish(self, session) -> None:
        from mlp_crosscheck.plugin import SELECTION

        self.selection = session.config.stash.get(SELECTION, None)

    def pytest_collection_modifyitems(self, config, items) -> None:
        on_impl = ["impl" in getattr(getattr(item, "callspec", None), "params", {}) for item in items]
        keep = [item for item, wanted in zip(items, on_impl, strict=True) if wanted]
        dropped = [item for item, wanted in zip(items, on_impl, strict=True) if not wanted]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep

    def pytest_runtest_logreport(self, report) -> None:
        from mlp_crosscheck.plugin import RECORD_KEY

        for key, record in report.user_properties:
            if key == RECORD_KEY:
                self.records.append({"nodeid": report.nodeid, **record})


def run(args: argparse.Namespace) -> int:
    import pytest  # the plugin, hence Hypothesis, is imported by pytest itself, so that it can rewrite asserts

    if args.report is not None and args.report.exists() and not args.report.is_dir():
        print(f"mlp-crosscheck check: error: --report {args.report} exists and is not a directory", file=sys.stderr)
        return 4
    if args.workers:
        import importlib.util

        if importlib.util.find_spec("xdist") is None:
            print("mlp-crosscheck check: -n needs pytest-xdist (pip install pytest-xdist)", file=sys.stderr)
            return 4
    # As `python -m pytest` would: a module name given as TARGET is looked up from the current directory too.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    collector = Collector()
    with tempfile.TemporaryDirectory(prefix="mlp-crosscheck-check-") as tmp:
        code = int(pytest.main(pytest_arguments(args, Path(tmp)), plugins=[collector]))
    from mlp_crosscheck import environment
    from mlp_crosscheck.properties import profiles

    rows = summarize(collector.records)
    if rows:
        print()
        print(format_summary(rows))
    elif code == 0:
        code = 5  # every claim deselected or skipped before it ran: nothing was checked
    result = {
        "command": "mlp-crosscheck check " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["check"] else []),
        "exit_code": code,
        "profile": args.profile or profiles.active(),
        "environment": environment.fingerprint(),
        "summary": rows,
        "worst_ratio": worst_ratios(collector.records),
        "tests": collector.records,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")
        print(f"saved to {args.json}")
    if args.report is not None:
        if not rows:  # a usage error or nothing selected: no claim ran, so there is nothing to report
            print(f"mlp-crosscheck check: no report written to {args.report}: no claim ran", file=sys.stderr)
        else:
            from mlp_crosscheck.commands import report

            try:
                print(report.write(args.report, report.build(result, args, collector.selection)))
            except OSError as exc:  # a full disk or a read-only directory: the verdict stands, the gate notices
                print(f"mlp-crosscheck check: error: cannot write the report to {args.report}: {exc}", file=sys.stderr)
                code = code or 4
    return code


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one row per implementation x claim family: result, counts, worst ratio, first failure."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[(record["impl"], record["family"])].append(record)
    rows = []
    for (impl, family), group in groups.items():
        outcomes = [r["outcome"] for r in group]
        failed = [r for r in group if r["outcome"] == "failed"]
        if failed:
            result = "FAILED"
        elif "passed" in outcomes:
            result = "reported" if "xfailed" in outcomes else "passed"
        elif "xfailed" in outcomes:
            result = "reported"
        else:
            result = "not applicable"
        ratios = [v for r in group for v in r.get("ratios", {}).values()]
        rows.append(
            {
                "implementation": impl,
                "family": family,
                "result": result,
                "passed": outcomes.count("passed"),
                "failed": len(failed),
                "not_applicable": outcomes.count("skipped"),
                "examples": sum(r.get("examples", 0) for r in group),
                "worst_ratio": max(ratios) if ratios else None,
                "warnings": sum(r.get("warnings", 0) for r in group),
                "first_failure": failed[0].get("message", "") if failed else None,
                "first_failing_test": failed[0]["nodeid"].rpartition("::")[2] if failed else None,
                "reported": next((r["message"] for r in group if r["outcome"] == "xfailed"), None),
                "notes": sorted({note for r in group for note in r.get("notes", [])}),
            }
        )
    order = list(FAMILY_TITLES)
    rows.sort(key=lambda r: (r["implementation"], order.index(r["family"]) if r["family"] in order else len(order)))
    return rows


def worst_ratios(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Return, per implementation, the worst error-to-bound ratio seen for each quantity."""
    worst: dict[str, dict[str, float]] = defaultdict(dict)
    for record in records:
        for quantity, ratio in record.get("ratios", {}).items():
            if ratio > worst[record["impl"]].get(quantity, -1.0):
                worst[record["impl"]][quantity] = ratio
    return dict(worst)


def format_summary(rows: list[dict[str, Any]]) -> str:
    """Return the summary table, then one line per failure's reason and per reported finding."""
    header = ("implementation", "claim family", "result", "passed", "failed", "n/a", "examples", "worst |diff|/bound")
    table = [header]
    for row in rows:
        ratio = row["worst_ratio"]
        table.append(
            (
                row["implementation"],
                FAMILY_TITLES.get(row["family"], row["family"]),
                row["result"],
                str(row["passed"]),
                str(row["failed"]),
                str(row["not_applicable"]),
                str(row.get("examples", 0)),
                "-" if ratio is None else f"{ratio:.3g}",
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = []
    for row in rows:
        title = f"{row['implementation']}, {FAMILY_TITLES.get(row['family'], row['family'])}"
        if row["first_failure"]:
            notes.append(f"- {title}: first failure in {row['first_failing_test']}: {_shorten(row['first_failure'])}")
        if row["reported"]:
            notes.append(f"- {title}: {_shorten(row['reported'], 240)}")
        notes += [f"- {title}: {note}" for note in row.get("notes", [])]
    warned: defaultdict[str, int] = defaultdict(int)
    for row in rows:
        warned[row["implementation"]] += row["warnings"]
    notes += [
        f"- {impl}: {n} warnings raised inside its calls (recorded; an implementation is judged by its numbers)"
        for impl, n in warned.items()
        if n
    ]
    return "\n".join([*lines, "", *notes] if notes else lines)


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
