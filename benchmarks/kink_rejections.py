"""How many gradient examples near a kink were rejected before both branches were checked, and how many now.

Draws the gradient-agreement family's own cases (``helpers.cases_for(..., large=True)``) for relu, leaky_relu
and mixed, in float32 and float64, and counts the examples with a pre-activation within its error bound of a
kink (all rejected by ``assume_no_ambiguous_kinks`` before) and those with more than
``MAX_BRANCH_ASSIGNMENTS`` ways of taking their branches (the only ones rejected now).

    python benchmarks/kink_rejections.py [examples per combination, default 2000]
"""

from __future__ import annotations

import sys

import numpy as np
from hypothesis import given, settings
from mlp_crosscheck.properties import helpers, profiles, tolerances

from mlp_crosscheck import backends

# The numpy backend: its conventions at exact kinks are the reference's.
NUMPY = backends.builtin("numpy")


def count(activation: str, dtype, examples: int) -> tuple[int, int]:
    ambiguous = too_many = 0

    @settings(profiles.FIND, max_examples=examples)  # generate only: a fixed, reproducible draw
    @given(helpers.cases_for(None, activation, dtype, large=True))
    def draw(case) -> None:
        nonlocal ambiguous, too_many
        bounds = tolerances.gradient_bounds(*case)
        if any(m.any() for m in bounds.ambiguous):
            ambiguous += 1
            too_many += helpers.branch_assignments(case.net, bounds, NUMPY) is None

    draw()
    return ambiguous, too_many


def main() -> None:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(f"{'activation':<11} {'dtype':<8} {'examples':>8} {'rejected before':>16} {'rejected now':>13}")
    for activation in ("relu", "leaky_relu", "mixed"):
        for dtype in (np.float32, np.float64):
            ambiguous, too_many = count(activation, np.dtype(dtype), examples)
            before, now = (f"{n} ({100 * n / examples:.1f} %)" for n in (ambiguous, too_many))
            print(f"{activation:<11} {np.dtype(dtype).name:<8} {examples:>8} {before:>16} {now:>13}")


if __name__ == "__main__":
    main()
