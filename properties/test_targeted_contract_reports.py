"""Targeted: the contract's promises that mutation testing found unchecked (``docs/mutation.md``).

``backends/contract.py`` promises that every breach "raises ``ContractError`` with a message that names the
module, the function and exactly what is wrong"; ``tests/test_contract_loader.py`` matches what is wrong,
these check the rest of each message, and the loader's and the registry's remaining behaviour: a 0-d array
is a valid loss, NaN inputs are not "mutated", a file that defines a dataclass loads, ``DTYPES`` is read,
and ``builtin(name, device)`` picks the device through the module's ``on_device``. (Plain tests, not
Hypothesis properties: each claim is about one planted breach; they live here with the other targeted
checks so that the mutation run's test selection, ``properties/``, includes them.)
"""

from __future__ import annotations

import textwrap
import types

import numpy as np
import pytest
from mlp_crosscheck.backends.contract import ContractError, Implementation
from mlp_crosscheck.reference.network import Network

from mlp_crosscheck import backends


def _case(biases=True):
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((3, 4)), rng.standard_normal((4, 2))]
    bs = [np.ones(4), np.ones(2)] if biases else None
    return Network(ws, bs, ["identity"] * 2), np.ones((5, 3)), np.zeros((5, 2))


def _impl(**functions) -> Implementation:
    class M:
        NAME = "planted"

    for k, v in functions.items():
        setattr(M, k, staticmethod(v))
    return Implementation(M)


GRADS = [np.zeros((3, 4)), np.zeros((4, 2))]
BIAS_GRADS = [np.zeros(4), np.zeros(2)]


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ((1.0, None), "planted.loss_and_gradients must return a 3-tuple, got a tuple of length 2"),
        (("1", GRADS, BIAS_GRADS), "planted.loss_and_gradients: the loss must be a real scalar, got a builtins.str"),
        (
            (1.0, GRADS[:1], BIAS_GRADS),
            "planted.loss_and_gradients: dweights must be a list of 2 arrays, got a list of length 1",
        ),
        (
            (1.0, [GRADS[0].T, GRADS[1]], BIAS_GRADS),
            "planted.loss_and_gradients: dweights[0] has shape (4, 3), expected (3, 4)",
        ),
        (
            (1.0, GRADS, [BIAS_GRADS[0], BIAS_GRADS[1].astype(np.float32)]),
            "planted.loss_and_gradients: dbiases[1] is float32, expected float64 (dtype in = out)",
        ),
    ],
)
def test_gradient_breaches_name_the_function_and_the_quantity(returned, message) -> None:
    impl = _impl(forward=lambda *a: None, loss_and_gradients=lambda *a: returned)
    net, x, y = _case()
    with pytest.raises(ContractError) as caught:
        impl.loss_and_gradients(net, x, y)
    assert str(caught.value) == message


def test_output_and_input_gradient_breaches_name_the_function() -> None:
    impl = _impl(
        forward=lambda w, b, a, x: np.zeros((x.shape[0], 2), np.float32),
        loss_and_gradients=lambda *a: None,
        loss_and_input_gradients=lambda w, b, a, x, y: (1.0, GRADS, BIAS_GRADS, np.zeros((5, 2))),
    )
    net, x, y = _case()
    with pytest.raises(ContractError) as caught:
        impl.forward(net, x)
    assert str(caught.value) == "planted.forward: the output is float32, expected float64 (dtype in = out)"
    with pytest.raises(ContractError) as caught:
        impl.loss_and_gradients(net, x, y)
    assert str(caught.value) == "planted.loss_and_input_gradients: dx has shape (5, 2), expected (5, 3)"


@pytest.mark.parametrize("biases", [True, False])
def test_a_raising_call_reports_whether_the_network_had_biases(biases) -> None:
    impl = _impl(forward=lambda *a: 1 / 0, loss_and_gradients=lambda *a: None)
    net, x, _ = _case(biases)
    with pytest.raises(ContractError) as caught:
        impl.forward(net, x)
    assert str(caught.value).endswith(f"float64, biases {'yes' if biases else 'no'})")


