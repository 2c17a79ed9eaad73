"""What the sweep's test modules share: running the command in-process, and giving back the threads it sets."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import sys

import pytest

from mlp_crosscheck.cli import main


@pytest.fixture(autouse=True)
def threads_given_back(monkeypatch):
    """The sweep command sets thread counts process-wide (torch) and XLA_FLAGS (for jax's first import): give
    them back after each test. The frameworks are imported first, so that no sweep here is the one that fixes
    XLA's threads for the rest of the pytest session (XLA reads them once). Autouse in every module that
    imports it."""
    for framework in ("torch", "jax"):
        if importlib.util.find_spec(framework) is not None:
            importlib.import_module(framework)
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    yield
    if torch is not None:
        torch.set_num_threads(threads)


def run_sweep(*args) -> tuple[int, str, str]:
    """Run ``mlp-crosscheck sweep ARGS``; return its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["sweep", *args])
    return code, out.getvalue(), err.getvalue()


def run_quiet_sweep(*args) -> tuple[int, str, str]:
    """``run_sweep(*args, "--quiet")``: no progress bar in the output."""
    return run_sweep(*args, "--quiet")
