"""The environment fingerprint: what decides the numbers, recorded by every report and printed in pytest's header.

One function for every consumer (``mlp-crosscheck reproduce``'s report.json, ``check --json``, ``bench``, the
soak's log, the plugin's report header), so that two reports can be compared key by key. Versions are read from the
installed distributions' metadata, so no framework is imported to fingerprint it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from pathlib import Path

from mlp_crosscheck.backends import version

# report key -> the distribution whose installed version it records
VERSIONED = {
    "numpy": "numpy",
    "scipy": "scipy",
    "torch": "torch",
    "jax": "jax",
    "jaxlib": "jaxlib",
    "hypothesis": "hypothesis",
    "pytest": "pytest",
    "matplotlib": "matplotlib",
    "mlp_crosscheck": "mlp-crosscheck",
}


def fingerprint() -> dict:
    """Return the versions, NumPy's BLAS and the machine a run was made with."""
    env: dict[str, object] = {"python": platform.python_version()}
    env.update({label: version(distribution) for label, distribution in VERSIONED.items()})
    env.update(
        blas=blas(),
        platform=platform.platform(),
        machine=platform.machine(),
        cpu=_cpu_model(),
        cpu_count=os.cpu_count(),
        usable_cpu_count=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    )
    return env


@functools.cache
def blas() -> str:
    """Return the BLAS NumPy was built with (name and version), or ``"unknown"``."""
    import numpy as np  # here, not at module level: the plugin imports this module in every pytest run

    with contextlib.suppress(Exception):
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info.get('name', '?')} {info.get('version', '')}".strip()
    return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model", "Hardware")):  # x86, then ARM's spellings
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
