"""Command-line options, Hypothesis profiles and the ``impl`` fixture that every property runs against.

- ``--backends numpy,torch,jax`` picks the built-in backends (default: every installed one); a backend whose
  framework is missing is skipped with a one-line reason, or is an error under ``--require-backends``.
- ``--impl PATH_OR_MODULE`` (repeatable) adds a user's implementation of the contract (backends/contract.py).
- ``--device cpu|cuda`` runs the torch and jax backends on that device.
- Hypothesis profiles ``dev`` (default), ``ci`` (derandomized, prints reproduction blobs) and ``thorough``,
  chosen by ``--hypothesis-profile NAME`` or the ``MLP_CROSSCHECK_PROFILE`` environment variable.
"""

from __future__ import annotations

import functools
import os

import pytest
from hypothesis import HealthCheck, settings

import backends
from backends.contract import ContractError

# deadline=None: JAX compiles on a function's first call, which would trip any per-example deadline.
# function_scoped_fixture: the `impl` fixture returns the same stateless wrapper for every example.
_common = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.differing_executors,
        HealthCheck.function_scoped_fixture,
    ],
}
settings.register_profile("dev", max_examples=25, **_common)
settings.register_profile("ci", max_examples=60, derandomize=True, print_blob=True, **_common)
settings.register_profile("thorough", max_examples=1000, print_blob=True, **_common)
settings.load_profile(os.environ.get("MLP_CROSSCHECK_PROFILE", "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlp-crosscheck")
    group.addoption(
        "--backends",
        default=",".join(backends.BUILTINS),
        help="comma-separated built-in backends to check (default: %(default)s; missing ones are skipped)",
    )
    group.addoption(
        "--require-backends",
        action="store_true",
        help="make a selected backend whose framework is missing an error instead of a skip (for CI gates)",
    )
    group.addoption(
        "--impl",
        action="append",
        default=[],
        metavar="PATH_OR_MODULE",
        help="also check this implementation of the contract (a .py file or a module name); repeatable",
    )
    group.addoption("--device", default="cpu", help="device for the torch and jax backends: cpu (default) or cuda")


def pytest_configure(config: pytest.Config) -> None:
    names = [n.strip() for n in config.getoption("--backends").split(",") if n.strip()]
    unknown = [n for n in names if n not in backends.BUILTINS]
    if unknown:
        raise pytest.UsageError(f"--backends: unknown {unknown}; the built-in backends are {list(backends.BUILTINS)}")
    if config.getoption("--require-backends"):
        missing = [f"{n}: {backends.missing_reason(n)}" for n in names if backends.missing_reason(n)]
        if missing:
            raise pytest.UsageError("--require-backends: " + "; ".join(missing))
    impls = []
    for spec in config.getoption("--impl"):
        try:
            impls.append(backends.load(spec))
        except ContractError as exc:
            raise pytest.UsageError(str(exc)) from exc
    config._crosscheck_backends = names  # type: ignore[attr-defined]
    config._crosscheck_impls = impls  # type: ignore[attr-defined]
    _one_torch_thread(names)


def _one_torch_thread(names: list[str]) -> None:
    """Run torch's CPU kernels on one thread during the tests.

    The properties call torch on tiny matrices thousands of times; with its default intra-op threads on a
    busy 2-core machine (or beside pytest-xdist workers) the threads thrash: a 468x16 forward measured 23 ms
    instead of 0.65 ms. This is a setting of the test session only; the backend itself leaves torch's
    threads alone.
    """
    if "torch" in names and backends.missing_reason("torch") is None:
        import torch

        torch.set_num_threads(1)


def implementation_params(config: pytest.Config) -> list:
    """Return one pytest param per selected backend and ``--impl``, missing frameworks marked to skip."""
    params = []
    for name in config._crosscheck_backends:  # type: ignore[attr-defined]
        reason = backends.missing_reason(name)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(name, id=name, marks=marks))
    params += [pytest.param(impl, id=impl.name) for impl in config._crosscheck_impls]  # type: ignore[attr-defined]
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" in metafunc.fixturenames:
        metafunc.parametrize("impl", implementation_params(metafunc.config), indirect=True)


@functools.cache
def _builtin(name: str, device: str) -> backends.Implementation:
    return backends.builtin(name, None if name == "numpy" else device)


@pytest.fixture
def impl(request: pytest.FixtureRequest) -> backends.Implementation:
    """The implementation under test: a built-in backend (by name, on ``--device``) or a loaded ``--impl``."""
    param = request.param
    return _builtin(param, request.config.getoption("--device")) if isinstance(param, str) else param
