"""The implementation contract: how any module -- a built-in backend or a user's own -- is called and checked.

A conforming module defines two functions on NumPy arrays::

    def forward(weights, biases, activations, x) -> np.ndarray       # (batch, n_L), x's dtype
    def loss_and_gradients(weights, biases, activations, x, y) -> (loss, dweights, dbiases)

and may define ``loss_and_input_gradients(...) -> (loss, dweights, dbiases, dx)`` (dx = dL/dx) so that the
input-gradient properties apply to it, plus the attributes ``NAME``, ``ACTIVATIONS`` and ``DTYPES`` (checked
here) and the declarations ``KINK_DERIVATIVES`` (``properties/kink_conventions.py``), ``FLUSHES_SUBNORMALS``
(``properties/test_underflow.py``) and ``DETERMINISTIC`` (the plugin's
``bitwise_required`` fixture). The README's contract section lists every requirement and the property that
checks it.

Invariants:
- ``Implementation`` hands the module *copies* of every array and checks afterwards that the copies are
  unchanged: a module that mutates its inputs is reported, and the caller's arrays are never touched.
- Every breach (missing function, unknown activation or dtype declared, exception, wrong type, shape or
  dtype, mutated input) raises ``ContractError`` with a message that names the module, the function and
  exactly what is wrong. ``ContractError`` subclasses ``AssertionError``, so pytest reports it as a failed
  check, not as an error in the suite.
- An implementation is judged by the numbers it returns, never by how it computes them: warnings raised
  inside a call (NumPy's "overflow encountered in exp" in a correct formula, a library's deprecation) are
  recorded, not raised, whatever the caller's ``filterwarnings`` or ``np.seterr``; the properties then judge
  the returned values (NaN and infinity where the reference has them, finite values within the bound).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import numbers
import os
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, NamedTuple

import numpy as np
from mlp_crosscheck.reference import activations as _vocabulary
from mlp_crosscheck.reference.network import Network

REQUIRED = ("forward", "loss_and_gradients")
DTYPES = ("float32", "float64")


class ContractError(AssertionError):
    """An implementation broke the contract; the message says how."""


class Result(NamedTuple):
    """The loss and gradients an implementation returned (``x`` is None when it gives no input gradient)."""

    loss: float
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...] | None
    x: np.ndarray | None


def load(spec: str) -> Implementation:
    """Return the implementation in ``spec``: a path to a ``.py`` file, or an importable module name.

    While the file is imported its own directory is first on ``sys.path``, so the file may import its sibling
    modules; afterwards the directory stays on ``sys.path``, last, so that it never shadows an installed package.

    Raises:
        ContractError: the file does not exist, the import fails, or a required function is missing.
    """
    path = Path(spec)
    if path.is_dir():
        raise ContractError(f"{spec!r} is a directory; give the .py file that defines forward and loss_and_gradients")
    if spec.endswith(".py") or path.exists():
        return Implementation(_import_file(path), label=spec)
    try:
        module = importlib.import_module(spec)
    except ImportError as exc:
        raise ContractError(f"{spec!r}: no such file, and importing it as a module failed: {exc}") from exc
    return Implementation(module, label=spec)


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise ContractError(f"{str(path)!r}: no such file")
    path = path.resolve()
    # A private module name, so that a user's file called e.g. numpy.py can never shadow a real package.
    name = f"_mlp_crosscheck_impl_{path.stem}_{abs(hash(str(path))):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ContractError(f"{str(path)!r}: Python cannot load it as a module")
    module: Any = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # While the file runs, its directory comes first on sys.path, as under `python mine.py`, so that its imports
    # find its siblings. Afterwards the directory moves to the end: a function that imports a sibling later still
    # finds it, but a file named like a real package (numpy.py) no longer shadows that package, neither for the
    # rest of this process nor for the processes it starts (a spawned Dask or multiprocessing worker inherits
    # sys.path and imports numpy afresh).
    directory = str(path.parent)
    sys.path.insert(0, directory)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ContractError(f"{str(path)!r}: importing it raised {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(directory)  # the first occurrence: the one inserted above
        if directory not in sys.path:
            sys.path.append(directory)
    if not hasattr(module, "NAME"):
        module.NAME = path.stem
    return module


class Implementation:
    """A module that follows the contract, wrapped so that every call is checked."""

    def __init__(self, module: ModuleType | Any, label: str | None = None, builtin: str | None = None) -> None:
        """Check the module's functions and declarations up front.

        Args:
            label: how the user named it (a path or a module name), for messages; default its file.
            builtin: the built-in backend this is (``"jax"``), for reports; None for anyone else's
                implementation. Conventions come from the module's declarations, never from this or a name.
        """
        self.module = module
        self.builtin = builtin
        self.name: str = getattr(module, "NAME", getattr(module, "__name__", type(module).__name__))
        where = label or getattr(module, "__file__", None) or getattr(module, "__name__", type(module).__name__)
        missing = [f for f in REQUIRED if not callable(getattr(module, f, None))]
        if missing:
            who = self.name if where == self.name else f"{self.name} ({where})"
            raise ContractError(f"{who}: " + "; ".join(_missing_function(module, f) for f in missing))
        self.activations = frozenset(getattr(module, "ACTIVATIONS", _vocabulary.NAMES))
        unknown = self.activations - set(_vocabulary.NAMES)
        if unknown:
            raise ContractError(
                f"{self.name}: ACTIVATIONS names {sorted(unknown)}, not in the vocabulary: "
                + ", ".join(_vocabulary.NAMES)
            )
        self.dtypes = frozenset(_dtype_name(self.name, d) for d in getattr(module, "DTYPES", DTYPES))
        _check_kink_declaration(self.name, getattr(module, "KINK_DERIVATIVES", None))
        flushes = getattr(module, "FLUSHES_SUBNORMALS", None)
        if flushes is not None and not isinstance(flushes, bool):
            raise ContractError(f"{self.name}: FLUSHES_SUBNORMALS must be True or False, got {flushes!r}")
        inputs = getattr(module, "SUBNORMAL_INPUTS", None)
        if inputs is not None and inputs not in ("kept", "zero"):
            raise ContractError(f"{self.name}: SUBNORMAL_INPUTS must be 'kept' or 'zero', got {inputs!r}")
        self.has_input_gradient = callable(getattr(module, "loss_and_input_gradients", None))
        self.calls = 0  # contract calls made, for reports
        self.warnings: Counter[str] = Counter()  # warnings raised inside its calls (recorded, never raised)

    def __repr__(self) -> str:
        return f"Implementation({self.name!r})"

    def unsupported(self, activations, dtype) -> str | None:
        """Return why this implementation does not apply to (activations, dtype), or None if it does."""
        missing = sorted(set(activations) - self.activations)
        if missing:
            return f"{self.name} does not implement {', '.join(missing)} (its ACTIVATIONS)"
        if np.dtype(dtype).name not in self.dtypes:
            return f"{self.name} does not support {np.dtype(dtype).name} (its DTYPES)"
        return None

    # -- checked calls ------------------------------------------------------------------------------------

    def forward(self, net: Network, x: np.ndarray) -> np.ndarray:
        """Return the module's ``forward`` output, checked for type, shape and dtype."""
        out = self._call("forward", net, x)
        return self._check_array(out, (x.shape[0], net.widths[-1]), x.dtype, "forward", "the output")

    def loss_and_gradients(self, net: Network, x: np.ndarray, y: np.ndarray) -> Result:
        """Return the module's loss and gradients (and dL/dx when it defines ``loss_and_input_gradients``)."""
        fn = "loss_and_input_gradients" if self.has_input_gradient else "loss_and_gradients"
        returned = self._call(fn, net, x, y)
        n = 4 if self.has_input_gradient else 3
        if not isinstance(returned, tuple | list) or len(returned) != n:
            raise ContractError(f"{self.name}.{fn} must return a {n}-tuple, got {_describe(returned)}")
        loss = self._check_loss(returned[0], fn)
        dws = self._check_list(returned[1], [w.shape for w in net.weights], net.dtype, fn, "dweights")
        if net.biases is None:
            if returned[2] is not None:
                raise ContractError(f"{self.name}.{fn}: biases is None, so dbiases must be None")
            dbs = None
        else:
            dbs = self._check_list(returned[2], [b.shape for b in net.biases], net.dtype, fn, "dbiases")
        dx = self._check_array(returned[3], x.shape, x.dtype, fn, "dx") if self.has_input_gradient else None
        return Result(loss, dws, dbs, dx)

    def _call(self, fn: str, net: Network, *data: np.ndarray):
        originals = [*net.weights, *(net.biases or ()), *data]
        weights = [w.copy() for w in net.weights]
        biases = None if net.biases is None else [b.copy() for b in net.biases]
        copies = [c.copy() for c in data]
        self.calls += 1
        try:
            # The caller's warning filters and np.seterr never reach the implementation: a correct formula
            # that overflows in an intermediate step is judged by what it returns.
            with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn"):
                warnings.simplefilter("always")
                returned = getattr(self.module, fn)(weights, biases, list(net.activations), *copies)
        except Exception as exc:
            raise ContractError(
                f"{self.name}.{fn} raised {type(exc).__name__}: {exc} "
                f"(network {net.widths}, activations {list(net.activations)}, {net.dtype}, "
                f"biases {'yes' if net.biases is not None else 'no'})"
            ) from exc
        for warning in caught:
            self.warnings[f"{warning.category.__name__}: {warning.message}"] += 1
        names = [f"weights[{i}]" for i in range(net.depth)]
        names += [f"biases[{i}]" for i in range(net.depth)] if net.biases is not None else []
        names += ["x", "y"][: len(data)]
        for name, before, after in zip(names, originals, [*weights, *(biases or ()), *copies], strict=True):
            if after.shape != before.shape or not np.array_equal(after, before, equal_nan=True):
                raise ContractError(f"{self.name}.{fn} mutated its input {name}; the contract forbids it")
        return returned

    def _check_array(self, a, shape, dtype, fn, what) -> np.ndarray:
        if not isinstance(a, np.ndarray):
            raise ContractError(f"{self.name}.{fn}: {what} must be a NumPy array, got {_describe(a)}")
        if a.shape != tuple(shape):
            raise ContractError(f"{self.name}.{fn}: {what} has shape {a.shape}, expected {tuple(shape)}")
        if a.dtype != dtype:
            raise ContractError(f"{self.name}.{fn}: {what} is {a.dtype}, expected {np.dtype(dtype)} (dtype in = out)")
        return a

    def _check_list(self, arrays, shapes, dtype, fn, what) -> tuple[np.ndarray, ...]:
        if not isinstance(arrays, list | tuple) or len(arrays) != len(shapes):
            raise ContractError(
                f"{self.name}.{fn}: {what} must be a list of {len(shapes)} arrays, got {_describe(arrays)}"
            )
        return tuple(
            self._check_array(a, s, dtype, fn, f"{what}[{i}]")
            for i, (a, s) in enumerate(zip(arrays, shapes, strict=True))
        )

    def _check_loss(self, loss, fn) -> float:
        if isinstance(loss, np.ndarray) and loss.shape == ():
            loss = loss[()]
        if isinstance(loss, bool) or not isinstance(loss, float | int | np.floating):
            raise ContractError(f"{self.name}.{fn}: the loss must be a real scalar, got {_describe(loss)}")
        return float(loss)