def test_mutating_the_target_names_y() -> None:
    def loss_and_gradients(w, b, a, x, y):
        y += 1  # the planted slip
        return 0.0, GRADS, BIAS_GRADS

    net, x, y = _case()
    with pytest.raises(ContractError, match=r"planted.loss_and_gradients mutated its input y;"):
        _impl(forward=lambda *a: None, loss_and_gradients=loss_and_gradients).loss_and_gradients(net, x, y)


def test_nan_inputs_are_not_reported_as_mutated() -> None:
    net, x, _ = _case()
    x[0, 0] = np.nan  # NaN != NaN: the copy check must compare NaN positions, not values
    out = _impl(forward=lambda w, b, a, x: np.zeros((x.shape[0], 2)), loss_and_gradients=lambda *a: None).forward(
        net, x
    )
    assert out.shape == (5, 2)


def test_a_zero_dimensional_array_is_a_valid_loss() -> None:
    impl = _impl(forward=lambda *a: None, loss_and_gradients=lambda *a: (np.array(2.5), GRADS, BIAS_GRADS))
    loss = impl.loss_and_gradients(*_case()).loss
    assert type(loss) is float
    assert loss == 2.5


def test_missing_functions_are_reported_with_the_module_and_its_file() -> None:
    class NoFile:
        NAME = "bare"
        forward = staticmethod(lambda *a: None)

    with pytest.raises(ContractError) as caught:
        Implementation(NoFile)
    assert str(caught.value) == (
        "bare (NoFile): the contract needs a function loss_and_gradients(...), and it defines forward"
    )


def test_dtypes_and_unsupported_activations_are_read_and_listed() -> None:
    class Narrow:
        NAME, ACTIVATIONS, DTYPES = "narrow", ("identity",), ("float32",)
        forward = loss_and_gradients = staticmethod(lambda *a: None)

    impl = Implementation(Narrow)
    assert impl.dtypes == frozenset({"float32"})
    assert impl.unsupported(["tanh", "relu"], "float32") == "narrow does not implement relu, tanh (its ACTIVATIONS)"


def test_a_missing_file_is_named_and_a_dataclass_module_loads(tmp_path) -> None:
    missing = tmp_path / "absent.py"
    with pytest.raises(ContractError) as caught:
        backends.load(str(missing))
    assert str(caught.value) == f"{str(missing)!r}: no such file"
    path = tmp_path / "with_dataclass.py"
    # dataclasses look their module up in sys.modules while the class is created: the loader must register it.
    path.write_text(
        textwrap.dedent("""
        from dataclasses import dataclass
        import numpy as np

        @dataclass
        class Layer:
            w: np.ndarray

        def forward(weights, biases, activations, x):
            return x @ Layer(weights[0]).w

        def loss_and_gradients(weights, biases, activations, x, y):
            raise NotImplementedError
    """)
    )
    assert backends.load(str(path)).name == "with_dataclass"


def test_available_and_unknown_backends_list_the_builtins() -> None:
    assert "numpy" in backends.available()
    assert backends.missing_reason("tf") == "unknown backend 'tf'; the built-in backends are numpy, torch, jax"


def test_builtin_picks_the_device_through_on_device(tmp_path, monkeypatch) -> None:
    (tmp_path / "device_backend.py").write_text(
        textwrap.dedent("""
        import types
        NAME = "device_backend"
        forward = loss_and_gradients = lambda *a: None

        def on_device(device):
            return types.SimpleNamespace(NAME=f"device_backend-{device}", forward=forward, loss_and_gradients=forward)
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(backends.BUILTINS, "device_backend", ("numpy", "device_backend"))
    assert backends.builtin("device_backend").name == "device_backend"
    assert backends.builtin("device_backend", "cpu").name == "device_backend-cpu"
    assert backends.builtin("device_backend", "cuda").name == "device_backend-cuda"
    assert backends.builtin("numpy", "cpu").name == "numpy"
    with pytest.raises(ValueError, match=r"^the numpy backend runs on the cpu only, not 'cuda'$"):
        backends.builtin("numpy", "cuda")


def test_modules_without_a_name_are_reported_by_their_type() -> None:
    bare = types.SimpleNamespace(NAME="bare", forward=lambda *a: None)
    with pytest.raises(ContractError) as caught:
        Implementation(bare)
    assert str(caught.value).startswith("bare (SimpleNamespace): the contract needs a function loss_and_gradients")
