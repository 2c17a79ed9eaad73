"""Hypothesis strategies for networks, inputs and targets, drawn across value regimes.

Invariants:
- Hypothesis draws only a handful of integers, booleans and choices per example: the architecture, one seed
  per array family, the regime flags and a scale. Every array is then built by a NumPy ``Generator`` seeded
  with a drawn integer. Drawing each float through Hypothesis (``hypothesis.extra.numpy.arrays``) costs
  milliseconds per example, and shrinking single floats means little for a network; shrinking widths, seeds
  and regimes does (``benchmarks/bench_strategies.py`` measures both).
- Every generated value is finite and either normal or exactly zero (no NaN, no infinity, no subnormal), in
  the requested dtype: values are produced in float64, rounded once to the dtype, then subnormals flushed.
- The simplest example of ``architectures()`` (the first one Hypothesis runs, and the one it shrinks towards)
  is the seed's 3-4-10-1, so the seed architecture is among the examples of every run of every property.
- Options are keyword-only and take a value or a strategy. Values are checked when the strategy is built;
  values drawn from a strategy are checked when drawn. Both raise ``InvalidArgument`` naming the option.
- The regime switches all shrink to "off" and the scale to "unit", so a shrunk failure shows the plainest
  network that still fails; the regimes are documented at ``networks``, ``batches`` and ``targets``.
- Hypothesis draws the lowest value of a small integer range far more often than the others, so every
  choice here puts the plain case at index 0 and gives the cases that must be frequent (batch 1, batch =
  width, each activation of "mixed", the large regime of ``shapes``) their own indices or a rotation;
  ``tests/meta/test_strategies.py`` measures that each is drawn often enough.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy
from mlp_crosscheck.reference import activations as _vocabulary
from mlp_crosscheck.reference import seed as _seed
from mlp_crosscheck.reference.network import FLOAT_DTYPES, Network, forward

SEED_ARCHITECTURE: tuple[int, ...] = tuple(_seed.ARCHITECTURE)  # (3, 4, 10, 1)
MAX_BATCH = 16


class Sizes(NamedTuple):
    """A size regime: inclusive bounds on the depth (weight layers), on every width, and on the batch."""

    depth: tuple[int, int]
    width: tuple[int, int]
    batch: tuple[int, int]


# Most draws are small: cheap, and where every failure shrinks to. The large regime is where slips tied to a
# fixed size show, which no small draw can see: a ring of 4 layer caches (wrong from depth 5), buffers and
# micro-batches of 16 (wrong from batch 17). Its batch is 17..128 or, one draw in four, 1.
SMALL = Sizes(depth=(1, 4), width=(1, 16), batch=(1, MAX_BATCH))
LARGE = Sizes(depth=(5, 8), width=(1, 64), batch=(MAX_BATCH + 1, 128))
# shapes(large=True) picks the large regime at index LARGE_ODDS - 1 of a 0..LARGE_ODDS - 1 draw: 26 % of 3000
# draws with Hypothesis 6.155 (20 % with a batch over 16). Hypothesis favours index 0, the small regime, which is
# also the shrink target. With one draw in eleven (LARGE_ODDS = 8) the ci profile's derandomized 60 examples
# held no large case at all (tests/meta/test_strategies.py counts them per profile).
LARGE_ODDS = 4
MIXED = "mixed"  # activations="mixed": each layer draws its own activation from the vocabulary

# Scale regimes, as (regime, factor) choices drawn by index; "unit" fills the first places, so it is both
# frequent and the shrink target. A network's "small" factor multiplies every layer, so an identity network's
# pre-activations shrink geometrically with depth (1e-3 over 4 layers is 1e-12: far above float32's smallest
# normal, 1.2e-38). Its "large" factor multiplies one layer, so that layer's pre-activations reach about
# +-factor on unit-scale inputs -- enough to overflow a naive exp in float32 (e^89) or float64 (e^710) --
# without compounding over the depth, so loss and gradients stay far below float32's 3.4e38.
NETWORK_SCALES: tuple[tuple[str, float], ...] = (
    *(("unit", 1.0),) * 3,
    *(("small", f) for f in (1e-1, 1e-2, 1e-3)),
    *(("large", f) for f in (50.0, 300.0, 1000.0)),
)
# Inputs and targets: "integers" are small exact integers in [-8, 8], as in the seed's data.
DATA_SCALES: tuple[tuple[str, float], ...] = (
    *(("unit", 1.0),) * 3,
    *(("integers", 1.0),) * 2,
    *(("small", f) for f in (1e-1, 1e-2, 1e-3)),
    *(("large", f) for f in (10.0, 100.0)),
)

_SEED_RANGE = (0, 2**32 - 1)
_BOOLEANS = st.booleans()


def _draw_flags(draw, count: int) -> tuple[bool, ...]:
    # One integer used as a bit mask costs one draw instead of ``count``; it shrinks towards 0, all off.
    mask = draw(_ints(0, 2**count - 1))
    return tuple(bool(mask >> i & 1) for i in range(count))


@functools.cache
def _ints(lo: int, hi: int) -> SearchStrategy[int]:
    # Strategies are built once per range: building one (and validating it on first draw) costs more than
    # drawing from it, and the helpers below draw thousands of times per test.
    return st.integers(lo, hi)


# ---------------------------------------------------------------------------------------------------------
# Option checking: every option is a value (checked now) or a strategy (its draws checked when drawn).


def _option(where: str, name: str, value: Any, check: Callable[[str, Any], Any]) -> SearchStrategy:
    """Return a strategy for the checked option: ``just`` the checked value, or ``value`` mapped through the check."""
    label = f"{where}({name}=...)"
    if isinstance(value, SearchStrategy):
        return value.map(lambda v: check(label, v))
    return st.just(check(label, value))


def _positive_int(label: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgument(f"{label}: expected an integer >= 1, got {value!r}")
    return int(value)


def _dtype(label: str, value: Any) -> np.dtype:
    try:
        dtype = np.dtype(value)
    except TypeError:
        dtype = None
    if dtype not in FLOAT_DTYPES:
        raise InvalidArgument(f"{label}: expected float32 or float64 (a dtype or its name), got {value!r}")
    return dtype


def _bias_choice(label: str, value: Any) -> bool | None:
    if value is not None and not isinstance(value, (bool, np.bool_)):
        raise InvalidArgument(f"{label}: expected True, False or None (draw both), got {value!r}")
    return None if value is None else bool(value)


def _widths(label: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) < 2:
        raise InvalidArgument(f"{label}: expected a sequence of at least two widths (n_0, ..., n_L), got {value!r}")
    return tuple(_positive_int(f"{label} (each width)", w) for w in value)


def _activation_spec(label: str, value: Any) -> str | tuple[str, ...]:
    """Return a name, ``MIXED`` or a tuple of per-layer names."""
    vocabulary = ", ".join(_vocabulary.NAMES)
    if isinstance(value, str):
        if value != MIXED and value not in _vocabulary.ACTIVATIONS:
            raise InvalidArgument(f"{label}: unknown activation {value!r}; use {MIXED!r} or one of: {vocabulary}")
        return value
    if isinstance(value, Sequence) and len(value) > 0 and all(isinstance(v, str) for v in value):
        unknown = [v for v in value if v not in _vocabulary.ACTIVATIONS]
        if unknown:
            raise InvalidArgument(f"{label}: unknown activations {unknown}; the vocabulary is: {vocabulary}")
        return tuple(value)
    raise InvalidArgument(
        f"{label}: expected an activation name, {MIXED!r}, or a non-empty sequence of names (one per layer), "
        f"got {value!r}"
    )


def _activation_pool(label: str, value: Any) -> tuple[str, ...]:
    names = _activation_spec(label, value)
    if isinstance(names, str):
        raise InvalidArgument(f"{label}: expected a non-empty sequence of activation names, got {value!r}")
    return names


# ---------------------------------------------------------------------------------------------------------
# Architectures and batch sizes.


def architectures(
    *, min_depth: Any = 1, max_depth: Any = 4, min_width: Any = 1, max_width: Any = 16
) -> SearchStrategy[tuple[int, ...]]:
    """Return a strategy for architectures ``(n_0, n_1, ..., n_L)``.

    The simplest example is the seed's ``(3, 4, 10, 1)`` when the bounds allow it, so every run sees it and a
    failure that also occurs there shrinks to it. About one draw in ten is made a bottleneck on purpose (a
    hidden layer narrower than both the input and the output: ``rank(K) < min(n_0, n_L)`` for the collapsed
    map), and others are by chance.

    - min_depth, max_depth: bounds on the number of weight layers ``L`` (at least 1).
    - min_width, max_width: bounds on every width ``n_l`` (at least 1).
    """
    options = {"min_depth": min_depth, "max_depth": max_depth, "min_width": min_width, "max_width": max_width}
    checked = {k: _option("architectures", k, v, _positive_int) for k, v in options.items()}
    if not any(isinstance(v, SearchStrategy) for v in options.values()):
        _check_bounds(**options)  # fail now, not at the first draw

    return _architectures(*checked.values())


@st.composite
def _architectures(draw, *bounds: SearchStrategy[int]) -> tuple[int, ...]:
    lo_d, hi_d, lo_w, hi_w = (draw(b) for b in bounds)
    _check_bounds(lo_d, hi_d, lo_w, hi_w)
    return _draw_architecture(draw, lo_d, hi_d, lo_w, hi_w)


def _draw_architecture(draw, lo_d: int, hi_d: int, lo_w: int, hi_w: int) -> tuple[int, ...]:
    seed_allowed = lo_d <= len(SEED_ARCHITECTURE) - 1 <= hi_d and all(lo_w <= w <= hi_w for w in SEED_ARCHITECTURE)
    # 0: the seed architecture (the simplest choice); 1: a bottleneck; 2-7: independent widths.
    shape_kind = draw(_ints(0, 7))
    if shape_kind == 0 and seed_allowed:
        return SEED_ARCHITECTURE
    depth = draw(_ints(lo_d, hi_d))
    widths = [draw(_ints(lo_w, hi_w)) for _ in range(depth + 1)]
    if shape_kind == 1 and depth >= 2:
        # A bottleneck: one hidden layer strictly narrower than the input and the output, where the width
        # bounds leave room for one.
        hidden = draw(_ints(1, depth - 1))
        narrowest_end = min(widths[0], widths[-1])
        if narrowest_end > lo_w:
            widths[hidden] = draw(_ints(lo_w, narrowest_end - 1))
    return tuple(widths)


def _check_bounds(min_depth: int, max_depth: int, min_width: int, max_width: int) -> None:
    if min_depth > max_depth:
        raise InvalidArgument(f"architectures: min_depth={min_depth} is greater than max_depth={max_depth}")
    if min_width > max_width:
        raise InvalidArgument(f"architectures: min_width={min_width} is greater than max_width={max_width}")


def batch_sizes(widths: Any, *, max_batch: Any = MAX_BATCH) -> SearchStrategy[int]:
    """Return a strategy for batch sizes from 1 to ``max_batch``, often 1 or equal to one of ``widths``.

    A batch size equal to a layer width makes a transposed matrix the right shape, so a transpose bug runs
    without error there; a batch of one hides a sum over the wrong axis. About a fifth of the draws are 1,
    over a third equal a width of at least 2 (when one is at most ``max_batch``), the rest are uniform in
    ``2..max_batch`` and shrink towards 2.

    - widths: the architecture ``(n_0, ..., n_L)``, or a strategy for one.
    - max_batch: the largest batch size (at least 1).
    """
    widths_st = _option("batch_sizes", "widths", widths, _widths)
    max_st = _option("batch_sizes", "max_batch", max_batch, _positive_int)

    return _batch_sizes(widths_st, max_st)


@st.composite
def _batch_sizes(draw, widths_st: SearchStrategy, max_st: SearchStrategy) -> int:
    return _draw_batch_size(draw, draw(widths_st), draw(max_st))


def _draw_batch_size(draw, widths: tuple[int, ...], max_batch: int) -> int:
    # Hypothesis draws the lowest value of a small range far more often than the others (about 40 % for
    # 0..3), so index 0 is the plain uniform branch, and batch 1 and the width matches get their own indices.
    kind = draw(_ints(0, 3))
    matching = sorted({w for w in widths if 2 <= w <= max_batch})
    if kind == 3 or max_batch == 1:
        return 1
    if kind in (1, 2) and matching:
        return matching[draw(_ints(0, len(matching) - 1))]
    return draw(_ints(2, max_batch))


def shapes(*, large: bool = True) -> SearchStrategy[tuple[tuple[int, ...], int]]:
    """Return a strategy for ``(architecture, batch size)`` pairs, from the small regime and, if ``large``, the large.

    Small (``SMALL``): ``architectures()`` and ``batch_sizes`` as documented there. Large (``LARGE``, about
    one draw in four): depth 5 to 8, widths 1 to 64, batch 17 to 128 or (a quarter of them) 1. A failure that
    needs a large shape shrinks towards depth 5, width 1 and batch 17; one that does not, to the small regime.

    - large: also draw from the large regime (a bool).
    """
    if not isinstance(large, bool):
        raise InvalidArgument(f"shapes(large=...): expected True or False, got {large!r}")
    return _shapes(large)


@st.composite
def _shapes(draw, large: bool) -> tuple[tuple[int, ...], int]:
    return _draw_shape(draw, large)


def _draw_shape(draw, large: bool) -> tuple[tuple[int, ...], int]:
    if large and draw(_ints(0, LARGE_ODDS - 1)) == LARGE_ODDS - 1:
        widths = _draw_architecture(draw, *LARGE.depth, *LARGE.width)
        batch = 1 if draw(_ints(0, 3)) == 3 else draw(_ints(*LARGE.batch))
        return widths, batch
    widths = _draw_architecture(draw, *SMALL.depth, *SMALL.width)
    return widths, _draw_batch_size(draw, widths, SMALL.batch[1])


# ---------------------------------------------------------------------------------------------------------
# Networks.


class _NetworkRegimes(NamedTuple):
    scale: str  # a regime of NETWORK_SCALES
    factor: float  # the small factor, the large target, or 1.0
    zeros: bool  # exact zeros scattered in every array, sometimes a whole unit's incoming weights
    repeats: bool  # in every array, one of its values repeated with both signs
    duplicate_units: bool  # a unit whose incoming weights and bias copy another's
    flipped_units: bool  # a unit whose incoming weights and bias are another's negated


def networks(
    *, activations: Any, dtype: Any, widths: Any = None, biases: Any = None, mixed_from: Any = _vocabulary.NAMES
) -> SearchStrategy[Network]:
    """Return a strategy for ``reference.network.Network``s whose values span several regimes.

    Weights start as ``N(0, 1) / sqrt(n_in)`` times a per-layer gain in ``[e^-0.5, e^0.5]``, biases as
    ``N(0, 0.25)``; then, each switched on or off by Hypothesis:

    * scale: ``unit``; ``small`` (every layer times 1e-1, 1e-2 or 1e-3); ``large`` (one layer times 50, 300
      or 1000, so that its pre-activations reach about that size: overflow safety);
    * zeros: exact zeros in every array (at least one each), sometimes all the incoming weights of a unit;
    * repeats: in every array, one of its values repeated with both signs (ties, exact cancellations);
    * duplicate units and sign-flipped units (``W[:, i] = +-W[:, j]``, ``b[i] = +-b[j]``), half of the time
      with cancelling outgoing weights (``W'[i] = -W'[j]``): with relu a flipped pair then adds
      ``relu(z) - relu(-z) = z``, a linear unit.

    Zero-mean weights put relu units on both sides of the kink, and exact zeros put some exactly on it.

    - activations: an activation name (every layer), ``"mixed"`` (each layer draws its own), a sequence of
      names (one per layer), or a strategy for any of these.
    - dtype: ``float32`` or ``float64`` (a dtype, type or name), or a strategy for one.
    - widths: the architecture, or a strategy for one; default ``architectures()`` of the depth that a
      sequence of activations implies.
    - biases: True (with biases), False (without) or None (draw either), or a strategy for one.
    - mixed_from: the names that ``"mixed"`` draws from (default: the whole vocabulary), e.g. those that an
      implementation supports, or a strategy for such a sequence.
    """
    return _networks(_check_network_options("networks", activations, dtype, widths, biases, mixed_from, False))


def well_scaled_networks(
    *, activations: Any, dtype: Any, widths: Any = None, biases: Any = None, mixed_from: Any = _vocabulary.NAMES
) -> SearchStrategy[Network]:
    """Return a strategy for networks of moderate magnitudes, for claims such as finite differences.

    Every weight lies in ``[-2, 2] / sqrt(n_in)`` (a clipped ``N(0, 1)``), every bias in ``[-0.5, 0.5]``; so
    on inputs in ``[-1, 1]`` (``well_scaled_batches``) a pre-activation is typically of order 1 and at most
    ``2 sqrt(n_in) max|a| + 0.5``. The zeros, repeats, duplicate and flipped unit regimes of ``networks`` still
    apply (they change no magnitude); the small and large scales do not. Exact zeros can put a relu unit
    exactly at its kink: a finite-difference claim must treat kinks itself.

    - activations, dtype, widths, biases, mixed_from: as for ``networks``.
    """
    where = "well_scaled_networks"
    return _networks(_check_network_options(where, activations, dtype, widths, biases, mixed_from, True))


class _NetworkOptions(NamedTuple):
    where: str
    widths: SearchStrategy[tuple[int, ...]]
    activations: SearchStrategy[str | tuple[str, ...]]
    dtype: SearchStrategy[np.dtype]
    biases: SearchStrategy[bool | None]
    well_scaled: bool
    mixed_from: SearchStrategy[tuple[str, ...]]


def _check_network_options(
    where: str, activations, dtype, widths, biases, mixed_from, well_scaled: bool
) -> _NetworkOptions:
    names_st = _option(where, "activations", activations, _activation_spec)
    dtype_st = _option(where, "dtype", dtype, _dtype)
    biases_st = _option(where, "biases", biases, _bias_choice)
    if widths is None:
        fixed_depth = None if isinstance(activations, (str, SearchStrategy)) else len(activations)
        widths = architectures() if fixed_depth is None else architectures(min_depth=fixed_depth, max_depth=fixed_depth)
    widths_st = _option(where, "widths", widths, _widths)
    if not isinstance(widths, SearchStrategy) and not isinstance(activations, (str, SearchStrategy)):
        _check_depth(where, tuple(widths), tuple(activations))
    mixed_st = _option(where, "mixed_from", mixed_from, _activation_pool)
    return _NetworkOptions(where, widths_st, names_st, dtype_st, biases_st, well_scaled, mixed_st)


@st.composite
def _networks(draw, options: _NetworkOptions) -> Network:
    return _draw_network(draw, options)


def _draw_network(draw, options: _NetworkOptions) -> Network:
    widths = draw(options.widths)
    spec = draw(options.activations)
    if isinstance(spec, tuple):
        _check_depth(options.where, widths, spec)
        names = spec
    elif spec == MIXED:
        # Hypothesis draws index 0 of a small range about 40 % of the time: alone, that would make a third of
        # all layers identity. A per-network rotation of the vocabulary spreads that weight over every name.
        pool = draw(options.mixed_from)
        rotation = draw(_ints(0, len(pool) - 1))
        names = tuple(pool[(rotation + draw(_ints(0, len(pool) - 1))) % len(pool)] for _ in widths[1:])
    else:
        names = (spec,) * (len(widths) - 1)
    dtype = draw(options.dtype)
    has_biases = draw(options.biases)
    if has_biases is None:
        has_biases = draw(_BOOLEANS)
    scale = ("unit", 1.0) if options.well_scaled else NETWORK_SCALES[draw(_ints(0, len(NETWORK_SCALES) - 1))]
    regimes = _NetworkRegimes(*scale, *_draw_flags(draw, 4))
    seed = draw(_ints(*_SEED_RANGE))
    return _build_network(seed, widths, names, has_biases, regimes, dtype, well_scaled=options.well_scaled)


def _check_depth(where: str, widths: tuple[int, ...], names: tuple[str, ...]) -> None:
    if len(names) != len(widths) - 1:
        raise InvalidArgument(
            f"{where}: {len(names)} activation names {names} for the {len(widths) - 1} layers of {widths}"
        )


def _build_network(seed, widths, names, has_biases, regimes: _NetworkRegimes, dtype, *, well_scaled) -> Network:
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for n_in, n_out in itertools.pairwise(widths):
        if well_scaled:
            weights.append(np.clip(rng.standard_normal((n_in, n_out)), -2.0, 2.0) / math.sqrt(n_in))
            biases.append(rng.uniform(-0.5, 0.5, n_out))
        else:
            # 1/sqrt(n_in) keeps a unit-scale input's pre-activations of order 1 through the layers.
            gain = math.exp(rng.uniform(-0.5, 0.5))
            weights.append(rng.standard_normal((n_in, n_out)) * (gain / math.sqrt(n_in)))
            biases.append(rng.standard_normal(n_out) * 0.5)
    if regimes.scale == "small":
        weights = [w * regimes.factor for w in weights]
        biases = [b * regimes.factor for b in biases]
    elif regimes.scale == "large":
        layer = rng.integers(len(weights))
        weights[layer] = weights[layer] * regimes.factor
        biases[layer] = biases[layer] * regimes.factor
    arrays = weights + biases if has_biases else weights
    if regimes.zeros:
        _scatter_zeros(rng, arrays)
        if rng.random() < 0.5:  # a unit with no input: its pre-activation is its bias, constant
            layer = rng.integers(len(weights))
            weights[layer][:, rng.integers(weights[layer].shape[1])] = 0.0
    if regimes.repeats:
        _scatter_repeats(rng, arrays)
    # Unit-level structure last, so that no later transform breaks its exactness.
    if regimes.duplicate_units:
        _pair_units(rng, weights, biases if has_biases else None, sign=1.0)
    if regimes.flipped_units:
        _pair_units(rng, weights, biases if has_biases else None, sign=-1.0)
    return Network(
        tuple(_finish(w, dtype) for w in weights),
        tuple(_finish(b, dtype) for b in biases) if has_biases else None,
        names,
    )


def _scatter_zeros(rng: np.random.Generator, arrays: list[np.ndarray]) -> None:
    """Set a random fraction (10-50 %, at least one entry) of each array to exactly zero, in place."""
    for a in arrays:
        mask = rng.random(a.shape) < rng.uniform(0.1, 0.5)
        mask.flat[rng.integers(a.size)] = True
        a[mask] = 0.0


def _scatter_repeats(rng: np.random.Generator, arrays: list[np.ndarray]) -> None:
    """Copy one entry of each array, with random signs, over 10-50 % of that array's entries, in place.

    The value comes from the same array, so a layer scaled up by the large regime does not spread its
    magnitude to the other layers (which would compound over the depth).
    """
    for a in arrays:
        value = a.flat[rng.integers(a.size)]
        mask = rng.random(a.shape) < rng.uniform(0.1, 0.5)
        mask.flat[rng.integers(a.size)] = True
        a[mask] = value * rng.choice((-1.0, 1.0), size=int(mask.sum()))


def _pair_units(rng, weights: list[np.ndarray], biases: list[np.ndarray] | None, *, sign: float) -> None:
    """Make one unit's incoming weights and bias ``sign`` times another's in the same layer, in place.

    Half of the time, when the layer is hidden, the copy's outgoing weights become the negated original's:
    a duplicated pair then cancels exactly, and a flipped relu pair adds ``relu(z) - relu(-z) = z``.
    """
    layers = [layer for layer, w in enumerate(weights) if w.shape[1] >= 2]
    if not layers:
        return
    layer = layers[rng.integers(len(layers))]
    i, j = rng.choice(weights[layer].shape[1], size=2, replace=False)
    weights[layer][:, i] = sign * weights[layer][:, j]
    if biases is not None:
        biases[layer][i] = sign * biases[layer][j]
    if layer + 1 < len(weights) and rng.random() < 0.5:
        weights[layer + 1][i, :] = -weights[layer + 1][j, :]


def _finish(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round ``a`` once to ``dtype`` and flush subnormals to zero (no strategy produces a subnormal)."""
    a = a.astype(dtype)
    a[np.abs(a) < np.finfo(dtype).tiny] = 0
    return a


