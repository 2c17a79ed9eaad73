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


@pytest.mark.slow  # each benchmark script in a subprocess (~15 s); in the scheduled job
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


def test_bench_prints_the_reference_the_backend_their_limit_and_the_sweeps_share_of_it():
    from mlp_crosscheck.commands import bench
    from mlp_crosscheck.commands import sweep as sw

    spec = sw.SweepSpec(seed=7)
    rates = bench.sweep_rates(["numpy"], 3 * 256, 256, 1, spec)

    numpy_rates = rates["numpy"]
    assert numpy_rates["limit"] == numpy_rates["ref"]  # float64 numpy is the baseline: the reference alone
    assert numpy_rates["share"] == numpy_rates["sweep"] / numpy_rates["limit"]
    assert numpy_rates["share"] < numpy_rates["ceiling"]  # the bounds and the comparison are not free
    printed = bench.format_sweep(rates, ["numpy"], spec, 3 * 256, 256, 1)
    for row in (
        "raw batched float64 reference",
        "raw batched backend",
        "limit: reference and backend",
        "sweep / limit",
        "ceiling: sweep / limit with bounds and compare free",
    ):
        assert row in printed
    assert "the limit is the reference alone" in printed


def test_the_limit_combines_the_reference_and_the_backend(monkeypatch):
    from mlp_crosscheck.commands import bench
    from mlp_crosscheck.commands import sweep as sw

    monkeypatch.setattr(bench, "reference_rate", lambda *args: 300.0)
    monkeypatch.setattr(bench, "raw_rate", lambda *args: 600.0)
    spec = sw.SweepSpec(seed=7, dtype="float32")  # numpy in float32 is a backend of its own, not the baseline

    rates = bench.sweep_rates(["numpy"], 3 * 256, 256, 1, spec)

    assert rates["numpy"]["limit"] == 200.0  # 1 / (1/300 + 1/600)
    assert rates["numpy"]["share"] == rates["numpy"]["sweep"] / 200.0
    printed = bench.format_sweep(rates, ["numpy"], spec, 3 * 256, 256, 1)
    assert f"{100 * rates['numpy']['share']:.0f}%" in printed
    assert "the limit is the reference alone" not in printed


def test_every_column_gets_the_best_reference_round_of_the_run(monkeypatch):
    pytest.importorskip("torch")
    from mlp_crosscheck.commands import bench
    from mlp_crosscheck.commands import sweep as sw

    rounds = iter([100.0, 400.0, 200.0, 300.0, 150.0, 250.0])  # numpy's three rounds, then torch's
    monkeypatch.setattr(bench, "reference_rate", lambda *args: next(rounds))
    monkeypatch.setattr(bench, "raw_rate", lambda *args: 600.0)
    spec = sw.SweepSpec(seed=7, dtype="float32")

    rates = bench.sweep_rates(["numpy", "torch"], 3 * 256, 256, 1, spec)

    assert rates["numpy"]["ref"] == rates["torch"]["ref"] == 400.0  # torch's own best round was 300
    assert rates["torch"]["limit"] == 1 / (1 / 400.0 + 1 / 600.0)
