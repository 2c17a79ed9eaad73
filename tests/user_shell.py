"""The environment of a user's fresh shell, for the tests that run pytest or the command line in a subprocess.

A test running under pytest-xdist has PYTEST_XDIST_WORKER and friends in its environment; a subprocess that
inherited them would look parallelized to plugins that check (pytest-benchmark then warns, and under a project's
``filterwarnings = error`` that warning is an INTERNALERROR), which no user's shell would show.
"""

from __future__ import annotations

import os


def user_environment(**extra: str) -> dict[str, str]:
    """Return this process's environment without pytest's and pytest-xdist's variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "XDIST_"))}
    env.update(extra)
    return env