# ---------------------------------------------------------------------------------------------------------
# Inputs and targets.


class _DataRegimes(NamedTuple):
    scale: str  # a regime of DATA_SCALES
    factor: float
    zeros: bool  # exact zeros, sometimes a whole sample (row) or feature (column)
    repeats: bool  # one value repeated with both signs
    duplicate_rows: bool  # a sample repeated exactly
    flipped_rows: bool  # a sample that is another negated
    dependent_columns: bool  # a column that is the sum of two others, as the seed's x (rank-deficient)


def _draw_data_regimes(draw, *, well_scaled: bool) -> _DataRegimes:
    scale = ("unit", 1.0) if well_scaled else DATA_SCALES[draw(_ints(0, len(DATA_SCALES) - 1))]
    return _DataRegimes(*scale, *_draw_flags(draw, 5))


def batches(net: Network, *, batch: Any = None) -> SearchStrategy[np.ndarray]:
    """Return a strategy for inputs ``x`` of shape ``(batch, n_0)`` in ``net.dtype``, across value regimes.

    Entries start as ``N(0, 1)``; then, each switched on or off by Hypothesis: a scale (``unit``, small exact
    ``integers`` in [-8, 8] as in the seed's data, ``small`` = times 1e-1..1e-3, ``large`` = times 10 or 100),
    exact zeros (sometimes a whole sample or feature), one value repeated with both signs, a duplicated
    sample, a sample that is another's negation, and a column that is the sum of two others (rank-deficient
    inputs, as the seed's ``x``).

    - net: the network the inputs are for (its first width and its dtype).
    - batch: the batch size, or a strategy for one; default ``batch_sizes(net.widths)``.
    """
    return _batches(net, _check_batch_options("batches", net, batch), False)


