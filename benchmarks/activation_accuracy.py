"""Measure how accurately each backend evaluates every activation and its derivative.

Prints, per dtype, activation and backend, the largest ratio of the error (against 60-digit mpmath) to the
model in properties/tolerances.py:  value: u (|sigma(z)| + |z|) + tiny;  derivative: u (|sigma'(z)| + 1) + tiny.
C_VALUE and C_DERIVATIVE there are twice the largest ratios printed here, rounded up to a power of two.

    python benchmarks/activation_accuracy.py [--points 20000]
"""

from __future__ import annotations

import argparse
import importlib

import numpy as np
from mlp_crosscheck.properties.accuracy import exact
from mlp_crosscheck.properties.tolerances import C_DERIVATIVE, C_VALUE, unit_roundoff
from mlp_crosscheck.reference import activations

from mlp_crosscheck import backends


def _points(n: int, dtype) -> np.ndarray:
    rng = np.random.default_rng(0)
    magnitudes = 10.0 ** rng.uniform(-20, np.log10(800), n)  # log-uniform over 1e-20..800
    z = magnitudes * rng.choice([-1.0, 1.0], n)
    return np.concatenate([z, [0.0, 19.9, 20.1, 39.9, 40.1, -88.7, -709.0, 710.0]]).astype(dtype)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20000)
    args = parser.parse_args(argv)
    print(f"model constants: C_VALUE {C_VALUE}, C_DERIVATIVE {C_DERIVATIVE}; ratios must stay below them")
    print(f"{'dtype':8} {'activation':11} {'backend':7} {'value ratio':>12} {'deriv ratio':>12}")
    worst = [0.0, 0.0]
    for dtype in (np.float32, np.float64):
        u, tiny = unit_roundoff(dtype), float(np.finfo(dtype).smallest_normal)
        z = _points(args.points, dtype)
        for name in activations.NAMES:
            exact_values = np.array([exact(name, float(t)) for t in z])
            for backend in backends.available():
                v, d = _evaluate(backend, name, z)
                ev = np.abs(v.astype(np.float64) - exact_values[:, 0]) / (
                    u * (np.abs(exact_values[:, 0]) + np.abs(z)) + tiny
                )
                ed = np.abs(d.astype(np.float64) - exact_values[:, 1]) / (u * (np.abs(exact_values[:, 1]) + 1) + tiny)
                ev[z == 0] = ed[z == 0] = 0  # at a kink the convention table decides, not accuracy
                worst = [max(worst[0], ev.max()), max(worst[1], ed.max())]
                print(f"{np.dtype(dtype).name:8} {name:11} {backend:7} {ev.max():12.3g} {ed.max():12.3g}")
    print(f"largest: value {worst[0]:.3g}, derivative {worst[1]:.3g}")


def _evaluate(backend: str, name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return sigma(z) and sigma'(z) as the backend computes them: its own function and its own autodiff."""
    return importlib.import_module(backends.BUILTINS[backend].module).activation_and_derivative(name, z)


if __name__ == "__main__":
    main()
