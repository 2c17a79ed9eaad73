"""The version matrix (noxfile.py) runs what pyproject declares: its oldest releases are the declared floors,
its newest the pins in constraints.txt, and every framework has both sessions."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def noxfile():
    pytest.importorskip("nox")
    spec = importlib.util.spec_from_file_location("noxfile_under_test", ROOT / "noxfile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def declared_floors() -> dict[str, str]:
    """``name -> floor`` from pyproject's ``name>=floor`` requirements (dependencies and extras)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return dict(re.fullmatch(r"([A-Za-z0-9_-]+)>=([0-9.]+)", r).groups() for r in requirements if ">=" in r)


def test_every_framework_has_an_oldest_and_a_newest_session(noxfile) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "-f", str(ROOT / "noxfile.py")], capture_output=True, text=True, check=True
    ).stdout
    for framework in ("numpy", "torch", "jax"):
        assert f"* {framework}_oldest" in listed, listed
        assert f"* {framework}_newest" in listed, listed


def test_the_oldest_releases_are_the_floors_pyproject_declares(noxfile) -> None:
    floors = declared_floors()
    for framework, pins in noxfile.OLDEST.items():
        version = pins[0].split("==")[1]
        assert pins[0].startswith(f"{framework}=="), pins
        assert version.split(".")[: len(floors[framework].split("."))] == floors[framework].split("."), (
            f"noxfile's oldest {framework} is {version}, pyproject declares {framework}>={floors[framework]}"
        )


def test_the_newest_releases_are_the_constraints_pins(noxfile) -> None:
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line)
    assert noxfile.newest("jax") == [f"jax=={pins['jax']}", f"jaxlib=={pins['jaxlib']}"]
    assert noxfile.newest("torch") == [f"torch=={pins['torch']}"]
    assert noxfile.newest("numpy") == [f"numpy=={pins['numpy']}"]


def test_newest_fails_on_a_framework_constraints_txt_does_not_pin(noxfile, monkeypatch, tmp_path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("numpy==2.4.6\njax==0.10.2\n")  # jaxlib missing
    monkeypatch.setattr(noxfile, "CONSTRAINTS", constraints)
    with pytest.raises(ValueError, match="expected one line each"):
        noxfile.newest("jax")
