"""``mlp-crosscheck sweep``: verify N random networks per backend, batched, within the error bounds.

The networks come from a drawn space (``sweep_space``): by default architectures, activations (mixed per layer),
both dtypes, biases on and off and five value regimes, each network reproducible from ``(seed, index)``;
``--arch``, ``--activation``, ``--dtype``, ``--biases``/``--no-biases``, ``--batch`` and ``--regime`` narrow it.
Each chunk of indices is generated as groups of one signature (a block of the space), and each group is checked
as one batch: the NumPy reference once in float64 (the baseline) with the error bounds of
``properties.tolerances``, then every backend computes the loss and all gradients of the group in one batched
call, compared with the baseline elementwise against ``bounds.agree()`` -- the same tolerance the properties
use. It ends with a summary: networks checked, the coverage of the space, the distribution of error/bound ratios
per backend and quantity, where the time went, the threads used and, when networks fail, a summary of the
failures (counts per quantity, activation, dtype, regime and signature, the worst few with the
``rebuild(seed, index, ...)`` call that recreates each); every failing network goes to ``--json``.

Invariants:
- Reproducible by index: ``sweep_space`` says how; the sweep only groups and checks what it generates.
- The baseline is ``reference.batched`` in float64; the bounds reuse its forward and backward pass
  (``forward64``/``backward64``), never another implementation's values.
- Each built-in backend evaluates a group with its own ``Batched`` class (``backends.batched``): its
  framework's own autodiff over the backend's own forward pass, so the sweep checks the very code the
  properties check, only batched. The ``numpy`` backend is the batched reference in the network's dtype; in
  float64 that *is* the baseline, so its ratios are 0 by construction and its row measures the cost floor of
  a sweep (generation, reference, bounds, comparison).
- An ``--impl`` module has no batched form: it is called network by network through the contract's checked
  calls; a ``ContractError`` is that network's failure.
- Excluded and counted, never failed, as the properties ``assume`` such draws away: a network whose
  pre-activations lie within their bound of a relu/leaky_relu kink (``ambiguous``) or exactly on one
  (``exact_kinks``, where frameworks' conventions differ) -- "kink" --, and one where a value the bounds assume
  finite and representable is not (``beyond_range``) -- "beyond range".
- A failure is exactly what ``assert_arrays_within_bound`` rejects: some ``|actual - expected| > bound``,
  or non-finite values that differ. The full bounds are computed only where they decide something
  (``sweep_bounds``, which proves it): a network is accepted without them where every ``|actual - expected|``
  is within twice a cheap lower bound of its bound, and its exclusion decided by a cheap majorant; the rest,
  and every ``--sample-every``-th network, get the full bounds and the full comparison. The verdict, the
  exclusions and every failing network's ratios are those of the full bounds everywhere (``full_bounds=True``,
  tests/test_sweep_bounds.py). The full comparison takes one maximum of ``|diff| / bound`` per quantity and
  group; only a group where it exceeds 1 or is NaN is examined network by network, its suspects re-checked
  elementwise (so ``0 / 0`` where both sides and the bound are exactly 0 is not a failure). Every failing
  network is kept (its index, ratio per quantity, signature and regime, columnar); the worst
  ``--show-failures`` per backend also get the assert helper's full message. p50 and p99 come from every
  ``--sample-every``-th network, exactly; the maximum ratio per quantity from those and every network the cheap
  test could not accept (``LAZY_MAX``; any other network is within its bound).
- A run checks what was asked or says that it did not, never "no failures". An implementation that cannot run
  what the options narrowed the space to (its DTYPES or ACTIVATIONS exclude it; a framework named in
  ``--backends`` that is missing) stops the run before any network is drawn (``CannotRun``, exit 4). Networks
  of a drawn dimension it cannot run are skipped for it, counted and said; a backend that compared no network
  (every one excluded or skipped) fails the run (exit 4).
- Threads: the command gives torch and XLA one intra-op thread unless ``--threads`` says otherwise (on
  matrices this small their thread pools cost more than they give: docs/speed.md, session 7), and prints
  the setting it applied, not the one it asked for.
- Times are CPU seconds of the process (other load on a shared machine does not inflate them). The sweep
  keeps freed memory for reuse (``_keep_freed_memory``; docs/speed.md says why).
- A sweep can be cut into shards (``--shard K/N``) and the shards' reports merged (``--merge``), also on a
  Dask cluster (``--scheduler``): ``sweep_shards`` says how; here it only means that ``sweep`` takes the first
  index of its range (``first``), so that a shard checks the very networks, samples and indices of the
  unsharded sweep, and that batched evaluators are sized by the whole sweep (``prepare``).
- No framework is imported at module level: ``mlp-crosscheck --help`` must work without torch or jax (nor
  Dask: ``sweep_shards`` imports it when ``--scheduler`` is given).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import importlib
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from mlp_crosscheck import backends
from mlp_crosscheck.commands import arguments, sweep_space
from mlp_crosscheck.commands.sweep_bounds import lower_bounds, majorant_decides
from mlp_crosscheck.commands.sweep_space import (
    DEFAULT_ACTIVATION,
    DEFAULT_WIDTHS,
    GENERATION_BLOCK,
    REGIMES,
    SIGNATURE_BLOCK,
    Case,
    Coverage,
    Group,
    SweepSpace,
    SweepSpec,
    generate,
    generate_groups,
    rebuild,
)
from mlp_crosscheck.properties.assertions import assert_arrays_within_bound
from mlp_crosscheck.properties.tolerances import BatchedBounds, gradient_bounds_batched, unit_roundoff
from mlp_crosscheck.reference import activations as _vocabulary
from mlp_crosscheck.reference.batched import (
    BackwardTrace,
    Cache,
    NetworkStack,
    backward_batched_traced,
    forward_batched,
    loss_batched,
)

__all__ = [  # what is swept lives in sweep_space; these names are the sweep's too
    "DEFAULT_ACTIVATION",
    "DEFAULT_WIDTHS",
    "GENERATION_BLOCK",
    "SIGNATURE_BLOCK",
    "Case",
    "SweepSpace",
    "SweepSpec",
    "generate",
    "generate_groups",
    "rebuild",
]

HELP = "verify N seeded random networks per backend, batched, against the reference within the error bounds"
DEFAULT_CHUNK = 4096
DEFAULT_THREADS = 1  # intra-op threads for torch and XLA; 0 leaves them their own choice
SHOWN_FAILURES = 5  # failing networks per backend printed with their rebuild calls; every one is in the JSON
# The sampled networks get the full bounds whatever the cheap test says, which costs more per network than the
# framework's own call: a run samples every K-th network, with K as large as SAMPLE_EVERY_MOST while at least
# SAMPLED_AT_LEAST networks are sampled (p99 then rests on >= 20 networks above it).
SAMPLED_AT_LEAST = 2048
SAMPLE_EVERY_MOST = 64


def default_sample_every(networks: int) -> int:
    """Return ``--sample-every``'s default for a sweep of ``networks`` networks (the whole sweep's, shards and all):
    every network up to ``2 * SAMPLED_AT_LEAST``, every 64th from ``64 * SAMPLED_AT_LEAST`` (131,072) on."""
    return max(1, min(SAMPLE_EVERY_MOST, networks // SAMPLED_AT_LEAST))


SHOWN_SIGNATURES = 3  # failing signatures per backend printed with their counts; every one is in the JSON
# What the max ratio is taken over: every network where the full bound is computed (sweep_bounds).
LAZY_MAX = "over the sampled networks and every network the cheap bound could not accept"
EVERY_NETWORK = "over every network"


# -- evaluators: the baseline and each backend, batched -----------------------------------------------------


class Evaluation(NamedTuple):
    """Stacked loss ``(n,)`` and gradients; ``x`` is None without input gradients; ``errors``: k -> message."""

    loss: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...] | None
    x: np.ndarray | None
    errors: dict[int, str] | None = None


class CannotRun(ValueError):
    """A selected implementation cannot run what the sweep asks: the run would check nothing with it."""


def _unsupported(impl, space: SweepSpace | SweepSpec) -> str | None:
    """Return why ``impl`` (a contract ``Implementation``) cannot run what the options narrowed ``space`` to --
    what it supports, and the option that narrows the sweep to that -- or None if it can.

    A drawn dimension is refused only when the implementation supports none of its values (it would check
    nothing); otherwise its networks that the implementation cannot run are skipped for it (``skip_reason``).
    """
    space = SweepSpace.of(space) if isinstance(space, SweepSpec) else space
    problems = []
    supported = [name for name in _vocabulary.NAMES if name in impl.activations]
    asked = space.possible_activations()
    missing = [name for name in asked if name not in impl.activations]
    if missing and (space.activations is not None or not supported):
        problems.append(
            f"it does not implement {', '.join(missing)} (its ACTIVATIONS: {', '.join(supported)}); "
            f"narrow the sweep with --activation NAME[,NAME...] from those"
        )
    runnable = [d for d in arguments.DTYPES if d in impl.dtypes]  # the sweep runs these dtypes only
    if (space.dtype is not None and space.dtype not in impl.dtypes) or not runnable:
        problems.append(
            f"it does not support {space.dtype or ' or '.join(space.possible_dtypes())} (its DTYPES: "
            f"{', '.join(sorted(impl.dtypes))}); "
            + (f"narrow the sweep with --dtype {runnable[0]}" if runnable else "the sweep runs no dtype it supports")
        )
    return "; ".join(problems) or None


def skip_reason(impl, space: SweepSpace, spec: SweepSpec) -> str | None:
    """Return why ``impl`` skips the networks of signature ``spec`` (a drawn dtype or activation it lacks), as the
    report says it, or None if it runs them. The reason names the dimension, not the signature, so that counts
    add up per reason."""
    if spec.dtype not in impl.dtypes:
        runnable = [d for d in space.possible_dtypes() if d in impl.dtypes]
        others = [d for d in space.possible_dtypes() if d not in impl.dtypes]
        return f"{', '.join(runnable)} only: {', '.join(others)} networks skipped for it"
    if not set(spec.activations) <= impl.activations:
        runnable = [a for a in space.possible_activations() if a in impl.activations]
        others = [a for a in space.possible_activations() if a not in impl.activations]
        return f"{', '.join(runnable)} only: networks using {', '.join(others)} skipped for it"
    return None


class BackendBatched:
    """A built-in backend's own batched evaluation (``backends.batched``): its framework's autodiff, stacked."""

    def __init__(self, name: str, chunk: int) -> None:
        self.name = name
        self.batched = backends.batched(name, chunk)
        self.declared = backends.builtin(name)  # its ACTIVATIONS and DTYPES, as the contract reads them
        self.seen: set[SweepSpec] = set()  # the signatures warmed up (warm_up)

    def unsupported(self, space: SweepSpace) -> str | None:
        return _unsupported(self.declared, space)

    def skip_reason(self, space: SweepSpace, spec: SweepSpec) -> str | None:
        return skip_reason(self.declared, space, spec)

    def warm_up(self, spec: SweepSpec) -> float:
        """Evaluate one network of a signature not seen before (JAX compiles for it and the chunk shape), so that
        the evaluation's timing holds no first use; return the CPU seconds it took (0 for a signature seen)."""
        if spec in self.seen:
            return 0.0
        self.seen.add(spec)
        clock = time.process_time()
        stack, x, y = generate(spec, 0, 1)
        self.batched.evaluate(stack, x, y)
        return time.process_time() - clock

    def evaluate(self, stack: NetworkStack, x, y, baseline: Evaluation | None) -> Evaluation:
        if self.name == "numpy" and stack.dtype == np.float64 and baseline is not None:
            return baseline  # the batched reference in float64 *is* the baseline: computing it again changes nothing
        losses, g = self.batched.evaluate(stack, x, y)
        return Evaluation(losses, g.weights, g.biases, g.x)


