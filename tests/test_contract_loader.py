"""The contract loader and its checks: every breach is reported with a message that names it.

``backends/contract.py`` promises that every breach "raises ``ContractError`` with a message that names the
module, the function and exactly what is wrong": most tests here match what is wrong; the ones after
"Whole messages" pin the rest of each message, and the loader's and the registry's remaining behaviour (a 0-d
array is a valid loss, NaN inputs are not "mutated", a file that defines a dataclass loads, ``DTYPES`` is read,
``builtin(name, device)`` picks the device through the module's ``on_device``), which mutation testing found
unchecked (``docs/mutation.md``).
"""

import importlib.machinery
import sys
import textwrap
import types
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
    impl.forward(net, x)  # it computes: the wrapper checks the output's type, shape and dtype (ContractError)


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


def test_a_file_named_like_a_real_package_does_not_shadow_it_in_a_process_started_later(tmp_path):
    # A spawned worker (Dask's, multiprocessing's) inherits sys.path and imports numpy afresh: with the file's
    # directory left first on sys.path it imported this numpy.py, which imports itself, and died with "module
    # 'numpy' has no attribute 'random'" (a flaky Dask test, depending on what its pytest worker had loaded).
    backends.load(str(_write(tmp_path, "import numpy as np\n" + CORRECT.format(name="shadow"), name="numpy")))
    found = importlib.machinery.PathFinder.find_spec("numpy", sys.path)
    assert found is not None
    assert found.origin == np.__file__
    assert str(tmp_path) in sys.path  # still there, last, for a sibling imported inside a function


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


@pytest.mark.parametrize("declaration", ["'yes'", "1", "0.0"])
def test_a_flushing_declaration_that_is_not_a_bool_is_refused_at_load(tmp_path, declaration):
    body = CORRECT.format(name="flushy") + f"\nFLUSHES_SUBNORMALS = {declaration}\n"
    with pytest.raises(ContractError) as refused:
        backends.load(str(_write(tmp_path, body)))
    assert str(refused.value) == f"flushy: FLUSHES_SUBNORMALS must be True or False, got {declaration}"


@pytest.mark.parametrize("declaration", [True, False])
def test_a_flushing_declaration_loads(tmp_path, declaration):
    body = CORRECT.format(name="flushy") + f"\nFLUSHES_SUBNORMALS = {declaration}\n"
    assert backends.load(str(_write(tmp_path, body))).module.FLUSHES_SUBNORMALS is declaration


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
    assert impl.has_input_gradient
    impl.loss_and_gradients(net, x, y)  # through the contract: the wrapper checks every result, dL/dx included


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


def test_as_module_exposes_an_objects_methods_with_the_modules_declarations():
    # The torch and jax backends on another device are objects; as_module makes one look like their module.
    from types import SimpleNamespace

    from mlp_crosscheck.backends.contract import as_module

    class OnDevice:
        def forward(self, w, b, a, x):
            return ("forward", self)

        def loss_and_input_gradients(self, w, b, a, x, y):
            return ("loss", "dweights", "dbiases", "dx", self)

    declared = SimpleNamespace(
        NAME="planted", ACTIVATIONS=("tanh", "relu"), DTYPES=("float64",), KINK_DERIVATIVES={"relu": 1.0}
    )
    net = OnDevice()
    module = as_module(declared, net)
    impl = Implementation(module)
    assert (impl.name, impl.activations, impl.dtypes) == ("planted", {"tanh", "relu"}, {"float64"})
    assert module.KINK_DERIVATIVES == {"relu": 1.0}
    assert not hasattr(module, "FLUSHES_SUBNORMALS")  # what the module does not declare stays undeclared
    assert impl.has_input_gradient
    assert module.forward(*[None] * 4) == ("forward", net)
    assert module.loss_and_input_gradients(*[None] * 5) == ("loss", "dweights", "dbiases", "dx", net)
    assert module.loss_and_gradients(*[None] * 5) == ("loss", "dweights", "dbiases")


def test_a_file_named_like_a_builtin_backend_is_held_to_its_own_declarations_not_the_backends(tmp_path) -> None:
    # A correct NumPy implementation saved as jax.py keeps the reference's conventions (leaky_relu'(0) = 0.01),
    # not jax's recorded ones (1.0): conventions follow identity, never a NAME or a file name.
    from mlp_crosscheck.properties import kink_conventions
    from mlp_crosscheck.properties.claims.kinks import check_kink_derivative_matches_table

    source = Path(__file__).parent / "faults" / "correct_fault_skeleton.py"
    body = source.read_text().replace('NAME = "correct_fault_skeleton"', "")
    impl = backends.load(str(_write(tmp_path, body, name="jax")))
    assert impl.name == "jax"
    assert impl.builtin is None
    assert kink_conventions.derivatives_at_kinks(impl)["leaky_relu"] == 0.01
    for dtype in ("float32", "float64"):
        check_kink_derivative_matches_table(impl, "leaky_relu", dtype)
    assert backends.builtin("numpy").builtin == "numpy"


# -- Whole messages, and the loader's and the registry's remaining behaviour ----------------------------------

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
    impl = _module(forward=lambda *a: None, loss_and_gradients=lambda *a: returned)
    net, x, y = _case()
    with pytest.raises(ContractError) as caught:
        impl.loss_and_gradients(net, x, y)
    assert str(caught.value) == message