def well_scaled_batches(net: Network, *, batch: Any = None) -> SearchStrategy[np.ndarray]:
    """Return a strategy for inputs uniform in ``[-1, 1]``, for use with ``well_scaled_networks``.

    The zeros, repeats, duplicated and flipped samples of ``batches`` still apply, and the dependent column
    is half the sum of two others.

    - net, batch: as for ``batches``.
    """
    return _batches(net, _check_batch_options("well_scaled_batches", net, batch), True)


def _check_batch_options(where: str, net: Any, batch: Any) -> SearchStrategy[int]:
    _check_network(where, net)
    return _option(where, "batch", batch_sizes(net.widths) if batch is None else batch, _positive_int)


@st.composite
def _batches(draw, net: Network, batch_st: SearchStrategy[int], well_scaled: bool) -> np.ndarray:
    return _draw_x(draw, net, draw(batch_st), well_scaled=well_scaled)


def _draw_x(draw, net: Network, size: int, *, well_scaled: bool) -> np.ndarray:
    regimes = _draw_data_regimes(draw, well_scaled=well_scaled)
    rng = np.random.default_rng(draw(_ints(*_SEED_RANGE)))
    shape = (size, net.widths[0])
    x = rng.uniform(-1.0, 1.0, shape) if well_scaled else _scaled_normal(rng, shape, regimes.scale, regimes.factor)
    if regimes.zeros:
        _scatter_zeros(rng, [x])
        if rng.random() < 0.5:  # a zero sample or a zero feature
            if rng.random() < 0.5:
                x[rng.integers(shape[0]), :] = 0.0
            else:
                x[:, rng.integers(shape[1])] = 0.0
    if regimes.repeats:
        _scatter_repeats(rng, [x])
    if regimes.dependent_columns and shape[1] >= 3:
        i, j, k = rng.choice(shape[1], size=3, replace=False)
        # Rounded once; exact for the integer scale. Halved when well scaled to stay in [-1, 1] (exactly: a
        # halving is exact for normal numbers, and the sum is rounded before it).
        x[:, k] = (x[:, i] + x[:, j]) * (0.5 if well_scaled else 1.0)
    if size >= 2 and regimes.duplicate_rows:
        i, j = rng.choice(size, size=2, replace=False)
        x[i] = x[j]
    if size >= 2 and regimes.flipped_rows:
        i, j = rng.choice(size, size=2, replace=False)
        x[i] = -x[j]
    return _finish(x, net.dtype)


