"""Load a folder's modules as they were at a git revision, beside the working tree's, to time both in one run."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def package_at(rev: str, folder: str, modules: tuple[str, ...], into: Path, rewrite: Callable[[str, str], str]) -> str:
    """Write ``folder/<module>.py`` of revision ``rev`` into a package of their own under ``into``; return its name.

    ``rewrite(source, package)`` redirects the modules' imports of each other to that package (otherwise they
    would import the working tree's). A module missing at ``rev`` is left out (the caller decides what it
    needs). ``into`` goes on ``sys.path``, so ``importlib.import_module(f"{package}.<module>")`` loads them.
    """
    package = f"_{folder}_at_" + "".join(c if c.isalnum() else "_" for c in rev)
    target = into / package
    target.mkdir()
    (target / "__init__.py").write_text("")
    for name in modules:
        shown = subprocess.run(["git", "show", f"{rev}:{folder}/{name}.py"], cwd=REPO, capture_output=True, text=True)
        if shown.returncode == 0:
            (target / f"{name}.py").write_text(rewrite(shown.stdout, package))
    if str(into) not in sys.path:
        sys.path.insert(0, str(into))
    return package
