"""Where code lives: checks a newcomer can rely on (README, "Layout").

- Only ``backends/`` imports a framework (torch, jax): anything else asks ``mlp_crosscheck.backends``.
- The packages depend one way: commands -> the plugin -> properties -> backends -> reference.
- No module imports a test module: a claim's ``check_*`` lives in ``properties/claims/``, its test calls it.

The imports are read from the source (``ast``), so a lazy import inside a function counts as much as one at
the top. The planted corpus (``tests/faults/``) and ``examples/`` are users' code, written the way people
write it, and are not held to these rules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = {"torch", "jax", "jaxlib"}
USERS_CODE = ("tests/faults/", "examples/", "build/", ".venv/", "mutants/")

# Installed names of each layer, lowest first; a module may import its own layer and the ones below it.
LAYERS = (
    ("mlp_crosscheck.reference",),
    ("mlp_crosscheck.backends",),
    ("mlp_crosscheck.properties",),
    ("mlp_crosscheck",),  # the pytest plugin, crosscheck_tests and the environment fingerprint
    ("mlp_crosscheck.commands",),
    ("mlp_crosscheck.cli", "mlp_crosscheck.__main__"),
)
# Repository folder -> installed package (pyproject's package-dir).
PACKAGE_DIRS = {
    "reference": "mlp_crosscheck.reference",
    "backends": "mlp_crosscheck.backends",
    "properties": "mlp_crosscheck.properties",
    "mlp_crosscheck": "mlp_crosscheck",
}


# Not the project's code: git's own, nox's virtual environments (installed frameworks), setuptools' and mutmut's
# staging copies.
NOT_OURS = {".git", ".nox", "build"}


def python_files() -> list[Path]:
    return sorted(
        p
        for p in ROOT.rglob("*.py")
        if not str(p.relative_to(ROOT)).startswith(USERS_CODE) and not NOT_OURS & set(p.relative_to(ROOT).parts)
    )


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Return ``(line, module)`` for every import in ``path``: ``import a.b`` and ``from a.b import c`` (a.b.c)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def installed_name(path: Path) -> str | None:
    """Return the module name ``path`` has when installed, or None outside the packages."""
    relative = path.relative_to(ROOT)
    package = PACKAGE_DIRS.get(relative.parts[0])
    if package is None or len(relative.parts) == 1:
        return None
    rest = [*relative.parts[1:-1], relative.stem]
    return ".".join([package, *(p for p in rest if p != "__init__")])


def layer(module: str) -> int | None:
    """Return the index in ``LAYERS`` of the most specific layer holding ``module``, or None outside them."""
    matches = [(len(name), i) for i, names in enumerate(LAYERS) for name in names if module.startswith(name)]
    matches = [(n, i) for n, i in matches if module[n:] in ("",) or module[n] == "."]
    return max(matches)[1] if matches else None


def framework_imports(paths) -> list[str]:
    return [
        f"{p.relative_to(ROOT)}:{line}: import {module}"
        for p in paths
        if not str(p.relative_to(ROOT)).startswith("backends/")
        for line, module in imported_modules(p)
        if module.split(".")[0] in FRAMEWORKS
    ]


def upward_imports(paths) -> list[str]:
    found = []
    for p in paths:
        name = installed_name(p)
        if name is None:
            continue
        own = layer(name)
        for line, module in imported_modules(p):
            target = layer(module)
            if target is not None and own is not None and target > own:
                found.append(f"{p.relative_to(ROOT)}:{line}: {name} ({LAYERS[own][0]}) imports {module}")
    return found


def is_test_module(module: str) -> bool:
    """Whether ``module`` (or the name imported from it) is one of this project's test modules."""
    parts = module.split(".")
    ours = parts[0] in ("mlp_crosscheck", "tests", "properties") or parts[0].startswith("test_")
    return ours and any(part.startswith("test_") for part in parts)


def test_torch_and_jax_are_imported_only_in_backends() -> None:
    assert framework_imports(python_files()) == []


def test_packages_import_only_downwards() -> None:
    assert upward_imports(python_files()) == []


def test_no_module_imports_a_test_module() -> None:
    found = [
        f"{p.relative_to(ROOT)}:{line}: import {module}"
        for p in python_files()
        for line, module in imported_modules(p)
        if is_test_module(module)
    ]
    assert found == []


# -- each check is shown failing on a planted breach ------------------------------------------------------------


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """Return a function writing a file under a fake repository root (the checks then scan only it)."""
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)

    def write(relative: str, text: str) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write


def test_a_framework_import_outside_backends_is_found(planted) -> None:
    ok = planted("backends/torch_backend.py", "import torch\n")
    bad = planted("properties/helpers.py", "def f():\n    import jax.numpy as jnp\n")
    assert framework_imports([ok, bad]) == ["properties/helpers.py:2: import jax.numpy"]


def test_an_upward_import_is_found(planted) -> None:
    ok = planted("properties/helpers.py", "from mlp_crosscheck.backends.contract import Result\n")
    bad = planted("backends/reproduce.py", "from mlp_crosscheck.properties import tolerances\n")
    assert upward_imports([ok, bad]) == [
        "backends/reproduce.py:1: mlp_crosscheck.backends.reproduce (mlp_crosscheck.backends) imports "
        "mlp_crosscheck.properties.tolerances"
    ]


def test_layers_name_the_most_specific_package() -> None:
    assert LAYERS[layer("mlp_crosscheck.commands.sweep")] == ("mlp_crosscheck.commands",)
    assert LAYERS[layer("mlp_crosscheck.plugin")] == ("mlp_crosscheck",)
    assert layer("mlp_crosscheck_other") is None
    assert layer("numpy") is None


def test_an_import_of_a_test_module_is_found() -> None:
    assert is_test_module("mlp_crosscheck.properties.test_collapse.check_collapse")
    assert is_test_module("test_collapse")
    assert not is_test_module("jax.test_util.check_grads")
    assert not is_test_module("mlp_crosscheck.properties.claims.collapse.check_collapse")
