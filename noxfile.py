"""The version matrix: the property suite against the oldest and the newest release of each framework we declare.

    nox -s jax_oldest jax_newest          # one framework, both ends (a CI matrix calls one session per job)
    nox -l                                # every session
    nox -s jax_oldest -- -x               # arguments after -- go to pytest

Each session installs the project with ``constraints.txt`` (every other package at its tested version) and the
framework at one end of the range that ``pyproject.toml`` declares, then runs the claims on that framework's
backend alone, under the ``ci`` profile, with ``--require-backends`` (a release the backend cannot drive is one
usage error, not hundreds of failures). docs/versions.md records which sessions were run where, with results.
"""

from __future__ import annotations

import re
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).resolve().parent
CONSTRAINTS = ROOT / "constraints.txt"

# The floor of each range in pyproject.toml, as installable releases (a framework's companion packages too).
OLDEST = {
    "numpy": ["numpy==1.26.4"],
    "torch": ["torch==2.4.0"],
    "jax": ["jax==0.4.30", "jaxlib==0.4.30"],
}
# Installed with the framework, so they are pinned together with it (constraints.txt holds the newest).
COMPANIONS = {"numpy": (), "torch": (), "jax": ("jaxlib",)}


def _distribution(line: str) -> str:
    """The distribution a constraints.txt line pins (``"jaxlib==0.10.2"`` -> ``"jaxlib"``)."""
    return re.split(r"[=<>!~ ]", line.strip(), maxsplit=1)[0].lower()


def newest(framework: str) -> list[str]:
    """The framework's (and its companions') pins in constraints.txt: the newest release we test with."""
    names = (framework, *COMPANIONS[framework])
    pins = [line.strip() for line in CONSTRAINTS.read_text().splitlines()]
    found = [pin for pin in pins if _distribution(pin) in names]
    if len(found) != len(names):
        raise ValueError(f"constraints.txt pins {found}, expected one line each for {names}")
    return found


def run_claims(session: nox.Session, framework: str, requirements: list[str]) -> None:
    names = (framework, *COMPANIONS[framework])
    others = [line for line in CONSTRAINTS.read_text().splitlines() if _distribution(line) not in names]
    constraints = Path(session.create_tmp()) / "constraints-without-the-framework.txt"
    constraints.write_text("\n".join(others) + "\n")
    extra = "" if framework == "numpy" else f",{framework}"
    session.install("-c", str(constraints), "-e", f"{ROOT}[dev{extra}]", *requirements)
    session.run("python", "-c", f"import {framework}; print('{framework}', {framework}.__version__)")
    session.run(
        "python",
        "-m",
        "pytest",
        str(ROOT / "properties"),
        f"--backends={framework}",
        "--require-backends",
        "--hypothesis-profile=ci",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        *session.posargs,
    )


def _define(framework: str) -> None:
    @nox.session(name=f"{framework}_oldest")
    def oldest(session: nox.Session) -> None:
        run_claims(session, framework, OLDEST[framework])

    @nox.session(name=f"{framework}_newest")
    def latest(session: nox.Session) -> None:
        run_claims(session, framework, newest(framework))


for _framework in OLDEST:
    _define(_framework)
