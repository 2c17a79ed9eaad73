"""The reproducibility report of ``mlp-crosscheck check --report DIR``: report.json, report.md and report.png.

A helper of ``check`` (not a subcommand, as ``arguments`` is not): ``check`` builds and writes the report here,
``compare`` reads what it wrote.

report.json is the record that ``mlp-crosscheck compare`` reads (sections: ``environment``; the claims:
``summary``, ``worst_ratio``, ``tests``; ``behaviours``; ``accuracy``; ``seed_experiment``; docs/report.md
lists every key). report.md and report.png are drawn from that dictionary alone, so they never show what
the JSON does not hold.

Invariants:
- No framework is imported here: precision flags are read only from a framework the run has imported
  already (``sys.modules``); NumPy's runtime BLAS through threadpoolctl (a dependency; should it be missing,
  ``blas`` still names the BLAS NumPy was built with).
- The seed experiment is ``mlp-crosscheck reproduce``'s, through its own functions, on the NumPy baseline,
  the built-in backends the check named, and each checked implementation, with the post's settings: its
  section has the shape of reproduce's report.json (``config``, ``backends``, ...), so the two compare.
- An implementation whose behaviours or accuracy cannot be measured costs its own entry (null, with the
  reason under ``errors``), never the report: it is written after a run that may have taken an hour.
- Every file is written through a temporary file and renamed (``reproduce.write_atomically``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mlp_crosscheck import backends
from mlp_crosscheck.commands import reproduce
from mlp_crosscheck.commands.check import FAMILY_TITLES
from mlp_crosscheck.properties import profiles
from mlp_crosscheck.reference import seed

FORMAT = "mlp-crosscheck check report"
FORMAT_VERSION = 1
REPORT_NAME = "report.json"
MARKDOWN_NAME = "report.md"
FIGURE_NAME = "report.png"
# What the report measures on each implementation: section -> (module, function(impl)), imported when called.
OBSERVERS = {
    "behaviours": ("mlp_crosscheck.properties.observed", "behaviours"),
    "accuracy": ("mlp_crosscheck.properties.accuracy", "table"),
}
# Environment variables that change the numbers or where they are computed; recorded when set.
NUMERICS_VARIABLES = (
    "MLP_CROSSCHECK_DEVICE",
    "MLP_CROSSCHECK_PROFILE",
    "XLA_FLAGS",
    "JAX_ENABLE_X64",
    "JAX_DEFAULT_MATMUL_PRECISION",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "MKL_CBWR",
    "CUDA_VISIBLE_DEVICES",
)


# -- what the report holds ----------------------------------------------------------------------------------


def build(result: dict[str, Any], args: argparse.Namespace, selection: Any) -> dict[str, Any]:
    """Return the report of a finished check: its ``--json`` result plus the environment's extras, the observed
    behaviours and accuracy of every checked implementation, and the seed experiment.

    Args:
        result: what ``check --json`` writes (command, exit_code, profile, environment, summary, worst_ratio, tests).
        selection: the plugin's ``Selection`` of the run (built-in names, loaded implementations, device).
    """
    device = selection.device if selection is not None else (args.device or "cpu")
    errors: list[str] = []
    impls = implementations(selection, errors)
    behaviours = _observe(impls, "behaviours", errors)
    accuracy = _observe(impls, "accuracy", errors)
    builtin_names = list(selection.backends) if selection is not None else []
    own = [impl for impl in impls.values() if impl.builtin is None]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **result,
        "environment": {
            **result["environment"],
            **fingerprint_extras(result["profile"], getattr(args, "hypothesis_seed", None), device),
        },
        "implementations": list(impls),
        "behaviours": behaviours,
        "accuracy": accuracy,
        "seed_experiment": seed_experiment(builtin_names, own, device),
        "errors": errors,
    }


def implementations(selection: Any, errors: list[str]) -> dict[str, Any]:
    """Return the checked implementations by the name the claims' records use: the built-in backends (on the
    run's device) whose framework is installed and loads (else one line in ``errors``), then the targets."""
    if selection is None:
        return {}
    found: dict[str, Any] = {}
    for name in selection.backends:
        if backends.missing_reason(name) is not None:
            continue  # skipped by the claims too, with the reason
        try:
            found[name] = backends.builtin(name, None if name == "numpy" else selection.device)
        except Exception as exc:  # an absent device, a broken install: the claims reported it already
            errors.append(f"{name} not measured: loading it raised {type(exc).__name__}: {exc}")
    for impl in selection.impls:
        found[impl.name] = impl
    return found


