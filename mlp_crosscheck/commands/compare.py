"""``mlp-crosscheck compare A B``: what changed between two reports, and whether any of it is a regression.

    mlp-crosscheck compare baseline/report.json crosscheck-report/report.json
    mlp-crosscheck compare last-release/ today/ --accuracy-factor 2 --json diff.json

A and B are report.json files, or directories holding one, written by ``check --report``, ``reproduce`` or
``check --json``; B is the newer. The sections present in both are compared:

- claims: new failures (failing in B, not in A) and fixed ones, per implementation x claim family x test;
- behaviours: every leaf of each implementation's observed behaviours (kink conventions, subnormal handling,
  accuracy classes) added, removed or changed;
- accuracy: an activation's worst error in ulps worse (or better) by more than ``--accuracy-factor``;
- worst ratios: an implementation's worst error-to-bound ratio for a quantity up (or down) by more than
  ``--ratio-factor``;
- the seed experiment: each backend's costs per epoch, outputs and K, judged "bitwise equal", "within
  rounding" (of the derived bound, ``seed_bounds``) or "different";
- the environment: every fingerprint entry that differs, listed as what could explain the rest.

Exit codes: 0 nothing regressed; 1 something did (a new failure, a changed behaviour, accuracy or a ratio worse
beyond its factor, a seed-experiment quantity "different" or not comparable), each listed under REGRESSED;
2 usage error (a file that is missing, unreadable or not a report, or two reports with no section in common).

Invariants:
- A problem with A or B is one line that names the file, never a traceback; comparing nothing is a usage error,
  never a green gate.
- The environment only explains: a new version is never itself a regression.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlp_crosscheck.commands import arguments

HELP = "compare two report.json files (check --report, reproduce): what changed, exit 1 if anything regressed"
REPORT_NAME = "report.json"
SECTIONS = ("claims", "behaviours", "accuracy", "worst_ratios", "seed_experiment")
# Ratios below this count as this: the bounds are worst cases, and another summation order (a new BLAS) turns
# exact agreement, 0, into a few percent of them (numpy, torch and jax: up to 6 % in the seed experiment), so
# with the default factor a baseline at 0 flags a ratio above 0.1 only.
RATIO_FLOOR = 1e-2
# Accuracy below one ulp is as good as it gets: a move from 0.1 to 0.5 ulps is not a change.
ULPS_FLOOR = 1.0
SEED_CONFIG = ("activation", "dtype", "epochs", "lr", "seed", "architecture", "x", "y")
BITWISE, WITHIN, DIFFERENT = "bitwise equal", "within rounding", "different"


class UsageError(Exception):
    """A or B cannot be compared; the message names the file and why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="A", help=f"the baseline: a {REPORT_NAME} or a directory holding one")
    parser.add_argument("b", metavar="B", help=f"the new report: a {REPORT_NAME} or a directory holding one")
    parser.add_argument(
        "--accuracy-factor",
        type=arguments.positive_float,
        default=4.0,
        metavar="F",
        help="an activation's worst error (ulps, at least 1) worse by more than F is a regression (default: 4)",
    )
    parser.add_argument(
        "--ratio-factor",
        type=arguments.positive_float,
        default=10.0,
        metavar="F",
        help=f"a worst error-to-bound ratio (at least {RATIO_FLOOR:g}) up by more than F is a regression (default: 10)",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the differences as JSON to PATH; '-' prints only the JSON, to stdout",
    )


def run(args: argparse.Namespace) -> int:
    try:
        path_a, a = load(args.a)
        path_b, b = load(args.b)
    except UsageError as exc:
        print(f"mlp-crosscheck compare: error: {exc}", file=sys.stderr)
        return 2
    try:
        diff = compare(a, b, accuracy_factor=args.accuracy_factor, ratio_factor=args.ratio_factor)
    except UsageError as exc:
        print(f"mlp-crosscheck compare: error: {path_a} and {path_b}: {exc}", file=sys.stderr)
        return 2
    diff = {"a": str(path_a), "b": str(path_b), **diff}
    if args.json != "-":
        print(format_diff(diff))
    if args.json:
        text = json.dumps(_plain(diff), indent=1, allow_nan=False) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            try:
                Path(args.json).write_text(text)
            except OSError as exc:
                print(f"mlp-crosscheck compare: error: --json {args.json}: {exc.strerror or exc}", file=sys.stderr)
                return 2
    return 1 if diff["regressions"] else 0


# -- reading the reports ------------------------------------------------------------------------------------


