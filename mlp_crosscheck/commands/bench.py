"""``mlp-crosscheck bench``: what the suite costs, measured side by side with what it replaces.

Two tables, each measured in one run on this machine:

1. Per example (3-4-10-1, tanh, float64, batch 4, no biases: the seed's network with a nonlinearity):
   - the suite: a Hypothesis test drawing ``properties.strategies.cases`` whose body calls the backend through
     the contract, evaluates the float64 reference and ``tolerances.gradient_bounds``, and asserts with
     ``assert_gradients_within_bounds`` -- and the same test with an empty body (Hypothesis's own cost);
   - a naive Hypothesis test: four ``hypothesis.extra.numpy.arrays`` with default elements (x, W_1, W_2,
     W_3), the backend called directly, compared with ``np.allclose``; JAX without a compile cache (a fresh
     ``jax.jit`` per example, as a test that jits inside its body gets) -- and the same with an empty body;
   - ``torch.autograd.gradcheck`` and ``jax.test_util.check_grads`` per network.
2. Networks per second, per backend, in one run: the raw batched float64 reference (``reference.batched``, the
   sweep's baseline), the raw batched backend (the sweep's own batched call, without anything else), their
   combined rate ``1 / (1/ref + 1/backend)`` -- the limit of a sweep, which cannot skip either -- and the sweep
   (generation, reference, bounds, backend, comparison) as a share of that limit; and the share the sweep would
   reach if its bounds and comparison cost nothing (``ceiling``: its own generation, reference and backend
   seconds), which says how much of the gap checking is and how much it cannot be.

Invariants:
- Prints figures, asserts nothing about speed; a check that fails during a timed loop is counted and printed.
- Times are CPU seconds of this process (``time.process_time``), so other load on a shared machine does not
  inflate them; with one thread per framework they are one core's work.
- ``--threads 1`` (the default) limits torch and XLA to one intra-op thread before either is imported, so
  that the figures compare like with like; run under ``taskset -c 0`` for one core.
- Every timed loop is warmed up first (JAX compilations, lazy imports), except the naive JAX row, whose
  point is the compile it pays on every example.
- Frameworks are imported inside the functions that need them; a missing one is a row of "-".
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlp_crosscheck import backends, environment
from mlp_crosscheck.commands import arguments
from mlp_crosscheck.commands import sweep as sw

HELP = "benchmark the suite against naive Hypothesis tests, gradcheck and check_grads, and the sweep against raw"
WIDTHS = (3, 4, 10, 1)
BATCH = 4
ACTIVATION = "tanh"


@dataclass(frozen=True)
class Budget:
    """How many examples or networks each measurement uses."""

    suite_examples: int
    naive_examples: int
    naive_jax_examples: int
    gradcheck_networks: int
    check_grads_networks: int
    sweep_networks: int


DEFAULT = Budget(500, 200, 10, 200, 20, 1_000_000)
QUICK = Budget(100, 40, 3, 20, 3, 100_000)


# -- Hypothesis timing -----------------------------------------------------------------------------------------


def per_example(strategy, body: Callable, examples: int) -> tuple[float, int, int]:
    """Return (seconds per example, examples run, examples whose body raised) for a generate-only run."""
    from hypothesis import given, settings

    from mlp_crosscheck.properties import profiles

    counts = {"run": 0, "raised": 0}

    @settings(profiles.FIND, max_examples=examples)  # generate only: a fixed, reproducible draw
    @given(strategy)
    def test(case):
        counts["run"] += 1
        try:
            body(case)
        except Exception:
            counts["raised"] += 1  # measured, not judged: reported next to the figure

    start = time.process_time()
    test()
    seconds = time.process_time() - start
    return seconds / max(counts["run"], 1), counts["run"], counts["raised"]


def warm_per_example(strategy, body: Callable, examples: int) -> tuple[float, int, int]:
    """``per_example`` after a few untimed examples (first-use costs: imports, caches, Hypothesis's own)."""
    per_example(strategy, body, 3)
    return per_example(strategy, body, examples)


def suite_strategy():
    from mlp_crosscheck.properties import strategies

    return strategies.cases(activations=ACTIVATION, dtype=np.float64, widths=WIDTHS, batch=BATCH, biases=False)


def suite_body(name: str) -> Callable:
    """Return the body of the suite's gradient property for backend ``name`` (contract call, reference, bounds)."""
    from mlp_crosscheck.backends.contract import Result
    from mlp_crosscheck.properties.assertions import assert_gradients_within_bounds
    from mlp_crosscheck.properties.tolerances import gradient_bounds
    from mlp_crosscheck.reference import network

    impl = backends.builtin(name)

    def body(case) -> None:
        net, x, y = case
        bounds = gradient_bounds(net, x, y)
        loss, g = network.loss_and_gradients(net, x, y)
        actual = impl.loss_and_gradients(net, x, y)
        assert_gradients_within_bounds(actual, Result(loss, g.weights, g.biases, g.x), bounds.agree())

    return body


def naive_strategy():
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    shapes = [(BATCH, WIDTHS[0]), *itertools.pairwise(WIDTHS)]
    return st.tuples(*(hnp.arrays(np.float64, shape) for shape in shapes))  # default elements: any float64


def naive_body(name: str) -> Callable:
    """Return a naive test body: the framework called directly, compared with ``np.allclose``."""
    from mlp_crosscheck.reference import network

    y = np.zeros((BATCH, WIDTHS[-1]))
    acts = (ACTIVATION,) * (len(WIDTHS) - 1)
    if name == "numpy":
        call = lambda x, ws: network.loss_and_gradients(network.Network(ws, None, acts), x, y)[1].weights
    else:  # the framework called directly, as a test without this suite calls it (the backend module holds it)
        framework = importlib.import_module(backends.BUILTINS[name].module)
        call = lambda x, ws: framework.naive_tanh_weight_gradients(x, ws, y)

    def body(arrays) -> None:
        x, *ws = arrays
        with np.errstate(all="ignore"):  # default elements include huge values, infinities and NaN
            got = call(x, ws)
            expected = network.loss_and_gradients(network.Network(ws, None, acts), x, y)[1].weights
            for g, e in zip(got, expected, strict=True):
                np.allclose(g, e)  # the naive test's comparison (its verdict is irrelevant to the cost)

    return body


def framework_check_seconds(name: str, networks: int) -> float:
    """Return seconds per framework gradient check (``torch.autograd.gradcheck``, ``jax.test_util.check_grads``)
    of one 3-4-10-1 tanh network's loss, through the backend module's ``framework_gradient_check``."""
    check = importlib.import_module(backends.BUILTINS[name].module).framework_gradient_check
    rng = np.random.default_rng(0)
    make = lambda: (
        rng.standard_normal((BATCH, WIDTHS[0])),
        [rng.standard_normal(s) for s in itertools.pairwise(WIDTHS)],
    )
    check(*make())  # warm-up
    start = time.process_time()
    for _ in range(networks):
        check(*make())
    return (time.process_time() - start) / networks


# -- sweep against raw ------------------------------------------------------------------------------------------


ROUNDS = 3  # each figure of the sweep table: the best of this many interleaved measurements


def sweep_rates(names: list[str], networks: int, chunk: int, threads: int | None, spec: sw.SweepSpec) -> dict:
    """Return, per backend, networks per CPU second of: the raw batched float64 reference (``ref``), the raw
    batched backend (``raw``), their combined rate (``limit``), the sweep (``sweep``), the sweep's share of the
    limit (``share``) and ``ceiling``: the share of a sweep whose bounds and comparison were free, the best round's
    generation, reference and backend seconds alone (each slower than its raw rate: the sweep's arrays are fresh,
    the raw rounds cycle over four chunks already in cache).

    The three are measured in turn, ``ROUNDS`` times over ``networks / ROUNDS`` networks each, and each keeps its
    best round: other load on a shared machine slows some rounds (CPU seconds too: caches and cores are shared),
    and interleaving exposes the three to the same load. The reference is one computation whatever the backend, so
    every column gets the best of all its rounds: a column whose own reference rounds were all slow would otherwise
    get a lower limit, and a higher share and ceiling, than the same sweep beside it (seen: 486,000 against 664,000
    networks per CPU second, one run). The numpy backend in float64 is the baseline itself, which the sweep does not
    compute twice: its limit is the reference alone (``limit_note`` says so).
    """
    measured: dict = {}
    part = max(chunk, networks // ROUNDS)
    sample_every = sw.default_sample_every(networks)  # as a sweep of --networks samples
    ref = 0.0
    for name in names:
        if backends.missing_reason(name):
            continue
        (evaluator,) = sw.make_evaluators([name], [], chunk)
        sw.sweep(spec, chunk, [evaluator], chunk=chunk)  # warm-up: first-use page faults, JAX compilation
        raw = 0.0
        best = None
        for _ in range(ROUNDS):
            ref = max(ref, reference_rate(spec, part, chunk))
            raw = max(raw, raw_rate(evaluator, spec, part, chunk))
            report = sw.sweep(spec, part, [evaluator], chunk=chunk, sample_every=sample_every)
            best = report if best is None or report.seconds < best.seconds else best
        assert best is not None
        measured[name] = (raw, best)
    rates: dict = {}
    for name, (raw, best) in measured.items():
        (result,) = best.backends
        reused = name == "numpy" and spec.dtype == "float64"
        limit = ref if reused else 1 / (1 / ref + 1 / raw)
        sweep_rate = best.networks / best.seconds
        unavoidable = best.stage_seconds["generate"] + best.stage_seconds["reference"] + result.seconds
        rates[name] = {
            "ref": ref,
            "raw": raw,
            "limit": limit,
            "limit_note": "the reference alone: the backend is the baseline" if reused else "",
            "sweep": sweep_rate,
            "share": sweep_rate / limit,
            "ceiling": best.networks / unavoidable / limit,
            "failures": result.failures,
            "stage_seconds": dict(best.stage_seconds),
            "evaluate_seconds": result.seconds,
            "compare_seconds": result.compare_seconds,
            "networks": best.networks,
        }
    return rates


def _chunks(spec: sw.SweepSpec, networks: int, chunk: int) -> list:
    return [
        sw.generate(spec, start, min(start + chunk, networks)) for start in range(0, min(networks, 4 * chunk), chunk)
    ]


def reference_rate(spec: sw.SweepSpec, networks: int, chunk: int) -> float:
    """Return networks/s of the float64 batched reference's loss and gradients alone (the sweep's baseline:
    ``reference.batched``), on pre-generated chunks already in float64."""
    from mlp_crosscheck.reference.batched import loss_and_gradients_batched

    wide = [
        (stack.astype(np.float64), x.astype(np.float64), y.astype(np.float64))
        for stack, x, y in _chunks(spec, networks, chunk)
    ]
    return _rate(lambda stack, x, y: loss_and_gradients_batched(stack, x, y), wide, networks, chunk)


def raw_rate(evaluator, spec: sw.SweepSpec, networks: int, chunk: int) -> float:
    """Return networks/s of the backend's batched loss-and-gradients call alone, on pre-generated chunks."""
    return _rate(evaluator.batched.evaluate, _chunks(spec, networks, chunk), networks, chunk)


def _rate(call: Callable, chunks: list, networks: int, chunk: int) -> float:
    calls = math.ceil(networks / chunk)
    call(*chunks[0])  # warm-up (JAX compiles here)
    start = time.process_time()
    done = 0
    for i in range(calls):
        stack, x, y = chunks[i % len(chunks)]
        call(stack, x, y)
        done += stack.count
    return done / (time.process_time() - start)


def scaling(names: list[str], chunk: int, threads: int | None, seconds_per_point: float) -> list[dict]:
    """Return the sweep's networks per CPU second per backend over widths (3-w-w-1) and depths (3-10-...-10-1)."""
    points: list[tuple[str, tuple[int, ...]]] = [(f"3-{w}-{w}-1", (3, w, w, 1)) for w in (4, 8, 16, 32, 64)]
    points += [(f"depth {d}: 3-{'-'.join(['10'] * (d - 1))}-1", (3, *([10] * (d - 1)), 1)) for d in (2, 3, 5, 8)]
    rows = []
    for label, widths in points:
        spec = sw.SweepSpec(widths=widths, activations=(ACTIVATION,), seed=1)
        row = {"label": label, "widths": widths, "parameters": sum(a * b + b for a, b in itertools.pairwise(widths))}
        for name in names:
            if backends.missing_reason(name):
                continue
            (evaluator,) = sw.make_evaluators([name], [], chunk)
            probe = sw.sweep(spec, chunk, [evaluator], chunk=chunk)  # also compiles for JAX
            networks = max(chunk, int(seconds_per_point * chunk / max(probe.seconds, 1e-9)) // chunk * chunk)
            report = sw.sweep(spec, networks, [evaluator], chunk=chunk)
            row[name] = report.networks / report.seconds
        rows.append(row)
    return rows


def draw_scaling(rows: list[dict], names: list[str], path: str) -> None:
    """Write the scaling figure (networks/s against parameters, one line per backend and family) as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    for ax, family, title in zip(
        fig.subplots(1, 2), ("3-", "depth"), ("width: 3-w-w-1", "depth: 3-10-...-10-1"), strict=True
    ):
        part = [r for r in rows if r["label"].startswith(family)]
        xs = [r["widths"][1] if family == "3-" else len(r["widths"]) - 1 for r in part]
        for name in names:
            if all(name in r for r in part):
                ax.plot(xs, [r[name] for r in part], marker="o", label=name)
        ax.set_xscale("log", base=2) if family == "3-" else None
        ax.set_yscale("log")
        ax.set_xlabel("width w" if family == "3-" else "layers L")
        ax.set_ylabel("networks per CPU second (sweep, comparison included)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# -- command line -------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="fewer examples and networks (about 20 s)")
    parser.add_argument(
        "--backends",
        type=arguments.backend_names,
        default=list(backends.BUILTINS),
        metavar="NAMES",
        help="backends to measure",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="intra-op threads for torch and XLA (default 1; 0 = their own choice)"
    )
    parser.add_argument("--chunk", type=arguments.positive_int, default=sw.DEFAULT_CHUNK, help="the sweep's chunk size")
    parser.add_argument(
        "--networks", type=arguments.positive_int, default=None, help="networks per backend for the sweep rows"
    )
    parser.add_argument("--scaling", action="store_true", help="also measure the sweep over widths and depths")
    parser.add_argument(
        "--figure", default=None, metavar="PNG", help="draw the scaling figure here (implies --scaling)"
    )
    parser.add_argument("--json", default=None, metavar="PATH", help="also write every figure as JSON")


def run(args: argparse.Namespace) -> int:
    threads = args.threads or None
    if threads is not None:
        backends.limit_threads(args.backends, threads)
    sw._keep_freed_memory()
    budget = QUICK if args.quick else DEFAULT
    names = [n for n in args.backends if backends.missing_reason(n) is None]
    results: dict = {"machine": environment.fingerprint(), "threads": threads, "budget": budget.__dict__}
    print(_machine_line(results["machine"], threads))
    print(flush=True)

    per = results["per_example"] = {}
    per["suite_generation"] = warm_per_example(suite_strategy(), lambda case: None, budget.suite_examples)
    per["naive_generation"] = warm_per_example(naive_strategy(), lambda case: None, budget.naive_examples)
    for name in names:
        body = suite_body(name)
        body(_first_case())  # warm-up: imports, JAX compilation for this bucket
        per[f"suite_{name}"] = warm_per_example(suite_strategy(), body, budget.suite_examples)
        examples = budget.naive_jax_examples if name == "jax" else budget.naive_examples
        per[f"naive_{name}"] = per_example(naive_strategy(), naive_body(name), examples)
    if "torch" in names:
        n = budget.gradcheck_networks
        per["gradcheck"] = (framework_check_seconds("torch", n), n, 0)
    if "jax" in names:
        per["check_grads"] = (
            framework_check_seconds("jax", budget.check_grads_networks),
            budget.check_grads_networks,
            0,
        )
    print(format_per_example(per, names))
    print(flush=True)

    spec = sw.SweepSpec(seed=7)
    networks = args.networks or budget.sweep_networks
    results["sweep"] = sweep_rates(names, networks, args.chunk, threads, spec)
    print(format_sweep(results["sweep"], names, spec, networks, args.chunk, threads))
    if args.scaling or args.figure:
        results["scaling"] = scaling(names, args.chunk, threads, 0.5 if args.quick else 2.0)
        print()
        print(format_scaling(results["scaling"], names))
        if args.figure:
            draw_scaling(results["scaling"], names, args.figure)
            print(f"\nfigure: {args.figure}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 0


def _first_case():
    from hypothesis import HealthCheck, Phase, given, settings

    found = []

    @settings(max_examples=1, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(suite_strategy())
    def first(case):
        found.append(case)

    first()
    return found[0]


def _machine_line(m: dict, threads) -> str:
    versions = ", ".join(f"{k} {m[k]}" for k in ("python", "numpy", "hypothesis", "torch", "jax"))
    return (
        f"machine: {m['cpu']}, {m['cpu_count']} cores ({m['usable_cpu_count']} usable by this process), "
        f"{m['platform']}\n"
        f"threads: {threads or 'frameworks default'}; {versions}"
    )


def _ms(entry) -> str:
    return "-" if entry is None else f"{entry[0] * 1e3:.2f}" + ("*" if entry[2] else "")


def format_per_example(per: dict, names: list[str]) -> str:
    """Return the per-example table (milliseconds) and its ratios."""
    cols = [n for n in ("numpy", "torch", "jax") if n in names]
    head = f"{'per example, ' + '-'.join(map(str, WIDTHS)) + f' {ACTIVATION} float64 batch {BATCH} (CPU ms)':<58}"
    lines = [head + "".join(f"{n:>10}" for n in cols)]

    def row(label, values):
        lines.append(f"{label:<58}" + "".join(f"{v:>10}" for v in values))

    row("suite: Hypothesis generation only (strategies.cases)", [_ms(per["suite_generation"])] + [""] * (len(cols) - 1))
    row("suite: generation + contract call + reference + bounds", [_ms(per.get(f"suite_{n}")) for n in cols])
    row(
        "naive: generation only (4 x arrays(), default elements)",
        [_ms(per["naive_generation"])] + [""] * (len(cols) - 1),
    )
    row("naive: generation + direct call + allclose", [_ms(per.get(f"naive_{n}")) for n in cols])
    row("torch.autograd.gradcheck, per network", ["" if n != "torch" else _ms(per.get("gradcheck")) for n in cols])
    row("jax.test_util.check_grads, per network", ["" if n != "jax" else _ms(per.get("check_grads")) for n in cols])
    suite = {n: per[f"suite_{n}"][0] for n in cols}
    gen = per["suite_generation"][0]
    row("ratio: naive / suite", [f"{per[f'naive_{n}'][0] / suite[n]:.2f}x" for n in cols])
    row(
        "ratio: gradcheck or check_grads / suite",
        [
            f"{per['gradcheck'][0] / suite[n]:.1f}x"
            if n == "torch" and "gradcheck" in per
            else f"{per['check_grads'][0] / suite[n]:.1f}x"
            if n == "jax" and "check_grads" in per
            else ""
            for n in cols
        ],
    )
    row("ratio: suite / its own generation", [f"{suite[n] / gen:.2f}x" for n in cols])
    row("ratio: (suite - generation) / generation", [f"{(suite[n] - gen) / gen:.2f}x" for n in cols])
    if any(v[2] for v in per.values() if isinstance(v, tuple)):
        lines.append("* some examples raised inside the timed body (counted, not judged)")
    lines.append("naive JAX: a fresh jax.jit per example, so it compiles every time")
    return "\n".join(lines)


def format_sweep(rates: dict, names: list[str], spec, networks: int, chunk: int, threads) -> str:
    cols = [n for n in ("numpy", "torch", "jax") if n in rates]
    lines = [
        f"networks per CPU second, {spec.describe()}, chunk {chunk}, {networks:,} per backend (best of {ROUNDS} "
        f"interleaved rounds)\n{'':<58}" + "".join(f"{n:>10}" for n in cols)
    ]
    row = lambda label, values: lines.append(f"{label:<58}" + "".join(f"{v:>10}" for v in values))
    row("raw batched float64 reference (reference.batched)", [f"{rates[n]['ref']:,.0f}" for n in cols])
    row("raw batched backend forward+backward (no comparison)", [f"{rates[n]['raw']:,.0f}" for n in cols])
    row(
        "limit: reference and backend, 1 / (1/ref + 1/backend)",
        [f"{rates[n]['limit']:,.0f}" + ("*" if rates[n]["limit_note"] else "") for n in cols],
    )
    row("sweep: generation + reference + bounds + backend + compare", [f"{rates[n]['sweep']:,.0f}" for n in cols])
    row("sweep / limit", [f"{100 * rates[n]['share']:.0f}%" for n in cols])
    row("ceiling: sweep / limit with bounds and compare free", [f"{100 * rates[n]['ceiling']:.0f}%" for n in cols])
    for n in cols:
        r = rates[n]
        per = lambda seconds, r=r: 1e6 * seconds / r["networks"]
        stages = ", ".join(f"{k} {per(v):.2f}" for k, v in r["stage_seconds"].items())
        lines.append(
            f"  {n}, CPU µs per network: {stages}, backend {per(r['evaluate_seconds']):.2f}, "
            f"compare {per(r['compare_seconds']):.2f}"
        )
    if any(rates[n]["failures"] for n in cols):
        lines.append("FAILURES in the sweep: run mlp-crosscheck sweep for the details")
    if any(rates[n]["limit_note"] for n in cols):
        lines.append("* numpy in float64: the backend is the baseline, computed once: the limit is the reference alone")
    return "\n".join(lines)


def format_scaling(rows: list[dict], names: list[str]) -> str:
    cols = [n for n in ("numpy", "torch", "jax") if n in names]
    lines = [f"{'sweep, networks per CPU second':<40}{'params':>8}" + "".join(f"{n:>10}" for n in cols)]
    for r in rows:
        lines.append(f"{r['label']:<40}{r['parameters']:>8}" + "".join(f"{r.get(n, math.nan):>10,.0f}" for n in cols))
    return "\n".join(lines)