# What a module declares besides its functions; a backend's instance on another device declares the same.
DECLARATIONS = (
    "NAME",
    "ACTIVATIONS",
    "DTYPES",
    "KINK_DERIVATIVES",
    "FLUSHES_SUBNORMALS",
    "SUBNORMAL_INPUTS",
    "RECORDED_WITH",
    "RECORDED_ROW",
    "DETERMINISTIC",
)


def default_device() -> str:
    """Where a backend's module-level contract functions compute: ``$MLP_CROSSCHECK_DEVICE``, else cpu."""
    return os.environ.get("MLP_CROSSCHECK_DEVICE", "cpu")


def functions_of(net: Any) -> tuple[Callable, Callable, Callable]:
    """``forward``, ``loss_and_gradients`` and ``loss_and_input_gradients`` of ``net`` (a backend on a device).

    ``net`` has ``forward`` and ``loss_and_input_gradients``; ``loss_and_gradients`` is the latter without dx.
    """

    def loss_and_gradients(weights, biases, activations, x, y):
        return net.loss_and_input_gradients(weights, biases, activations, x, y)[:3]

    return net.forward, loss_and_gradients, net.loss_and_input_gradients


def as_module(module: Any, net: Any) -> SimpleNamespace:
    """Return ``module``'s contract with its functions computed by ``net`` (a backend's instance on a device).

    ``net`` has ``forward`` and ``loss_and_input_gradients``; the declarations are ``module``'s own.
    """
    declared = {k: getattr(module, k) for k in DECLARATIONS if hasattr(module, k)}
    forward, loss_and_gradients, loss_and_input_gradients = functions_of(net)
    return SimpleNamespace(
        **declared,
        forward=forward,
        loss_and_gradients=loss_and_gradients,
        loss_and_input_gradients=loss_and_input_gradients,
    )