def _observe(impls: dict[str, Any], section: str, errors: list[str]) -> dict[str, Any]:
    """Return ``{name: observer(impl)}`` for ``OBSERVERS[section]``; a failure is that implementation's null and
    one line in ``errors``."""
    module_name, function = OBSERVERS[section]
    observed: dict[str, Any] = {}
    for name, impl in impls.items():
        try:
            observed[name] = getattr(importlib.import_module(module_name), function)(impl)
        except Exception as exc:  # one implementation's failure to be measured must not lose the report
            observed[name] = None
            errors.append(
                f"{section} of {name} not measured: {module_name}.{function} raised {type(exc).__name__}: {exc}"
            )
    return observed


def fingerprint_extras(profile: str, hypothesis_seed: int | None, device: str) -> dict[str, Any]:
    """Return what the report adds to ``environment.fingerprint()``: the BLAS libraries loaded at run time,
    the precision flags of the frameworks the run imported, the numerics' environment variables, the device,
    and the Hypothesis profile and seed."""
    settings = profiles.PROFILES.get(profile)
    return {
        "blas_runtime": blas_runtime(),
        "precision": precision_flags(),
        "numerics_variables": {k: os.environ[k] for k in NUMERICS_VARIABLES if k in os.environ},
        "device": device,
        "profile": profile,
        "derandomize": None if settings is None else bool(settings.derandomize),
        "max_examples": None if settings is None else settings.max_examples,
        "hypothesis_seed": hypothesis_seed,
    }


def blas_runtime() -> list[dict[str, Any]] | str:
    """Return the BLAS and OpenMP libraries loaded in this process (threadpoolctl), or why they are unknown."""
    try:
        import threadpoolctl  # a dependency; an environment without it still gets a report
    except ImportError:
        return "unknown: threadpoolctl is not installed (environment.blas names the BLAS NumPy was built with)"
    keys = ("user_api", "internal_api", "version", "num_threads", "threading_layer", "architecture", "prefix")
    found = [{k: info[k] for k in keys if k in info} for info in threadpoolctl.threadpool_info()]
    # threadpoolctl lists the libraries in the order the loader reports them, which varies between runs of the
    # same program (NumPy's and SciPy's OpenBLAS swap places): sorted, two runs of one environment compare equal.
    return sorted(found, key=lambda info: json.dumps(info, sort_keys=True))


def precision_flags() -> dict[str, dict[str, Any]]:
    """Return the switches that change float32 results, of the frameworks this process has imported already."""
    flags: dict[str, dict[str, Any]] = {}
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):  # a torch too old or too new for one attribute loses that entry only
            flags["torch"] = {
                "allow_tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
                "allow_tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
                "float32_matmul_precision": torch.get_float32_matmul_precision(),
                "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
                "num_threads": int(torch.get_num_threads()),
            }
    jax = sys.modules.get("jax")
    if jax is not None:
        with contextlib.suppress(Exception):
            # The jax backend switches x64 on only inside its own calls; this is the process-wide default.
            flags["jax"] = {
                "enable_x64": bool(jax.config.jax_enable_x64),
                "default_matmul_precision": jax.config.jax_default_matmul_precision,
            }
    return flags


def seed_experiment(builtin_names: list[str], own: list[Any], device: str | None) -> dict[str, Any]:
    """Return the post's experiment (``mlp-crosscheck reproduce``'s defaults) run on the NumPy baseline, the
    named built-in backends and each implementation in ``own``: config, skipped, errors, backends, ok, failures."""
    dtype = np.dtype("float64")
    x, y = seed.data(dtype)
    initial = seed.initial_network("identity", dtype)
    settings = argparse.Namespace(device=device, lr=seed.LEARNING_RATE, epochs=seed.EPOCHS)
    names = [reproduce.BASELINE, *(n for n in builtin_names if n != reproduce.BASELINE)]
    runs, skipped, errors = reproduce.run_backends(names, settings, initial, x, y)
    for impl in own:
        reason = impl.unsupported(initial.activations, dtype)
        if reason is not None:
            skipped[impl.name] = reason
            continue
        try:
            runs[impl.name] = reproduce.train_backend(impl, "its own", initial, x, y, settings.lr, settings.epochs)
        except Exception as exc:  # reported as reproduce reports a backend that raised
            errors[impl.name] = f"{type(exc).__name__}: {exc}"
    with np.errstate(all="ignore"):  # a diverged run's NaN and inf are reported, not warned about
        results = {name: reproduce.summarize(r, x, y, runs.get(reproduce.BASELINE)) for name, r in runs.items()}
    failures = [f"{name}: {error}" for name, error in errors.items()]
    failures += [f"{name}: {why}" for name, result in results.items() for why in result["failures"]]
    return {
        "config": {
            "backends": names + [impl.name for impl in own],
            "device": device,
            "activation": "identity",
            "dtype": dtype.name,
            "epochs": seed.EPOCHS,
            "lr": seed.LEARNING_RATE,
            "seed": 1234,
            "architecture": list(initial.widths),
            "x": x,
            "y": y,
        },
        "baseline": reproduce.BASELINE,
        "skipped": skipped,
        "errors": errors,
        "backends": {name: reproduce.report_entry(result) for name, result in results.items()},
        "ok": not failures,
        "failures": failures,
    }