def load(spec: str) -> tuple[Path, dict[str, Any]]:
    """Return the path and contents of the report ``spec`` names (a file, or a directory with report.json).

    Raises:
        UsageError: missing, unreadable, not JSON, or not a report (the message names the file).
    """
    path = Path(spec)
    if path.is_dir():
        if not (path / REPORT_NAME).is_file():
            raise UsageError(f"{path}: a directory without a {REPORT_NAME}")
        path = path / REPORT_NAME
    elif not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    if not isinstance(report, dict) or not isinstance(report.get("environment"), dict) or not sections(report):
        raise UsageError(
            f"{path}: not an mlp-crosscheck report (expected the report.json of 'check --report' or 'reproduce', "
            "or check's --json: an 'environment' and at least one of tests, behaviours, accuracy, "
            "seed_experiment, backends)"
        )
    return path, report


def sections(report: dict[str, Any]) -> dict[str, Any]:
    """Return the comparable sections of a report: reproduce's report holds the seed experiment at its top level."""
    found: dict[str, Any] = {}
    if isinstance(report.get("tests"), list):
        found["claims"] = report["tests"]
    for key, section in (("behaviours", "behaviours"), ("accuracy", "accuracy"), ("worst_ratio", "worst_ratios")):
        if isinstance(report.get(key), dict):
            found[section] = report[key]
    seed = report.get("seed_experiment")
    if seed is None and isinstance(report.get("config"), dict) and isinstance(report.get("backends"), dict):
        seed = {k: report[k] for k in ("config", "baseline", "skipped", "errors", "backends") if k in report}
    if isinstance(seed, dict):
        found["seed_experiment"] = seed
    return found


# -- what changed -------------------------------------------------------------------------------------------


def compare(a: dict[str, Any], b: dict[str, Any], *, accuracy_factor: float, ratio_factor: float) -> dict[str, Any]:
    """Return the differences between reports ``a`` and ``b``: per section, the regressions, the environment.

    Raises:
        UsageError: no section in common, or a section too malformed to compare.
    """
    in_a, in_b = sections(a), sections(b)
    shared = [s for s in SECTIONS if s in in_a and s in in_b]
    if not shared:
        raise UsageError(
            f"nothing to compare: A has {', '.join(in_a) or 'no section'}, B has {', '.join(in_b) or 'no section'}"
        )
    differs: dict[str, Callable[[Any, Any], dict[str, Any]]] = {
        "claims": diff_claims,
        "behaviours": diff_behaviours,
        "accuracy": lambda x, y: diff_accuracy(x, y, accuracy_factor),
        "worst_ratios": lambda x, y: diff_worst_ratios(x, y, ratio_factor),
        "seed_experiment": diff_seed_experiment,
    }
    result: dict[str, Any] = {}
    for section in shared:
        try:
            result[section] = differs[section](in_a[section], in_b[section])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise UsageError(f"the {section} section is malformed ({type(exc).__name__}: {exc})") from None
    return {
        "compared": shared,
        "not_compared": {s: "only in A" if s in in_a else "only in B" for s in SECTIONS if (s in in_a) != (s in in_b)},
        "factors": {"accuracy": accuracy_factor, "worst_ratio": ratio_factor},
        "sections": result,
        "environment": diff_environment(a["environment"], b["environment"]),
        "profiles": [_profile(a), _profile(b)],
        "regressions": [line for section in shared for line in result[section]["regressions"]],
    }


