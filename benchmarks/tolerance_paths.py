"""CPU time of the error bounds' hot paths: per-network ``gradient_bounds`` and the stacked one the sweep uses.

The property suite calls ``gradient_bounds`` thousands of times on small networks; ``mlp-crosscheck sweep``
calls ``gradient_bounds_batched`` once per chunk, with the float64 reference pass it already has. With
``--against REV`` the ``properties/tolerances.py`` (and ``batched_tolerances.py``, where REV has it) of that
git revision is loaded beside the working tree's, on the working tree's reference, and both are timed in
one run, interleaved, so a change can be measured on a shared machine. Process CPU time, the minimum over
repeats, per call.

    python benchmarks/tolerance_paths.py [--against REV] [--repeats 9]
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from mlp_crosscheck.reference.batched import NetworkStack, backward_batched_traced, forward_batched
from mlp_crosscheck.reference.network import Network
from revisions import package_at  # benchmarks/revisions.py: a script's folder is on sys.path

from mlp_crosscheck.commands import sweep

MODULES = ("tolerances", "batched_tolerances")


def load_revision(rev: str, into: Path) -> tuple[Callable, Callable]:
    """Return ``(gradient_bounds, gradient_bounds_batched)`` of ``properties/`` at git revision ``rev``."""

    def rewrite(source: str, package: str) -> str:
        return source.replace("mlp_crosscheck.properties.tolerances", f"{package}.tolerances")

    # batched_tolerances.py exists only in older revisions
    return _entry_points(package_at(rev, "properties", MODULES, into, rewrite))


def _entry_points(package: str) -> tuple[Callable, Callable]:
    tolerances = importlib.import_module(f"{package}.tolerances")
    batched = getattr(tolerances, "gradient_bounds_batched", None)
    if batched is None:
        batched = importlib.import_module(f"{package}.batched_tolerances").gradient_bounds_batched
    return tolerances.gradient_bounds, batched


def parameters(rng, widths, lead=()):
    weights = tuple(rng.standard_normal((*lead, a, b)) / np.sqrt(a) for a, b in itertools.pairwise(widths))
    return weights, tuple(rng.standard_normal((*lead, b)) for b in widths[1:])


def cases(gradient_bounds: Callable, gradient_bounds_batched: Callable) -> dict[str, tuple[Callable, int]]:
    """Return label -> (function, calls per timing) for one version of the bounds."""
    rng = np.random.default_rng(0)
    small = Network(*parameters(rng, (3, 4, 10, 1)), ("tanh",) * 3)
    xs, ys = rng.standard_normal((4, 3)), rng.standard_normal((4, 1))
    deep = Network(*parameters(rng, (32,) * 7), ("relu",) * 6)
    xd, yd = rng.standard_normal((64, 32)), rng.standard_normal((64, 32))
    n = 10_000
    stack = NetworkStack(*parameters(rng, (3, 4, 10, 1), (n,)), ("tanh",) * 3)
    xb, yb = rng.standard_normal((n, 4, 3)), rng.standard_normal((n, 4, 1))
    out, cache = forward_batched(stack, xb)  # the sweep's float64 baseline, handed to the bounds
    _, trace = backward_batched_traced(stack, cache, out - yb)
    return {
        "gradient_bounds 3-4-10-1 tanh f64 batch 4": (lambda: gradient_bounds(small, xs, ys), 2000),
        "gradient_bounds depth 6 width 32 relu batch 64": (lambda: gradient_bounds(deep, xd, yd), 300),
        "batched 10000 x 3-4-10-1 tanh batch 4, sweep's call": (
            lambda: gradient_bounds_batched(stack, xb, yb, forward64=(out, cache), backward64=trace),
            8,
        ),
        "batched 10000 x 3-4-10-1 tanh batch 4, afresh": (lambda: gradient_bounds_batched(stack, xb, yb), 8),
    }


def seconds_per_call(function: Callable, calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        function()
    return (time.process_time() - start) / calls


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="also time properties/ at this git revision")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    sweep._keep_freed_memory()  # as the sweep does: its temporaries are otherwise unmapped at every free
    versions = {"working tree": _entry_points("mlp_crosscheck.properties")}
    with tempfile.TemporaryDirectory() as into:
        if args.against:
            versions[args.against] = load_revision(args.against, Path(into))
        timed = {version: cases(*functions) for version, functions in versions.items()}
        best: dict[tuple[str, str], float] = {}
        for _ in range(args.repeats):
            for label in timed["working tree"]:
                for version, table in timed.items():  # interleaved: the machine's load hits both alike
                    function, calls = table[label]
                    seconds = seconds_per_call(function, calls)
                    best[label, version] = min(best.get((label, version), float("inf")), seconds)
    print(f"process CPU time per call, minimum of {args.repeats} repeats")
    for label in timed["working tree"]:
        figures = "   ".join(f"{version}: {best[label, version] * 1e3:9.3f} ms" for version in timed)
        ratio = ""
        if args.against:
            ratio = f"   ratio {best[label, 'working tree'] / best[label, args.against]:.3f}"
        print(f"{label:55s} {figures}{ratio}")


if __name__ == "__main__":
    main()