class ImplLoop:
    """A contract module, called network by network through the contract's checked calls."""

    def __init__(self, impl) -> None:
        self.impl = impl
        self.name = impl.name

    def unsupported(self, space: SweepSpace) -> str | None:
        return _unsupported(self.impl, space)

    def skip_reason(self, space: SweepSpace, spec: SweepSpec) -> str | None:
        return skip_reason(self.impl, space, spec)

    def evaluate(self, stack: NetworkStack, x, y, baseline: Evaluation) -> Evaluation:
        n = stack.count
        nan = lambda like: np.full_like(like, np.nan)
        losses = np.full(n, np.nan)
        dws = [nan(w) for w in stack.weights]
        dbs = None if stack.biases is None else [nan(b) for b in stack.biases]
        dx = nan(x) if self.impl.has_input_gradient else None
        errors: dict[int, str] = {}
        for k in range(n):
            try:
                result = self.impl.loss_and_gradients(stack.network(k), x[k], y[k])
            except backends.ContractError as exc:
                errors[k] = str(exc)  # NaN results: the comparison flags the network, the message says why
                continue
            losses[k] = result.loss
            for target, g in zip(dws, result.weights, strict=True):
                target[k] = g
            for target, g in zip(dbs or (), result.biases or (), strict=True):
                target[k] = g
            if dx is not None:
                dx[k] = result.x
        return Evaluation(losses, tuple(dws), None if dbs is None else tuple(dbs), dx, errors)


# -- comparison --------------------------------------------------------------------------------------------


def quantity_names(spec: SweepSpec) -> list[str]:
    depth = len(spec.widths) - 1
    names = ["loss", *(f"dL/dW_{i + 1}" for i in range(depth))]
    names += [f"dL/db_{i + 1}" for i in range(depth)] if spec.biases else []
    return [*names, "dL/dx"]


def _quantities(ev: Evaluation | BatchedBounds) -> list:
    return [ev.loss, *ev.weights, *(ev.biases or ()), ev.x]


class Comparison(NamedTuple):
    """One backend against the baseline on one chunk.

    - worst: quantity -> (the largest ``|actual - expected| / bound`` over the chunk, the network it is in)
    - sampled: quantity -> each sampled network's largest ratio (networks whose index is a multiple of
      ``sample_every``)
    - failed: positions (within the chunk) of the networks that fail
    - over: quantity -> each network's largest ratio where that quantity fails, NaN where it does not (inf for
      a failure without a finite ratio: a NaN against a number); only quantities that fail somewhere
    """

    worst: dict[str, tuple[float, int]]
    sampled: dict[str, np.ndarray]
    failed: np.ndarray
    over: dict[str, np.ndarray]


def inverse_bounds(bounds: BatchedBounds, excluded: np.ndarray) -> list[np.ndarray]:
    """Return ``1 / (2 bound)`` per quantity -- the inverse of the pair's bound ``bounds.agree()`` -- and 0 for
    excluded networks (their ratios then read 0 and are dropped)."""
    with np.errstate(divide="ignore"):
        inverses = [0.5 / np.asarray(b) for b in _quantities(bounds)]  # a zero bound gives inf: see compare
    if excluded.any():
        for inv in inverses:
            inv[excluded] = 0.0
    return inverses


def compare(
    spec: SweepSpec,
    actual: Evaluation,
    expected: Evaluation,
    bounds: BatchedBounds,
    inverses: list[np.ndarray],
    *,
    start: int = 0,
    sample_every: int = 1,
    sampled_at: np.ndarray | None = None,
) -> Comparison:
    """Compare two evaluations of one chunk, network by network, against ``bounds.agree()`` (= 2 ``bounds``).

    The fast path works on whole arrays: ``r = |actual - expected| * inverses`` (``inverse_bounds``) and its
    maximum over the chunk (a flat reduction, ~15x cheaper than one maximum per network). Only a chunk whose
    maximum exceeds 1 or is NaN is examined network by network, and its suspects are re-checked elementwise
    against ``2 * bounds``: NaN also comes from ``0 * inf`` where the difference and the bound are both
    exactly 0, which is no failure. The sampled networks are those at positions ``sampled_at`` if given, else
    those whose sweep index ``start + position`` is a multiple of ``sample_every``.
    """
    names = quantity_names(spec)
    n = len(expected.loss)
    first = (-start) % sample_every  # the first position in this chunk whose sweep index is sampled
    sampled_rows = slice(first, None, sample_every) if sampled_at is None else sampled_at
    worst, sampled, failed, over = {}, {}, np.zeros(n, bool), {}
    pieces = zip(names, _quantities(actual), _quantities(expected), _quantities(bounds), inverses, strict=True)
    for name, a, e, b, inv in pieces:
        if a is None:
            continue  # an implementation without input gradients
        with np.errstate(invalid="ignore", over="ignore"):
            r = np.abs(a - e) * inv  # NaN for any NaN value and for 0 * inf; inf for a difference over a zero bound
        r = r.reshape(n, -1)
        top = r.max()  # propagates NaN
        if top <= 1:
            k = int(np.argmax(r)) // r.shape[1]
            sampled[name] = r[sampled_rows].max(axis=1)
        else:  # some network may fail: examine each one
            per_network = r.max(axis=1)
            suspects = np.flatnonzero(~(per_network <= 1))
            pair_bound = 2 * np.broadcast_to(b, e.shape)[suspects]  # bounds.agree(), for the suspects only
            bad = _elementwise_failures(a[suspects], e[suspects], pair_bound)
            failed[suspects[bad]] = True
            if bad.any():
                over[name] = np.full(n, np.nan)
                ratios = per_network[suspects[bad]]
                over[name][suspects[bad]] = np.where(np.isnan(ratios), math.inf, ratios)
            benign = suspects[~bad & np.isnan(per_network[suspects])]
            per_network[benign] = 0.0  # 0/0: both sides and the bound exactly 0 (or equal non-finite values)
            k = int(np.argmax(np.where(np.isnan(per_network), np.inf, per_network)))
            top = float(per_network[k]) if not np.isnan(per_network[k]) else math.inf
            sampled[name] = per_network[sampled_rows]
        worst[name] = (float(top), k)
    if actual.errors:
        failed[list(actual.errors)] = True
    return Comparison(worst, sampled, np.flatnonzero(failed), over)


