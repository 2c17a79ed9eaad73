"""The backend registry's plumbing, in process: the preflight call, the batched evaluator, threads, versions.

The plugin's and the sweep's tests reach these through subprocesses; these unit tests reach them where
mutation testing can see them (``scripts/mutmut.cfg`` selects this file). Fake backends are registered in
``BUILTINS`` for one test each, from modules written to ``tmp_path``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import textwrap

import numpy as np
import pytest
from mlp_crosscheck.backends import numpy_backend
from mlp_crosscheck.reference import activations
from mlp_crosscheck.reference.batched import NetworkStack, loss_and_gradients_batched, loss_batched
from mlp_crosscheck.reference.network import Network, loss

from mlp_crosscheck import backends

FAKE = """
import numpy as np
NAME = "fake"
ACTIVATIONS = ("tanh",)
DTYPES = ("float32", "float64")
THREADS = []

def forward(weights, biases, activations, x):
    {forward}
    a = x
    for layer, w in enumerate(weights):
        a = np.tanh(a @ w + (0 if biases is None else biases[layer]))
    return a

def loss_and_gradients(weights, biases, activations, x, y):
    return 0.0, [np.zeros_like(w) for w in weights], None if biases is None else [np.zeros_like(b) for b in biases]

def set_threads(threads):
    THREADS.append(threads)

class Batched:
    def __init__(self, chunk):
        self.chunk = chunk