def on_device_of(module_name: str, network: Callable[[str], Any]) -> Callable[[str], SimpleNamespace]:
    """A backend's ``on_device(device)``: its contract (``as_module``) computed by ``network(device)``, with the
    recorded row of that device declared (``recorded.declarations``) when it is not the module's own."""
    from mlp_crosscheck.backends import recorded

    def on_device(device: str) -> SimpleNamespace:
        module = sys.modules[module_name]
        contract = as_module(module, network(device))
        row = getattr(module, "RECORDED_ROW", None)
        if row is not None and recorded.device_kind(device) != row.device:
            for name, value in zip(recorded.DECLARED, recorded.declarations(row.framework, device), strict=True):
                setattr(contract, name, value)
        return contract

    return on_device


def _missing_function(module, name: str) -> str:
    """Say that ``module`` lacks ``name``, which functions it does define, and the closest one."""
    defined = (
        sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_") and not inspect.isclass(v))
        if hasattr(module, "__dict__")
        else []
    )
    close = difflib.get_close_matches(name, defined, n=1, cutoff=0.6)
    hint = f"; did you mean {name} instead of {close[0]}?" if close else ""
    listed = ", ".join(defined) if defined else "none"
    return f"the contract needs a function {name}(...), and it defines {listed}{hint}"


