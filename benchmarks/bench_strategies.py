"""Print the cost of generating one example with the project's strategies against naive ``arrays()``.

Run: ``python benchmarks/bench_strategies.py [--examples N]``. Prints figures; asserts nothing about speed.

Each row times a ``@given`` test with an empty body (generation phase only, no database, no deadline), so
the figure is Hypothesis's own cost per example: engine overhead plus the strategy's draws and building.
The naive rows draw the same arrays as the case with ``hypothesis.extra.numpy.arrays`` (finite, normal floats),
as a property test written without these strategies would.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlp_crosscheck.properties import strategies as ps
from mlp_crosscheck.reference import seed


def per_example_seconds(strategy: st.SearchStrategy, examples: int, repeats: int) -> tuple[float, int]:
    """Return the best over ``repeats`` runs of the mean wall time per generated example, and the examples run.

    The best of several runs, because other processes on a shared machine only ever add time.
    """
    return min(_one_run(strategy, examples) for _ in range(repeats))


def _one_run(strategy: st.SearchStrategy, examples: int) -> tuple[float, int]:
    calls = 0

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def generate(_value) -> None:
        nonlocal calls
        calls += 1

    start = time.perf_counter()
    generate()
    return (time.perf_counter() - start) / calls, calls


def naive_arrays(shapes: list[tuple[int, ...]], dtype=np.float64) -> st.SearchStrategy:
    elements = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)
    return st.tuples(*(hnp.arrays(dtype, shape, elements=elements) for shape in shapes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    arch, batch = seed.ARCHITECTURE, 4
    weight_shapes = [(m, n) for m, n in itertools.pairwise(arch)]
    x_shape, y_shape = (batch, arch[0]), (batch, arch[-1])
    wide = {"activations": "tanh", "dtype": "float64", "widths": (16,) * 5}
    rows = [
        ("one integer (Hypothesis's floor)", st.integers(0, 2**32 - 1)),
        ("architectures()", ps.architectures()),
        (
            "cases 3-4-10-1, batch 4, no biases",
            ps.cases(activations="tanh", dtype="float64", widths=arch, batch=batch, biases=False),
        ),
        ("cases, every option drawn (mixed)", ps.cases(activations="mixed", dtype="float64")),
        ("cases, well_scaled", ps.cases(activations="mixed", dtype="float64", well_scaled=True)),
        ("arrays(): x + 3 weights (4 arrays)", naive_arrays([x_shape, *weight_shapes])),
        ("arrays(): x, y + 3 weights (5 arrays)", naive_arrays([x_shape, y_shape, *weight_shapes])),
        # The largest default architecture: 16 wide, 4 deep, batch 16 (x, y and 4 weights of 16 x 16).
        ("cases 16x4 layers, batch 16, no biases", ps.cases(**wide, batch=16, biases=False)),
        ("arrays(): same 6 arrays of 16 x 16", naive_arrays([(16, 16)] * 6)),
    ]
    print(f"Hypothesis generation cost per example (float64; best of {args.repeats} runs of {args.examples} examples)")
    figures = {}
    for name, strategy in rows:
        seconds, calls = per_example_seconds(strategy, args.examples, args.repeats)
        figures[name] = seconds
        print(f"  {name:<42} {seconds * 1e6:9.0f} us   ({calls} examples)")
    ours = figures["cases 3-4-10-1, batch 4, no biases"]
    naive = figures["arrays(): x, y + 3 weights (5 arrays)"]
    print(f"same arrays via arrays() / via cases(): {naive / ours:.1f}x")


if __name__ == "__main__":
    main()
