"""The mlp-crosscheck pytest plugin, registered under the ``pytest11`` entry point (loaded wherever it is installed).

Options (``pytest --help``, group "mlp-crosscheck"):

- ``--impl PATH_OR_MODULE`` (repeatable): check this implementation of the contract (``backends/contract.py``).
- ``--backends numpy,torch,jax``: the built-in backends to check (default: all of them, or none when
  ``--impl`` is given); a missing framework is skipped with a one-line reason.
- ``--require-backends``: every selected backend must work: one tiny real call per backend, dtype and device
  is made before collection, and any failure is a usage error naming its cause.
- ``--device cpu|cuda``: where torch and jax compute (default ``$MLP_CROSSCHECK_DEVICE``, else cpu).
- ``--require-bitwise-reproducible``: fail an implementation whose repeated calls differ in any bit (without
  it, that is reported, and repeated calls need only agree within the rounding-error bound).
- ``--hypothesis-profile dev|ci|thorough`` picks the claims' profile (``properties/profiles.py``).

Invariants:
- Installed, this module is imported by every pytest run in the environment, including ones that have
  nothing to do with mlp-crosscheck: it imports no framework and no NumPy at module level, loads no Hypothesis
  profile globally, and parametrizes only the claims (tests marked ``mlp_crosscheck``), never a user's own
  fixture that happens to be called ``impl``.
- The command line wins over the environment; an empty selection (no backend, no ``--impl``) is a usage
  error, never a green run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from typing import Any

import pytest

from mlp_crosscheck import environment
from mlp_crosscheck.backends import BUILTINS
from mlp_crosscheck.properties import profiles

MARKER = "mlp_crosscheck"
BUILTIN_NAMES = tuple(BUILTINS)
IMPLEMENTATIONS_ATTRIBUTE = "CROSSCHECK_IMPLEMENTATIONS"  # set by crosscheck_tests() in a user's test module
RECORD_KEY = "mlp_crosscheck"

# Direct evidence first (so that -x stops at it): each activation alone, then forward, then loss and gradients,
# then the contract, then the claims derived from them. A family not listed runs after these, in pytest's order.
FAMILY_ORDER = (
    "activation_accuracy",  # when one activation changed, its failure names it before any network's does
    "forward_agreement",
    "gradient_agreement",
    "contract",
    "underflow",
    "kink_conventions",
    "recorded_behaviours",
    "hard_cases",
    "collapse",
    "nonlinear_does_not_collapse",
    "conservation",
    "training",
)

profiles.register()


class Selection:
    """What this session checks: built-in backend names, loaded implementations, device, bitwise requirement."""

    def __init__(self, backends: list[str], impls: list, device: str, require_bitwise: bool) -> None:
        self.backends = backends
        self.impls = impls
        self.device = device
        self.require_bitwise = require_bitwise


SELECTION = pytest.StashKey[Selection]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlp-crosscheck", "mlp-crosscheck: cross-framework checks of an MLP's maths")
    group.addoption(
        "--impl",
        action="append",
        default=[],
        metavar="PATH_OR_MODULE",
        help="check this implementation of the contract (a .py file or an importable module); repeatable",
    )
    group.addoption(
        "--backends",
        default=None,
        metavar="NAMES",
        help=f"comma-separated built-in backends to check, of {','.join(BUILTIN_NAMES)} "
        "(default: all, or none when --impl is given)",
    )
    group.addoption(
        "--require-backends",
        action="store_true",
        help="make every selected backend prove it works (one real call each) before any test runs",
    )
    group.addoption(
        "--device",
        default=None,
        help="device for the torch and jax backends: cpu or cuda (default: $MLP_CROSSCHECK_DEVICE, else cpu)",
    )
    group.addoption(
        "--strict-conventions",
        action="store_true",
        help="fail when an installed framework version has no recorded row of behaviours (the ci profile's "
        "default; otherwise a warning in the summary)",
    )
    group.addoption(
        "--require-bitwise-reproducible",
        action="store_true",
        help="fail an implementation whose repeated calls are not bit for bit identical (default: reported only)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a claim of mlp-crosscheck, run against each implementation")
    try:
        profiles.select(config.getoption("hypothesis_profile", None))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    option = config.getoption("--backends")
    impl_specs = config.getoption("--impl")
    if option is None:
        names = [] if impl_specs else list(BUILTIN_NAMES)
    else:
        names = [n.strip() for n in option.split(",") if n.strip()]
        unknown = [n for n in names if n not in BUILTIN_NAMES]
        if unknown:
            raise pytest.UsageError(f"--backends: unknown {unknown}; the built-in backends are {list(BUILTIN_NAMES)}")
        if not names and not impl_specs:
            raise pytest.UsageError(
                f"--backends {option!r} selects no backend and no --impl is given: nothing to check"
            )
    from mlp_crosscheck.properties import observed

    observed.STRICT = bool(config.getoption("--strict-conventions")) or profiles.active() == "ci"
    device = config.getoption("--device") or os.environ.get("MLP_CROSSCHECK_DEVICE") or "cpu"
    impls = [_load(spec) for spec in impl_specs] if impl_specs else []
    selection = Selection(names, impls, device, config.getoption("--require-bitwise-reproducible"))
    config.stash[SELECTION] = selection
    if config.getoption("--require-backends") and not hasattr(config, "workerinput"):
        _require_backends(names, device)  # once, on the controller: the workers inherit its verdict
    if "torch" in names:
        _one_torch_thread()


def _load(spec: str):
    from mlp_crosscheck.backends.contract import ContractError, load

    try:
        return load(spec)
    except ContractError as exc:
        raise pytest.UsageError(str(exc)) from exc


def _require_backends(names: list[str], device: str) -> None:
    """Raise a usage error unless each backend imports and computes a tiny network in each dtype on ``device``."""
    from mlp_crosscheck import backends

    problems = []
    for name in names:
        reason = backends.missing_reason(name)
        if reason is None:
            reason = backends.first_call_problem(name, None if name == "numpy" else device)
        if reason is not None:
            problems.append(f"{name}: {reason}")
    if problems:
        raise pytest.UsageError("--require-backends: " + "; ".join(problems))


def _one_torch_thread() -> None:
    """Run torch's CPU kernels on one thread during the tests.

    The properties call torch on tiny matrices thousands of times; with its default intra-op threads on a
    busy 2-core machine (or beside pytest-xdist workers) the threads thrash (a 468x16 forward: 23 ms instead
    of 0.65 ms). A setting of the test session only; the backend itself leaves torch's threads alone.
    """
    from mlp_crosscheck import backends

    backends.limit_threads(["torch"], 1)


def pytest_report_header(config: pytest.Config) -> list[str]:
    selection = config.stash.get(SELECTION, None)
    if selection is None:
        return []
    checked = [*selection.backends, *(impl.name for impl in selection.impls)]
    return [
        f"mlp-crosscheck {environment.version('mlp-crosscheck')}: checking "
        f"{', '.join(checked) or 'the implementations the test modules name'}"
        f"; profile {profiles.active()}; device {selection.device}",
        "  "
        + "; ".join(f"{k} {environment.version(d)}" for k, d in environment.VERSIONED.items() if k != "mlp_crosscheck")
        + f"; blas {environment.blas()}",
    ]


# -- which implementations a claim runs against ---------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" not in metafunc.fixturenames or metafunc.definition.get_closest_marker(MARKER) is None:
        return
    own = getattr(metafunc.module, IMPLEMENTATIONS_ATTRIBUTE, None)
    if own is not None:  # a user's test module, through crosscheck_tests(): its implementations only
        params = [pytest.param(impl, id=impl.name) for impl in own]
    else:
        selection = metafunc.config.stash[SELECTION]
        params = [_builtin_param(name) for name in selection.backends]
        params += [pytest.param(impl, id=impl.name) for impl in selection.impls]
    metafunc.parametrize("impl", params, indirect=True)


def _builtin_param(name: str):
    from mlp_crosscheck import backends

    reason = backends.missing_reason(name)
    return pytest.param(name, id=name, marks=[pytest.mark.skip(reason=reason)] if reason else [])


@functools.cache
def _builtin(name: str, device: str):
    from mlp_crosscheck import backends

    return backends.builtin(name, None if name == "numpy" else device)


@pytest.fixture
def impl(request: pytest.FixtureRequest):
    """The implementation under test: a built-in backend (by name, on ``--device``) or a loaded implementation."""
    param = request.param
    if not isinstance(param, str):
        return param
    return _builtin(param, request.config.stash[SELECTION].device)


@pytest.fixture
def bitwise_required(request: pytest.FixtureRequest, impl) -> bool:
    """Whether ``impl`` must be bitwise reproducible: ``--require-bitwise-reproducible`` or its ``DETERMINISTIC``."""
    selection = request.config.stash.get(SELECTION, None)
    return bool(getattr(impl.module, "DETERMINISTIC", False)) or bool(selection and selection.require_bitwise)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the claims in FAMILY_ORDER (stable), in the places they already hold among the other tests."""
    slots = [i for i, item in enumerate(items) if item.get_closest_marker(MARKER) is not None]
    ordered = sorted((items[i] for i in slots), key=_family_rank)
    for i, item in zip(slots, ordered, strict=True):
        items[i] = item