def _scaled_normal(rng: np.random.Generator, shape: tuple[int, ...], scale: str, factor: float) -> np.ndarray:
    if scale == "integers":
        return rng.integers(-8, 9, shape).astype(np.float64)
    return rng.standard_normal(shape) * factor


TARGET_RELATIONS = ("independent", "output", "near_output")


def targets(net: Network, batch: Any, *, x: np.ndarray | None = None) -> SearchStrategy[np.ndarray]:
    """Return a strategy for targets ``y`` of shape ``(batch, n_L)`` in ``net.dtype``, across value regimes.

    The scale, zeros and repeats regimes of ``batches`` apply (``cases(well_scaled=True)`` keeps the unit
    scale); given the inputs ``x``, ``y`` may also be the
    network's own output (zero residual: every gradient is rounding noise) or that output perturbed by a
    relative 1e-3 (a small residual computed by cancellation).

    - net: the network the targets are for (its last width and its dtype).
    - batch: the batch size, or a strategy for one.
    - x: the inputs, of shape ``(batch, n_0)`` in ``net.dtype``; enables the output-based regimes.
    """
    _check_network("targets", net)
    batch_st = _option("targets", "batch", batch, _positive_int)
    if x is not None:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != net.widths[0] or x.dtype != net.dtype:
            raise InvalidArgument(
                f"targets(x=...): expected shape (batch, {net.widths[0]}) and dtype {net.dtype}, "
                f"got {x.shape} {x.dtype}"
            )
        if not isinstance(batch, SearchStrategy) and batch != x.shape[0]:
            raise InvalidArgument(f"targets: batch={batch!r} but x has {x.shape[0]} rows")
    return _targets(net, batch_st, x)


