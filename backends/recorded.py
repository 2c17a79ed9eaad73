"""The recorded behaviours of each framework, keyed by framework and version: where the maths leaves a choice.

A row says what a framework version was measured to do (``mlp-crosscheck conventions --record``):
``kink_derivatives`` (relu'(0), leaky_relu'(0)), ``flushes_subnormals`` (subnormal results become 0),
``subnormal_inputs`` (``"kept"``, or ``"zero"``: subnormal inputs are read as 0), and ``accuracy``
(``{dtype: {activation: {quantity: {repr(z): class}}}}``, only the grid points of
``properties/accuracy.py`` that are not accurate to a few ulps).

Invariants:
- The rows ship with the package (``recorded.json`` beside this module) and may be extended without editing
  it: rows in ``$MLP_CROSSCHECK_RECORDED`` (a path), else ``./mlp-crosscheck-recorded.json`` when it exists,
  take precedence for the versions they name. Both files have the same shape: ``{framework: {version: row}}``.
- A backend declares the row of the installed version, or of the nearest recorded one (``lookup``): the
  claims then hold it to what that version did, and ``properties/test_recorded_behaviours.py`` says that the
  installed version is unrecorded (a failure under the ``ci`` profile or ``--strict-conventions``).
- Rows are keyed by device too: a CPU row by the version alone (``"0.10.2"``), another device's by the version and
  the device's kind (``"0.10.2@cuda"``; ``cuda:1`` is ``cuda``). Accuracy and flushing are properties of the
  kernels a device runs, not of the version: a backend on a device with no row of its own declares the nearest
  CPU row as not exact, so that its differences are reported against that row (and recorded with
  ``--device``), never held to it.
- No framework is imported here: versions and devices are given by the caller.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, NamedTuple

PACKAGED = Path(__file__).with_name("recorded.json")
OVERLAY_VARIABLE = "MLP_CROSSCHECK_RECORDED"
OVERLAY_NAME = "mlp-crosscheck-recorded.json"
FIELDS = ("kink_derivatives", "flushes_subnormals", "subnormal_inputs", "accuracy")


class Lookup(NamedTuple):
    """The row a backend declares: the installed version's on its device (``exact``), else the nearest one's."""

    framework: str
    installed: str
    version: str  # the key of the row: the version it was recorded with, and "@device" unless on the cpu
    row: dict[str, Any]
    exact: bool
    source: str  # the file the row came from
    device: str = "cpu"  # the device kind the backend computes on

    def on(self) -> str:
        """``" on cuda"`` for a backend off the cpu, else ``""``: for messages."""
        return "" if self.device == "cpu" else f" on {self.device}"


def device_kind(device: str) -> str:
    """Return the kind of a device, which rows are keyed by: ``"cuda:1"`` -> ``"cuda"``."""
    return device.split(":", 1)[0]


def row_key(version: str, device: str = "cpu") -> str:
    """Return the key of a row: the version on the cpu, ``"version@kind"`` on another device."""
    kind = device_kind(device)
    return version if kind == "cpu" else f"{version}@{kind}"


def _device_of(key: str) -> str:
    return key.split("@", 1)[1] if "@" in key else "cpu"


def overlay_path() -> Path:
    """Return the user's file of extra rows: ``$MLP_CROSSCHECK_RECORDED``, else ./mlp-crosscheck-recorded.json."""
    return Path(os.environ.get(OVERLAY_VARIABLE) or OVERLAY_NAME)


def read(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Return the rows in ``path`` (``{}`` if it does not exist); a malformed file is an error naming it."""
    if not path.exists():
        return {}
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"recorded behaviours file {path}: cannot be read as JSON ({error})") from error
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise ValueError(f"recorded behaviours file {path}: expected {{framework: {{version: row}}}}")
    for framework, rows in table.items():
        for version, row in rows.items():
            missing = [f for f in FIELDS if f not in row]
            if missing:
                raise ValueError(f"recorded behaviours file {path}: {framework} {version} lacks {', '.join(missing)}")
    return table


def rows(framework: str) -> dict[str, tuple[dict[str, Any], str]]:
    """Return ``{version: (row, source file)}`` for ``framework``: the packaged rows, then the user's overlay."""
    found = {v: (row, str(PACKAGED)) for v, row in read(PACKAGED).get(framework, {}).items()}
    overlay = overlay_path()
    found.update({v: (row, str(overlay)) for v, row in read(overlay).get(framework, {}).items()})
    return found


def version_key(version: str) -> tuple:
    """Order versions by their release numbers: ``"2.13.0+cpu"`` -> ``(2, 13, 0)``; ``"0.4.30"`` -> ``(0, 4, 30)``."""
    release = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(n) for n in release.group(0).split(".")) if release else ()


def lookup(framework: str, installed: str, device: str = "cpu") -> Lookup:
    """Return the row for ``installed`` on ``device``, else the nearest recorded one: among the rows of that
    device, else of the cpu, the newest version not newer, else the oldest; raise LookupError when
    ``framework`` has no row at all."""
    recorded, kind = rows(framework), device_kind(device)
    key = row_key(installed, kind)
    if key in recorded:
        row, source = recorded[key]
        return Lookup(framework, installed, key, row, True, source, kind)
    if not recorded:
        raise LookupError(f"no recorded behaviours for {framework} (looked in {PACKAGED} and {overlay_path()})")
    same_device = [k for k in recorded if _device_of(k) == kind] or [k for k in recorded if _device_of(k) == "cpu"]
    ordered = sorted(same_device or recorded, key=version_key)
    older = [v for v in ordered if version_key(v) <= version_key(installed)]
    nearest = older[-1] if older else ordered[0]
    row, source = recorded[nearest]
    return Lookup(framework, installed, nearest, row, False, source, kind)


def record(path: Path, framework: str, version: str, row: dict[str, Any], device: str = "cpu") -> str:
    """Add (or replace) ``framework``'s row for ``version`` on ``device`` in ``path``, keeping every other row,
    atomically; return the row's key."""
    table = read(path)
    key = row_key(version, device)
    table.setdefault(framework, {})[key] = row
    table[framework] = dict(sorted(table[framework].items(), key=lambda item: (version_key(item[0]), item[0])))
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n")
    temporary.replace(path)
    return key


# The module-level names a built-in backend assigns from ``declarations()``, in its order.
DECLARED = ("RECORDED_ROW", "RECORDED_WITH", "KINK_DERIVATIVES", "FLUSHES_SUBNORMALS", "SUBNORMAL_INPUTS")


def declarations(
    framework: str, device: str | None = None
) -> tuple[Lookup | None, tuple[str, str] | None, Any, Any, Any]:
    """Return what a built-in backend declares from its framework's row on ``device`` (default: where its
    module-level functions compute, ``contract.default_device()``; ``None`` each, when no row is recorded):
    ``RECORDED_ROW, RECORDED_WITH, KINK_DERIVATIVES, FLUSHES_SUBNORMALS, SUBNORMAL_INPUTS``."""
    from mlp_crosscheck.backends import version
    from mlp_crosscheck.backends.contract import default_device

    try:
        found = lookup(framework, version(framework), device or default_device())
    except LookupError:
        return None, None, None, None, None
    row = found.row
    return (
        found,
        (framework, found.version),
        row["kink_derivatives"],
        row["flushes_subnormals"],
        row["subnormal_inputs"],
    )