def beyond_range(dtype, out: np.ndarray, cache: Cache, trace: BackwardTrace, baseline: Evaluation) -> np.ndarray:
    """Return, per network, whether a value the error bounds assume finite and representable in ``dtype`` is not.

    The bounds hold for finite, non-overflowing intermediate values (``properties.tolerances``). Every value the
    float64 reference computes -- each layer's input and pre-activation, the output, each delta and dL/dA, the
    loss and the gradients -- and every bound must be finite and at most ``u`` times the dtype's largest number:
    the bounds carry, times at least ``u``, the sums of product magnitudes ``|a| . |b|`` they bound, so a bound
    within that limit keeps those sums, and every partial sum of the products, below the largest number.
    A flat test per array first: in range, the usual case, it is all this costs. This tests the values; the bounds,
    computed only for the networks that need them, are tested apart (``bounds_beyond_range``).
    """
    arrays = [*cache.inputs, *cache.preactivations, out, *trace.deltas, *trace.d_outputs, *_quantities(baseline)]
    return _beyond(dtype, arrays, len(baseline.loss))


def bounds_beyond_range(dtype, bounds: BatchedBounds) -> np.ndarray:
    """Return, per network, whether one of its bounds exceeds what ``beyond_range`` allows."""
    return _beyond(dtype, _quantities(bounds), len(bounds.loss))


def _beyond(dtype, arrays: list, n: int) -> np.ndarray:
    limit = unit_roundoff(dtype) * float(np.finfo(dtype).max)
    flagged = np.zeros(n, bool)
    for a in arrays:
        if a is None or (a.max(initial=-math.inf) <= limit and a.min(initial=math.inf) >= -limit):
            continue  # NaN fails both tests
        flagged |= ~(np.abs(np.asarray(a).reshape(n, -1)) <= limit).all(axis=1)
    return flagged


def _elementwise_failures(a: np.ndarray, e: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return, per network (axis 0), whether ``assert_arrays_within_bound`` would reject it."""
    a, e, b = (np.asarray(v, np.float64) for v in (a, e, b))
    with np.errstate(invalid="ignore"):
        same = (a == e) | (np.isnan(a) & np.isnan(e))  # equal values, infinities and NaN positions pass
        ok = same | (np.abs(a - e) <= b)
    return ~ok.reshape(len(a), -1).all(axis=1)


# -- the summary -------------------------------------------------------------------------------------------


class RatioStats:
    """The exact largest ratio (and where), and a streaming histogram of sampled per-network ratios.

    The histogram has an exact count of zeros and log bins, 20 per decade; quantiles are read off it as the
    bin's upper edge: at most a factor 10^(1/20) = 1.12 above the sampled networks' exact quantile.
    """

    LOW, HIGH, PER_DECADE = -20, 20, 20

    def __init__(self) -> None:
        self.bins = (self.HIGH - self.LOW) * self.PER_DECADE
        self.counts = np.zeros(self.bins + 3, np.int64)  # [zero, below 10^LOW, bins..., >= 10^HIGH or NaN]
        self.max, self.argmax = -math.inf, -1

    def note_worst(self, ratio: float, index: int) -> None:
        if ratio > self.max:
            self.max, self.argmax = ratio, index

    def add(self, ratios: np.ndarray) -> None:
        """Count sampled per-network ``ratios``."""
        if len(ratios) == 0:
            return
        slot = np.full(len(ratios), self.bins + 2)  # NaN, infinity and anything >= 10^HIGH: the last slot
        slot[ratios == 0] = 0
        positive = (ratios > 0) & np.isfinite(ratios)
        position = np.floor((np.log10(ratios[positive]) - self.LOW) * self.PER_DECADE)
        slot[positive] = np.clip(position, -1, self.bins).astype(np.int64) + 2  # 1: below 10^LOW
        self.counts += np.bincount(slot, minlength=len(self.counts))

    @property
    def sampled(self) -> int:
        return int(self.counts.sum())

    def quantile(self, q: float) -> float:
        """Return an upper bound on the sampled ratios' ``q``-quantile (0 <= q <= 1), tight within one bin."""
        if self.sampled == 0:
            return math.nan
        slot = int(np.searchsorted(np.cumsum(self.counts), max(math.ceil(q * self.sampled), 1)))
        if slot == 0:
            return 0.0
        if slot == 1:
            return 10.0**self.LOW
        if slot >= self.bins + 2:
            return math.inf
        return 10.0 ** (self.LOW + (slot - 1) / self.PER_DECADE)


@dataclass
class Failure:
    """A network that one backend got wrong, with what rebuilds it; no ``ratios`` for a contract error."""

    backend: str
    index: int
    ratios: dict[str, float]
    message: str = ""

    @property
    def worst(self) -> float:
        """The largest ratio over the bound; a contract error (no values to compare) ranks as infinitely wrong."""
        return max(self.ratios.values(), default=math.inf)


@dataclass
class BackendReport:
    name: str
    skipped: str | None = None
    checked: int = 0
    excluded: int = 0
    failures: int = 0
    seconds: float = 0.0  # CPU seconds evaluating
    setup_seconds: float = 0.0  # first use of each signature (JAX: compilation), apart from ``seconds``
    compare_seconds: float = 0.0
    stats: dict[str, RatioStats] = field(default_factory=dict)
    failed_indices: list[np.ndarray] = field(default_factory=list)  # every failing network's index, per group
    # per group, one row per failing network, one column per quantity: its ratio where that quantity fails, NaN
    # where it passes (and everywhere for a contract error, whose message is in contract_errors)
    failed_ratios: list[np.ndarray] = field(default_factory=list)
    failed_signatures: list[str] = field(default_factory=list)  # per failing network: its signature's label
    failed_regimes: list[str] = field(default_factory=list)  # per failing network: its regime
    contract_errors: dict[int, str] = field(default_factory=dict)
    worst: list[Failure] = field(default_factory=list)  # the worst few failures, worst first
    # networks of the space it cannot run (a drawn dtype or activation it lacks), per reason: skip_reason's text
    skipped_networks: Counter[str] = field(default_factory=Counter)

    def failing(self) -> np.ndarray:
        """Return the index of every network this backend failed."""
        return np.concatenate(self.failed_indices) if self.failed_indices else np.zeros(0, np.int64)

    def failing_ratios(self) -> np.ndarray:
        """Return the ratio table of every failing network: rows as ``failing()``, columns as ``stats``."""
        if not self.failed_ratios:
            return np.zeros((0, len(self.stats)))
        return np.concatenate(self.failed_ratios)

    def failures_per_quantity(self) -> dict[str, int]:
        """Return, per quantity, how many networks fail in it (a network can fail in several)."""
        counts = (~np.isnan(self.failing_ratios())).sum(axis=0)
        return {q: int(c) for q, c in zip(self.stats, counts, strict=True)}

    def failures_per(self, dimension: str) -> Counter[str]:
        """Return failing networks per ``signature``, ``regime``, ``dtype`` or ``activation`` (a network counts
        once for each activation it uses)."""
        if dimension == "regime":
            return Counter(self.failed_regimes)
        signatures = Counter(self.failed_signatures)
        if dimension == "signature":
            return signatures
        counts: Counter[str] = Counter()
        for label, n in signatures.items():
            acts, dtype = label.split(" ")[1:3]  # "widths acts dtype[ no biases] batch B": SweepSpec.label
            for value in dict.fromkeys(acts.split(",")) if dimension == "activation" else (dtype,):
                counts[value] += n
        return counts


@dataclass
class SweepReport:
    space: SweepSpace
    networks: int
    chunk: int
    backends: list[BackendReport]
    failures: list[Failure] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=lambda: {"generate": 0.0, "reference": 0.0, "bounds": 0.0})
    seconds: float = 0.0  # CPU seconds of the whole loop
    wall_seconds: float = 0.0
    threads: str = ""  # the thread setting the command applied, as printed; empty when the caller set none
    shards: str = ""  # what this report is of, when a shard or merged from shards, as printed (sweep_shards)
    coverage: Coverage = field(default_factory=Coverage)
    max_over: str = LAZY_MAX  # what the max ratio per quantity is taken over, as printed
    sample_every: int = 1  # p50/p99 are over every sample_every-th network

    @property
    def spec(self) -> SweepSpace:
        """The space swept (its name before the sweep drew one)."""
        return self.space

    @property
    def unchecked(self) -> list[str]:
        """Return the backends that ran and yet compared no network (every one excluded or skipped)."""
        return [b.name for b in self.backends if b.skipped is None and b.checked == 0]

    @property
    def ok(self) -> bool:
        """Whether no network failed, some backend ran, and every backend that ran compared some network."""
        ran = any(b.skipped is None for b in self.backends)
        return ran and all(b.failures == 0 for b in self.backends) and not self.unchecked

    @property
    def shared_seconds(self) -> float:
        return sum(self.stage_seconds.values())

    def alone_rate(self, backend: BackendReport) -> float:
        """Networks per CPU second this backend would sweep alone: shared stages, its evaluation and comparison."""
        return self.networks / max(self.shared_seconds + backend.seconds + backend.compare_seconds, 1e-12)

    def to_json(self) -> dict:
        return {
            "spec": self.space.to_json(),
            "networks": self.networks,
            "chunk": self.chunk,
            "cpu_seconds": self.seconds,
            "wall_seconds": self.wall_seconds,
            "networks_per_cpu_second_all_backends": self.networks / max(self.seconds, 1e-12),
            "stage_seconds": self.stage_seconds,
            "max_over": self.max_over,  # what each quantity's "max" ratio is taken over
            "sample_every": self.sample_every,  # p50/p99 are over every sample_every-th network
            "coverage": self.coverage.to_json(),
            "backends": {
                b.name: {
                    "skipped": b.skipped,
                    "checked": b.checked,
                    "excluded": b.excluded,
                    "failures": b.failures,
                    "skipped_networks": dict(b.skipped_networks),
                    "failures_per": {d: dict(b.failures_per(d)) for d in ("activation", "dtype", "regime")},
                    "evaluate_seconds": b.seconds,
                    "compare_seconds": b.compare_seconds,
                    "setup_seconds": b.setup_seconds,
                    "networks_per_cpu_second_alone": None if b.skipped else self.alone_rate(b),
                    "ratios": {
                        q: {
                            "max": h.max,
                            "max_index": h.argmax,
                            "p50": h.quantile(0.5),
                            "p99": h.quantile(0.99),
                            "sampled": h.sampled,
                        }
                        for q, h in b.stats.items()
                    },
                }
                for b in self.backends
            },
            "threads": self.threads,
            "unchecked": self.unchecked,
            # the worst few per backend, as printed; every failing network is in the tables below
            "failures": [{**f.__dict__, "rebuild": self.space.rebuild_call(f.index)} for f in self.failures],
            "failing_indices": {b.name: b.failing().tolist() for b in self.backends if b.failures},
            # per backend and quantity, aligned with failing_indices: the ratio, or null where that quantity passes
            "failing_ratios": {
                b.name: {
                    q: [None if math.isnan(r) else r for r in column.tolist()]
                    for q, column in zip(b.stats, b.failing_ratios().T, strict=True)
                }
                for b in self.backends
                if b.failures
            },
            # aligned with failing_indices too: each failing network's signature and regime
            "failing_signatures": {b.name: b.failed_signatures for b in self.backends if b.failures},
            "failing_regimes": {b.name: b.failed_regimes for b in self.backends if b.failures},
            "contract_errors": {b.name: b.contract_errors for b in self.backends if b.contract_errors},
        }