def family(item: pytest.Item) -> str:
    """Return the claim family of a test: its function's module name without ``test_`` (``forward_agreement``)."""
    module = getattr(getattr(item, "function", None), "__module__", "") or ""
    return module.rpartition(".")[2].removeprefix("test_")


def _family_rank(item: pytest.Item) -> int:
    name = family(item)
    return FAMILY_ORDER.index(name) if name in FAMILY_ORDER else len(FAMILY_ORDER)


# -- one claim's Hypothesis settings per run, not one more layer per run -------------------------------------

# Hypothesis's pytest plugin (6.155) wraps a @given function's settings once per executed item,
# ``fn._hypothesis_internal_use_settings = settings(parent=<the previous ones>, ...)``, and never unwraps them:
# the parent chain grows by one per parametrized item run in the process, and every lookup of a setting the
# profile leaves unset (the ci profile's database) walks it. A claim run on many implementations in one
# process (the kill matrix: ~950 items of test_forward_matches_reference) ends in RecursionError, reported as
# a failed claim. Each claim's item gets back the settings it started with.
_SETTINGS = pytest.StashKey[object]()
_SETTINGS_ATTRIBUTE = "_hypothesis_internal_use_settings"


def _claim_function(item: pytest.Item):
    function = getattr(item, "obj", None)
    return getattr(function, "__func__", function)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    function = _claim_function(item)
    if item.get_closest_marker(MARKER) is not None and _SETTINGS_ATTRIBUTE in getattr(function, "__dict__", {}):
        item.stash[_SETTINGS] = function.__dict__[_SETTINGS_ATTRIBUTE]


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    if _SETTINGS in item.stash:
        setattr(_claim_function(item), _SETTINGS_ATTRIBUTE, item.stash[_SETTINGS])


