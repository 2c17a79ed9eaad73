"""Every claim as test functions, for a user's own test module: ``globals().update(crosscheck_tests("mine.py"))``.

The functions returned are the claims themselves (the same ``@given`` tests the suite runs, so the same
examples under the ``ci`` profile's derandomized seeds); the module they land in names its implementations
in ``CROSSCHECK_IMPLEMENTATIONS`` (loaded when the module is imported, so that a target that cannot load is
that module's import error, with the contract's message), and the plugin parametrizes ``impl`` with them for
that module only.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path
from typing import Any

from mlp_crosscheck.backends.contract import Implementation, load
from mlp_crosscheck.plugin import IMPLEMENTATIONS_ATTRIBUTE, MARKER


def claim_modules() -> list[Any]:
    """Return the claim modules of ``mlp_crosscheck.properties`` (its ``test_*`` modules), imported."""
    from mlp_crosscheck import properties

    names = sorted(m.name for m in pkgutil.iter_modules(properties.__path__) if m.name.startswith("test_"))
    return [importlib.import_module(f"mlp_crosscheck.properties.{name}") for name in names]


def claims_on_implementations() -> dict[str, Any]:
    """Return every claim that takes an implementation (``impl``), by test function name."""
    found: dict[str, Any] = {}
    for module in claim_modules():
        for name, test in vars(module).items():
            if not (name.startswith("test_") and callable(test)):
                continue
            marks = getattr(test, "pytestmark", [])
            if any(m.name == MARKER for m in marks) and "impl" in _arguments(test):
                if name in found:
                    raise RuntimeError(f"two claims are called {name}: {found[name].__module__} and {module.__name__}")
                found[name] = test
    return found


def _arguments(test: Any) -> tuple[str, ...]:
    return tuple(inspect.signature(test).parameters)


def crosscheck_tests(*targets: str, _depth: int = 1) -> dict[str, Any]:
    """Return every claim that applies to ``targets``, to add to a test module's globals.

    Args:
        targets: implementations of the contract: paths to ``.py`` files (relative to the calling test
            module's directory, or absolute) or importable module names.

    Returns:
        The claim test functions by name, and ``CROSSCHECK_IMPLEMENTATIONS`` (the loaded implementations).

    Raises:
        ValueError: no target is given.
        ContractError: a target cannot be loaded (the message says why), so the test module fails to import.
    """
    if not targets:
        raise ValueError("crosscheck_tests() needs at least one implementation: a .py path or a module name")
    caller = sys._getframe(_depth).f_globals.get("__file__")
    here = Path(caller).resolve().parent if caller else Path.cwd()
    implementations = [load_once(_resolve(t, here)) for t in targets]
    return {**claims_on_implementations(), IMPLEMENTATIONS_ATTRIBUTE: implementations}


@functools.cache
def load_once(spec: str) -> Implementation:
    """Load each implementation once per process, however many test modules name it (its state is its own)."""
    return load(spec)


def _resolve(target: str, here: Path) -> str:
    """A path relative to the test module's directory (``.py``, or a file there); otherwise a module name."""
    candidate = here / target  # an absolute target stays itself
    return str(candidate) if target.endswith(".py") or candidate.exists() else target