# -- progress ----------------------------------------------------------------------------------------------


def progress_bar(total: int, enabled: bool = True, stream=None) -> tqdm:
    """Return a tqdm bar of networks checked, on ``stream`` (stderr).

    Redrawn four times a second on a terminal; in a log (CI), a line every 30 s and the final one, so that a
    long run shows it is alive without filling the log.
    """
    stream = stream if stream is not None else sys.stderr
    interactive = getattr(stream, "isatty", lambda: False)()
    interval = 0.25 if interactive else 30.0
    return tqdm(
        total=total,
        desc="sweep",
        unit=" networks",
        file=stream,
        mininterval=interval,
        ascii=not interactive,
        disable=not enabled,
    )


# -- the sweep ---------------------------------------------------------------------------------------------


def _keep_freed_memory() -> None:
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS at every free.

    The sweep's temporaries are ~0.1-1 MB arrays; with glibc's defaults each one is unmapped (or the heap
    trimmed) when freed and page-faulted back in at the next operation, which measured 5-10x slower on
    the elementwise operations here. Raising the trim and mmap thresholds keeps them. Best effort: a no-op
    off glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_trim_threshold, 1 << 30)
    libc.mallopt(m_mmap_threshold, 1 << 25)


def make_evaluators(names: Sequence[str], impls: Sequence, chunk: int) -> list:
    """Return one evaluator per built-in backend name (or a skip reason string) and per ``--impl``."""
    evaluators: list = []
    for name in names:
        reason = backends.missing_reason(name)
        if reason is not None:
            evaluators.append((name, reason))
        elif hasattr(importlib.import_module(backends.BUILTINS[name].module), "Batched"):
            evaluators.append(BackendBatched(name, chunk))
        else:  # a built-in without a batched evaluator: called network by network through its contract
            evaluators.append(ImplLoop(backends.builtin(name)))
    evaluators += [ImplLoop(impl) for impl in impls]
    return evaluators


def check_runnable(space: SweepSpace | SweepSpec, evaluators: Sequence) -> None:
    """Raise ``CannotRun`` naming every evaluator that cannot run what the options narrowed ``space`` to, with
    what it supports and the option that narrows the sweep to that; ``(name, reason)`` pairs (a missing
    framework) are not judged here."""
    space = SweepSpace.of(space) if isinstance(space, SweepSpec) else space
    refusals = [
        f"{ev.name} cannot run this sweep ({space.describe()}): {reason}"
        for ev in evaluators
        if not isinstance(ev, tuple) and (reason := ev.unsupported(space)) is not None
    ]
    if refusals:
        raise CannotRun("\n".join(refusals))


def sweep(
    space: SweepSpace | SweepSpec,
    networks: int,
    evaluators: Sequence,
    *,
    chunk: int = DEFAULT_CHUNK,
    show_failures: int = SHOWN_FAILURES,
    sample_every: int | None = None,
    progress: tqdm | None = None,
    first: int = 0,
    full_bounds: bool = False,
) -> SweepReport:
    """Verify networks ``first .. first + networks - 1`` of ``space`` with every evaluator; return the report.

    A ``SweepSpec`` means its one signature in the ordinary regime (``SweepSpace.of``): the same networks.
    Each chunk of indices is generated as groups of one signature (``generate_groups``), each checked as one
    batch (``_check_group``). Indices in the report (failures, the max's ``at index``) are the sweep's own, and
    which networks are sampled depends on the index only, so a range cut into pieces reports what the whole
    range does.

    Times are CPU seconds of this process (all its threads): unlike wall time they do not grow when other
    processes share the cores, and with one thread per framework they are one core's work.

    Every network is compared and every failure found and kept (index, ratio per quantity, signature, regime);
    the worst ``show_failures`` per backend also get the assert helper's message. The ratio distribution (p50,
    p99) is estimated from the networks whose index is a multiple of ``sample_every`` (examining each network's
    largest ratio costs more than the comparison itself); the largest ratio per quantity is taken over those and
    every network whose full bounds were needed (``LAZY_MAX``), or over every network with ``full_bounds``,
    which computes the full bounds of every network (the reference the lazy path is tested against).

    Raises:
        CannotRun: an evaluator cannot run what the options narrowed the space to (``check_runnable``). A
            ``(name, reason)`` pair from ``make_evaluators`` (a missing framework) is reported as skipped instead.
    """
    if networks < 1 or chunk < 1 or first < 0:
        raise ValueError(f"need networks, chunk >= 1 and first >= 0, got {networks}, {chunk} and {first}")
    space = SweepSpace.of(space) if isinstance(space, SweepSpec) else space
    chunk = min(chunk, networks)
    sample_every = default_sample_every(networks) if sample_every is None else sample_every
    names = space.quantity_names()
    check_runnable(space, evaluators)
    reports, active = [], []
    for ev in evaluators:
        if isinstance(ev, tuple):  # (name, reason it cannot run)
            reports.append(BackendReport(ev[0], skipped=ev[1]))
            continue
        report = BackendReport(ev.name, stats={q: RatioStats() for q in names})
        reports.append(report)
        active.append((ev, report))
    result = SweepReport(
        space, networks, chunk, reports, max_over=EVERY_NETWORK if full_bounds else LAZY_MAX, sample_every=sample_every
    )
    started, started_wall = time.process_time(), time.perf_counter()
    for start in range(first, first + networks, chunk):
        stop = min(start + chunk, first + networks)
        clock = time.process_time()
        groups = generate_groups(space, start, stop)
        result.stage_seconds["generate"] += time.process_time() - clock
        for group in groups:
            _check_group(
                result, active, group, sample_every=sample_every, show_failures=show_failures, full_bounds=full_bounds
            )
        if progress is not None:
            progress.update(stop - start)
    result.seconds = time.process_time() - started
    result.wall_seconds = time.perf_counter() - started_wall
    result.failures = [f for report in reports for f in report.worst]
    if progress is not None:
        progress.close()
    return result