@st.composite
def _targets(draw, net: Network, batch_st: SearchStrategy[int], x: np.ndarray | None) -> np.ndarray:
    size = draw(batch_st)
    if x is not None and x.shape[0] != size:
        raise InvalidArgument(f"targets: batch={size} but x has {x.shape[0]} rows")
    return _draw_y(draw, net, size, x)


def _draw_y(draw, net: Network, size: int, x: np.ndarray | None, *, well_scaled: bool = False) -> np.ndarray:
    relation = "independent" if x is None else TARGET_RELATIONS[draw(_ints(0, len(TARGET_RELATIONS) - 1))]
    shape = (size, net.widths[-1])
    if x is not None and relation == "output":
        return _finish(forward(net, x)[0], net.dtype)
    if x is not None and relation == "near_output":
        rng = np.random.default_rng(draw(_ints(*_SEED_RANGE)))
        y = forward(net, x)[0].astype(np.float64)
        return _finish(y * (1.0 + 1e-3 * rng.standard_normal(shape)) + 1e-3 * rng.standard_normal(shape), net.dtype)
    scale, factor = ("unit", 1.0) if well_scaled else DATA_SCALES[draw(_ints(0, len(DATA_SCALES) - 1))]
    zeros, repeats = _draw_flags(draw, 2)
    rng = np.random.default_rng(draw(_ints(*_SEED_RANGE)))
    y = _scaled_normal(rng, shape, scale, factor)
    if zeros:
        _scatter_zeros(rng, [y])
    if repeats:
        _scatter_repeats(rng, [y])
    return _finish(y, net.dtype)