# -- writing it ---------------------------------------------------------------------------------------------


def write(out_dir: Path, report: dict[str, Any]) -> str:
    """Write report.json, report.md and report.png into ``out_dir`` (created); return one line per file written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # Arrays as lists, NaN and infinity as null (JSON has neither); anything else unknown as its str().
    record = json.loads(json.dumps(reproduce.jsonable(report), allow_nan=False, default=str))
    lines = [
        reproduce.write_atomically(
            out_dir / REPORT_NAME, lambda f: f.write(json.dumps(record, indent=1).encode() + b"\n")
        ),
        reproduce.write_atomically(out_dir / MARKDOWN_NAME, lambda f: f.write(markdown(record).encode())),
        reproduce.write_atomically(out_dir / FIGURE_NAME, lambda f: draw_figure(f, record)),
    ]
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    """Return report.md: the environment, the claims, the worst ratios, behaviours, accuracy, the seed experiment."""
    verdict = {0: "every claim held", 1: "a claim FAILED"}.get(report["exit_code"], f"exit {report['exit_code']}")
    out = [
        "# mlp-crosscheck report",
        "",
        f"`{report['command'].strip()}` -- {verdict} (exit {report['exit_code']}); {report['created']}.",
        f"Compare with another: `mlp-crosscheck compare OTHER/report.json {REPORT_NAME}`.",
        "",
        f"![worst error-to-bound ratios and the seed experiment's costs]({FIGURE_NAME})",
        "",
        "## Environment",
        "",
        *_table(("key", "value"), [(k, _cell(v)) for k, v in _flatten(report["environment"]).items()]),
        "",
        "## Claims",
        "",
        "Per implementation x claim family; `worst ratio` is the worst |difference| / derived bound seen.",
        "",
    ]
    out += _table(
        ("implementation", "claim family", "result", "passed", "failed", "n/a", "examples", "worst ratio"),
        [
            (r["implementation"], FAMILY_TITLES.get(r["family"], r["family"]), r["result"], r["passed"], r["failed"],
             r["not_applicable"], r.get("examples", 0), _number(r["worst_ratio"]))
            for r in report["summary"]
        ],
    )  # fmt: skip
    failures = [r for r in report["summary"] if r["first_failure"]]
    if failures:
        out += ["", "First failures:", ""]
        out += [f"- {r['implementation']}, {r['first_failing_test']}: `{r['first_failure']}`" for r in failures]
    out += ["", "### Worst error-to-bound ratio per quantity", ""]
    out += _table(
        ("implementation", "quantity", "worst ratio"),
        [(impl, q, _number(v)) for impl, by_q in report["worst_ratio"].items() for q, v in sorted(by_q.items())],
    )
    out += ["", "## Observed behaviours", ""]
    for impl, observed in report["behaviours"].items():
        out += [f"**{impl}**", ""]
        if observed is None:
            out += ["not measured (see Errors)", ""]
            continue
        out += [*_table(("behaviour", "value"), [(k, _cell(v)) for k, v in _flatten(observed).items()]), ""]
    out += ["## Activation accuracy", "", "Worst error against a 60-digit reference on a fixed grid, in ulps.", ""]
    for impl, rows in report["accuracy"].items():
        out += [f"**{impl}**", ""]
        if rows is None:
            out += ["not measured (see Errors)", ""]
            continue
        out += _table(
            ("dtype", "activation", "quantity", "worst ulps", "at z", "got", "exact", "within model", "inaccurate"),
            [
                (r["dtype"], r["activation"], r["quantity"], _number(r["worst_ulps"]), _number(r["worst_at"]),
                 _number(r["got"]), _number(r["exact"]), "yes" if r["within_model"] else "NO",
                 f"{r['inaccurate_points']}/{r['points']}")
                for r in rows
            ],
        )  # fmt: skip
        out.append("")
    out += _seed_markdown(report["seed_experiment"])
    if report["errors"]:
        out += ["", "## Errors", "", *(f"- {e}" for e in report["errors"])]
    return "\n".join(out) + "\n"


def reproduce_markdown(report: dict[str, Any], figure: str) -> str:
    """Return the report.md of ``mlp-crosscheck reproduce``: its command, environment and experiment."""
    return (
        "\n".join(
            [
                "# mlp-crosscheck reproduce",
                "",
                f"`{report['command'].strip()}` -- {'reproduces the post' if report['ok'] else 'FAILED'}; "
                f"{report['created']}.",
                f"Compare with another: `mlp-crosscheck compare OTHER/report.json {REPORT_NAME}`.",
                "",
                f"![the seed experiment in every backend]({figure})",
                "",
                "## Environment",
                "",
                *_table(("key", "value"), [(k, _cell(v)) for k, v in _flatten(report["environment"]).items()]),
                "",
                *_seed_markdown(report),
            ]
        )
        + "\n"
    )


def _seed_markdown(experiment: dict[str, Any]) -> list[str]:
    config = experiment["config"]
    out = [
        "## Seed experiment",
        "",
        f"The post's {'-'.join(map(str, config['architecture']))} {config['activation']} network, {config['dtype']}, "
        f"lr {config['lr']:g}, {config['epochs']} epochs from `RandomState({config['seed']})` "
        "(`mlp-crosscheck reproduce`).",
        "",
    ]
    rows = []
    for name, r in experiment["backends"].items():
        costs = r["costs"]
        diff = r.get("max_diff_from_numpy") or {}
        rows.append(
            (name, r["device"], _cost(costs[0]), _cost(costs[-1]), _vector(r["outputs"]),
             "none" if r["K"] is None else _vector(r["K"]), _number(diff.get("costs")))
        )  # fmt: skip
    header = ("backend", "device", "cost, epoch 1", "cost, last epoch", "outputs", "K", "max |cost - numpy|")
    out += _table(header, rows)
    out += [f"- {name}: skipped: {why}" for name, why in experiment["skipped"].items()]
    out += [f"- FAILED: {why}" for why in experiment["failures"]]
    return out


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(row) for row in rows)]


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Return the leaves of nested dictionaries under dotted keys (lists and empty dictionaries are leaves)."""
    if not isinstance(tree, dict) or not tree:
        return {prefix: tree}
    leaves: dict[str, Any] = {}
    for key, value in tree.items():
        leaves.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return leaves