def _check_group(
    result: SweepReport, active, group: Group, *, sample_every: int, show_failures: int, full_bounds: bool = False
) -> None:
    """Check one group of one signature with every active ``(evaluator, report)``; add to ``result``.

    The full bounds are computed for the networks whose exclusion the majorants do not decide, the sampled
    ones, and, per backend, those the cheap lower bounds do not accept (``sweep_bounds``); ``full_bounds``
    computes them for every network, the reference the lazy path is tested against.
    """
    spec, start, stack, x, y = group.spec, group.start, group.stack, group.x, group.y
    clock = time.process_time()
    wide = stack if stack.dtype == np.float64 else stack.astype(np.float64)
    x64, y64 = x.astype(np.float64, copy=False), y.astype(np.float64, copy=False)
    with np.errstate(over="ignore", invalid="ignore"):  # out of range: excluded below, by beyond_range
        out, cache = forward_batched(wide, x64)
        grads, trace = backward_batched_traced(wide, cache, out - y64)
        baseline = Evaluation(loss_batched(out, y64), grads.weights, grads.biases, grads.x)
    now = time.process_time()
    result.stage_seconds["reference"] += now - clock

    clock = now
    n = group.size
    sampled_at = np.arange((-start) % sample_every, n, sample_every)
    full = _FullBounds(stack, x, y, out, cache, trace)
    with np.errstate(over="ignore", invalid="ignore"):
        if full_bounds:
            out_of_range = beyond_range(spec.dtype, out, cache, trace, baseline)  # the values; the bounds below
            need = np.arange(n)
        else:
            decided = majorant_decides(stack, x64, out, cache, trace)  # the values too: in range where decided
            in_range = decided.all()
            out_of_range = np.zeros(n, bool) if in_range else beyond_range(spec.dtype, out, cache, trace, baseline)
            need = np.union1d(sampled_at, np.flatnonzero(~decided & ~out_of_range))
    result.stage_seconds["bounds"] += time.process_time() - clock
    twice_lower: list | None = None  # 2 C, computed for the first evaluation that is not the baseline itself

    # Every backend evaluates first, so that the full bounds of every network some backend needs are computed
    # in one batched call.
    evaluated = []
    for ev, report in active:
        reason = ev.skip_reason(result.space, spec)
        if reason is not None:
            report.skipped_networks[reason] += group.size
            continue
        if hasattr(ev, "warm_up"):  # compilation, timed apart: paid once per signature and process, not per network
            report.setup_seconds += ev.warm_up(spec)
        clock = time.process_time()
        with np.errstate(over="ignore", invalid="ignore"):  # a framework's own overflow is its result, compared
            evaluation = ev.evaluate(stack, x, y, baseline)
        now = time.process_time()
        report.seconds += now - clock
        where = need
        if not full_bounds and evaluation is not baseline:  # the baseline agrees with itself exactly
            if twice_lower is None:
                clock = time.process_time()
                with np.errstate(over="ignore", invalid="ignore"):
                    twice_lower = lower_bounds(stack, out, cache, trace, 2.0)  # |a - e| <= 2 C: bounds.agree()
                result.stage_seconds["bounds"] += time.process_time() - clock
                now = time.process_time()
            rejected = _not_accepted(evaluation, baseline, twice_lower, out_of_range)
            if evaluation.errors:
                rejected = np.union1d(rejected, np.fromiter(evaluation.errors, np.intp))
            where = np.union1d(need, rejected)
        report.compare_seconds += time.process_time() - now
        evaluated.append((report, evaluation, where))

    clock = time.process_time()
    every = need if not evaluated else functools.reduce(np.union1d, (w for _, _, w in evaluated), need)
    with np.errstate(over="ignore", invalid="ignore"):
        bounds = full.take(every) if len(every) else None
    kink = np.zeros(n, bool)
    if bounds is not None:
        for mask in (*bounds.ambiguous, *bounds.exact_kinks):
            if mask.any():  # a flat test first: one test per network costs ~10x more, and is rarely needed
                kink[every] |= mask.reshape(len(every), -1).any(axis=1)
        out_of_range[every] |= bounds_beyond_range(spec.dtype, bounds)
    excluded = kink | out_of_range
    result.coverage.excluded["beyond range"] += int(out_of_range.sum())
    result.coverage.excluded["kink"] += int((kink & ~out_of_range).sum())
    result.coverage.add(spec, group.regimes[~excluded])
    sampled_kept = ~excluded[sampled_at]
    result.stage_seconds["bounds"] += time.process_time() - clock

    for report, evaluation, where in evaluated:
        clock = time.process_time()
        bounds_here = full.take(where) if len(where) else None
        comparison = _compare_at(spec, where, n, evaluation, baseline, bounds_here, excluded, sampled_at)
        failed = comparison.failed[~excluded[comparison.failed]]
        report.checked += int((~excluded).sum())
        report.excluded += int(excluded.sum())
        report.failures += len(failed)
        for q, (top, k) in comparison.worst.items():
            report.stats[q].note_worst(top, start + k)
            report.stats[q].add(comparison.sampled[q][sampled_kept])
        if len(failed):
            assert bounds_here is not None  # a failure is a compared network
            rows = _Rows(where, bounds_here)
            _keep_failures(report, group, failed, comparison, evaluation, baseline, rows, show_failures)
        report.compare_seconds += time.process_time() - clock


def _not_accepted(actual: Evaluation, expected: Evaluation, twice_lower: list, excluded: np.ndarray) -> np.ndarray:
    """Return the positions of the networks, not ``excluded``, where some ``|actual - expected| <= 2 C`` fails.

    A flat test per quantity first; only a quantity where it fails somewhere is taken network by network. NaN
    fails the test (a NaN or infinity in ``actual`` is for the full comparison to judge).
    """
    n = len(expected.loss)
    ok = None
    for a, e, c in zip(_quantities(actual), _quantities(expected), twice_lower, strict=True):
        if a is None:
            continue  # an implementation without input gradients
        with np.errstate(invalid="ignore", over="ignore"):
            d = np.subtract(a, e, dtype=np.float64)
            np.abs(d, out=d)
            within = d <= c
        if within.all():
            continue
        per_network = within.reshape(n, -1).all(axis=1)
        ok = per_network if ok is None else ok & per_network
    if ok is None:
        return np.zeros(0, np.intp)
    return np.flatnonzero(~ok & ~excluded)


def _compare_at(spec, where, n, actual, expected, bounds, excluded, sampled_at) -> Comparison:
    """Return ``compare`` of the networks at positions ``where`` (sorted; ``bounds`` are theirs), in the
    chunk's positions: failures, worst and ``over`` as if every network had been compared, the sampled ratios
    of the sampled positions ``sampled_at`` (all of which ``where`` holds)."""
    if len(where) == n:
        return compare(spec, actual, expected, bounds, inverse_bounds(bounds, excluded), sampled_at=sampled_at)
    if len(where) == 0:
        return Comparison({}, {}, np.zeros(0, np.intp), {})
    local = compare(
        spec,
        _take_evaluation(actual, where),
        _take_evaluation(expected, where),
        bounds,
        inverse_bounds(bounds, excluded[where]),
        sampled_at=np.searchsorted(where, sampled_at),
    )
    over = {}
    for name, ratios in local.over.items():
        over[name] = np.full(n, np.nan)
        over[name][where] = ratios
    worst = {name: (top, int(where[k])) for name, (top, k) in local.worst.items()}
    return Comparison(worst, local.sampled, where[local.failed], over)


def _take_evaluation(ev: Evaluation, where: np.ndarray) -> Evaluation:
    """Return the evaluation of the networks at positions ``where`` (its contract errors renumbered)."""
    take = lambda a: None if a is None else a[where]
    errors = None
    if ev.errors:
        local = {int(k): i for i, k in enumerate(where)}
        errors = {local[k]: message for k, message in ev.errors.items() if k in local}
    return Evaluation(
        ev.loss[where],
        tuple(w[where] for w in ev.weights),
        None if ev.biases is None else tuple(b[where] for b in ev.biases),
        take(ev.x),
        errors,
    )


