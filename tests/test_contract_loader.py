"""The contract loader and its checks: every breach is reported with a message that names it."""

import textwrap
from pathlib import Path

import numpy as np
import pytest
from mlp_crosscheck.backends.contract import ContractError, Implementation
from mlp_crosscheck.reference.network import Network

from mlp_crosscheck import backends

CORRECT = """
import numpy as np
NAME = "{name}"

def forward(weights, biases, activations, x):
    a = x
    for i, w in enumerate(weights):
        a = a @ w + (0 if biases is None else biases[i])
    return a

def loss_and_gradients(weights, biases, activations, x, y):
    acts = [x]
    for i, w in enumerate(weights):
        acts.append(acts[-1] @ w + (0 if biases is None else biases[i]))
    d = acts[-1] - y
    dws, dbs = [], []
    for i in reversed(range(len(weights))):
        dws.insert(0, acts[i].T @ d)
        dbs.insert(0, d.sum(axis=0))
        d = d @ weights[i].T
    return float(0.5 * np.sum((acts[-1] - y) ** 2)), dws, (None if biases is None else dbs)
"""


def _write(tmp_path, body, name="user_impl"):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


def _case(dtype="float64", biases=True):
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal((4, 2)).astype(dtype)]
    bs = [np.ones(4, dtype), np.ones(2, dtype)] if biases else None
    return Network(ws, bs, ["identity"] * 2), np.ones((5, 3), dtype), np.zeros((5, 2), dtype)


def test_a_file_that_imports_its_sibling_module_loads(tmp_path):
    _write(tmp_path, "SCALE = 1\n", name="my_helpers")
    path = _write(tmp_path, "import my_helpers\n" + CORRECT.format(name="with_sibling"))
    impl = backends.load(str(path))
    net, x, _ = _case()
    assert impl.name == "with_sibling"
    assert impl.forward(net, x).shape == (5, 2)


def test_a_module_name_loads_and_the_name_defaults_to_the_file_stem(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    _write(tmp_path, CORRECT.replace('NAME = "{name}"', ""), name="plain_module")
    assert backends.load("plain_module").name == "plain_module"
    assert backends.load(str(tmp_path / "plain_module.py")).name == "plain_module"


def test_a_file_named_like_a_real_package_does_not_shadow_it(tmp_path):
    impl = backends.load(str(_write(tmp_path, CORRECT.format(name="shadow"), name="numpy")))
    assert impl.name == "shadow"
    assert np.__name__ == "numpy"
    assert hasattr(np, "ndarray")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no/such/file.py", "no such file"),
        ("no_such_module_anywhere", "no such file, and importing it as a module failed"),
    ],
)
def test_missing_files_and_modules_are_named(spec, message):
    with pytest.raises(ContractError, match=message):
        backends.load(spec)


def test_a_module_that_fails_to_import_says_why(tmp_path):
    with pytest.raises(ContractError, match="importing it raised ZeroDivisionError"):
        backends.load(str(_write(tmp_path, "1 / 0\n")))


def test_a_missing_function_is_named(tmp_path):
    with pytest.raises(ContractError, match=r"needs a function loss_and_gradients\(\.\.\.\), and it defines forward"):
        backends.load(str(_write(tmp_path, "def forward(w, b, a, x):\n    return x\n")))


def test_a_misspelt_function_gets_the_closest_match_and_no_internal_module_name(tmp_path):
    body = "def forward(w, b, a, x):\n    return x\n\ndef loss_and_grads(w, b, a, x, y):\n    return 0.0, [], None\n"
    with pytest.raises(ContractError) as caught:
        backends.load(str(_write(tmp_path, body, name="mine")))
    message = str(caught.value)
    assert "it defines forward, loss_and_grads; did you mean loss_and_gradients instead of loss_and_grads?" in message
    assert "_mlp_crosscheck_impl" not in message
    assert "mine.py" in message


def test_a_directory_is_named_as_one(tmp_path):
    with pytest.raises(ContractError, match="is a directory"):
        backends.load(str(tmp_path))


def test_an_unsupported_dtype_in_dtypes_is_an_error_not_dropped(tmp_path):
    body = CORRECT.format(name="half") + "\nDTYPES = ('float16', 'float64')\n"
    with pytest.raises(ContractError, match="DTYPES names float16; the contract covers float32 and float64 only"):
        backends.load(str(_write(tmp_path, body)))