def diff_claims(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the tests failing in B and not in A (new), failing in A and passing in B (fixed), failing in both."""
    before, after = _by_test(a), _by_test(b)
    new: list[dict[str, Any]] = []
    fixed: list[dict[str, Any]] = []
    still: list[dict[str, Any]] = []
    for key, record in after.items():
        was = before[key]["outcome"] if key in before else "not run"
        entry = {"implementation": key[0], "family": key[1], "test": key[2], "was": was, "now": record["outcome"]}
        if record["outcome"] == "failed":
            (still if was == "failed" else new).append({**entry, "message": record.get("message", "")})
        elif was == "failed" and record["outcome"] == "passed":
            fixed.append(entry)
    return {
        "tests": {"a": len(before), "b": len(after), "both": len(before.keys() & after.keys())},
        "new_failures": new,
        "fixed": fixed,
        "still_failing": still,
        "regressions": [
            f"new failure: {e['implementation']}, {_family(e['family'])}: {e['test']}: {e['message']}" for e in new
        ],
    }


def _family(name: str) -> str:
    from mlp_crosscheck.commands.check import FAMILY_TITLES

    return FAMILY_TITLES.get(name, name)


def _by_test(records: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    # A test's name with its parameters (the node id's last part): the same in both reports wherever they ran.
    return {(r["impl"], r["family"], r["nodeid"].rpartition("::")[2]): r for r in records}


def diff_behaviours(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Return, per implementation in both, every behaviour (a leaf, by its dotted path) added, removed or changed."""
    changes = []
    for impl in [i for i in b if i in a]:
        if a[impl] is None or b[impl] is None:
            continue  # not measured on one side: nothing to compare (the report's errors say why)
        before, after = flatten(a[impl]), flatten(b[impl])
        for key in [*before, *(k for k in after if k not in before)]:
            old, new = before.get(key, _ABSENT), after.get(key, _ABSENT)
            if old != new:
                kind = "added" if old is _ABSENT else "removed" if new is _ABSENT else "changed"
                entry = {"implementation": impl, "behaviour": key, "change": kind}
                changes.append({**entry, "a": None if old is _ABSENT else old, "b": None if new is _ABSENT else new})
    return {
        "changes": changes,
        "only_in_a": [i for i in a if i not in b],
        "only_in_b": [i for i in b if i not in a],
        "regressions": [f"behaviour {_describe_change(c)}" for c in changes],
    }


_ABSENT = object()


def _describe_change(c: dict[str, Any]) -> str:
    where = f"{c['implementation']} {c['behaviour']}"
    if c["change"] == "added":
        return f"added: {where} = {c['b']!r} (not in A)"
    if c["change"] == "removed":
        return f"removed: {where} was {c['a']!r} (not in B)"
    return f"changed: {where}: {c['a']!r} -> {c['b']!r}"


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Return the leaves of nested dictionaries under dotted keys: ``{"a": {"b": 1}, "c": {}}`` -> ``{"a.b": 1}``.

    An empty dictionary has no leaves: a first accuracy point recorded under ``{}`` is one leaf added.
    """
    if not isinstance(tree, dict):
        return {prefix: tree}
    leaves: dict[str, Any] = {}
    for key, value in tree.items():
        leaves.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return leaves


def diff_accuracy(a: dict[str, Any], b: dict[str, Any], factor: float) -> dict[str, Any]:
    """Return the accuracy rows whose worst error in ulps moved by more than ``factor`` (ulps below 1 count as 1)."""
    worse, better = [], []
    for impl in [i for i in b if i in a]:
        if a[impl] is None or b[impl] is None:
            continue
        before = {_accuracy_key(r): r for r in a[impl]}
        for row in b[impl]:
            old = before.get(_accuracy_key(row))
            if old is None:
                continue
            was, now = _ulps(old["worst_ulps"]), _ulps(row["worst_ulps"])
            change = now / was if math.isfinite(was) else (1.0 if not math.isfinite(now) else 0.0)
            entry = {
                "implementation": impl,
                **{k: row[k] for k in ("dtype", "activation", "quantity")},
                "a_ulps": old["worst_ulps"],
                "b_ulps": row["worst_ulps"],
                "factor": change,
                **{f"b_{k}": row.get(k) for k in ("worst_at", "got", "exact")},
            }
            if change > factor:
                worse.append(entry)
            elif change < 1 / factor:
                better.append(entry)
    return {
        "worse": worse,
        "better": better,
        "regressions": [
            f"accuracy worse: {e['implementation']} {e['dtype']} {e['activation']} {e['quantity']}: "
            f"{_g(e['a_ulps'])} -> {_g(e['b_ulps'])} ulps (worst at z = {e['b_worst_at']!r}: "
            f"got {e['b_got']!r}, exact {e['b_exact']!r})"
            for e in worse
        ],
    }


def _accuracy_key(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["dtype"], row["activation"], row["quantity"]


def _ulps(value: float | None) -> float:
    return math.inf if value is None else max(float(value), ULPS_FLOOR)  # null: not finite where exact is


def diff_worst_ratios(a: dict[str, Any], b: dict[str, Any], factor: float) -> dict[str, Any]:
    """Return the quantities whose worst error-to-bound ratio moved by more than ``factor`` (floored at 1e-2)."""
    up, down = [], []
    for impl in [i for i in b if i in a]:
        for quantity in [q for q in b[impl] if q in a[impl]]:
            was, now = _ratio(a[impl][quantity]), _ratio(b[impl][quantity])
            change = now / was if math.isfinite(was) else (1.0 if not math.isfinite(now) else 0.0)
            entry = {"implementation": impl, "quantity": quantity, "a": a[impl][quantity], "b": b[impl][quantity],
                     "factor": change}  # fmt: skip
            if change > factor:
                up.append(entry)
            elif change < 1 / factor:
                down.append(entry)
    return {
        "up": up,
        "down": down,
        "regressions": [
            f"worst ratio up: {e['implementation']} {e['quantity']}: {_g(e['a'])} -> {_g(e['b'])} ({_g(e['factor'])}x)"
            for e in up
        ],
    }


def _ratio(value: float | None) -> float:
    return math.inf if value is None else max(float(value), RATIO_FLOOR)  # null: an infinite ratio


# -- the seed experiment ------------------------------------------------------------------------------------


def diff_seed_experiment(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Return, per backend in both, the verdict on its costs, outputs and K against the derived rounding bound."""
    mismatched = [k for k in SEED_CONFIG if a["config"].get(k) != b["config"].get(k)]
    if mismatched:
        why = ", ".join(f"{k} {_short(a['config'].get(k))} vs {_short(b['config'].get(k))}" for k in mismatched)
        return {"comparable": False, "why": why, "backends": {},
                "regressions": [f"seed experiment not comparable: the configurations differ ({why})"]}  # fmt: skip
    bounds, no_bound = seed_bounds(a["config"])
    verdicts: dict[str, dict[str, Any]] = {}
    regressions = []
    for name in [n for n in b["backends"] if n in a["backends"]]:
        verdicts[name] = {}
        for quantity in ("costs", "outputs", "K"):
            old, new = a["backends"][name].get(quantity), b["backends"][name].get(quantity)
            if old is None and new is None:
                continue  # no K for a nonlinear network, in either
            verdict = judge(old, new, None if bounds is None else bounds.get(quantity), no_bound)
            verdicts[name][quantity] = verdict
            if verdict["verdict"] == DIFFERENT:
                regressions.append(f"seed experiment different: {name} {quantity}: {verdict['detail']}")
    raised = {n: e for n, e in b.get("errors", {}).items() if n in a["backends"]}
    regressions += [f"seed experiment: {name} ran in A and raised in B: {error}" for name, error in raised.items()]
    return {
        "comparable": True,
        "bound": "derived" if bounds is not None else no_bound,
        "backends": verdicts,
        "raised_in_b": raised,
        "only_in_a": [n for n in a["backends"] if n not in b["backends"]],
        "only_in_b": [n for n in b["backends"] if n not in a["backends"]],
        "regressions": regressions,
    }


def seed_bounds(config: dict[str, Any]) -> tuple[dict[str, np.ndarray] | None, str]:
    """Return the bounds two runs of the seed experiment ``config`` are judged against, or None and why not.

    The derivation (docs/report.md): a report's epoch-e cost is one evaluation of ``0.5 sum((f(x) - y)^2)`` on
    its run's epoch-e network, within ``tolerances.gradient_bounds(net, x, y).loss`` of the exact value (the
    forward pass, the residual, the squares and an N-term sum, each rounded: properties/tolerances.py), so two
    runs agree within ``.agree().loss`` (twice it) where their networks are equal; likewise the outputs within
    ``2 forward_bound(final, x)``, and K within ``2 collapse_bound(final, I)`` (``collapse_bound`` with x = I
    bounds ``|x| H_K + gamma |x| |K|``, of which ``H_K``, the error of forming ``K = W_1 ... W_L``, is part).
    That is exact at epoch 1, where both runs hold RandomState(seed)'s network. Later, the runs' networks
    part by their accumulated rounding, and a rigorous propagation through ``W <- W - lr g`` grows
    geometrically and bounds nothing within 30 epochs (properties/test_training.py), so every epoch is held
    to the evaluation bound on the reference's own trajectory: a bound on rounding, not a proof. Measured
    (numpy, torch and jax against each other, float32 and float64): their costs, outputs and K differ by at
    most 6 % of it, while a wrong gradient moves the costs by orders of magnitude more.
    """
    from mlp_crosscheck.properties import tolerances
    from mlp_crosscheck.reference import seed

    dtype = np.dtype(config["dtype"])
    x, y = np.array(config["x"], dtype=dtype), np.array(config["y"], dtype=dtype)
    initial = seed.initial_network(config["activation"], dtype, config["seed"])
    if list(initial.widths) != list(config["architecture"]):
        return None, f"no derived bound: architecture {config['architecture']} is not the seed experiment's"
    with np.errstate(all="ignore"):  # a diverged trajectory has no finite bound: only bitwise equality passes
        run = seed.train(_reference_gradients, initial, x, y, lr=config["lr"], epochs=config["epochs"])
        bounds = {
            "costs": np.array([tolerances.gradient_bounds(n, x, y).agree().loss for n in run.networks]),
            "outputs": 2 * tolerances.forward_bound(run.final, x),
        }
        if all(a == "identity" for a in run.final.activations):
            bounds["K"] = 2 * tolerances.collapse_bound(run.final, np.eye(x.shape[1], dtype=dtype))
    return bounds, ""


def _reference_gradients(net, x, y) -> tuple:
    """The reference's loss and gradients as ``seed.train`` unpacks them: ``(loss, dweights, dbiases)``."""
    from mlp_crosscheck.reference import network

    loss, gradients = network.loss_and_gradients(net, x, y)
    return loss, gradients.weights, gradients.biases


def judge(a: Any, b: Any, bound: np.ndarray | None, no_bound: str = "") -> dict[str, Any]:
    """Return ``a`` against ``b`` (nested lists, null for NaN): bitwise equal, within rounding of ``bound``, or
    different, with the largest difference, where, and its ratio to the bound."""
    x, y = _floats(a), _floats(b)
    if x.shape != y.shape:
        return {"verdict": DIFFERENT, "detail": f"shapes {list(x.shape)} and {list(y.shape)}"}
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    if same.all() and np.array_equal(np.signbit(x), np.signbit(y)):
        return {"verdict": BITWISE, "max_abs_diff": 0.0}
    diff = np.where(same, 0.0, np.abs(x - y))
    diff = np.where(np.isnan(diff), np.inf, diff)  # one side NaN: as far apart as can be
    if bound is None:
        i = np.unravel_index(np.argmax(diff), diff.shape)
        return {"verdict": DIFFERENT, "max_abs_diff": float(diff[i]), "at": _where(i),
                "detail": f"{_at(i, a)}: {float(x[i])!r} -> {float(y[i])!r} ({no_bound})"}  # fmt: skip
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), diff.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / bound)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    i = np.unravel_index(np.argmax(ratio), ratio.shape)
    detail = (
        f"max |diff| {_g(diff[i])} at {_at(i, a)} ({float(x[i])!r} -> {float(y[i])!r}), "
        f"{_g(ratio[i])} x the rounding bound {_g(bound[i])}"
    )
    return {
        "verdict": WITHIN if ratio[i] <= 1 else DIFFERENT,
        "max_abs_diff": float(diff[i]),
        "worst_ratio_to_bound": float(ratio[i]),
        "at": _where(i),
        "detail": detail,
    }