def _take_bounds(b: BatchedBounds, where: np.ndarray) -> BatchedBounds:
    """Return the bounds of the networks at positions ``where`` of ``b``."""
    return BatchedBounds(
        b.out[where],
        b.loss[where],
        tuple(w[where] for w in b.weights),
        None if b.biases is None else tuple(v[where] for v in b.biases),
        b.x[where],
        tuple(m[where] for m in b.ambiguous),
        tuple(m[where] for m in b.exact_kinks),
    )


def _join_bounds(a: BatchedBounds, b: BatchedBounds, order: np.ndarray) -> BatchedBounds:
    """Return the bounds of ``a``'s networks then ``b``'s, reordered by ``order``."""
    join = lambda p, q: np.concatenate([p, q])[order]
    pairs = lambda p, q: tuple(join(*v) for v in zip(p, q, strict=True))
    return BatchedBounds(
        join(a.out, b.out),
        join(a.loss, b.loss),
        pairs(a.weights, b.weights),
        None if a.biases is None or b.biases is None else pairs(a.biases, b.biases),
        join(a.x, b.x),
        pairs(a.ambiguous, b.ambiguous),
        pairs(a.exact_kinks, b.exact_kinks),
    )


class _FullBounds:
    """A group's full bounds (``gradient_bounds_batched``), computed once per network, for the positions asked.

    Each network's bounds are its own, bit for bit, whatever networks they are computed with
    (tests/test_batched_tolerances.py, tests/test_sweep_bounds.py).
    """

    def __init__(self, stack: NetworkStack, x, y, out, cache: Cache, trace: BackwardTrace) -> None:
        self.stack, self.x, self.y, self.out, self.cache, self.trace = stack, x, y, out, cache, trace
        self.have = np.zeros(0, np.intp)
        self.bounds: BatchedBounds | None = None

    def take(self, where: np.ndarray) -> BatchedBounds:
        """Return the bounds of the networks at positions ``where`` (sorted, unique)."""
        missing = np.setdiff1d(where, self.have, assume_unique=True)
        if len(missing):
            new = self._compute(missing)
            if self.bounds is None:
                self.have, self.bounds = missing, new
            else:
                positions = np.concatenate([self.have, missing])
                order = np.argsort(positions, kind="stable")
                self.have, self.bounds = positions[order], _join_bounds(self.bounds, new, order)
        assert self.bounds is not None, "asked for no network"
        if len(where) == len(self.have):
            return self.bounds
        return _take_bounds(self.bounds, np.searchsorted(self.have, where))

    def _compute(self, where: np.ndarray) -> BatchedBounds:
        stack, cache, trace = self.stack, self.cache, self.trace
        if len(where) == stack.count:
            return gradient_bounds_batched(stack, self.x, self.y, forward64=(self.out, cache), backward64=trace)
        sub = NetworkStack(
            tuple(w[where] for w in stack.weights),
            None if stack.biases is None else tuple(b[where] for b in stack.biases),
            stack.activations,
        )
        cut = lambda arrays: tuple(a[where] for a in arrays)
        return gradient_bounds_batched(
            sub,
            self.x[where],
            self.y[where],
            forward64=(self.out[where], Cache(cut(cache.inputs), cut(cache.preactivations))),
            backward64=BackwardTrace(cut(trace.derivatives), cut(trace.deltas), cut(trace.d_outputs)),
        )


class _Rows(NamedTuple):
    """Full bounds of the networks at positions ``where`` of a group: what a failure's message needs."""

    where: np.ndarray
    bounds: BatchedBounds

    def row(self, k: int) -> int:
        return int(np.searchsorted(self.where, k))


def _keep_failures(report, group: Group, failed, comparison, actual, expected, bounds: _Rows, keep: int) -> None:
    """Record a group's failing networks (positions ``failed``) in ``report``: every one's index, ratio per
    quantity, signature and regime, its contract error if it raised one, and, among the worst ``keep`` so far,
    its message."""
    start, names = group.start, list(report.stats)
    rows = np.full((len(failed), len(names)), np.nan)
    for j, name in enumerate(names):
        if name in comparison.over:
            rows[:, j] = comparison.over[name][failed]
    errors = actual.errors or {}
    raised = np.array([int(k) in errors for k in failed], bool) if errors else np.zeros(len(failed), bool)
    rows[raised] = np.nan  # its values are NaN placeholders, not results: it counts as a contract error only
    report.contract_errors.update({start + int(k): errors[int(k)] for k in failed[raised]})
    report.failed_indices.append(failed + start)
    report.failed_ratios.append(rows)
    report.failed_signatures += [group.spec.label()] * len(failed)
    report.failed_regimes += [REGIMES[int(r)] for r in group.regimes[failed]]
    if keep < 1:
        return
    # Each failing network's worst ratio; a contract error ranks first. Only candidates that can enter the
    # worst `keep` are described (the message costs an elementwise pass of the network).
    worst = np.where(np.isnan(rows), -np.inf, rows).max(axis=1, initial=-np.inf)
    worst[raised] = np.inf
    floor = report.worst[-1].worst if len(report.worst) >= keep else -math.inf
    group_names = quantity_names(group.spec)
    for p in np.argsort(-worst, kind="stable")[:keep]:
        if worst[p] <= floor:
            break  # ties go to the lower index, which an earlier group or position already holds
        k = int(failed[p])
        ratios = {name: float(r) for name, r in zip(names, rows[p], strict=True) if not np.isnan(r)}
        name = names[int(np.argmax(rows[p] == worst[p]))]  # the quantity with the worst ratio: its message
        message = errors.get(k) or _message(report.name, name, group_names.index(name), k, actual, expected, bounds)
        report.worst.append(Failure(report.name, start + k, ratios, message))
    report.worst.sort(key=lambda f: (-f.worst, f.index))
    del report.worst[keep:]


def _message(backend: str, name: str, j: int, k: int, actual, expected, bounds: _Rows) -> str:
    """Return the assert helper's message for quantity ``j`` (``name``) of network ``k`` of the group."""
    a, e = (_quantities(ev)[j] for ev in (actual, expected))
    b = _quantities(bounds.bounds)[j]
    pair_bound = 2 * np.broadcast_to(b, (len(bounds.where), *e.shape[1:]))[bounds.row(k)]  # bounds.agree()
    try:
        assert_arrays_within_bound(name, a[k], e[k], pair_bound, f"{backend} against the reference")
    except AssertionError as exc:
        return str(exc)
    return ""  # not reached for a failing quantity: the comparison rejects exactly what the helper rejects


# -- command line ------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--networks", type=arguments.positive_int, default=100_000, metavar="N", help="networks per backend"
    )
    parser.add_argument(
        "--backends",
        type=arguments.backend_names,
        default=None,  # None: every built-in, a missing one skipped; named ones must run
        metavar="NAMES",
        help=f"comma-separated built-in backends (default: those of {','.join(backends.BUILTINS)} that are "
        "installed; a named one that is not installed is an error)",
    )
    parser.add_argument(
        "--impl",
        action="append",
        default=[],
        metavar="FILE",
        help="also verify this contract module (a .py file or module name), network by network; repeatable",
    )
    # The space: each option narrows one dimension; one not given is drawn (sweep_space).
    parser.add_argument(
        "--arch",
        dest="widths",
        type=arguments.architecture,
        default=None,
        metavar="N0,N1,...",
        help="widths, e.g. 3,4,10,1 (default: drawn per block of networks: depth 1-5, widths 1-16, and in "
        f"1 block in {round(1 / sweep_space.LARGE_SHARE)} the properties' large sizes)",
    )
    parser.add_argument(
        "--activation",
        dest="activations",
        type=arguments.activation_names,
        default=None,
        metavar="NAME[,NAME...]",
        help="one activation for every layer, or one per layer (default: drawn, one for every layer or mixed per "
        f"layer, from {', '.join(_vocabulary.NAMES)})",
    )
    parser.add_argument("--dtype", choices=arguments.DTYPES, default=None, help="default: both, drawn")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--batch",
        type=arguments.positive_int,
        default=None,
        help="rows of each network's input batch (default: drawn, 1-16 or 17-128 for the large sizes)",
    )
    biases = parser.add_mutually_exclusive_group()
    biases.add_argument(
        "--biases", dest="biases", action="store_const", const=True, default=None, help="networks with biases only"
    )
    biases.add_argument("--no-biases", dest="biases", action="store_const", const=False, help="networks without biases")
    parser.add_argument(
        "--regime",
        dest="regimes",
        type=regime_names,
        default=None,
        metavar="NAME[,NAME...]",
        help=f"value regimes drawn per network (default: all of {', '.join(REGIMES)}; ordinary only when --arch, "
        "--activation and --dtype are all given: the sweep of one signature as it always was)",
    )
    parser.add_argument(
        "--chunk",
        type=arguments.positive_int,
        default=DEFAULT_CHUNK,
        help=f"networks per batched call ({DEFAULT_CHUNK})",
    )
    parser.add_argument(
        "--threads",
        type=arguments.non_negative_int,
        default=DEFAULT_THREADS,
        help=f"intra-op threads for torch and XLA ({DEFAULT_THREADS}: the fastest on matrices this small, and "
        "one core's work; 0: the frameworks' own choice; XLA can only be limited to 1)",
    )
    parser.add_argument(
        "--show-failures",
        type=arguments.non_negative_int,
        default=SHOWN_FAILURES,
        metavar="K",
        help=f"print the worst K failing networks per backend with their rebuild calls ({SHOWN_FAILURES}); "
        "every failing network is in --json",
    )
    parser.add_argument(
        "--sample-every",
        type=arguments.positive_int,
        default=None,
        metavar="K",
        help=f"p50/p99 from every K-th network (default: the largest K <= {SAMPLE_EVERY_MOST} that samples "
        f"{SAMPLED_AT_LEAST:,} networks, 1 for a small sweep); the failures always come from every network",
    )
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the report as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    # Where the networks run: one slice of the sweep, the merge of slices, or every slice on a Dask cluster.
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument(
        "--shard",
        type=shard_argument,
        default=None,
        metavar="K/N",
        help="check only shard K of N (K = 1..N): the networks the whole sweep checks at those indices; "
        "write each shard's report with --json and merge them with --merge",
    )
    scale.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="FILE",
        help="merge the --json reports of the shards of one sweep into its report (nothing is computed); "
        "exit 4 if they are not exactly the shards of one sweep",
    )
    scale.add_argument(
        "--scheduler",
        type=scheduler_argument,
        default=None,
        metavar="ADDRESS",
        help="run the sweep's shards on the Dask cluster at ADDRESS, or on a local cluster of N worker "
        "processes with local:N (needs pip install 'mlp-crosscheck[dask]')",
    )


