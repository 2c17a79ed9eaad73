"""The Hypothesis profiles the claims run under: ``dev`` (default), ``ci`` and ``thorough``.

The claims carry their settings explicitly (``claim_settings``), built from these objects, never from
Hypothesis's global default: a user's own profile (a ``ci`` of their own with a 200 ms deadline, a
``max_examples`` of 5) must not change the verdict on their implementation, and loading ours must not change
their own tests. The names are also registered with Hypothesis (unless the user registered them first), so
that ``--hypothesis-profile=ci`` is accepted where nothing else defines ``ci``.

Which profile is active: ``--hypothesis-profile`` when it names one of these, else the
``MLP_CROSSCHECK_PROFILE`` environment variable, else ``dev`` (the command line wins; ``select`` decides).
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import InvalidArgument

ENV = "MLP_CROSSCHECK_PROFILE"

# deadline=None: JAX compiles on a function's first call, which would trip any per-example deadline.
# function_scoped_fixture: the `impl` fixture returns the same stateless wrapper for every example.
# No explain phase: the lines it reports are the suite's own (the assert helpers), never the user's, and a
# failure's report should be the claim, the numbers and the code that rebuilds the case.
_COMMON: dict[str, Any] = {
    "deadline": None,
    "phases": tuple(p for p in Phase if p is not Phase.explain),
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.differing_executors,
        HealthCheck.function_scoped_fixture,
    ],
}
# Built on Hypothesis's own "default" profile, not on whatever is loaded at import: Hypothesis loads its
# built-in "ci" profile when it detects a CI machine (derandomize, print_blob, no database), and a user may load
# theirs; a profile built on the loaded default would inherit either, and `dev` would not be `dev` on CI.
_BASE = settings.get_profile("default")
PROFILES: dict[str, settings] = {
    "dev": settings(_BASE, max_examples=25, derandomize=False, print_blob=False, **_COMMON),
    "ci": settings(_BASE, max_examples=60, derandomize=True, print_blob=True, **_COMMON),
    "thorough": settings(_BASE, max_examples=1000, derandomize=False, print_blob=True, **_COMMON),
}
_active = "dev"


def register() -> None:
    """Register the profiles with Hypothesis under their names, leaving any the user registered alone."""
    for name, profile in PROFILES.items():
        try:
            settings.get_profile(name)
        except InvalidArgument:
            settings.register_profile(name, profile)


def select(command_line: str | None) -> str:
    """Make the profile the claims run under the command line's, else the environment's, else ``dev``.

    Args:
        command_line: the ``--hypothesis-profile`` value, or None; a name that is not one of ours (the user's
            own profile, for their own tests) leaves the choice to the environment variable.

    Raises:
        ValueError: the environment variable names no profile of ours.
    """
    global _active
    if command_line in PROFILES:
        _active = command_line
        return _active
    from_env = os.environ.get(ENV, "").strip()
    if from_env and from_env not in PROFILES:
        raise ValueError(f"{ENV}={from_env!r}: the profiles are {', '.join(PROFILES)}")
    _active = from_env or "dev"
    return _active


def active() -> str:
    """Return the name of the profile the claims run under."""
    return _active


def claim_settings(fraction: float = 1.0) -> settings:
    """Return the active profile's settings, with ``fraction`` of its ``max_examples`` (at least 10).

    For a property that is cheap to satisfy but expensive across the implementation x activation x dtype
    matrix; every use of a fraction says why. ``thorough`` still runs proportionally more.
    """
    profile = PROFILES[_active]
    if fraction == 1.0:
        return settings(profile)
    return settings(profile, max_examples=max(10, round(profile.max_examples * fraction)))


# For hypothesis.find in the suite's own tests (a planted bug's counterexample, a strategy's rare case): a
# fixed, reproducible search of 300 generated examples, no shrinking, no database, no health checks.
FIND = settings(
    _BASE,
    max_examples=300,
    derandomize=True,
    database=None,
    phases=[Phase.generate],
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