def test_an_unknown_activation_lists_the_vocabulary(tmp_path):
    body = CORRECT.format(name="odd") + "\nACTIVATIONS = ['identity', 'swish']\n"
    with pytest.raises(ContractError, match=r"\['swish'\], not in the vocabulary: identity, .*relu"):
        backends.load(str(_write(tmp_path, body)))


def test_unknown_activation_names_in_activations_attribute_are_rejected(tmp_path):
    body = CORRECT.format(name="odd") + "\nACTIVATIONS = ['identity', 'swish']\n"
    with pytest.raises(ContractError, match="swish"):
        backends.load(str(_write(tmp_path, body)))


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ("{'relu': 2.0}", r"KINK_DERIVATIVES\['relu'\] = 2.0 is not in relu's subdifferential at its kink, \[0, 1\]"),
        ("{'leaky_relu': 0.0}", r"\[0.01, 1\]"),
        ("{'tanh': 1.0}", "KINK_DERIVATIVES names 'tanh'; only relu, leaky_relu have a kink"),
        ("{'relu': 'one'}", "is not in relu's subdifferential"),
        ("[('relu', 0.0)]", "KINK_DERIVATIVES must be a dict"),
    ],
)
def test_a_kink_declaration_that_is_no_subgradient_is_refused_at_load(tmp_path, declaration, message):
    # Declaring relu'(0) = 2 would otherwise make an invalid convention pass the kink claims.
    body = CORRECT.format(name="kinky") + f"\nKINK_DERIVATIVES = {declaration}\n"
    with pytest.raises(ContractError, match=message):
        backends.load(str(_write(tmp_path, body)))


def test_a_kink_declaration_in_the_subdifferential_loads(tmp_path):
    body = CORRECT.format(name="kinky") + "\nKINK_DERIVATIVES = {'relu': 1.0, 'leaky_relu': 0.5}\n"
    assert backends.load(str(_write(tmp_path, body))).name == "kinky"


def _module(**functions):
    class M:
        NAME = "planted"

    for k, v in functions.items():
        setattr(M, k, staticmethod(v))
    return Implementation(M)


def test_raising_is_reported_with_the_network_it_was_called_on():
    impl = _module(forward=lambda w, b, a, x: 1 / 0, loss_and_gradients=lambda *a: None)
    net, x, _ = _case()
    with pytest.raises(ContractError, match=r"planted.forward raised ZeroDivisionError.*\(3, 4, 2\)"):
        impl.forward(net, x)


def test_mutating_an_input_is_reported_and_the_callers_array_survives():
    def forward(w, b, a, x):
        x *= 2  # the planted bug
        return np.zeros((x.shape[0], 2))

    impl = _module(forward=forward, loss_and_gradients=lambda *a: None)
    net, x, _ = _case()
    with pytest.raises(ContractError, match="mutated its input x"):
        impl.forward(net, x)
    assert (x == 1).all()


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ([[0.0, 0.0]] * 5, "must be a NumPy array, got a list of length 5"),
        (np.zeros((5, 1)), r"has shape \(5, 1\), expected \(5, 2\)"),
        (np.zeros((5, 2), np.float32), "is float32, expected float64"),
    ],
)
def test_wrong_output_types_shapes_and_dtypes_are_named(out, message):
    impl = _module(forward=lambda w, b, a, x: out, loss_and_gradients=lambda *a: None)
    net, x, _ = _case()
    with pytest.raises(ContractError, match=message):
        impl.forward(net, x)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ((1.0, None), "must return a 3-tuple"),
        (("1", [np.zeros((3, 4)), np.zeros((4, 2))], None), "loss must be a real scalar"),
        ((1.0, [np.zeros((3, 4))], None), "dweights must be a list of 2 arrays"),
        ((1.0, [np.zeros((4, 3)), np.zeros((4, 2))], None), r"dweights\[0\] has shape \(4, 3\), expected \(3, 4\)"),
        ((1.0, [np.zeros((3, 4)), np.zeros((4, 2))], None), "dbiases must be a list of 2 arrays"),
    ],
)
def test_wrong_gradient_structures_are_named(returned, message):
    impl = _module(forward=lambda *a: None, loss_and_gradients=lambda *a: returned)
    net, x, y = _case()
    with pytest.raises(ContractError, match=message):
        impl.loss_and_gradients(net, x, y)