def _check_kink_declaration(impl_name: str, declared) -> None:
    """Check a module's ``KINK_DERIVATIVES``: activations with a kink, each mapped to a subgradient there.

    A derivative at a kink is valid when it lies in the subdifferential, between the one-sided slopes
    (relu: [0, 1], leaky_relu: [0.01, 1]); declaring a value outside it (relu'(0) = 2) does not make it one.
    """
    if declared is None:
        return
    if not isinstance(declared, Mapping):
        raise ContractError(f"{impl_name}: KINK_DERIVATIVES must be a dict such as {{'relu': 0.0}}, got {declared!r}")
    kinked = _vocabulary.SUBDIFFERENTIALS
    for name, value in declared.items():
        if name not in kinked:
            raise ContractError(f"{impl_name}: KINK_DERIVATIVES names {name!r}; only {', '.join(kinked)} have a kink")
        lo, hi = kinked[name]
        if not isinstance(value, numbers.Real) or not lo <= float(value) <= hi:
            raise ContractError(
                f"{impl_name}: KINK_DERIVATIVES[{name!r}] = {value!r} is not in {name}'s subdifferential at its kink,"
                f" [{lo:g}, {hi:g}]"
            )


def _dtype_name(impl_name: str, declared) -> str:
    try:
        name = np.dtype(declared).name
    except TypeError:
        name = repr(declared)
    if name not in DTYPES:
        raise ContractError(f"{impl_name}: DTYPES names {name}; the contract covers {' and '.join(DTYPES)} only")
    return name


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, list | tuple):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__module__}.{type(value).__qualname__}"