def _cell(value: Any) -> str:
    return "`" + json.dumps(value) + "`" if isinstance(value, list | dict) else str(value)


def _number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cost(value: float | None) -> str:
    return "nan" if value is None else f"{value:.10g}"  # as reproduce's table prints them


def _vector(values: Any) -> str:
    return "(" + ", ".join("nan" if v is None else f"{v:.6g}" for v in np.ravel(np.array(values, dtype=object))) + ")"


def draw_figure(file, report: dict[str, Any]) -> None:
    """Draw the worst ratio per implementation x claim family (left) and the seed experiment's costs (right)."""
    from matplotlib.figure import Figure  # lazily, and no pyplot: no global state

    impls = list(dict.fromkeys(r["implementation"] for r in report["summary"]))
    families = list(dict.fromkeys(r["family"] for r in report["summary"]))
    fig = Figure(figsize=(12, 1.8 + 0.45 * max(len(impls), 4)), layout="constrained")
    ax_ratio, ax_cost = fig.subplots(1, 2, width_ratios=[3, 2])
    # log10 of the worst ratio, floored at 1e-3 (the bottom of the colour scale), so that exact agreement (0) shows.
    grid = np.full((len(impls), len(families)), np.nan)
    for r in report["summary"]:
        i, j = impls.index(r["implementation"]), families.index(r["family"])
        if r["worst_ratio"] is not None:
            grid[i, j] = math.log10(max(r["worst_ratio"], 1e-3))
        text = "FAILED" if r["result"] == "FAILED" else "n/a" if r["worst_ratio"] is None else f"{r['worst_ratio']:.2g}"
        ax_ratio.text(j, i, text, ha="center", va="center", fontsize=7, color="black")
    image = ax_ratio.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn_r", vmin=-3, vmax=1, aspect="auto")
    ax_ratio.set_xticks(range(len(families)), [FAMILY_TITLES.get(f, f) for f in families], rotation=30, ha="right")
    ax_ratio.set_yticks(range(len(impls)), impls)
    ax_ratio.set_title("worst |difference| / bound per claim family (1 = at the bound)")
    fig.colorbar(image, ax=ax_ratio, label="log10 worst ratio")
    styles = ["-", "--", ":", "-."]  # the curves coincide when the runs agree: each gets its own line style
    for i, (name, r) in enumerate(report["seed_experiment"]["backends"].items()):
        costs = np.array([np.nan if c is None else c for c in r["costs"]], dtype=np.float64)
        ax_cost.plot(np.arange(1, len(costs) + 1), costs, linestyle=styles[i % len(styles)], label=name)
    ax_cost.set_yscale("log")
    ax_cost.set_xlabel("epoch")
    ax_cost.set_ylabel("cost")
    ax_cost.set_title("seed experiment: cost per epoch")
    if report["seed_experiment"]["backends"]:
        ax_cost.legend(fontsize=8)
    fig.savefig(file, format="png", dpi=100)