def _check_network(where: str, net: Any) -> None:
    if not isinstance(net, Network):
        raise InvalidArgument(f"{where}: net must be a reference.network.Network, got {type(net).__name__}")


# ---------------------------------------------------------------------------------------------------------
# Whole cases, and printing them as code.


class Case(NamedTuple):
    """A network, its inputs and its targets; its repr is Python that rebuilds it exactly."""

    net: Network
    x: np.ndarray
    y: np.ndarray

    def __repr__(self) -> str:
        def indented(code: str) -> str:
            return code.replace("\n", "\n    ")

        return (
            f"Case(\n    net={indented(_network_expression(self.net))},\n"
            f"    x={indented(array_as_code(self.x))},\n"
            f"    y={indented(array_as_code(self.y))},\n)"
        )

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # used by Hypothesis's falsifying-example printer
        # One line: the failure's "Reproduce with:" note already holds the code, and printing it twice would
        # double the length of every failure report.
        net = self.net
        printer.text(
            f"Case(widths={net.widths}, activations={net.activations}, {net.dtype}, "
            f"biases={'yes' if net.biases is not None else 'no'}, batch={self.x.shape[0]})"
        )


def cases(
    *,
    activations: Any,
    dtype: Any,
    biases: Any = None,
    widths: Any = None,
    batch: Any = None,
    well_scaled: bool = False,
    mixed_from: Any = _vocabulary.NAMES,
    large: bool = False,
) -> SearchStrategy[Case]:
    """Return a strategy for ``Case(net, x, y)``: a network, a batch of inputs and matching targets.

    Drawn in the order architecture, network, batch size, inputs, targets, so that shrinking works on the
    architecture first. The targets may be the network's own output (see ``targets``).

    - activations, dtype, biases, widths, mixed_from: as for ``networks``.
    - batch: the batch size, or a strategy for one; default ``batch_sizes`` of the drawn architecture.
    - well_scaled: draw from ``well_scaled_networks`` and ``well_scaled_batches`` instead.
    - large: draw the architecture and the batch size from ``shapes(large=True)``, so that some cases are
      large (depth up to 8, widths up to 64, batch up to 128); not with ``widths``, ``batch`` or a sequence
      of activations, which fix the shape or the depth.
    """
    for name, flag in (("well_scaled", well_scaled), ("large", large)):
        if not isinstance(flag, bool):
            raise InvalidArgument(f"cases({name}=...): expected True or False, got {flag!r}")
    if large and (widths is not None or batch is not None or not isinstance(activations, (str, SearchStrategy))):
        raise InvalidArgument("cases(large=True) draws the shape: it takes no widths, batch or sequence of activations")
    options = _check_network_options("cases", activations, dtype, widths, biases, mixed_from, well_scaled)
    batch_st = None if batch is None else _option("cases", "batch", batch, _positive_int)
    return _cases(options, batch_st, large)