def regime_names(text: str) -> tuple[str, ...]:
    """``"large,near-exp"`` -> the regimes (``sweep_space.REGIMES``), deduplicated in order."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in REGIMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"regimes must be some of {', '.join(REGIMES)}, got {text!r}")
    return names


def shard_argument(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``: shard K of N, 1 <= K <= N."""
    k, slash, n = text.partition("/")
    try:
        index, count = int(k), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be K/N, shard K of N (e.g. 2/4), got {text!r}") from None
    if not slash or count < 1 or not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"must be K/N with N >= 1 and K one of 1..N, got {text!r}")
    return index, count


def scheduler_argument(text: str) -> str:
    """A Dask scheduler's address, or ``local:N`` (N >= 1 worker processes on this machine)."""
    if text.startswith("local:"):
        workers = text.removeprefix("local:")
        if not workers.isdigit() or int(workers) < 1:
            raise argparse.ArgumentTypeError(f"local:N needs N >= 1 worker processes, got {text!r}")
    elif not text.strip():
        raise argparse.ArgumentTypeError("needs a Dask scheduler address (tcp://HOST:PORT) or local:N")
    return text


def shard_range(index: int, count: int, networks: int) -> tuple[int, int]:
    """Return the indices ``start, stop`` of shard ``index`` of ``count`` (1-based) of a sweep of ``networks``.

    The shards partition ``0 .. networks - 1`` into ``count`` consecutive ranges whose sizes differ by at most
    one, in order; a shard is empty only when ``count > networks``.
    """
    return (index - 1) * networks // count, index * networks // count


def apply_threads(names: Sequence[str], threads: int) -> str:
    """Give the frameworks of backends ``names`` ``threads`` intra-op threads (0: leave their own choice) and
    return the setting that took effect, as the report prints it.

    Call it before anything is computed. A framework that reads its threads from the environment when first
    imported (XLA) can be given one thread only, and only if this process has not imported it yet: it is
    reported as keeping its own choice otherwise, never as limited.
    """
    if threads == 0:
        return "--threads 0: the frameworks' own choice"
    installed = [name for name in names if backends.missing_reason(name) is None]
    imported_before = {name: backends.BUILTINS[name].framework in sys.modules for name in installed}
    backends.limit_threads(installed, threads)
    limited, own = [], []
    for name in installed:
        entry = backends.BUILTINS[name]
        settable = hasattr(importlib.import_module(entry.module), "set_threads")  # limit_threads imported it
        from_environment = bool(entry.one_thread_environment) and threads == 1 and not imported_before[name]
        if settable or from_environment:
            limited.append(name)
        elif entry.one_thread_environment:
            why = "imported before the sweep could limit it" if threads == 1 else "it can be limited to 1 only"
            own.append(f"{name} its own choice ({why})")
    option = f"--threads {threads}" + (" (the default)" if threads == DEFAULT_THREADS else "")
    if not limited and not own:
        return f"{option}: nothing to set (no backend in this sweep has an intra-op thread setting)"
    text = f"{threads} intra-op thread{'s' if threads > 1 else ''} for {', '.join(limited)}" if limited else ""
    text = "; ".join(filter(None, [text, *own]))
    one_core = threads == 1 and not own
    return f"{option}: {text}" + (", so their CPU seconds are one core's work" if one_core else "")


SPACE_OPTIONS = ("seed", "widths", "activations", "dtype", "biases", "batch", "regimes")  # SweepSpace's, as options


def largest_group(space: SweepSpace, chunk: int, networks: int) -> int:
    """Return the most networks one group of the sweep can hold: what batched evaluators are sized for (JAX pads
    every group to it), the same in every shard of the sweep."""
    return min(chunk, networks) if space.fixed is not None else min(chunk, networks, space.block)


class Prepared(NamedTuple):
    """What a sweep needs before its first network: ``prepare``'s result."""

    space: SweepSpace
    evaluators: list
    threads: str  # the thread setting that took effect, as printed


def prepare(args: argparse.Namespace) -> Prepared:
    """Apply the thread setting, build the space, load the implementations and make the evaluators of the sweep
    the options ``args`` (``add_arguments``' names) ask for; the same in the command, in a shard and in a Dask
    worker (``sweep_shards``).

    The batched evaluators are sized for the whole sweep's largest group (``largest_group``), in a shard too:
    JAX compiles for that shape, and its values can differ in the last bits from one compiled shape to
    another (the float32 loss did), which a shard must not change.

    Raises:
        CannotRun: a named backend is not installed, or an implementation cannot run what the options ask (exit 4).
        ValueError, ContractError: a bad option or implementation file (exit 2); CannotRun is not one of them.
    """
    named = args.backends is not None  # named backends must run; by default a missing one is skipped
    names = args.backends if named else list(backends.BUILTINS)
    threads = apply_threads(names, args.threads)  # before a framework computes anything
    _keep_freed_memory()
    space = SweepSpace(**{option: getattr(args, option) for option in SPACE_OPTIONS})  # the same names
    impls = [backends.load(path) for path in args.impl]
    evaluators = make_evaluators(names, impls, largest_group(space, args.chunk, args.networks))
    missing = [ev for ev in evaluators if isinstance(ev, tuple)] if named else []
    if missing:
        lines = [f"{name} cannot run: {reason}; leave it out of --backends" for name, reason in missing]
        raise CannotRun("\n".join(lines))
    check_runnable(space, evaluators)
    return Prepared(space, evaluators, threads)


def sweep_range(
    prepared: Prepared, args: argparse.Namespace, start: int, stop: int, progress: tqdm | None = None
) -> SweepReport:
    """Sweep networks ``start .. stop - 1`` of a prepared sweep with the command's options (the command's run, a
    shard's, a Dask worker's)."""
    report = sweep(
        prepared.space,
        stop - start,
        prepared.evaluators,
        chunk=args.chunk,
        show_failures=args.show_failures,
        sample_every=args.sample_every,
        progress=progress,
        first=start,
    )
    report.threads = prepared.threads
    return report


