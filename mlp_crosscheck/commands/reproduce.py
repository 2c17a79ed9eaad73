"""``mlp-crosscheck reproduce``: the blog post's experiment in every available backend, side by side.

Trains the post's 3-4-10-1 network (``reference.seed``) in the NumPy reference, PyTorch and JAX from the same
initial weights, prints one table (costs, rounded outputs against y, the collapsed map K, ``|x @ K - output|``
and every backend's largest difference from the NumPy run), and writes ``report.json`` and a figure into
``--out``.

Invariants:
- Every backend trains through ``reference.seed.train``, whose update ``w - lr * g`` is done in NumPy for all
  of them, from the same initial network: runs differ only where the backends' losses and gradients do.
- The NumPy reference always runs: it is the baseline that every other run is compared with, epoch by epoch.
- Frameworks load only through ``backends.builtin``, so a missing one is one line of output, never an import
  error; matplotlib loads only when the figure is drawn, through its object API (no pyplot, no global state).
- ``x @ K == output`` is checked against the rounding-error bounds of ``properties.tolerances``, never
  against a hand-picked tolerance.
- ``--device`` asks ``backends.builtin(name, device)`` for a fresh instance of the backend on that device (not
  the module-level one the torch and jax modules bind their functions to), so the choice never leaks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from mlp_crosscheck import backends
from mlp_crosscheck.backends.contract import Implementation
from mlp_crosscheck.commands import arguments
from mlp_crosscheck.environment import fingerprint as environment
from mlp_crosscheck.reference import activations, network, seed

HELP = "run the blog post's experiment in every backend; print a table, write report.json and a figure"
BASELINE = "numpy"
REPORT_NAME = "report.json"
MARKDOWN_NAME = "report.md"
FIGURE_NAME = "reproduce.png"

# label in report.json -> distribution name; versions come from package metadata, so nothing is imported.


# -- command line --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backends",
        type=arguments.backend_names,
        default=None,
        metavar="NAMES",
        help=f"comma-separated built-in backends (default: every installed one of {','.join(backends.BUILTINS)}); "
        f"{BASELINE} always runs, as the baseline; a missing framework is reported and skipped",
    )
    parser.add_argument(
        "--device",
        default=None,
        help="device for the torch and jax backends: cpu or cuda (default: $MLP_CROSSCHECK_DEVICE, else cpu)",
    )
    parser.add_argument(
        "--activation",
        default="identity",
        choices=activations.NAMES,
        metavar="NAME",
        help=f"activation of every layer (default: identity, as in the post; one of {', '.join(activations.NAMES)})",
    )
    parser.add_argument("--dtype", default="float64", choices=arguments.DTYPES, help="default: float64")
    parser.add_argument("--epochs", type=arguments.positive_int, default=seed.EPOCHS, help="default: %(default)s")
    parser.add_argument("--lr", type=arguments.positive_float, default=seed.LEARNING_RATE, help="default: %(default)s")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("crosscheck-report"),
        metavar="DIR",
        help=f"directory for {REPORT_NAME}, {MARKDOWN_NAME} and {FIGURE_NAME}, created if missing "
        "(default: ./%(default)s/)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the experiment in every selected backend, print the table, write the report; return the exit code."""
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        print(f"mlp-crosscheck reproduce: error: --out {out_dir} exists and is not a directory", file=sys.stderr)
        return 2
    dtype = np.dtype(args.dtype)
    x, y = seed.data(dtype)
    initial = seed.initial_network(args.activation, dtype)
    requested = args.backends if args.backends is not None else list(backends.BUILTINS)
    runs, skipped, errors = run_backends([BASELINE, *(n for n in requested if n != BASELINE)], args, initial, x, y)

    with np.errstate(all="ignore"):  # a diverged run's NaN and inf are reported, not warned about
        results = {name: summarize(r, x, y, runs.get(BASELINE)) for name, r in runs.items()}
    failures = [f"{name}: {error}" for name, error in errors.items()]
    if args.activation == "identity":  # the post's claims; a nonlinear run is reported, not judged
        failures += [f"{name}: {why}" for name, result in results.items() for why in result["failures"]]

    title = (
        f"mlp-crosscheck reproduce: {'-'.join(map(str, initial.widths))} network, activation {args.activation}, "
        f"{dtype.name}, lr {args.lr:g}, {args.epochs} epochs, the post's x and y = {_ints(y)}"
    )
    print(title)
    if skipped:
        print("skipped: " + "; ".join(f"{name} ({reason})" for name, reason in skipped.items()))
    print(format_table(results, errors, y))
    print()
    for line in statements(results, args.activation):
        print(line)

    report = {
        "command": "mlp-crosscheck reproduce " + " ".join(_argv_of(args)),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": environment(),
        "config": {
            "backends": requested,
            "device": args.device,
            "activation": args.activation,
            "dtype": dtype.name,
            "epochs": args.epochs,
            "lr": args.lr,
            "seed": 1234,
            "architecture": list(initial.widths),
            "x": x,
            "y": y,
        },
        "baseline": BASELINE,
        "skipped": skipped,
        "errors": errors,
        "backends": {name: report_entry(result) for name, result in results.items()},
        "ok": not failures,
        "failures": failures,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    print()
    print(write_atomically(out_dir / REPORT_NAME, lambda f: f.write(_json_bytes(report))))
    from mlp_crosscheck.commands.report import reproduce_markdown  # report imports this module: here, not above

    record = json.loads(_json_bytes(report))
    print(
        write_atomically(out_dir / MARKDOWN_NAME, lambda f: f.write(reproduce_markdown(record, FIGURE_NAME).encode()))
    )
    if results:
        print(write_atomically(out_dir / FIGURE_NAME, lambda f: draw_figure(f, results, title)))

    if failures:
        print("FAILED:")
        for line in failures:
            print(f"  {line}")
        return 1
    if args.activation == "identity":
        print(f"ok: {', '.join(results)} reproduce the post: outputs round to y, x @ K = output within the bound")
    return 0


def run_backends(names: list[str], args: argparse.Namespace, initial: network.Network, x, y):
    """Train ``initial`` in each backend; return (runs, skipped: name -> reason, errors: name -> message)."""
    runs: dict[str, BackendRun] = {}
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in names:
        reason = backends.missing_reason(name)
        if reason is not None:
            skipped[name] = reason
            continue
        try:
            impl, device = _implementation(name, args.device)
            reason = impl.unsupported(initial.activations, initial.dtype)
            if reason is not None:
                skipped[name] = reason
                continue
            runs[name] = train_backend(impl, device, initial, x, y, args.lr, args.epochs)
        except Exception as exc:  # one backend's failure is reported in the table; the others still run
            errors[name] = f"{type(exc).__name__}: {exc}"
    return runs, skipped, errors


def _argv_of(args: argparse.Namespace) -> list[str]:
    argv = []
    if args.backends is not None:
        argv += ["--backends", ",".join(args.backends)]
    for option, value, default in (
        ("--device", args.device, None),
        ("--activation", args.activation, "identity"),
        ("--dtype", args.dtype, "float64"),
        ("--epochs", args.epochs, seed.EPOCHS),
        ("--lr", args.lr, seed.LEARNING_RATE),
    ):
        if value != default:
            argv += [option, str(value)]
    return [*argv, "--out", str(args.out)]


# -- running a backend -----------------------------------------------------------------------------------


def _implementation(name: str, device: str | None) -> tuple[Implementation, str]:
    """Return backend ``name`` (on ``device`` when given) and a description of the device it computes on."""
    impl = backends.builtin(name)
    if not hasattr(impl.module, "on_device"):
        return impl, "cpu" if device in (None, "cpu") else f"cpu ({name} has no device option)"
    if device is not None:
        impl = backends.builtin(name, device)  # a fresh instance; a clear RuntimeError when the device is absent
    instance = impl.module.forward.__self__  # the torch or jax network instance the functions are bound to
    return impl, _describe_device(instance.device)


def _describe_device(device) -> str:
    if hasattr(device, "platform"):  # a jax Device
        kind = getattr(device, "device_kind", "")
        return f"{device.platform}:{device.id}" + (f" ({kind})" if device.platform != "cpu" and kind else "")
    if getattr(device, "type", None) == "cuda":  # a torch.device; torch is imported by now
        return f"{device} ({sys.modules['torch'].cuda.get_device_name(device)})"
    return str(device)


@dataclass(frozen=True)
class BackendRun:
    """One backend's training run and the outputs it computes for every epoch's network."""

    name: str
    device: str
    seconds: float  # training time, the first call's JIT compile included
    training: seed.TrainingRun
    outputs_by_epoch: np.ndarray  # (epochs + 1, batch, n_L): networks[0..epochs-1], then the final network

    @property
    def outputs(self) -> np.ndarray:
        """The trained network's outputs (after the last update)."""
        return self.outputs_by_epoch[-1]


def train_backend(impl: Implementation, device: str, net: network.Network, x, y, lr, epochs) -> BackendRun:
    """Train ``net`` with ``impl``'s gradients, then evaluate every epoch's network with ``impl.forward``."""
    # A too-large --lr overflows to inf and NaN; summarize() reports that as divergence, so no warnings here.
    with np.errstate(over="ignore", invalid="ignore"):
        start = time.perf_counter()
        training = seed.train(impl.loss_and_gradients, net, x, y, lr=lr, epochs=epochs)
        seconds = time.perf_counter() - start
        outputs = np.stack([impl.forward(n, x) for n in (*training.networks, training.final)])
    return BackendRun(impl.name, device, seconds, training, outputs)


# -- what a run shows ------------------------------------------------------------------------------------


def summarize(r: BackendRun, x: np.ndarray, y: np.ndarray, baseline: BackendRun | None) -> dict:
    """Return one backend's entry of report.json (plus ``failures``, reasons it does not reproduce the post)."""
    out = r.outputs
    rounded = np.round(out)
    result: dict = {
        "device": r.device,
        "seconds": r.seconds,
        "costs": r.training.costs,
        "outputs": out,
        "rounded_outputs": rounded,
        "reproduces_post": bool(np.array_equal(rounded, y)),
        "final_weights": list(r.training.final.weights),
        **collapse_check(r.training.final, x, out),
        "affine_fit": affine_fit(x, out),
        "max_diff_from_numpy": None if baseline is None else differences(r, baseline),
    }
    result["affine_fitted"] = result["affine_fit"].pop("fitted")
    failures = []
    finite = np.isfinite(r.training.costs)
    result["diverged_at_epoch"] = None if finite.all() and np.isfinite(out).all() else int(np.argmin(finite)) + 1
    if result["diverged_at_epoch"] is not None:
        failures.append(
            f"training diverged: the cost is not finite from epoch {result['diverged_at_epoch']} on"
            if not finite.all()
            else "training diverged: the trained network's outputs are not finite"
        )
    elif not result["reproduces_post"]:
        failures.append(f"the outputs round to {_ints(rounded)}, not to y = {_ints(y)}")
    if result["diverged_at_epoch"] is None and result["collapsible"] and not result["collapse_within_bound"]:
        failures.append(
            f"x @ K differs from the output by {result['collapse_max_abs_diff']:.3g}, beyond the rounding bound "
            f"({result['collapse_bound_exceeded']})"
        )
    result["failures"] = failures
    return result


def collapse_check(net: network.Network, x: np.ndarray, out: np.ndarray) -> dict:
    """Return K, c and how far ``x @ K + c`` is from the network's output, against the rounding bound.

    ``x @ K + c`` and the forward pass compute the same exact function in different orders, so each may be off
    the exact value by its own bound and the two agree within their sum: |fl(xK + c) - out| <=
    collapse_bound + forward_bound, elementwise. A nonlinear network has no K: the entry says why.
    """
    try:
        k, c = network.collapse(net)
    except network.NotCollapsibleError as exc:
        return {"collapsible": False, "not_collapsible": str(exc), "K": None, "c": None,
                "collapse_max_abs_diff": None, "collapse_bound": None, "forward_bound": None,
                "collapse_within_bound": None, "collapse_statement": f"no K exists: {exc}"}  # fmt: skip
    from mlp_crosscheck.properties import tolerances  # imported late: it is only needed for the identity case

    predicted = x @ k + c
    diff = np.abs(predicted - out)
    collapse_bound = np.broadcast_to(tolerances.collapse_bound(net, x), out.shape)
    forward_bound = np.broadcast_to(tolerances.forward_bound(net, x), out.shape)
    allowed = collapse_bound + forward_bound
    within = bool(np.all(diff <= allowed))  # False for NaN, as it should be
    ratio = diff / allowed
    worst = np.unravel_index(np.argmax(np.where(np.isnan(ratio), np.inf, ratio)), diff.shape)  # NaN is worst
    d, b = float(np.max(diff)), float(np.max(allowed))
    statement = (
        f"x @ K equals the output within the rounding bound (max diff {d:.3g} <= bound {b:.3g})"
        if within
        else f"x @ K does NOT equal the output within the rounding bound (max diff {d:.3g}, bound {b:.3g})"
    )
    return {
        "collapsible": True,
        "not_collapsible": None,
        "K": k,
        "c": c,
        "x_at_K_plus_c": predicted,
        "collapse_max_abs_diff": d,
        "collapse_bound": collapse_bound,
        "forward_bound": forward_bound,
        "collapse_allowed": allowed,  # collapse_bound + forward_bound, checked elementwise
        "collapse_within_bound": within,
        "collapse_bound_exceeded": None if within else (
            f"sample {worst[0]}: |{predicted[worst]:.17g} - {out[worst]:.17g}| = {diff[worst]:.3g} "
            f"> {allowed[worst]:.3g}"),
        "collapse_statement": statement,
    }  # fmt: skip


def affine_fit(x: np.ndarray, out: np.ndarray) -> dict:
    """Return the least-squares affine fit of ``out`` on ``[x, 1]`` and its residual.

    For an identity network the residual is rounding noise (the network is affine); for a nonlinear one it
    measures how far the trained network is from any linear map. The post's x has rank 2 (its third column is
    already the constant 1 and column 1 + column 3 = column 2), so the design has rank 2 and ``lstsq`` returns
    the minimum-norm coefficients; the fitted values and residual are unique regardless. Fitted in float64.
    """
    design = np.hstack([x, np.ones((x.shape[0], 1), x.dtype)]).astype(np.float64)
    target = out.astype(np.float64)
    coefficients, _, rank, _ = np.linalg.lstsq(design, target, rcond=None)
    fitted = design @ coefficients
    residual = target - fitted
    return {
        "design": "[x, 1]",
        "coefficients": coefficients,
        "rank": int(rank),
        "residual_norm": float(np.linalg.norm(residual)),
        "max_abs_residual": float(np.max(np.abs(residual))),
        "fitted": fitted,
    }


def differences(r: BackendRun, baseline: BackendRun) -> dict:
    """Return the largest differences of ``r`` from the baseline run over every epoch."""
    costs = _abs_diff(r.training.costs, baseline.training.costs)
    outputs = _abs_diff(r.outputs_by_epoch, baseline.outputs_by_epoch)
    by_epoch = outputs.reshape(len(outputs), -1).max(axis=1)
    nets = zip((*r.training.networks, r.training.final), (*baseline.training.networks, baseline.training.final),
               strict=True)  # fmt: skip
    weights = max(float(np.max(_abs_diff(a, b))) for n, m in nets for a, b in zip(n.weights, m.weights, strict=True))
    relative = np.where(costs == 0, 0.0, costs / np.abs(baseline.training.costs))
    return {
        "costs": float(np.max(costs)),
        "costs_relative": float(np.max(relative)),
        "costs_epoch": int(np.argmax(costs)) + 1,
        "outputs": float(np.max(by_epoch)),
        "outputs_epoch": int(np.argmax(by_epoch)) + 1,  # epochs + 1 is the final (trained) network
        "weights": weights,
    }


def _abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return ``|a - b|`` with equal values, equal infinities and NaN against NaN counted as no difference."""
    diff = np.abs(a - b)
    diff[(a == b) | (np.isnan(a) & np.isnan(b))] = 0
    return diff


# -- output ----------------------------------------------------------------------------------------------


def format_table(results: dict[str, dict], errors: dict[str, str], y: np.ndarray) -> str:
    """Return the table: one column per backend, one row per quantity."""
    names = [*results, *errors]
    rows: list[tuple[str, list[str]]] = [("", names)]
    rows.append(("device", [results[n]["device"] if n in results else "failed" for n in names]))

    def row(label, cell):
        rows.append((label, [cell(results[n]) if n in results else "" for n in names]))

    epochs = len(next(iter(results.values()))["costs"]) if results else 0
    row("cost, epoch 1", lambda r: f"{r['costs'][0]:.10g}")
    row(f"cost, epoch {epochs}", lambda r: f"{r['costs'][-1]:.10g}")
    row("output", lambda r: _floats(r["outputs"]))
    row(
        f"round(output) vs y = {_ints(y)}",
        lambda r: f"{_ints(r['rounded_outputs'])} {'ok' if r['reproduces_post'] else 'WRONG'}",
    )
    if any(r["collapsible"] for r in results.values()):
        row("K = W1 W2 ... WL", lambda r: _floats(r["K"]))
        row("max |x @ K - output|", lambda r: f"{r['collapse_max_abs_diff']:.2g}")
        row(
            "  rounding bound",
            lambda r: f"{np.max(r['collapse_allowed']):.2g} {'ok' if r['collapse_within_bound'] else 'EXCEEDED'}",
        )
    else:
        row("K", lambda r: "none (nonlinear)")
        row("affine fit on [x, 1]: |residual|", lambda r: f"{r['affine_fit']['residual_norm']:.3g}")
        row("  max |residual|", lambda r: f"{r['affine_fit']['max_abs_residual']:.3g}")
    row(f"max |cost - {BASELINE}|, any epoch", lambda r: _diff(r, "costs"))
    row(f"max |output - {BASELINE}|, any epoch", lambda r: _diff(r, "outputs"))
    row(f"max |weight - {BASELINE}|, any epoch", lambda r: _diff(r, "weights"))
    row("seconds (training)", lambda r: f"{r['seconds']:.2f}")

    label_width = max(len(label) for label, _ in rows)
    widths = [max(len(cells[i]) for _, cells in rows) for i in range(len(names))]
    lines = ["  ".join([label.ljust(label_width), *(c.ljust(w) for c, w in zip(cells, widths, strict=True))]).rstrip()
             for label, cells in rows]  # fmt: skip
    lines.insert(1, "-" * len(max(lines, key=len)))
    lines += [f"{name} failed: {error}" for name, error in errors.items()]
    return "\n".join(lines)


def statements(results: dict[str, dict], activation: str) -> list[str]:
    """Return one sentence per backend on the collapse (or, for a nonlinear network, on the affine fit)."""
    lines = []
    for name, r in results.items():
        if r["collapsible"]:
            lines.append(f"{name}: {r['collapse_statement']}")
        else:
            fit = r["affine_fit"]
            lines.append(
                f"{name}: no K exists ({activation} is nonlinear: reference.network.collapse refuses); the best "
                f"affine fit of the outputs on [x, 1] leaves a residual of norm {fit['residual_norm']:.3g} "
                f"(max {fit['max_abs_residual']:.3g})"
            )
    if results and not any(r["collapsible"] for r in results.values()):
        lines.append(f"(the post's claim is about identity activations; with {activation} nothing is expected to "
                     f"round to y, so this run reports and does not judge)")  # fmt: skip
    return lines


def _diff(r: dict, key: str) -> str:
    d = r["max_diff_from_numpy"]
    if d is None:
        return "n/a"
    value = d[key]
    if value == 0:
        return "0 (identical)"
    epoch = d.get(key + "_epoch")
    if epoch is None:
        return f"{value:.2g}"
    return f"{value:.2g} ({'trained' if epoch == len(r['costs']) + 1 else f'epoch {epoch}'})"


def _ints(a: np.ndarray) -> str:
    return " ".join(f"{v:.0f}" if np.isfinite(v) else str(v) for v in np.ravel(a))


def _floats(a: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.5g}" for v in np.ravel(a)) + ")"


def draw_figure(file, results: dict[str, dict], title: str) -> None:
    """Draw the cost curves (log scale) and the outputs against x @ K (or the affine fit) as a PNG."""
    from matplotlib.figure import Figure  # lazily: only this function needs matplotlib

    fig = Figure(figsize=(12, 4.8), layout="constrained")
    fig.suptitle(title, fontsize=9)
    ax_cost, ax_out = fig.subplots(1, 2)
    # Curves coincide when the backends agree, so each backend gets its own line style and marker size.
    styles = [("-", "o", 11), ("--", "s", 7), (":", "x", 6), ("-.", "+", 9)]
    collapsible = all(r["collapsible"] for r in results.values())
    lo, hi = np.inf, -np.inf
    for i, (name, r) in enumerate(results.items()):
        line, marker, size = styles[i % len(styles)]
        costs = np.asarray(r["costs"], dtype=np.float64)
        ax_cost.plot(np.arange(1, len(costs) + 1), costs, linestyle=line, label=name)
        predicted = r["x_at_K_plus_c"] if collapsible else r["affine_fitted"]
        out = np.asarray(r["outputs"], dtype=np.float64)
        detail = (f"max |x@K - out| = {r['collapse_max_abs_diff']:.2g}" if collapsible
                  else f"residual norm {r['affine_fit']['residual_norm']:.2g}")  # fmt: skip
        ax_out.plot(np.ravel(predicted), np.ravel(out), linestyle="none", marker=marker, markersize=size,
                    fillstyle="none", label=f"{name}: {detail}")  # fmt: skip
        finite = np.concatenate([np.ravel(predicted), np.ravel(out)])
        finite = finite[np.isfinite(finite)]
        if finite.size:
            lo, hi = min(lo, finite.min()), max(hi, finite.max())
    ax_cost.set_yscale("log")
    ax_cost.set_xlabel("epoch")
    ax_cost.set_ylabel("cost = 0.5 * sum((output - y)^2)")
    ax_cost.set_title("cost per epoch")
    ax_cost.legend()
    if np.isfinite(lo):
        ax_out.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, label="equal")
    ax_out.set_xlabel("x @ K + c" if collapsible else "best affine fit [x, 1] @ beta")
    ax_out.set_ylabel("network output")
    ax_out.set_title(
        "outputs against x @ K" if collapsible else "no K (nonlinear): outputs against the best affine fit"
    )
    ax_out.legend(fontsize=8)
    fig.savefig(file, format="png", dpi=110)


def write_atomically(path: Path, write) -> str:
    """Write ``path`` through a temporary file (a crash never leaves half a file); return what was done."""
    existed = path.exists()
    temporary = path.with_name(path.name + ".partial")
    with open(temporary, "wb") as f:
        write(f)
    os.replace(temporary, path)
    return f"wrote {path}" + (" (replaced the previous one)" if existed else "")


def report_entry(result: dict) -> dict:
    """Return a backend's report.json entry: its summary less what only the table and the figure use."""
    return {k: v for k, v in result.items() if k not in ("failures", "affine_fitted")}


def _json_bytes(report: dict) -> bytes:
    return json.dumps(jsonable(report), indent=2, allow_nan=False).encode()


def jsonable(value):
    """Return ``value`` with arrays as nested lists and non-finite floats as None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