@st.composite
def _cases(draw, options: _NetworkOptions, batch_st: SearchStrategy[int] | None, large: bool = False) -> Case:
    if large:
        widths, size = _draw_shape(draw, large=True)
        net = _draw_network(draw, options._replace(widths=st.just(widths)))
    else:
        net = _draw_network(draw, options)
        size = _draw_batch_size(draw, net.widths, MAX_BATCH) if batch_st is None else draw(batch_st)
    x = _draw_x(draw, net, size, well_scaled=options.well_scaled)
    y = _draw_y(draw, net, size, x, well_scaled=options.well_scaled)
    return Case(net, x, y)


def _float_literal(value: float, dtype: np.dtype) -> str:
    """Return a literal that ``np.array([...], dtype)`` turns back into exactly ``value``."""
    if math.isnan(value):
        return "np.nan"  # the payload is not kept
    if math.isinf(value):
        return "np.inf" if value > 0 else "-np.inf"
    if dtype == np.float32:
        # The shortest float32 repr reads better; it goes through a float64 on the way into the array, so
        # keep it only when that double rounding lands on the same float32 (otherwise the exact float64 repr).
        short = str(np.float32(value))
        if np.float32(float(short)).tobytes() == np.float32(value).tobytes():
            return short
    return repr(float(value))


