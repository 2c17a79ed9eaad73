"""The ``mlp-crosscheck`` command line: a small dispatch table of subcommands.

Invariants:
- A subcommand is one module and one line in ``SUBCOMMANDS``. The module defines ``HELP`` (a one-line
  summary, also its ``--help`` description), ``add_arguments(parser)`` and ``run(args) -> int`` (the exit code).
- Subcommand modules are imported when the parser is built, and must themselves import no framework at
  module level (torch and jax load only through ``backends.builtin``), so ``mlp-crosscheck --help`` is fast
  and works without either framework installed.
- ``main`` returns the exit code instead of calling ``sys.exit``, so tests call ``main([...])`` directly;
  the console script wrapper passes the code to ``sys.exit``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

# subcommand -> the module that implements it (HELP, add_arguments(parser), run(args) -> int)
SUBCOMMANDS: dict[str, str] = {
    "check": "mlp_crosscheck.commands.check",
    "reproduce": "mlp_crosscheck.commands.reproduce",
    "sweep": "mlp_crosscheck.commands.sweep",
    "bench": "mlp_crosscheck.commands.bench",
    "faults": "mlp_crosscheck.commands.faults",
    "compare": "mlp_crosscheck.commands.compare",
    "conventions": "mlp_crosscheck.commands.conventions",
}


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with one subparser per entry of ``SUBCOMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="mlp-crosscheck",
        description="Cross-framework verification of neural-network maths (NumPy reference, PyTorch, JAX).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[object] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand and return its exit code.

    argparse errors (unknown option, bad value) exit with code 2 through ``SystemExit``, as usual.
    """
    parser = build_parser()
    # str() each item so that callers (tests) may pass paths as ``pathlib.Path``.
    args = parser.parse_args(None if argv is None else [str(a) for a in argv])
    if args.command is None:
        parser.print_help()
        return 2
    return int(args.run(args))