def test_bias_gradients_must_be_none_without_biases():
    grads = [np.zeros((3, 4)), np.zeros((4, 2))]
    impl = _module(forward=lambda *a: None, loss_and_gradients=lambda *a: (1.0, grads, [np.zeros(4), np.zeros(2)]))
    net, x, y = _case(biases=False)
    with pytest.raises(ContractError, match="dbiases must be None"):
        impl.loss_and_gradients(net, x, y)


def test_unsupported_activations_and_dtypes_are_explained():
    class M:
        NAME, ACTIVATIONS, DTYPES = "narrow", ("identity",), ("float64",)
        forward = loss_and_gradients = staticmethod(lambda *a: None)

    impl = Implementation(M)
    assert impl.unsupported(["tanh"], "float64") == "narrow does not implement tanh (its ACTIVATIONS)"
    assert impl.unsupported(["identity"], "float32") == "narrow does not support float32 (its DTYPES)"
    assert impl.unsupported(["identity"], "float64") is None


@pytest.mark.parametrize("name", list(backends.BUILTINS))
def test_builtin_backends_are_reachable_through_the_contract(name):
    if backends.missing_reason(name):
        pytest.skip(backends.missing_reason(name))
    impl = backends.builtin(name)
    net, x, y = _case()
    result = impl.loss_and_gradients(net, x, y)
    assert impl.has_input_gradient
    assert result.x.shape == x.shape


def test_a_missing_framework_is_a_one_line_reason(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "torch" else real(n, *a))
    assert backends.missing_reason("torch") == "torch is not installed (pip install 'mlp-crosscheck[torch]')"
    assert "torch" not in backends.available()
    with pytest.raises(ImportError, match="torch is not installed"):
        backends.builtin("torch")
    with pytest.raises(ValueError, match="unknown backend 'tf'"):
        backends.builtin("tf")


def test_as_module_exposes_an_objects_methods_as_the_contract():
    # The torch and jax backends on another device are objects; as_module makes one look like a module.
    from mlp_crosscheck.backends.contract import as_module

    class OnDevice:
        def forward(self, w, b, a, x, y=None):  # y: so that every entry point takes one call below
            return ("forward", self)

        def loss_and_gradients(self, w, b, a, x, y):
            return ("loss_and_gradients", self)

        def loss_and_input_gradients(self, w, b, a, x, y):
            return ("loss_and_input_gradients", self)

    net = OnDevice()
    module = as_module("planted", ["tanh", "relu"], ["float64"], net)
    impl = Implementation(module)
    assert (impl.name, impl.activations, impl.dtypes) == ("planted", {"tanh", "relu"}, {"float64"})
    assert (module.ACTIVATIONS, module.DTYPES) == (("tanh", "relu"), ("float64",))
    assert impl.has_input_gradient
    for name in ("forward", "loss_and_gradients", "loss_and_input_gradients"):
        assert getattr(module, name)(*[None] * 5) == (name, net)


def test_a_file_named_like_a_builtin_backend_is_held_to_its_own_declarations_not_the_backends(tmp_path) -> None:
    # A correct NumPy implementation saved as jax.py keeps the reference's conventions (leaky_relu'(0) = 0.01),
    # not jax's recorded ones (1.0): conventions follow identity, never a NAME or a file name.
    from mlp_crosscheck.properties import kink_conventions
    from mlp_crosscheck.properties.test_kink_conventions import check_kink_derivative_matches_table

    source = Path(__file__).parent / "faults" / "correct_fault_skeleton.py"
    body = source.read_text().replace('NAME = "correct_fault_skeleton"', "")
    impl = backends.load(str(_write(tmp_path, body, name="jax")))
    assert impl.name == "jax"
    assert impl.builtin is None
    assert kink_conventions.derivatives_at_kinks(impl)["leaky_relu"] == 0.01
    for dtype in ("float32", "float64"):
        check_kink_derivative_matches_table(impl, "leaky_relu", dtype)
    assert backends.builtin("numpy").builtin == "numpy"