def array_as_code(a: np.ndarray, width: int = 100) -> str:
    """Return ``np.array(...)`` source that rebuilds the float array ``a`` bit for bit (NaN payloads aside).

    Short arrays take one line; longer ones pack as many rows per line as fit in ``width`` characters, so
    that a failure's reproduction (a column of 16 weights, say) stays a few lines long.
    """
    a = np.asarray(a)
    dtype_name = f"np.{a.dtype.name}"
    if a.size == 0 or a.ndim == 0:
        return f"np.array({a.tolist()!r}, dtype={dtype_name}).reshape({a.shape})"

    def nested(sub: np.ndarray, indent: str) -> str:
        if sub.ndim == 1:
            return "[" + ", ".join(_float_literal(float(v), a.dtype) for v in sub) + "]"
        inner = indent + " "
        lines = [""]
        for part in (nested(s, inner) for s in sub):
            if lines[-1] and ("\n" in part or len(inner) + len(lines[-1]) + len(part) + 2 > width):
                lines.append("")
            lines[-1] += (", " if lines[-1] else "") + part
        return "[" + (",\n" + inner).join(lines) + "]"

    one_line = f"np.array({nested(a, ' ' * 9)}, dtype={dtype_name})"
    if "\n" not in one_line and len(one_line) <= width:
        return one_line
    return f"np.array(\n    {nested(a, '    ')},\n    dtype={dtype_name},\n)"


def _network_expression(net: Network) -> str:
    def arrays(items) -> str:
        body = "".join("\n        " + array_as_code(a).replace("\n", "\n        ") + "," for a in items)
        return "(" + body + "\n    )"

    return (
        "Network(\n    weights="
        + arrays(net.weights)
        + ",\n    biases="
        + ("None" if net.biases is None else arrays(net.biases))
        + f",\n    activations={tuple(net.activations)!r},\n)"
    )


def network_as_code(net: Network, x: np.ndarray | None = None, y: np.ndarray | None = None) -> str:
    """Return Python source that rebuilds ``net`` (and ``x``, ``y`` when given) exactly, to attach to a failure.

    The source imports what it needs and assigns ``net``, ``x`` and ``y``; every float is written so that it
    reads back bit for bit (``repr`` of the float64, or the shortest float32 form that reads back exactly).
    """
    lines = [
        "import numpy as np",
        "from mlp_crosscheck.reference.network import Network",
        "",
        "net = " + _network_expression(net),
    ]
    if x is not None:
        lines.append("x = " + array_as_code(x))
    if y is not None:
        lines.append("y = " + array_as_code(y))
    return "\n".join(lines) + "\n"
