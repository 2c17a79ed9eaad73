"""A new framework is one module and one registry line (backends/README.md): shown with a fake one.

``fake_backend`` below is a minimal framework-free backend, written from the checklist: the contract, its
recorded behaviours, and a ``Batched`` class. The test registers it in ``backends.BUILTINS`` in a fresh
process (this folder is not edited) and runs the contract properties and a sweep with ``--backends fake``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

FAKE_BACKEND = '''
"""A fake framework: tanh and relu networks, backprop written out (the checklist's minimum)."""

import numpy as np

from mlp_crosscheck.reference.batched import Gradients

NAME = "fake"
ACTIVATIONS = ("identity", "tanh", "relu")
DTYPES = ("float32", "float64")
KINK_DERIVATIVES = {"relu": 0.0}
FLUSHES_SUBNORMALS = False
RECORDED_WITH = ("numpy", np.__version__)

_F = {"identity": lambda z: z, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}
_D = {
    "identity": np.ones_like,
    "tanh": lambda z: 1 - np.tanh(z) ** 2,
    "relu": lambda z: (z > 0).astype(z.dtype),
}


def _forward(weights, biases, activations, x):
    a, inputs, pre = x, [], []
    for layer, (w, name) in enumerate(zip(weights, activations)):
        z = a @ w if biases is None else a @ w + biases[layer]
        inputs.append(a)
        pre.append(z)
        a = _F[name](z)
    return a, inputs, pre


def forward(weights, biases, activations, x):
    return _forward(weights, biases, activations, x)[0]


def loss_and_input_gradients(weights, biases, activations, x, y):
    out, inputs, pre = _forward(weights, biases, activations, x)
    d_a = out - y
    loss = float(0.5 * np.sum(d_a * d_a))
    dws, dbs = [None] * len(weights), [None] * len(weights)
    for layer in reversed(range(len(weights))):
        delta = d_a * _D[activations[layer]](pre[layer])
        dws[layer], dbs[layer] = inputs[layer].T @ delta, delta.sum(axis=0)
        d_a = delta @ weights[layer].T
    return loss, dws, None if biases is None else dbs, d_a


def loss_and_gradients(weights, biases, activations, x, y):
    return loss_and_input_gradients(weights, biases, activations, x, y)[:3]


class Batched:
    def __init__(self, chunk):
        pass

    def evaluate(self, stack, x, y):
        results = []
        for k in range(stack.count):
            net = stack.network(k)
            results.append(loss_and_input_gradients(net.weights, net.biases, net.activations, x[k], y[k]))
        losses, dws, dbs, dxs = zip(*results)
        weights = tuple(np.stack(g) for g in zip(*dws))
        biases = None if stack.biases is None else tuple(np.stack(g) for g in zip(*dbs))
        return np.array(losses, dtype=x.dtype), Gradients(weights, biases, np.stack(dxs))
'''

REGISTER_AND_RUN = """
import sys
import pytest
from mlp_crosscheck import backends
from mlp_crosscheck.cli import main

backends.BUILTINS["fake"] = backends.Builtin("numpy", "fake_backend")  # the one registry line
claims = ["mlp_crosscheck.properties.test_contract", "mlp_crosscheck.properties.test_gradient_agreement"]
code = pytest.main(["--pyargs", *claims, "--backends=fake", "--require-backends", "-q", "-p", "no:cacheprovider",
                    "--hypothesis-profile=ci", "-k", SELECTION])
print("PYTEST EXIT", int(code), flush=True)
code = main(["sweep", "--backends", "fake", "--networks", "300", "--activation", "relu", "--quiet"])
print("SWEEP EXIT", code, flush=True)
"""


def run_with_fake_backend(tmp_path, backend_source: str, selection: str) -> subprocess.CompletedProcess:
    (tmp_path / "fake_backend.py").write_text(textwrap.dedent(backend_source))
    script = f"SELECTION = {selection!r}\n" + REGISTER_AND_RUN
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.slow
def test_a_fake_backend_registered_in_one_line_passes_the_contract_and_the_sweep(tmp_path) -> None:
    proc = run_with_fake_backend(tmp_path, FAKE_BACKEND, "not bitwise")
    out = proc.stdout + proc.stderr
    assert "PYTEST EXIT 0" in out, out
    assert " passed" in out, out
    assert "SWEEP EXIT 0" in out, out
    assert "300" in out, out


@pytest.mark.slow
def test_a_fake_backend_with_a_wrong_gradient_fails_the_same_checks(tmp_path) -> None:
    broken = FAKE_BACKEND.replace("dws[layer], dbs[layer] = inputs", "dws[layer], dbs[layer] = 2 * inputs")
    assert broken != FAKE_BACKEND
    proc = run_with_fake_backend(tmp_path, broken, "not bitwise")
    out = proc.stdout + proc.stderr
    assert "PYTEST EXIT 1" in out, out
    assert "SWEEP EXIT 1" in out, out
