"""A pytest plugin that records, per property test, which implementation it ran on and how it ended.

Loaded into the property suite by ``mlp-crosscheck faults`` (``-p commands.faults_plugin``); it writes
one JSON line per test to the file named by the ``MLP_CROSSCHECK_KILL_MATRIX_LOG`` environment variable:
the implementation (its ``NAME`` and file), the property (the test function), the other parameters (dtype,
activation, ...), the outcome, and for a failure the ordinal of the first failing example Hypothesis ran and
the size of the shrunk counterexample.

Invariants:
- Only tests that take the ``impl`` fixture with an ``--impl`` module are kept; the rest are deselected
  (tests of the helpers, and built-in backends, say nothing about a planted fault).
- The example count comes from wrapping the test's ``.hypothesis.inner_test``, which Hypothesis documents
  as reassignable to "insert custom logic into the execution of each case" (``HypothesisHandle``). The
  wrapper keeps the function's source and signature (``functools.wraps``), from which ``derandomize`` hashes
  its seed, so the ``ci`` profile generates exactly the examples it generates without the plugin. (Hypothesis's
  observability callbacks would give the same count, but serialise every drawn array to JSON.)
- The counterexample's size is read from the reproduction note the properties attach to a failure
  (``properties.helpers.attach_reproduction``: Python that rebuilds ``net``, ``x``, ``y``), or failing that
  from Hypothesis's own ``Draw n (label): Case(...)`` note (``strategies.Case``'s repr is code too).
- Under pytest-xdist the record is computed on the worker, where the item and the exception live, and travels
  to the controller in ``report.user_properties``; only the controller writes the file.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis.errors import UnsatisfiedAssumption

from mlp_crosscheck.backends.contract import Implementation

LOG_ENV = "MLP_CROSSCHECK_KILL_MATRIX_LOG"
FIRST_CATCH_ENV = "MLP_CROSSCHECK_KILL_MATRIX_FIRST_CATCH"  # "1": stop testing an implementation at its first failure
RECORD_KEY = "kill_matrix_record"
AFTER_FIRST_FAILURE = "not run: this implementation already failed "

# Property modules that run first: cheap per example and broad (a fault that changes any number shows in the
# loss or a gradient, and the contract's checks run on every call), so that under first-catch most faults
# stop at their first or second test. The order
# of the others is pytest's. Each test's examples do not depend on the order (derandomized per test).
RUN_FIRST = ("test_gradient_agreement", "test_forward_agreement")

_REPRODUCTION = "Reproduce with:\n"
_DRAW = re.compile(r"^Draw \d+(?: \([^)]*\))?: (?=Case\()")


class _ExampleCounter:
    """Wraps a ``@given`` test's inner function and counts the examples Hypothesis runs through it.

    Before the first failure every call is an example of the explicit, reuse or generate phase (shrinking
    only starts from a failure), so the ordinal of the first failing call is exactly "the first failure came
    at example n", rejections by ``assume`` included in n.
    """

    def __init__(self, inner: Callable[..., Any]) -> None:
        self.inner = inner
        self.calls = 0
        self.rejected = 0
        self.first_failure_at: int | None = None

    def wrap(self) -> Callable[..., Any]:
        @functools.wraps(self.inner)  # keeps the source and signature that derandomize's seed is hashed from
        def counted(*args: Any, **kwargs: Any) -> Any:
            if self.first_failure_at is not None:
                return self.inner(*args, **kwargs)  # shrinking: not counted
            self.calls += 1
            try:
                return self.inner(*args, **kwargs)
            except UnsatisfiedAssumption:
                self.rejected += 1
                raise
            except Exception:
                self.first_failure_at = self.calls
                raise

        return counted

    def summary(self) -> dict[str, int | None]:
        """Return the examples run (up to the first failure, if any), how many were rejected, and that ordinal."""
        return {"examples": self.calls, "rejected": self.rejected, "first_failure_at": self.first_failure_at}


def _impl_of(item: pytest.Item) -> Implementation | None:
    callspec = getattr(item, "callspec", None)
    param = callspec.params.get("impl") if callspec is not None else None
    return param if isinstance(param, Implementation) else None


def _module_rank(item: pytest.Item) -> int:
    # The module's last dotted part: properties.test_x in a clone, mlp_crosscheck.properties.test_x installed.
    name = getattr(getattr(item, "module", None), "__name__", "").rpartition(".")[2]
    return RUN_FIRST.index(name) if name in RUN_FIRST else len(RUN_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    dropped = [item for item in items if _impl_of(item) is None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = sorted((item for item in items if _impl_of(item) is not None), key=_module_rank)  # stable


_FAILED: dict[str, str] = {}  # implementation name -> its first failing test (this process's)


def pytest_runtest_setup(item: pytest.Item) -> None:
    impl = _impl_of(item)
    if os.environ.get(FIRST_CATCH_ENV) == "1" and impl is not None and impl.name in _FAILED:
        pytest.skip(AFTER_FIRST_FAILURE + _FAILED[impl.name])


_COUNTER = pytest.StashKey[_ExampleCounter]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    handle = getattr(getattr(item, "obj", None), "hypothesis", None)
    if handle is None:  # not a @given test
        yield
        return
    original = handle.inner_test
    counter = _ExampleCounter(original)
    item.stash[_COUNTER] = counter
    handle.inner_test = counter.wrap()
    try:
        yield
    finally:
        handle.inner_test = original


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    impl = _impl_of(item)
    if impl is None or not (report.when == "call" or report.outcome != "passed"):
        return  # one record per test: its call, or the setup/teardown phase that failed or skipped
    callspec = getattr(item, "callspec", None)
    params = {k: _param_text(v) for k, v in (callspec.params.items() if callspec else ()) if k != "impl"}
    record: dict[str, Any] = {
        "impl": impl.name,
        "impl_file": str(Path(getattr(impl.module, "__file__", "") or "").resolve()) or None,
        "property": getattr(item, "originalname", item.name),
        "module": getattr(getattr(item, "module", None), "__name__", None),
        "params": params,
        "nodeid": item.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "duration_s": round(report.duration, 3),
    }
    counter = item.stash.get(_COUNTER, None)
    if counter is not None and report.when == "call":
        record.update(counter.summary())
    if report.failed:
        _FAILED.setdefault(impl.name, item.nodeid)
    if report.failed and call.excinfo is not None:
        exc = call.excinfo.value
        record["message"] = _first_line(exc)
        record["exception"] = type(exc).__name__
        record["counterexample"] = counterexample_size(exc)
    elif report.skipped and isinstance(report.longrepr, tuple):
        record["message"] = str(report.longrepr[2])
    report.user_properties.append((RECORD_KEY, record))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    for key, record in report.user_properties:
        if key == RECORD_KEY:
            with open(path, "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    # Under xdist the workers forward their reports to the controller, which calls logreport again:
    # writing on the workers too would record every test twice.
    if hasattr(config, "workerinput"):
        os.environ.pop(LOG_ENV, None)


# -----------------------------------------------------------------------------------------------------------
# What a failure says about its counterexample.


def _param_text(value: Any) -> str:
    if isinstance(value, np.dtype):
        return value.name
    return value if isinstance(value, str) else repr(value)


def _exceptions(exc: BaseException):
    """Yield ``exc`` and, for an exception group (Hypothesis's several distinct bugs), its members."""
    yield exc
    for sub in getattr(exc, "exceptions", ()):
        yield from _exceptions(sub)


def _first_line(exc: BaseException) -> str:
    for e in _exceptions(exc):
        text = str(e).strip()
        if text and not getattr(e, "exceptions", None):
            return f"{type(e).__name__}: {text.splitlines()[0][:300]}"
    return type(exc).__name__


def _case_from_note(note: str) -> dict[str, Any] | None:
    """Return ``{"net", "x", "y"}`` rebuilt from a reproduction or Hypothesis draw note, or None."""
    from mlp_crosscheck.reference.network import Network

    namespace: dict[str, Any] = {"np": np, "Network": Network}
    try:
        if note.startswith(_REPRODUCTION):
            exec(note[len(_REPRODUCTION) :], namespace)  # code our own strategies printed
            return {k: namespace.get(k) for k in ("net", "x", "y")}
        match = _DRAW.match(note)
        if match:
            from mlp_crosscheck.properties.strategies import Case

            namespace["Case"] = Case
            case = eval(note[match.end() :], namespace)
            return {"net": case.net, "x": case.x, "y": case.y}
    except Exception:
        return None
    return None


def counterexample_size(exc: BaseException) -> dict[str, Any] | None:
    """Return the size of the smallest counterexample attached to ``exc``'s notes, or None if none is.

    The size is the network's widths, its parameter count (weights and biases), and the batch size.
    Among several (an exception group), the one with the fewest parameters, then the smallest batch.
    """
    sizes = []
    for e in _exceptions(exc):
        for note in getattr(e, "__notes__", ()):
            case = _case_from_note(note)
            if case is None or not hasattr(case["net"], "weights"):
                continue
            net = case["net"]
            x = case.get("x")
            parameters = sum(w.size for w in net.weights) + sum(b.size for b in (net.biases or ()))
            sizes.append(
                {
                    "widths": list(net.widths),
                    "activations": list(net.activations),
                    "dtype": np.dtype(net.dtype).name,
                    "biases": net.biases is not None,
                    "parameters": int(parameters),
                    "batch": None if x is None else int(np.shape(x)[0]),
                }
            )
    if not sizes:
        return None
    return min(sizes, key=lambda s: (s["parameters"], s["batch"] or 0))
