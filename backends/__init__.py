"""The built-in backends, loaded lazily: a framework is imported only when its backend is asked for.

A new framework costs one module (``<framework>_backend.py``, following the contract in ``contract.py``)
and one line in ``BUILTINS``.
"""

from __future__ import annotations

import importlib
import importlib.util

from backends.contract import ContractError, Implementation, load

# backend name -> (the framework's import name, the module that implements the contract with it)
BUILTINS: dict[str, tuple[str, str]] = {
    "numpy": ("numpy", "backends.numpy_backend"),
    "torch": ("torch", "backends.torch_backend"),
    "jax": ("jax", "backends.jax_backend"),
}

__all__ = ["BUILTINS", "ContractError", "Implementation", "available", "builtin", "load", "missing_reason"]


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
        return Implementation(module)
    if not hasattr(module, "on_device"):
        if device != "cpu":
            raise ValueError(f"the {name} backend runs on the cpu only, not {device!r}")
        return Implementation(module)
    return Implementation(module.on_device(device))
