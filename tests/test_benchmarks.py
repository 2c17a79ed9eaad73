"""The measurement scripts in benchmarks/ still run against the code as it is (they are not imported by anything
else, so a rename elsewhere would otherwise break them unnoticed: kink_rejections.py did, after issue 11's move).

Each runs once with the smallest arguments; their figures are not judged here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SMALLEST = {
    "activation_accuracy.py": ["--points", "50"],
    "bench_strategies.py": ["--examples", "3", "--repeats", "1"],
    "kink_rejections.py": ["5"],
    "reference_paths.py": ["--repeats", "1"],
    "tolerance_paths.py": ["--repeats", "1"],
}


def test_every_benchmark_script_is_listed_here() -> None:
    scripts = {p.name for p in BENCHMARKS.glob("*.py")} - {"__init__.py", "revisions.py"}
    assert scripts == set(SMALLEST)


@pytest.mark.parametrize("script", sorted(SMALLEST))
def test_benchmark_script_runs(script: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *SMALLEST[script]],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.strip(), "it printed no figures"