def run(args: argparse.Namespace) -> int:
    # sweep_shards imports this module: it is imported here, only by the options that need it.
    if args.sample_every is None:  # from the whole sweep's size: every shard and Dask worker samples alike
        args.sample_every = default_sample_every(args.networks)
    if args.merge is not None:
        from mlp_crosscheck.commands import sweep_shards

        return sweep_shards.run_merge(args)
    k, n = args.shard or (1, 1)  # unsharded: the one shard of one
    start, stop = shard_range(k, n, args.networks)
    if start == stop:
        print(
            f"mlp-crosscheck sweep: --shard {k}/{n}: a sweep of {args.networks:,} networks has at most "
            f"{args.networks:,} shards, so shard {k} would check nothing",
            file=sys.stderr,
        )
        return 2
    if args.scheduler is not None:
        from mlp_crosscheck.commands import sweep_shards

        if (missing := sweep_shards.missing_dask()) is not None:
            print(f"mlp-crosscheck sweep: {missing}", file=sys.stderr)
            return 4
    try:
        prepared = prepare(args)
    except CannotRun as exc:
        for line in str(exc).splitlines():
            print(f"mlp-crosscheck sweep: {line}", file=sys.stderr)
        return 4
    except (ValueError, backends.ContractError) as exc:
        print(f"mlp-crosscheck sweep: {exc}", file=sys.stderr)
        return 2
    if args.scheduler is not None:
        return sweep_shards.run_on_dask(args)  # the spec and implementations checked here, before any worker
    report = sweep_range(prepared, args, start, stop, progress_bar(stop - start, enabled=not args.quiet))
    extra = None
    if args.shard is not None:
        from mlp_crosscheck.commands import sweep_shards

        extra = sweep_shards.shard_fields(report, args, k, n)  # and says in the report which shard
    return finish(report, json_path=args.json, extra_json=extra)


def finish(report: SweepReport, *, json_path: str | None, extra_json: dict | None = None) -> int:
    """Print the summary, write ``--json`` (``report.to_json()`` and ``extra_json``), return the exit code: 0 no
    failures, 1 some network failed, 4 something checked nothing."""
    print(format_report(report, json_path=json_path))
    if json_path:
        with open(json_path, "w") as f:
            json.dump({**report.to_json(), **(extra_json or {})}, f, indent=2, default=float)
    if any(b.failures for b in report.backends):
        return 1
    return 0 if report.ok else 4  # not ok without a failure: something checked nothing


def ordinal(k: int) -> str:
    """Return ``k`` as an English ordinal: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 22nd, ..."""
    suffix = "th" if k % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def format_report(report: SweepReport, json_path: str | None = None) -> str:
    """Return the human-readable summary printed at the end of a sweep (``json_path``: where --json wrote)."""
    space = report.space
    w = max(12, *(len(b.name) + 2 for b in report.backends))  # the backend column
    lines = [
        f"mlp-crosscheck sweep: {report.networks:,} networks {space.describe()} (chunk {report.chunk:,})",
        "",
        f"{'backend':<{w}}{'checked':>12}{'excluded':>10}{'failures':>10}{'networks/CPU s alone':>22}",
    ]
    for b in report.backends:
        if b.skipped:
            lines.append(f"{b.name:<{w}}skipped: {b.skipped}")
            continue
        lines.append(f"{b.name:<{w}}{b.checked:>12,}{b.excluded:>10,}{b.failures:>10,}{report.alone_rate(b):>22,.0f}")
    for b in report.backends:
        for reason, n in b.skipped_networks.items():
            lines.append(f"{b.name}: {reason} ({n:,})")
    if space.fixed is None or space.drawn("regime") or report.coverage.excluded.total():
        lines += ["", *report.coverage.lines(space)]
    lines += [
        "",
        "|backend - reference| / bound, each network's worst element (1 = the bound):",
        f"max {report.max_over}" + (" (any other is within its bound)," if report.max_over == LAZY_MAX else ","),
        f"p50 and p99 over every {ordinal(report.sample_every)} network (read off log bins: within a factor 1.12 above)"
        if report.sample_every > 1
        else "p50 and p99 over every network (read off log bins: within a factor 1.12 above)",
        f"{'backend':<{w}}{'quantity':<10}{'max':>10}  {'at index':<12}{'p50':>10}{'p99':>10}",
    ]
    for b in report.backends:
        for q, h in b.stats.items():
            if h.max >= 0:
                p50, p99 = h.quantile(0.5), h.quantile(0.99)
                lines.append(f"{b.name:<{w}}{q:<10}{h.max:>10.3g}  {h.argmax:<12}{p50:>10.3g}{p99:>10.3g}")
    total = report.seconds
    stages = ", ".join(f"{k} {v:.2f}" for k, v in report.stage_seconds.items())
    own = ", ".join(
        f"{b.name} {b.seconds:.2f} + compare {b.compare_seconds:.2f}"
        + (f" (+ {b.setup_seconds:.2f} warming up: compiling, first use of each signature)" if b.setup_seconds else "")
        for b in report.backends
        if not b.skipped
    )
    lines += [
        "",
        f"time: {total:.2f} CPU s ({report.wall_seconds:.2f} s wall), "
        f"{report.networks / max(total, 1e-12):,.0f} networks/CPU s through every backend",
        f"  shared, CPU s: {stages}",
        f"  per backend, CPU s: {own}",
        "  (CPU seconds of this process: immune to other load on the machine)",
    ]
    if report.threads:
        lines.append(f"threads: {report.threads}")
    if report.shards:
        lines.append(f"shards: {report.shards}")
    failing = any(b.failures for b in report.backends)
    if failing:
        lines += format_failures(report, json_path)
    for b in report.backends:
        if b.name in report.unchecked:
            skipped = sum(b.skipped_networks.values())
            why = (
                f"all {b.excluded:,} of its networks were excluded (a pre-activation on or within its bound of a "
                "relu/leaky_relu kink, or a value beyond the dtype's range)"
                if not skipped
                else f"it could run none of the networks drawn ({skipped:,} skipped, {b.excluded:,} excluded); "
                "narrow the sweep with --dtype or --activation to what it supports"
            )
            lines += ["", f"NOTHING CHECKED by {b.name}: {why}; it was not verified"]
    if not any(b.skipped is None for b in report.backends):
        lines += ["", "NOTHING CHECKED: no backend could run"]
    if report.ok:
        lines += ["", "no failures"]
    return "\n".join(lines)


def format_failures(report: SweepReport, json_path: str | None = None) -> list[str]:
    """Return the failure summary: per failing backend, its failing networks per quantity, per activation, dtype
    and regime (where the space draws more than one), and per signature, then its worst ones with their rebuild
    calls (the worst one's message in full).

    Its length does not grow with the number of failures: every failing network is in the JSON report.
    """
    space = report.space
    failing = [b for b in report.backends if b.failures]
    lines = [
        "",
        f"FAILURES: {sum(b.failures for b in failing):,} failing networks ("
        + ", ".join(f"{b.name} {b.failures:,} of {b.checked:,} checked" for b in failing)
        + ")",
    ]
    listed = lambda counts: ", ".join(f"{v} {n:,}" for v, n in counts.most_common())
    for b in failing:
        counts = ", ".join(f"{q} {n:,}" for q, n in b.failures_per_quantity().items() if n) or "none"
        errors = f"; contract errors (no values to compare): {len(b.contract_errors):,}" if b.contract_errors else ""
        lines += [f"  {b.name}", f"    per quantity over the bound: {counts}{errors}"]
        for dimension, note in (
            ("activation", " (a network counts once for each activation it uses)"),
            ("dtype", ""),
            ("regime", ""),
        ):
            if space.drawn(dimension):
                lines.append(f"    per {dimension}: {listed(b.failures_per(dimension))}{note}")
        if space.fixed is not None:
            spec = space.fixed
            only = f"{spec.signature()} {b.failures:,} (this sweep draws no other)"
            lines.append(f"    per architecture, activations, dtype: {only}")
        else:
            signatures = b.failures_per("signature")
            top = listed(Counter(dict(signatures.most_common(SHOWN_SIGNATURES))))
            more = len(signatures) - SHOWN_SIGNATURES
            lines.append(
                f"    per signature: {top}" + (f", and {more:,} more signatures (in the JSON)" if more > 0 else "")
            )
        if b.worst:
            lines.append(f"    the worst {len(b.worst)}, with the call that rebuilds each (the worst one's message):")
        for i, f in enumerate(b.worst):
            ranked = sorted(f.ratios.items(), key=lambda item: -item[1])
            # inf: a failure without a finite ratio (a NaN or an infinity where the reference has a number)
            over = ", ".join(f"{q} {r:.3g}x" if math.isfinite(r) else f"{q} non-finite" for q, r in ranked[:3])
            over = over or "contract error"
            over += f", {len(ranked) - 3} more quantities" if len(ranked) > 3 else ""
            lines += [f"    network {f.index}: {over}", f"      {space.rebuild_call(f.index)}"]
            if i == 0 and f.message:
                lines += ["      " + line for line in f.message.splitlines()]
    shown = sum(len(b.worst) for b in failing)
    where = f"in {json_path}" if json_path else "in the JSON report: rerun with --json PATH"
    lines.append(
        f"  every failing network ({sum(b.failures for b in failing) - shown:,} more than shown), with its ratio per "
        f"quantity, signature and regime, and the worst ones' messages: {where}"
    )
    return lines
