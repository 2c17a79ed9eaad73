"""The built-in backends, loaded lazily: a framework is imported only when its backend is asked for.

A new framework costs one module (``<framework>_backend.py``) and one line in ``BUILTINS``; backends/README.md
is the checklist of what the module defines. Nothing outside this package imports a framework.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from mlp_crosscheck.backends.contract import ContractError, Implementation, load


def __getattr__(name: str) -> Any:
    # The contract (and NumPy) load on first use: the pytest plugin reads BUILTINS in every pytest session of
    # a project where mlp-crosscheck is installed, and must cost that session nothing.
    if name in ("ContractError", "Implementation", "load"):
        from mlp_crosscheck.backends import contract

        return getattr(contract, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Builtin(NamedTuple):
    """A built-in backend: its framework's import name, its module, and how to give it one thread."""

    framework: str
    module: str
    # Environment variables that limit the framework to one intra-op thread, for a framework that reads its
    # threads only when imported (XLA); a framework that can change them later defines set_threads instead.
    one_thread_environment: tuple[tuple[str, str], ...] = ()


BUILTINS: dict[str, Builtin] = {
    "numpy": Builtin("numpy", "mlp_crosscheck.backends.numpy_backend"),
    "torch": Builtin("torch", "mlp_crosscheck.backends.torch_backend"),
    "jax": Builtin(
        "jax",
        "mlp_crosscheck.backends.jax_backend",
        (("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"),),
    ),
}

__all__ = [
    "BUILTINS",
    "ContractError",
    "Implementation",
    "available",
    "batched",
    "builtin",
    "first_call_problem",
    "limit_threads",
    "load",
    "missing_reason",
    "version",
]


def missing_reason(name: str) -> str | None:
    """Return a one-line reason why backend ``name`` cannot run here, or None if it can."""
    if name not in BUILTINS:
        return f"unknown backend {name!r}; the built-in backends are {', '.join(BUILTINS)}"
    framework = BUILTINS[name].framework
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
    from mlp_crosscheck.backends.contract import Implementation

    reason = missing_reason(name)
    if reason is not None:
        raise (ValueError if name not in BUILTINS else ImportError)(reason)
    module = importlib.import_module(BUILTINS[name].module)
    if device is None:
        return Implementation(module, builtin=name)
    if not hasattr(module, "on_device"):
        if device != "cpu":
            raise ValueError(f"the {name} backend runs on the cpu only, not {device!r}")
        return Implementation(module, builtin=name)
    return Implementation(module.on_device(device), builtin=name)


def batched(name: str, chunk: int) -> Any:
    """Return backend ``name``'s batched evaluator: ``evaluate(stack, x, y) -> (losses, Gradients)``.

    ``stack`` is a ``reference.batched.NetworkStack`` of at most ``chunk`` networks; the losses ``(N,)`` and
    the stacked gradients come from the framework's own autodiff, as its per-network functions do.
    """
    reason = missing_reason(name)
    if reason is not None:
        raise (ValueError if name not in BUILTINS else ImportError)(reason)
    return importlib.import_module(BUILTINS[name].module).Batched(chunk)


def limit_threads(names: Sequence[str], threads: int) -> None:
    """Run backends ``names`` on ``threads`` intra-op threads (process-wide), for figures of one core's work.

    Call it before anything is computed: a framework that reads its threads when imported gets environment
    variables (only for one thread, the case they can express); one that can change them later is imported
    and its ``set_threads`` called.
    """
    for name in names:
        if missing_reason(name) is not None:
            continue
        entry = BUILTINS[name]
        if threads == 1:
            for key, value in entry.one_thread_environment:
                if value not in os.environ.get(key, ""):
                    os.environ[key] = f"{os.environ.get(key, '')} {value}".strip()
        module = importlib.import_module(entry.module)
        if hasattr(module, "set_threads"):
            module.set_threads(threads)


def first_call_problem(name: str, device: str | None = None) -> str | None:
    """Return why backend ``name`` fails one tiny real call on ``device`` in float32 or float64, or None.

    Importing a framework proves little: jax without jaxlib, a release whose API the backend does not
    support, an absent device or a stray environment variable all fail only when something is computed.
    The call is a 2-3-1 tanh network with biases, forward and gradients, each checked by the contract.
    """
    import numpy as np
    from mlp_crosscheck.reference.network import Network

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
        framework = BUILTINS[name].framework
        versions = ", ".join(
            f"{d} {version(d)}" for d in ((framework, "jaxlib") if framework == "jax" else (framework,))
        )
        first_line = (str(exc).splitlines() or [""])[0]
        return f"{stage} failed: {type(exc).__name__}: {first_line} ({versions})"
    return None


def version(distribution: str) -> str:
    """Return the installed version of ``distribution``, or ``"not installed"`` (read from its metadata)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