def _floats(values: Any) -> np.ndarray:
    """Return nested lists of numbers as a float array, null (how the reports write NaN) as NaN."""
    if isinstance(values, list):
        return np.array([_floats(v) for v in values], dtype=np.float64)
    return np.array(math.nan if values is None else values, dtype=np.float64)


def _where(index: tuple) -> list[int]:
    return [int(i) for i in index]


def _at(index: tuple, values: Any) -> str:
    if len(index) == 1:
        return f"epoch {int(index[0]) + 1}"  # costs: one per epoch
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


# -- the environment ----------------------------------------------------------------------------------------


def diff_environment(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Return the fingerprint entries that differ between ``a`` and ``b``, and those recorded on one side only
    (a reproduce report records fewer than a check report)."""
    before, after = flatten(a), flatten(b)
    return {
        "changed": [{"key": k, "a": v, "b": after[k]} for k, v in before.items() if k in after and after[k] != v],
        "only_in_a": [k for k in before if k not in after],
        "only_in_b": [k for k in after if k not in before],
    }


def _profile(report: dict[str, Any]) -> str | None:
    return report.get("profile") or report["environment"].get("profile")


# -- printing -----------------------------------------------------------------------------------------------


def format_diff(diff: dict[str, Any]) -> str:
    """Return the differences as text: one block per section, the environment, then the verdict."""
    s = diff["sections"]
    lines = [f"mlp-crosscheck compare\n  A: {diff['a']}\n  B: {diff['b']}"]
    lines.append("compared: " + ", ".join(name.replace("_", " ") for name in diff["compared"]))
    lines += [f"not compared: {k.replace('_', ' ')} ({why})" for k, why in diff["not_compared"].items()]
    profiles = diff["profiles"]
    if "dev" in profiles or "thorough" in profiles:
        lines.append(f"note: profiles {profiles[0]} and {profiles[1]}: dev and thorough draw random examples, so "
                     "worst ratios vary from run to run; compare ci-profile reports (derandomized)")  # fmt: skip
    if "claims" in s:
        c = s["claims"]
        lines += ["", f"claims: new failures {len(c['new_failures'])}, fixed {len(c['fixed'])}, still failing "
                      f"{len(c['still_failing'])} ({c['tests']['both']} tests in both reports)"]  # fmt: skip
        lines += [f"  NEW FAILURE  {e['implementation']}, {_family(e['family'])}: {e['test']} (was {e['was']}): "
                  f"{_clip(e['message'])}" for e in c["new_failures"]]  # fmt: skip
        lines += [f"  fixed        {e['implementation']}, {_family(e['family'])}: {e['test']}" for e in c["fixed"]]
    if "behaviours" in s:
        changes = s["behaviours"]["changes"]
        lines += ["", f"behaviours: {len(changes)} changed" if changes else "behaviours: unchanged"]
        lines += [f"  {_describe_change(c)}" for c in changes]
    if "accuracy" in s:
        acc = s["accuracy"]
        factor = diff["factors"]["accuracy"]
        lines += ["", f"accuracy (factor {_g(factor)} in ulps): {len(acc['worse'])} worse, {len(acc['better'])} better"]
        lines += [f"  WORSE   {line.removeprefix('accuracy worse: ')}" for line in acc["regressions"]]
        lines += [f"  better  {e['implementation']} {e['dtype']} {e['activation']} {e['quantity']}: "
                  f"{_g(e['a_ulps'])} -> {_g(e['b_ulps'])} ulps" for e in acc["better"]]  # fmt: skip
    if "worst_ratios" in s:
        r = s["worst_ratios"]
        lines += ["", f"worst ratios (factor {_g(diff['factors']['worst_ratio'])}): {len(r['up'])} up, "
                      f"{len(r['down'])} down"]  # fmt: skip
        lines += [f"  UP    {line.removeprefix('worst ratio up: ')}" for line in r["regressions"]]
        lines += [f"  down  {e['implementation']} {e['quantity']}: {_g(e['a'])} -> {_g(e['b'])}" for e in r["down"]]
    if "seed_experiment" in s:
        lines += ["", *_format_seed(s["seed_experiment"])]
    env = diff["environment"]
    lines += ["", "environment differences that could explain them:" if env["changed"] else "environment: the same"]
    lines += [f"  {e['key']}: {_short(e['a'])} -> {_short(e['b'])}" for e in env["changed"]]
    lines += [f"  recorded in {side.upper()} only: {', '.join(env[f'only_in_{side}'])}" for side in "ab"
              if env[f"only_in_{side}"]]  # fmt: skip
    regressions = diff["regressions"]
    lines.append("")
    if regressions:
        lines.append(f"REGRESSED ({len(regressions)}):")
        lines += [f"  - {_clip(line, 300)}" for line in regressions]
    else:
        lines.append("nothing regressed")
    return "\n".join(lines)


def _format_seed(seed: dict[str, Any]) -> list[str]:
    if not seed["comparable"]:
        return [f"seed experiment: not comparable: the configurations differ ({seed['why']})"]
    how = "the derived rounding bound" if seed["bound"] == "derived" else seed["bound"]
    lines = [f"seed experiment (costs per epoch, outputs, K; judged against {how}):"]
    width = max((len(n) for n in seed["backends"]), default=0)
    for name, verdicts in seed["backends"].items():
        parts = []
        for quantity, v in verdicts.items():
            detail = "" if v["verdict"] == BITWISE else f" ({v['detail']})"
            parts.append(f"{quantity} {v['verdict'].upper() if v['verdict'] == DIFFERENT else v['verdict']}{detail}")
        lines.append(f"  {name.ljust(width)}  " + "; ".join(parts))
    lines += [f"  {name}: raised in B: {error}" for name, error in seed["raised_in_b"].items()]
    lines += [f"  {name}: only in A" for name in seed["only_in_a"]]
    lines += [f"  {name}: only in B" for name in seed["only_in_b"]]
    return lines


def _g(value: Any) -> str:
    if value is None:
        return "inf"
    return f"{value:.3g}" if isinstance(value, float | np.floating) else str(value)


def _short(value: Any, limit: int = 100) -> str:
    text = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return _clip(text, limit)


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plain(value: Any) -> Any:
    """Return ``value`` for JSON: NumPy scalars as Python numbers, non-finite floats as "inf" or "nan"."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
