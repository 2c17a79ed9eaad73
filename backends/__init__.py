"""The built-in backends, loaded lazily: a framework is imported only when its backend is asked for.

A new framework costs one module (``<framework>_backend.py``, following the contract in ``contract.py``)
and one line in ``BUILTINS``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util

import numpy as np
from mlp_crosscheck.backends.contract import ContractError, Implementation, load
from mlp_crosscheck.reference.network import Network

# backend name -> (the framework's import name, the module that implements the contract with it)
BUILTINS: dict[str, tuple[str, str]] = {
    "numpy": ("numpy", "mlp_crosscheck.backends.numpy_backend"),
    "torch": ("torch", "mlp_crosscheck.backends.torch_backend"),
    "jax": ("jax", "mlp_crosscheck.backends.jax_backend"),
}

__all__ = [
    "BUILTINS",
    "ContractError",
    "Implementation",
    "available",
    "builtin",
    "first_call_problem",
    "load",
    "missing_reason",
]


def missing_reason(name: str) -> str | None:
    """Return a one-line reason why backend ``name`` cannot run here, or None if it can."""
    if name not in BUILTINS:
        return f"unknown backend {name!r}; the built-in backends are {', '.join(BUILTINS)}"
    framework = BUILTINS[name][0]
    if importlib.util.find_spec(framework) is None:
        return f"{framework} is not installed (pip install 'mlp-crosscheck[{framework}]')"
    return None


def available() -> list[str]:
    """Return the names of the built-in backends whose framework is installed."""
    return [name for name in BUILTINS if missing_reason(name) is None]


def builtin(name: str, device: str | None = None) -> Implementation:
    """Return the built-in backend ``name``, wrapped in the contract's checks.

    Args:
        device: where torch and jax compute (``"cpu"``, ``"cuda"``); None keeps the module's default
            (``MLP_CROSSCHECK_DEVICE`` or cpu). The numpy backend accepts only ``"cpu"``.

    Raises:
        ValueError: the name is unknown.
        ImportError: its framework is not installed (the message says how to install it).
    """
    reason = missing_reason(name)
    if reason is not None:
        raise (ValueError if name not in BUILTINS else ImportError)(reason)
    module = importlib.import_module(BUILTINS[name][1])
    if device is None:
        return Implementation(module, builtin=name)
    if not hasattr(module, "on_device"):
        if device != "cpu":
            raise ValueError(f"the {name} backend runs on the cpu only, not {device!r}")
        return Implementation(module, builtin=name)
    return Implementation(module.on_device(device), builtin=name)


def first_call_problem(name: str, device: str | None = None) -> str | None:
    """Return why backend ``name`` fails one tiny real call on ``device`` in float32 or float64, or None.

    Importing a framework proves little: jax without jaxlib, a release whose API the backend does not
    support, an absent device or a stray environment variable all fail only when something is computed.
    The call is a 2-3-1 tanh network with biases, forward and gradients, each checked by the contract.
    """
    stage = "loading it"
    try:
        impl = builtin(name, device)
        for dtype in ("float32", "float64"):
            stage = f"a {dtype} call on {device or 'its default device'}"
            rng = np.random.default_rng(0)
            weights = tuple(rng.standard_normal(s).astype(dtype) for s in ((2, 3), (3, 1)))
            net = Network(weights, tuple(np.zeros(n, dtype) for n in (3, 1)), ("tanh", "tanh"))
            x = rng.standard_normal((2, 2)).astype(dtype)
            impl.forward(net, x)
            impl.loss_and_gradients(net, x, np.zeros((2, 1), dtype))
    except Exception as exc:  # any failure is the answer here, reported with the versions behind it
        framework = BUILTINS[name][0]
        versions = ", ".join(
            f"{d} {_version(d)}" for d in ((framework, "jaxlib") if framework == "jax" else (framework,))
        )
        first_line = (str(exc).splitlines() or [""])[0]
        return f"{stage} failed: {type(exc).__name__}: {first_line} ({versions})"
    return None


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