def test_output_and_input_gradient_breaches_name_the_function() -> None:
    impl = _module(
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
    impl = _module(forward=lambda *a: 1 / 0, loss_and_gradients=lambda *a: None)
    net, x, _ = _case(biases=biases)
    with pytest.raises(ContractError) as caught:
        impl.forward(net, x)
    assert str(caught.value).endswith(f"float64, biases {'yes' if biases else 'no'})")


def test_mutating_the_target_names_y() -> None:
    def loss_and_gradients(w, b, a, x, y):
        y += 1  # the planted slip
        return 0.0, GRADS, BIAS_GRADS

    net, x, y = _case()
    with pytest.raises(ContractError, match=r"planted.loss_and_gradients mutated its input y;"):
        _module(forward=lambda *a: None, loss_and_gradients=loss_and_gradients).loss_and_gradients(net, x, y)


def test_nan_inputs_are_not_reported_as_mutated() -> None:
    net, x, _ = _case()
    x[0, 0] = np.nan  # NaN != NaN: the copy check must compare NaN positions, not values
    impl = _module(forward=lambda w, b, a, x: np.zeros((x.shape[0], 2)), loss_and_gradients=lambda *a: None)
    impl.forward(net, x)  # the check: no ContractError ("mutated its input x") is raised


def test_a_zero_dimensional_array_is_a_valid_loss() -> None:
    impl = _module(forward=lambda *a: None, loss_and_gradients=lambda *a: (np.array(2.5), GRADS, BIAS_GRADS))
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
    monkeypatch.setitem(backends.BUILTINS, "device_backend", backends.Builtin("numpy", "device_backend"))
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


# -- Whole messages, as a user reads them (mutation testing found these parts unpinned) -------------------------


def test_a_file_is_named_as_the_user_gave_it(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "def forward(w, b, a, x):\n    return x\n", name="mine")
    with pytest.raises(ContractError) as caught:
        backends.load("mine.py")
    assert str(caught.value) == (
        "mine (mine.py): the contract needs a function loss_and_gradients(...), and it defines forward"
    )


def test_a_module_is_named_as_the_user_gave_it(tmp_path, monkeypatch) -> None:
    _write(tmp_path, "def forward(w, b, a, x):\n    return x\n", name="user_module_for_a_test")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ContractError) as caught:
        backends.load("user_module_for_a_test")
    assert str(caught.value) == (  # the name as given; not the file it was found in
        "user_module_for_a_test: the contract needs a function loss_and_gradients(...), and it defines forward"
    )


def test_a_module_without_a_name_attribute_is_named_by_its_type() -> None:
    class Slotted:  # no __dict__, no NAME, no __name__ on the instance
        __slots__ = ()

    with pytest.raises(ContractError) as caught:
        Implementation(Slotted())
    assert str(caught.value) == (
        "Slotted: the contract needs a function forward(...), and it defines none; "
        "the contract needs a function loss_and_gradients(...), and it defines none"
    )


def test_only_public_functions_are_listed_as_defined() -> None:
    module = types.ModuleType("listed")
    module.forward = lambda *a: None
    module._helper = lambda *a: None
    module.Network = type("Network", (), {})
    with pytest.raises(ContractError) as caught:
        Implementation(module)
    assert str(caught.value) == "listed: the contract needs a function loss_and_gradients(...), and it defines forward"


def test_an_unreadable_dtype_is_named_as_declared(tmp_path) -> None:
    body = CORRECT.format(name="odd") + "\nDTYPES = ('float64', 'no-such-dtype')\n"
    with pytest.raises(ContractError) as caught:
        backends.load(str(_write(tmp_path, body)))
    assert str(caught.value) == "odd: DTYPES names 'no-such-dtype'; the contract covers float32 and float64 only"


def test_a_kink_declaration_is_refused_with_the_implementations_name(tmp_path) -> None:
    body = CORRECT.format(name="kinky") + "\nKINK_DERIVATIVES = {'relu': 2.0}\n"
    with pytest.raises(ContractError) as caught:
        backends.load(str(_write(tmp_path, body)))
    assert str(caught.value).startswith("kinky: KINK_DERIVATIVES['relu'] = 2.0 is not in relu's subdifferential")


def test_a_returned_object_of_a_library_type_is_named_with_its_module() -> None:
    from fractions import Fraction

    impl = _module(forward=lambda w, b, a, x: x, loss_and_gradients=lambda w, b, a, x, y: Fraction(1, 2))
    with pytest.raises(ContractError, match=r"must return a 3-tuple, got a fractions\.Fraction$"):
        impl.loss_and_gradients(*_case())


def test_calls_are_counted_from_zero() -> None:
    impl = backends.builtin("numpy")
    assert impl.calls == 0
    impl.forward(*_case()[:2])
    impl.forward(*_case()[:2])
    assert impl.calls == 2


def _overflowing_forward(weights, biases, activations, x):
    """A correct formula whose intermediate overflows: 1 / (1 + exp(-z)) at z = -1000 is exactly 0."""
    return 1 / (1 + np.exp(-(x @ weights[0] - 1000.0)))


def test_floating_point_warnings_are_counted_not_raised_whatever_the_callers_errstate() -> None:
    impl = _module(forward=_overflowing_forward, loss_and_gradients=lambda w, b, a, x, y: (0.0, list(w), b))
    net = Network([np.ones((3, 1))], None, ["identity"])
    with np.errstate(all="raise"):  # the caller's setting must not turn the formula's overflow into an error
        out = impl.forward(net, np.zeros((2, 3)))
        impl.forward(net, np.zeros((4, 3)))
    np.testing.assert_array_equal(out, np.zeros((2, 1)))
    assert impl.warnings == {"RuntimeWarning: overflow encountered in exp": 2}


def test_a_file_python_cannot_load_as_a_module_is_named(tmp_path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text("def forward(w, b, a, x):\n    return x\n")
    with pytest.raises(ContractError) as caught:
        backends.load(str(path))
    assert str(caught.value) == f"{str(path.resolve())!r}: Python cannot load it as a module"
