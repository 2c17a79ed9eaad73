"""``mlp-crosscheck conventions``: each built-in backend's observed behaviours against its recorded row.

    mlp-crosscheck conventions                          # every installed backend: recorded? same as recorded?
    mlp-crosscheck conventions --backends torch --record  # record the installed torch's row
    mlp-crosscheck conventions --device cuda --record     # and its row on a GPU: rows are kept per device

The behaviours are the ones the maths leaves open (kink derivatives, subnormal results and inputs, activation
accuracy classes on a fixed grid: ``mlp_crosscheck.properties.observed``); the rows are keyed by framework, version
and device (``mlp_crosscheck.backends.recorded``). ``--record`` writes the observed rows into ``--to`` (default
``$MLP_CROSSCHECK_RECORDED``, else ``./mlp-crosscheck-recorded.json``), which the claims read on the next run.
Exit codes: 0 every installed version is recorded and behaves as recorded (or ``--record`` wrote the rows),
1 a version is unrecorded or behaves differently, 4 a named backend cannot run here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlp_crosscheck.commands import arguments

HELP = "show each backend's observed behaviours (kinks, subnormals, accuracy) against its recorded row; --record"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backends",
        type=arguments.backend_names,
        default=None,
        metavar="NAMES",
        help="comma-separated built-in backends (default: every installed one)",
    )
    parser.add_argument(
        "--device",
        default=None,
        metavar="DEVICE",
        help="where torch and jax compute (default $MLP_CROSSCHECK_DEVICE, else cpu); rows are kept per device",
    )
    parser.add_argument(
        "--record", action="store_true", help="write the observed rows of the installed versions into --to"
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the recorded rows of the selected frameworks, every version, as Markdown (docs/accuracy.md)",
    )
    parser.add_argument(
        "--to",
        type=Path,
        default=None,
        metavar="PATH",
        help="file of rows to write with --record (default: $MLP_CROSSCHECK_RECORDED, else "
        "./mlp-crosscheck-recorded.json; the package's own table is backends/recorded.json in the clone)",
    )


def run(args: argparse.Namespace) -> int:
    from mlp_crosscheck import backends
    from mlp_crosscheck.backends import recorded
    from mlp_crosscheck.backends.contract import default_device
    from mlp_crosscheck.properties import observed

    if args.markdown:
        print(markdown([backends.BUILTINS[n].framework for n in args.backends or backends.BUILTINS]))
        return 0
    names = args.backends if args.backends is not None else backends.available()
    missing = {n: backends.missing_reason(n) for n in names if backends.missing_reason(n)}
    if missing:
        for name, reason in missing.items():
            print(f"mlp-crosscheck conventions: {name}: {reason}", file=sys.stderr)
        return 4
    target = args.to or recorded.overlay_path()
    device = args.device or default_device()
    code = 0
    for name in names:
        try:
            impl = backends.builtin(name, device)
        except (ValueError, RuntimeError) as error:  # numpy off the cpu; a device the framework does not see
            print(f"mlp-crosscheck conventions: {name}: {error}", file=sys.stderr)
            return 4
        framework = backends.BUILTINS[name].framework
        installed = backends.version(framework)
        row = observed.behaviours(impl)
        if args.record:
            key = recorded.record(target, framework, installed, row, device)
            print(f"{name}: recorded {framework} {key} in {target}")
            continue
        try:
            found = recorded.lookup(framework, installed, device)
        except LookupError as error:
            print(f"{name}: {error}")
            code = 1
            continue
        changed = observed.differences(row, found.row)
        what = f"{framework} {installed}{found.on()}"
        if found.exact and not changed:
            print(f"{name}: {what} is recorded ({found.source}) and behaves as recorded")
            continue
        code = 1
        if found.exact:
            print(f"{name}: {what} behaves differently from its recorded row ({found.source}):")
        else:
            print(f"{name}: {what} is not recorded; nearest recorded: {found.version} ({found.source})")
        for line in changed:
            print(f"  {line}")
        print(f"  record it: {observed.record_command(name, found.device)}")
    return code


def markdown(frameworks: list[str]) -> str:
    """Return the recorded rows of ``frameworks`` as Markdown: one table per framework, a row per version x dtype x
    activation that is not accurate everywhere, listing the grid points by class."""
    from mlp_crosscheck.backends import recorded
    from mlp_crosscheck.properties import accuracy

    lines = []
    for framework in frameworks:
        rows = recorded.rows(framework)
        lines += [f"### {framework}", ""]
        for version, (row, _) in sorted(rows.items(), key=lambda item: recorded.version_key(item[0])):
            kinks = ", ".join(f"{a}'(0) = {v:g}" for a, v in row["kink_derivatives"].items())
            lines.append(
                f"- **{framework} {version}**: {kinks}; subnormal results "
                f"{'flushed to 0' if row['flushes_subnormals'] else 'kept'}; subnormal inputs {row['subnormal_inputs']}"
            )
        lines += [
            "",
            "| version | dtype | activation | quantity | not accurate to 4 ulps at z = |",
            "|---|---|---|---|---|",
        ]
        for version, (row, _) in sorted(rows.items(), key=lambda item: recorded.version_key(item[0])):
            for dtype, by_activation in sorted(row["accuracy"].items()):
                for activation, by_quantity in by_activation.items():
                    for quantity in accuracy.QUANTITIES:
                        points = by_quantity.get(quantity, {})
                        if points:
                            where = ", ".join(
                                f"{z}{' (outside the model)' if c == 'outside_model' else ''}"
                                for z, c in sorted(points.items(), key=lambda item: float(item[0]))
                            )
                            lines.append(f"| {version} | {dtype} | {activation} | {quantity} | {where} |")
        lines.append("")
    return "\n".join(lines)