"""


@pytest.fixture
def register(tmp_path, monkeypatch):
    """Register a fake backend ``fake`` (framework numpy), its ``forward`` starting with the given line."""

    def register_fake(forward_first_line: str = "pass", environment=()) -> str:
        module = f"fake_backend_{len(list(tmp_path.iterdir()))}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(FAKE).replace("{forward}", forward_first_line))
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setitem(backends.BUILTINS, "fake", backends.Builtin("numpy", module, tuple(environment)))
        return module

    yield register_fake
    for name in [m for m in sys.modules if m.startswith("fake_backend_")]:
        del sys.modules[name]


def test_first_call_problem_is_none_for_a_working_backend() -> None:
    assert backends.first_call_problem("numpy") is None
    assert backends.first_call_problem("numpy", "cpu") is None


def test_first_call_problem_names_the_stage_the_error_and_the_versions(register) -> None:
    register("raise RuntimeError('no kernel for this dtype\\nsecond line')")
    problem = backends.first_call_problem("fake")
    assert problem == (
        "a float32 call on its default device failed: ContractError: fake.forward raised RuntimeError: no kernel "
        f"for this dtype (numpy {np.__version__})"
    )


def test_first_call_problem_reports_a_failure_to_load_and_a_device_it_cannot_use() -> None:
    assert backends.first_call_problem("numpy", "cuda") == (
        f"loading it failed: ValueError: the numpy backend runs on the cpu only, not 'cuda' (numpy {np.__version__})"
    )


def test_first_call_problem_of_a_float64_failure_names_float64(register) -> None:
    register("assert x.dtype != np.float64, 'float64 unsupported'")
    assert backends.first_call_problem("fake", "cpu") == (
        "a float64 call on cpu failed: ContractError: fake.forward raised AssertionError: float64 unsupported "
        f"(network (2, 3, 1), activations ['tanh', 'tanh'], float64, biases yes) (numpy {np.__version__})"
    )


def test_first_call_problem_names_every_distribution_behind_the_framework(monkeypatch) -> None:
    monkeypatch.setitem(backends.BUILTINS, "broken", backends.Builtin("jax", "no_such_module_for_a_test"))
    problem = backends.first_call_problem("broken")
    assert problem is not None
    assert problem.startswith("loading it failed: ModuleNotFoundError: ")
    assert problem.endswith(f"(jax {backends.version('jax')}, jaxlib {backends.version('jaxlib')})")


def test_version_reads_the_installed_metadata() -> None:
    assert backends.version("numpy") == importlib.metadata.version("numpy") == np.__version__
    assert backends.version("no-such-distribution-for-a-test") == "not installed"


def test_batched_returns_the_backends_evaluator(register) -> None:
    module = register()
    evaluator = backends.batched("fake", 7)
    assert type(evaluator).__module__ == module
    assert evaluator.chunk == 7
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        backends.batched("nope", 7)


def test_batched_of_a_missing_framework_is_an_import_error(monkeypatch) -> None:
    monkeypatch.setitem(backends.BUILTINS, "absent", backends.Builtin("no_such_framework_for_a_test", "x"))
    with pytest.raises(ImportError, match="no_such_framework_for_a_test is not installed"):
        backends.batched("absent", 7)


def test_limit_threads_sets_the_one_thread_environment_once_and_calls_set_threads(register, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_FLAGS", "--other")
    module = register(environment=(("FAKE_FLAGS", "--one-thread"),))
    backends.limit_threads(["absent-and-skipped", "fake"], 1)
    backends.limit_threads(["fake"], 1)
    assert os.environ["FAKE_FLAGS"] == "--other --one-thread"  # appended, and only once
    assert sys.modules[module].THREADS == [1, 1]


def test_limit_threads_sets_an_unset_variable_to_the_one_thread_value(register, monkeypatch) -> None:
    monkeypatch.delenv("FAKE_FLAGS", raising=False)
    register(environment=(("FAKE_FLAGS", "--one-thread"),))
    backends.limit_threads(["fake"], 1)
    assert os.environ["FAKE_FLAGS"] == "--one-thread"


def test_limit_threads_beyond_one_leaves_the_environment_alone(register, monkeypatch) -> None:
    monkeypatch.delenv("FAKE_FLAGS", raising=False)
    module = register(environment=(("FAKE_FLAGS", "--one-thread"),))
    backends.limit_threads(["fake"], 2)
    assert "FAKE_FLAGS" not in os.environ
    assert sys.modules[module].THREADS == [2]


def _stack(n: int = 3, dtype=np.float64) -> tuple[NetworkStack, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    nets = [
        Network(
            (rng.standard_normal((2, 3)), rng.standard_normal((3, 1))),
            (rng.standard_normal(3), rng.standard_normal(1)),
            ("tanh", "relu"),
        ).astype(dtype)
        for _ in range(n)
    ]
    x = rng.standard_normal((n, 4, 2)).astype(dtype)
    y = rng.standard_normal((n, 4, 1)).astype(dtype)
    return NetworkStack.stack(nets), x, y


def test_the_numpy_backends_batched_evaluation_is_the_batched_reference() -> None:
    stack, x, y = _stack()
    losses, grads = numpy_backend.Batched(16).evaluate(stack, x, y)
    expected_losses, expected = loss_and_gradients_batched(stack, x, y)
    np.testing.assert_array_equal(losses, expected_losses)
    actual = (*grads.weights, *grads.biases, grads.x)
    for g, e in zip(actual, (*expected.weights, *expected.biases, expected.x), strict=True):
        np.testing.assert_array_equal(g, e)


def test_loss_batched_is_each_networks_loss() -> None:
    rng = np.random.default_rng(4)
    out, y = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    np.testing.assert_array_equal(loss_batched(out, y), [loss(out[k], y[k]) for k in range(3)])
    assert loss_batched(out.astype(np.float32), y.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("name", activations.NAMES)
def test_the_numpy_backends_activation_values_are_the_references(name: str) -> None:
    z = np.array([-800.0, -3.0, -1e-30, 0.0, 1e-30, 0.5, 3.0, 800.0])
    value, slope = numpy_backend.activation_and_derivative(name, z)
    np.testing.assert_array_equal(value, activations.apply(name, z))
    np.testing.assert_array_equal(slope, activations.derivative(name, z))


class _OnADevice:
    """What a framework backend builds per device: forward and loss_and_input_gradients that record the device."""

    def __init__(self, device: str) -> None:
        self.device = device

    def forward(self, weights, biases, activations, x):
        return (self.device, weights, biases, activations, x)

    def loss_and_input_gradients(self, weights, biases, activations, x, y):
        return (1.0, (self.device, weights, biases, activations, x, y), None, "dx")


def test_default_device_is_the_environment_variable_else_cpu(monkeypatch) -> None:
    from mlp_crosscheck.backends.contract import default_device

    monkeypatch.delenv("MLP_CROSSCHECK_DEVICE", raising=False)
    assert default_device() == "cpu"
    monkeypatch.setenv("MLP_CROSSCHECK_DEVICE", "cuda")
    assert default_device() == "cuda"


def test_functions_of_and_on_device_of_give_a_devices_contract(monkeypatch) -> None:
    from types import ModuleType

    from mlp_crosscheck.backends.contract import functions_of, on_device_of

    forward, loss_and_gradients, loss_and_input_gradients = functions_of(_OnADevice("cpu"))
    call = ("w", "b", "a", "x")
    assert forward(*call) == ("cpu", *call)
    assert loss_and_gradients(*call, "y") == (1.0, ("cpu", *call, "y"), None)  # every argument passed, dx dropped
    assert loss_and_input_gradients(*call, "y") == (1.0, ("cpu", *call, "y"), None, "dx")

    module = ModuleType("a_backend_for_a_test")
    module.KINK_DERIVATIVES = {"relu": 0.0}
    monkeypatch.setitem(sys.modules, module.__name__, module)
    on_cuda = on_device_of(module.__name__, _OnADevice)("cuda")
    assert on_cuda.KINK_DERIVATIVES == {"relu": 0.0}  # the module's declarations, kept
    assert on_cuda.forward(*call) == ("cuda", *call)
    assert on_cuda.loss_and_gradients(*call, "y") == (1.0, ("cuda", *call, "y"), None)
    assert on_cuda.loss_and_input_gradients(*call, "y")[3] == "dx"


def test_first_call_problem_of_an_error_without_a_message(tmp_path, monkeypatch) -> None:
    (tmp_path / "fake_backend_silent.py").write_text("raise ImportError()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(backends.BUILTINS, "silent", backends.Builtin("numpy", "fake_backend_silent"))
    assert backends.first_call_problem("silent") == f"loading it failed: ImportError:  (numpy {np.__version__})"


def test_the_contract_names_load_lazily_from_the_package() -> None:
    from mlp_crosscheck.backends import contract

    assert backends.ContractError is contract.ContractError
    assert backends.Implementation is contract.Implementation
    assert backends.load is contract.load
    with pytest.raises(AttributeError, match=r"^module 'mlp_crosscheck\.backends' has no attribute 'nope'$"):
        backends.nope  # noqa: B018


def test_builtin_records_which_builtin_it_is_on_every_device(register, monkeypatch) -> None:
    assert backends.builtin("numpy").builtin == "numpy"
    assert backends.builtin("numpy", "cpu").builtin == "numpy"
    module = importlib.import_module(register())
    monkeypatch.setattr(module, "on_device", lambda device: module, raising=False)
    assert backends.builtin("fake", "cuda").builtin == "fake"
