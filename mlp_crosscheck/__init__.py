"""mlp-crosscheck: cross-framework verification of neural-network maths.

Installed, everything lives under this name: ``mlp_crosscheck.reference`` (the NumPy reference),
``mlp_crosscheck.backends`` (the contract and the built-in backends), ``mlp_crosscheck.properties`` (the
claims), ``mlp_crosscheck.plugin`` (the pytest plugin) and ``mlp_crosscheck.cli`` (the command line).

In your own test suite, one module adds every claim that applies to your implementation::

    from mlp_crosscheck import crosscheck_tests

    globals().update(crosscheck_tests("mine.py"))   # a path (relative to this file) or a module name
"""

from __future__ import annotations

from typing import Any

__all__ = ["crosscheck_tests"]


def crosscheck_tests(*targets: str, **options: Any) -> dict[str, Any]:
    """Return every claim that applies to ``targets``, as test functions for a test module's globals.

    See ``mlp_crosscheck.suite.crosscheck_tests``; imported lazily so that ``import mlp_crosscheck`` stays cheap.
    """
    from mlp_crosscheck.suite import crosscheck_tests as build

    return build(*targets, _depth=2, **options)
