"""A new framework is one module and one registry line (backends/README.md): shown with a fake one.

``fake_backend`` below is a minimal framework-free backend, written from the checklist: the contract (its
maths borrowed from ``tests/faults/correct_fault_skeleton.py``), its recorded behaviours, and a ``Batched``
class. The test registers it in ``backends.BUILTINS`` in a fresh process (this folder is not edited) and runs
the contract properties and a sweep with ``--backends fake``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FAULTS = Path(__file__).resolve().parent / "faults"

FAKE_BACKEND = '''
"""A fake framework: its "autodiff" is the planted corpus's fault-free backprop (the checklist's minimum)."""

import numpy as np
from correct_fault_skeleton import forward
from correct_fault_skeleton import loss_and_input_gradients as _backprop

from mlp_crosscheck.reference.batched import Gradients

NAME = "fake"
ACTIVATIONS = ("identity", "tanh", "relu")
DTYPES = ("float32", "float64")
KINK_DERIVATIVES = {"relu": 0.0}
FLUSHES_SUBNORMALS = False
RECORDED_WITH = ("numpy", np.__version__)


def loss_and_input_gradients(weights, biases, activations, x, y):
    loss, dws, dbs, dx = _backprop(weights, biases, activations, x, y)
    return loss, dws, dbs, dx


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
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(FAULTS)])},
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
    broken = FAKE_BACKEND.replace("return loss, dws, dbs, dx", "return loss, [2 * g for g in dws], dbs, dx")
    assert broken != FAKE_BACKEND
    proc = run_with_fake_backend(tmp_path, broken, "not bitwise")
    out = proc.stdout + proc.stderr
    assert "PYTEST EXIT 1" in out, out
    assert "SWEEP EXIT 1" in out, out