# -- what each claim measured: per test, the implementation, its family, calls and worst ratio per quantity ----


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    impl = getattr(item, "funcargs", {}).get("impl")
    if item.get_closest_marker(MARKER) is None or impl is None:
        return (yield)
    from mlp_crosscheck.properties import assertions, helpers

    calls, warned = impl.calls, sum(impl.warnings.values())
    examples = _ExampleCounter(item)
    with (
        assertions.recording_ratios() as ratios,
        helpers.recording_notes() as notes,
        examples,
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", SPURIOUS_BLAS_FLAGS, RuntimeWarning)
        try:
            return (yield)
        finally:
            item.stash[_MEASURED] = {
                "examples": examples.count,
                "ratios": dict(ratios),
                "calls": impl.calls - calls,
                "warnings": sum(impl.warnings.values()) - warned,
                "notes": list(notes),
            }


class _ExampleCounter:
    """Counts the examples a ``@given`` claim runs (shrinking included), or 1 for a claim on fixed cases.

    It wraps the test's ``.hypothesis.inner_test``, which Hypothesis documents as reassignable to insert
    logic around each example; ``functools.wraps`` keeps the source and signature that ``derandomize``
    hashes its seed from, so the ``ci`` profile draws the same examples with and without the count.
    """

    def __init__(self, item: pytest.Item) -> None:
        self.handle = getattr(getattr(item, "obj", None), "hypothesis", None)
        self.count = 0 if self.handle is not None else 1

    def __enter__(self) -> None:
        if self.handle is None:
            return
        self.original = inner = self.handle.inner_test

        @functools.wraps(inner)
        def counted(*args, **kwargs):
            self.count += 1
            return inner(*args, **kwargs)

        self.handle.inner_test = counted

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.inner_test = self.original


_MEASURED = pytest.StashKey[dict[str, Any]]()

# OpenBLAS kernels can raise floating-point status flags on finite data (reading past a small matrix's end in
# vector lanes), and NumPy reports the flags after matmul: "invalid value encountered in matmul" on a product
# whose every element is finite (numpy/numpy#24067, #28967; seen here once in a 1x5 @ 5x2 float32 product,
# not reproducible on the rerun). The warning says nothing about the values, which the claims judge
# (NaN and infinity positions included), so within a claim it is not turned into an error by a project's
# filterwarnings. Every other warning of the suite's own code still is.
SPURIOUS_BLAS_FLAGS = r"(invalid value|overflow|divide by zero) encountered in matmul"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach one record per claim (its call, or the phase that skipped or failed) for reports such as ``check``.

    It travels in ``report.user_properties``, so that under pytest-xdist it reaches the controller.
    """
    if call.excinfo is not None and item.get_closest_marker(MARKER) is not None:
        _import_hypothesis_patching_quietly()
    report = yield
    callspec = getattr(item, "callspec", None)
    if item.get_closest_marker(MARKER) is None or callspec is None or "impl" not in callspec.params:
        return report
    if report.when == "call" or report.outcome != "passed":
        param = callspec.params["impl"]
        measured: dict[str, Any] = item.stash.get(_MEASURED, {})
        record = {
            "impl": param if isinstance(param, str) else param.name,
            "family": family(item),
            "test": getattr(item, "originalname", item.name),
            "params": {k: getattr(v, "name", str(v)) for k, v in callspec.params.items() if k != "impl"},
            "when": report.when,
            "outcome": "xfailed" if hasattr(report, "wasxfail") else report.outcome,
            "duration_s": round(report.duration, 4),
            **measured,
        }
        if report.failed or hasattr(report, "wasxfail") or report.skipped:
            record["message"] = _reason(report)
        report.user_properties.append((RECORD_KEY, record))
    return report


# The claims' warnings (an installed framework version without a recorded row, under the dev profile): notes
# that start with WARNING_PREFIX, read from each report's record on the process that prints the summary (the
# record reaches the controller under pytest-xdist too), once per session.
_WARNED: dict[str, None] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    _WARNED.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, record in report.user_properties:
        if key == RECORD_KEY and isinstance(record, dict) and record.get("notes"):
            from mlp_crosscheck.properties.helpers import WARNING_PREFIX

            _WARNED.update(dict.fromkeys(n for n in record["notes"] if n.startswith(WARNING_PREFIX)))


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the claims' warnings in the summary: visible without ``-ra``, and never a silent skip."""
    if _WARNED:
        terminalreporter.section("mlp-crosscheck warnings")
        for line in _WARNED:
            terminalreporter.write_line(line)


def _import_hypothesis_patching_quietly() -> None:
    """Import Hypothesis's failure-patch writer now, with its libraries' DeprecationWarnings silenced.

    Hypothesis's own makereport hook imports it when a test fails; it imports libcst, which warns through
    mypy_extensions. Under a project's ``filterwarnings = error`` that warning would turn a claim's failure
    into an INTERNALERROR and lose the report. Every wrapper's code before its ``yield`` runs before any
    hook's teardown, so importing here first makes Hypothesis's later import a dictionary lookup.
    """
    # ImportError: libcst is not installed; Hypothesis then skips the patch, and nothing warns.
    with warnings.catch_warnings(), contextlib.suppress(ImportError):
        warnings.simplefilter("ignore", DeprecationWarning)
        import hypothesis.extra._patching  # noqa: F401


def _reason(report: pytest.TestReport) -> str:
    """Return the first line of why a test failed, was skipped, or is reported as an expected failure."""
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail).removeprefix("reason: ")
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (file, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(longrepr)
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
