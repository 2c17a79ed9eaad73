"""What is specific to developing this repository.

The options (``--impl``, ``--backends``, ``--require-backends``, ``--device``), the profiles and the ``impl``
fixture belong to the installed plugin (``mlp_crosscheck/plugin.py``), so that they work the same from any
project. The claims carry their profile's settings themselves; the repository's own tests (``tests/``) are
not claims, and run under the same profile, loaded globally here.

JAX's compilation cache on disk is switched on here, for this repository's test runs only (never by the
plugin: a user's JAX settings are theirs); see ``_share_jax_compilations``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from hypothesis import settings
from mlp_crosscheck.properties import profiles

JAX_CACHE = Path(__file__).resolve().parent / ".pytest_cache" / "jax-compilation-cache"


def _share_jax_compilations() -> None:
    """Let every process of a test run, and later runs, load the JAX programs one process has compiled.

    The jax backend compiles some thirty programs, about a second of CPU each, in every pytest-xdist worker
    and in every subprocess the tests start. JAX keys its cache on the program, the compiler options, the
    device and the versions, so a program loaded from it is the one JAX would compile. Set in the environment
    before jax is imported, so that the subprocesses inherit it; a value already set wins.

    Only with a size limit, which makes JAX lock the directory (``filelock``) around each read and write:
    without it, one worker could read an entry another is still writing, and JAX's warning about that entry
    is an error under this project's ``filterwarnings``. Without ``filelock``, no cache: only slower.
    """
    if importlib.util.find_spec("filelock") is None:
        return
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(JAX_CACHE))
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2**30))
    # The backend's programs take about a second to compile; the many tiny ones of eager jax calls (tens of
    # milliseconds) are cheaper to compile again than to read back.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")


_share_jax_compilations()


@pytest.hookimpl(trylast=True)  # after the plugin has chosen the profile from the command line
def pytest_configure(config: pytest.Config) -> None:
    settings.load_profile(profiles.active())
