"""CPU time of the reference's hot paths: the per-network loss and gradients, and the batched one.

The per-network ``loss_and_gradients`` is called thousands of times per property run (small networks), the
batched ``loss_and_gradients_batched`` drives ``mlp-crosscheck sweep``. With ``--against REV`` the
``reference/`` of that git revision is loaded beside the working tree's and both are timed in one run,
interleaved, so a change can be measured on a shared machine. Process CPU time, the minimum over repeats.

    python benchmarks/reference_paths.py [--against REV] [--repeats 7]
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
from revisions import package_at  # benchmarks/revisions.py: a script's folder is on sys.path

NAMESPACE = "mlp_crosscheck.reference"
MODULES = ("activations", "network", "batched")


def load_revision(rev: str, into: Path) -> tuple[ModuleType, ModuleType]:
    """Return ``(network, batched)`` of ``reference/`` at git revision ``rev``, as a package of its own."""
    package = package_at(rev, "reference", MODULES, into, lambda source, package: source.replace(NAMESPACE, package))
    return importlib.import_module(f"{package}.network"), importlib.import_module(f"{package}.batched")


def working_tree() -> tuple[ModuleType, ModuleType]:
    from mlp_crosscheck.reference import batched, network

    return network, batched


def parameters(rng, widths, lead=()):
    weights = [rng.standard_normal((*lead, a, b)) / np.sqrt(a) for a, b in itertools.pairwise(widths)]
    return weights, [rng.standard_normal((*lead, b)) for b in widths[1:]]


def cases(network: ModuleType, batched: ModuleType) -> dict[str, tuple]:
    """Return label -> (function, calls per timing) for one version of the reference."""
    rng = np.random.default_rng(0)
    small = network.Network(*parameters(rng, (3, 4, 10, 1)), ("tanh",) * 3)
    xs, ys = rng.standard_normal((4, 3)), rng.standard_normal((4, 1))
    deep_widths = (32,) * 7
    deep = network.Network(*parameters(rng, deep_widths), ("tanh",) * 6)
    xd, yd = rng.standard_normal((64, 32)), rng.standard_normal((64, 32))
    n = 10_000
    stack = batched.NetworkStack(*parameters(rng, (3, 4, 10, 1), (n,)), ("tanh",) * 3)
    xb, yb = rng.standard_normal((n, 4, 3)), rng.standard_normal((n, 4, 1))
    weights, biases = parameters(rng, (3, 4, 10, 1))
    return {
        "Network(...) 3-4-10-1": (lambda: network.Network(weights, biases, ("tanh",) * 3), 2000),
        "loss_and_gradients 3-4-10-1 tanh f64 batch 4": (lambda: network.loss_and_gradients(small, xs, ys), 2000),
        "loss_and_gradients depth 6 width 32 batch 64": (lambda: network.loss_and_gradients(deep, xd, yd), 300),
        "loss_and_gradients_batched 10000 x 3-4-10-1 batch 4": (
            lambda: batched.loss_and_gradients_batched(stack, xb, yb),
            3,
        ),
    }


def seconds_per_call(function, calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        function()
    return (time.process_time() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="also time reference/ at this git revision")
    parser.add_argument("--repeats", type=int, default=7, help="timings per case and version; the minimum is kept")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        versions = {"working tree": cases(*working_tree())}
        if args.against:
            versions = {args.against: cases(*load_revision(args.against, Path(tmp))), **versions}
        best = {(v, c): float("inf") for v in versions for c in versions["working tree"]}
        for _ in range(args.repeats):
            for label in versions["working tree"]:
                for version, table in versions.items():  # interleaved: a load spike hits both versions
                    function, calls = table[label]
                    best[version, label] = min(best[version, label], seconds_per_call(function, calls))
    names = list(versions)
    print(f"CPU time per call, minimum of {args.repeats} (numpy {np.__version__})")
    print(f"{'case':<52}" + "".join(f"{n:>16}" for n in names) + ("    change" if len(names) == 2 else ""))
    for label in versions["working tree"]:
        times = [best[n, label] for n in names]
        row = f"{label:<52}" + "".join(f"{_format(t):>16}" for t in times)
        if len(times) == 2:
            row += f"  {100 * (times[1] / times[0] - 1):+7.1f} %"
        print(row)


def _format(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-2 else f"{seconds * 1e3:.1f} ms"


if __name__ == "__main__":
    main()
