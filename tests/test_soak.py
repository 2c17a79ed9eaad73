"""The soak script reports what it must: a planted fault fails its run, a selection that runs no test fails too
(a soak that checked nothing proved nothing), and a correct implementation passes with its environment logged."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ROOT / "tests" / "faults"


def _soak():
    spec = importlib.util.spec_from_file_location("soak", ROOT / "scripts" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(tmp_path, monkeypatch, impl: str, selection: str) -> tuple[int, list[dict]]:
    monkeypatch.chdir(ROOT)  # the script runs `pytest properties` from the repository root
    log = tmp_path / "soak.jsonl"
    argv = ["--seeds", "1", "--first-seed", "3", "--log", str(log), "--"]
    argv += ["--backends=", f"--impl={FAULTS / impl}", "-k", selection]
    code = _soak().main(argv)
    return code, [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.slow  # the soak helper's own runs of the suite (~7 s); in the scheduled job
@pytest.mark.parametrize(
    ("impl_file", "selection", "expected_code", "expect_failures"),
    [
        ("faulty_gradient_sign.py", "test_gradients_match_reference and float64 and tanh", 1, True),
        ("correct_fault_skeleton.py", "test_gradients_match_reference and float64 and tanh", 0, False),
        ("correct_fault_skeleton.py", "no_such_property", 1, False),
    ],
    ids=["planted-fault-fails", "correct-passes", "nothing-ran-fails"],
)
def test_soak_verdicts(tmp_path, monkeypatch, impl_file, selection, expected_code, expect_failures) -> None:
    code, lines = _run(tmp_path, monkeypatch, impl_file, selection)
    header, result = lines
    assert code == expected_code
    assert header["soak"]["seeds"] == 1
    assert header["environment"]["python"]
    assert result["seed"] == 3
    assert bool(result["failures"]) == expect_failures
    if expect_failures:
        assert all("test_gradients_match_reference" in f for f in result["failures"])
    if expected_code == 0:
        assert result["counts"].get("passed", 0) >= 1
