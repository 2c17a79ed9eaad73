"""What ``mlp-crosscheck sweep`` checks: the space of networks it draws, one network per index.

Invariants:
- Reproducible by index: network ``i`` depends on ``(seed, i)`` and the space's options only -- never on
  ``--chunk``, ``--networks``, a shard, a Dask worker, the backends or how networks are grouped -- and
  ``rebuild(seed, i, **options)`` recreates it.
- Indices are cut into blocks of ``space.block`` networks: ``SIGNATURE_BLOCK`` when the space draws the signature,
  ``GENERATION_BLOCK`` when its options fix it. Every block has one signature, from the space's ``palette`` (its
  signatures, drawn from the seed alone). Block ``k`` has two streams. ``default_rng([seed, k, 1])`` draws, in
  this order, whether the block is of the large sizes (``LARGE_SHARE``), its palette entry, then per network of
  the block its regime, a factor ``u`` in [0, 1) and the layer a regime scales. ``default_rng([seed, k])`` draws
  the values as ``generate`` always has: ``W_1 .. W_L``, ``b_1 .. b_L``, ``x``, ``y``, each one call
  ``rng.random((block, *shape))`` mapped to ``a (2 u - 1)`` (``_families``), in float64, then scaled by the
  network's regime (``REGIMES``) and rounded once to the dtype.
- So every network of a block shares one signature: a block, or its part inside a range, is one batched group
  (``generate_groups``), and a range cut anywhere yields the same networks.
- A space whose options fix the signature and the regime to ``ordinary`` is a ``SweepSpec``, bit for bit: its
  networks are ``generate(spec, ...)``'s, as every sweep's were before the space was drawn (and as ``bench``'s are).
  ``SweepSpace`` gives exactly that when ``--arch``, ``--activation`` and ``--dtype`` are all given and nothing
  else (biases on and batch 4 unless given).
- The regimes change magnitudes only, never which values are finite: the sweep still excludes, and counts, any
  network whose reference values or bounds leave the range the bounds assume (``sweep.beyond_range``).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass, fields
from typing import Any, NamedTuple, cast

import numpy as np

from mlp_crosscheck.reference import activations as _vocabulary
from mlp_crosscheck.reference.batched import NetworkStack
from mlp_crosscheck.reference.network import Network

GENERATION_BLOCK = 1024  # networks per block when the options fix the signature (the values' blocks of old)
SIGNATURE_BLOCK = 256  # networks per block, and per batched group, when the signature is drawn
DEFAULT_WIDTHS = (3, 4, 10, 1)
DEFAULT_ACTIVATION = "tanh"
DEFAULT_BATCH = 4  # the batch of a space whose options fix the architecture, activations and dtype
DTYPES = ("float32", "float64")

# Size classes, as properties/strategies.py's SMALL and LARGE: depth and batch inclusive, widths 1..max.
SMALL_DEPTH, SMALL_WIDTH, SMALL_BATCH = (1, 5), 16, (1, 16)
LARGE_DEPTH, LARGE_WIDTH, LARGE_BATCH = (5, 8), 64, (17, 128)
LARGE_SHARE = 1 / 32  # of the blocks: a large network costs ~50-100 small ones (docs/speed.md, session 7)
# A space holds PALETTE signatures, PALETTE_LARGE of them of the large sizes; each block picks one. A bounded number
# of signatures per run bounds JAX's compilations (one per signature, ~0.6 s each) and lets one signature's
# networks fill many blocks; another seed draws another palette.
PALETTE, PALETTE_LARGE = 64, 8
UNIFORM_SHARE = 1 / 3  # of the blocks with drawn activations: one activation for every layer, else one per layer

# Value regimes, each applied to a network's unit-scale draw in float64 (u is the network's factor draw):
# - ordinary: as drawn (weights of variance 1 / fan_in; biases, inputs and targets of variance 1).
# - small: every layer's weights and biases times 10^(-1 - 2u), in [1e-3, 1e-1] (strategies' small scale).
# - large: one layer's weights and biases times 10^(1 + u), in [10, 100]: saturated tanh and sigmoid, softplus and
#   gelu far out on their tails (softplus past 20, where torch's default threshold switches to z).
# - near-exp: one layer times T/3 * 2^(2u - 1) with T = ln(largest of the dtype) (88.7, 709.8): a unit-scale
#   layer's largest |Z| is about 3, so its pre-activations reach about T/2 .. 2T, both sides of where exp
#   overflows.
# - near-underflow: inputs, targets and every bias times sqrt(tiny) 2^(8u - 4): the loss and the gradients, products
#   of two such values, lie around tiny (2^-8 .. 2^8 times it), where results turn subnormal or are flushed.
REGIMES = ("ordinary", "small", "large", "near-exp", "near-underflow")
# Why a network is excluded, not compared (the sweep's invariants): on or near a relu/leaky_relu kink, or a value
# beyond the range the bounds assume.
EXCLUSIONS = ("kink", "beyond range")


# -- one signature --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepSpec:
    """One signature of networks -- architecture, activations, dtype, batch, biases -- with a seed.

    ``generate(spec, start, stop)`` draws its networks (the ordinary regime): the sweep's space when its options fix
    every one of these, and the groups of a drawn space.
    """

    seed: int = 7
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    activations: tuple[str, ...] = (DEFAULT_ACTIVATION,) * (len(DEFAULT_WIDTHS) - 1)
    dtype: str = "float64"
    batch: int = DEFAULT_BATCH
    biases: bool = True

    def __post_init__(self) -> None:
        widths = tuple(int(n) for n in self.widths)
        names = _per_layer(self.activations, len(widths) - 1)
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "activations", names)
        object.__setattr__(self, "dtype", np.dtype(self.dtype).name)
        _check_widths(widths)
        _check_activations(names, len(widths) - 1)
        _check_dtype(self.dtype)
        _check_batch(self.batch)
        _check_seed(self.seed)

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    def signature(self) -> str:
        """Return the architecture, activations and dtype, e.g. ``3-4-10-1 tanh float64``."""
        acts = self.activations[0] if len(set(self.activations)) == 1 else ",".join(self.activations)
        return f"{'-'.join(map(str, self.widths))} {acts} {self.dtype}"

    def label(self) -> str:
        """Return ``signature()``, with ``no biases`` and the batch: what one batched group shares."""
        return f"{self.signature()}{'' if self.biases else ' no biases'} batch {self.batch}"

    def describe(self) -> str:
        biases = "biases" if self.biases else "no biases"
        return f"{self.signature()}, {biases}, batch {self.batch}, seed {self.seed}"

    def rebuild_call(self, index: int) -> str:
        """Return the Python call that rebuilds network ``index`` of this sweep."""
        return (
            f"mlp_crosscheck.commands.sweep.rebuild(seed={self.seed}, index={index}, widths={self.widths}, "
            f"activations={self.activations}, dtype={self.dtype!r}, batch={self.batch}, biases={self.biases})"
        )


def _per_layer(activations, depth: int) -> tuple[str, ...]:
    names = (activations,) if isinstance(activations, str) else tuple(activations)
    return names * depth if len(names) == 1 else names  # one name means: every layer


def _check_widths(widths: tuple[int, ...]) -> None:
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"widths must be at least two positive sizes (n_0, ..., n_L), got {widths}")


def _check_activations(names: tuple[str, ...], depth: int | None) -> None:
    if not names:
        raise ValueError("activations: give one, or one per layer")
    if depth is not None and len(names) != depth:
        raise ValueError(f"{depth} layers but {len(names)} activations: give one, or one per layer")
    for name in names:
        _vocabulary.get(name)


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")


def _check_batch(batch: int) -> None:
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")


def _check_seed(seed: int) -> None:
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a non-negative integer below 2**63, got {seed}")


class Case(NamedTuple):
    """One network with its batch: what ``rebuild`` returns."""

    net: Network
    x: np.ndarray
    y: np.ndarray


# Each family's values are a * (2u - 1), u uniform in [0, 1): weights get variance 1 / fan_in (a = sqrt(3 / n),
# as LeCun initialisation), biases, inputs and targets variance 1 (a = sqrt 3).
_UNIT = math.sqrt(3.0)


def _families(spec: SweepSpec) -> list[tuple[tuple[int, ...], float]]:
    """Return (per-network shape, scale a) of every array family, in the order they are drawn."""
    layers = list(zip(spec.widths, spec.widths[1:], strict=False))
    families: list[tuple[tuple[int, ...], float]] = [((n_in, n_out), math.sqrt(3.0 / n_in)) for n_in, n_out in layers]
    if spec.biases:
        families += [((n_out,), _UNIT) for _, n_out in layers]
    families += [((spec.batch, spec.widths[0]), _UNIT), ((spec.batch, spec.widths[-1]), _UNIT)]
    return families


def _unit_values(spec: SweepSpec, start: int, stop: int, block: int) -> list[np.ndarray]:
    """Return networks ``start .. stop - 1``'s value families in float64, drawn in blocks of ``block``.

    A block that lies wholly inside the range is drawn straight into the output arrays; a block cut by
    either end is drawn whole (the draws of a block must not depend on the range) and the part inside kept.
    """
    if not 0 <= start < stop:
        raise ValueError(f"need 0 <= start < stop, got {start}, {stop}")
    families = _families(spec)
    arrays = [np.empty((stop - start, *shape)) for shape, _ in families]
    for k in range(start // block, (stop - 1) // block + 1):
        rng = np.random.default_rng([spec.seed, k])
        first = k * block
        lo, hi = max(start, first), min(stop, first + block)
        for a, (shape, _) in zip(arrays, families, strict=True):
            if hi - lo == block:
                rng.random(out=a[lo - start : hi - start])
            else:
                a[lo - start : hi - start] = rng.random((block, *shape))[lo - first : hi - first]
    for a, (_, scale) in zip(arrays, families, strict=True):
        a *= 2 * scale  # a (2u - 1) = 2 a u - a, in place
        a -= scale
    return arrays


def _stacked(spec: SweepSpec, arrays: list[np.ndarray]) -> tuple[NetworkStack, np.ndarray, np.ndarray]:
    if spec.dtype != "float64":
        arrays = [a.astype(spec.dtype) for a in arrays]  # values drawn in float64, rounded once
    weights, rest = tuple(arrays[: spec.depth]), arrays[spec.depth :]
    biases = tuple(rest[: spec.depth]) if spec.biases else None
    x, y = rest[-2:]
    return NetworkStack(weights, biases, spec.activations), x, y


def generate(spec: SweepSpec, start: int, stop: int) -> tuple[NetworkStack, np.ndarray, np.ndarray]:
    """Return networks ``start .. stop - 1`` of ``spec`` (ordinary regime) as a stack, with their ``x`` and ``y``."""
    return _stacked(spec, _unit_values(spec, start, stop, GENERATION_BLOCK))


# -- the space --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepSpace:
    """The networks a sweep draws: each option None (drawn) or the value(s) it is narrowed to.

    - widths: the architecture; None: drawn per block (depth 1-5 and widths 1-16, or of the large sizes).
    - activations: one name for every layer, or one per layer (which fixes the depth); None: drawn per block.
    - dtype, biases, batch: None: drawn per block.
    - regimes: the value regimes drawn per network, from ``REGIMES``; None: all of them.

    When widths, activations and dtype are all given, the space is one signature as the sweep always checked:
    biases on, batch 4 and the ordinary regime unless given (``SweepSpec`` exactly).
    """

    seed: int = 7
    widths: tuple[int, ...] | None = None
    activations: tuple[str, ...] | None = None
    dtype: str | None = None
    biases: bool | None = None
    batch: int | None = None
    regimes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _check_seed(self.seed)
        if self.widths is not None:
            object.__setattr__(self, "widths", tuple(int(n) for n in self.widths))
            _check_widths(self.widths)
        if self.activations is not None:
            names = (self.activations,) if isinstance(self.activations, str) else tuple(self.activations)
            if self.widths is not None:
                names = _per_layer(names, len(self.widths) - 1)
            _check_activations(names, None if self.widths is None else len(self.widths) - 1)
            object.__setattr__(self, "activations", names)
        if self.dtype is not None:
            object.__setattr__(self, "dtype", np.dtype(self.dtype).name)
            _check_dtype(self.dtype)
        if self.batch is not None:
            _check_batch(self.batch)
        if self.regimes is not None:
            regimes = (self.regimes,) if isinstance(self.regimes, str) else tuple(dict.fromkeys(self.regimes))
            unknown = [r for r in regimes if r not in REGIMES]
            if unknown or not regimes:
                raise ValueError(f"regimes must be some of {', '.join(REGIMES)}, got {regimes}")
            object.__setattr__(self, "regimes", regimes)
        if None not in (self.widths, self.activations, self.dtype):  # one signature: the sweep as it always was
            for name, value in (("biases", True), ("batch", DEFAULT_BATCH), ("regimes", ("ordinary",))):
                if getattr(self, name) is None:
                    object.__setattr__(self, name, value)

    @classmethod
    def of(cls, spec: SweepSpec) -> SweepSpace:
        """Return the space of ``spec``'s one signature in the ordinary regime: the same networks."""
        return cls(spec.seed, spec.widths, spec.activations, spec.dtype, spec.biases, spec.batch, ("ordinary",))

    @classmethod
    def from_json(cls, record: dict) -> SweepSpace:
        tuples = {k: tuple(v) if isinstance(v, list) else v for k, v in record.items()}
        return cls(**cast(dict[str, Any], tuples))

    def to_json(self) -> dict:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    @functools.cached_property
    def fixed(self) -> SweepSpec | None:
        """The one signature of a space whose options fix it, else None (built once: read per group)."""
        widths, activations, dtype, biases, batch = self.widths, self.activations, self.dtype, self.biases, self.batch
        if widths is None or activations is None or dtype is None or biases is None or batch is None:
            return None
        return SweepSpec(self.seed, widths, activations, dtype, batch, biases)

    @property
    def block(self) -> int:
        """Networks per block: one signature per block (module docstring)."""
        return GENERATION_BLOCK if self.fixed is not None else SIGNATURE_BLOCK

    @property
    def drawn_regimes(self) -> tuple[str, ...]:
        return self.regimes or REGIMES

    def drawn(self, dimension: str) -> bool:
        """Whether the space draws more than one value of ``dimension`` (activation, dtype, regime, ...)."""
        if dimension == "activation":
            return self.activations is None or len(set(self.activations)) > 1
        if dimension == "regime":
            return len(self.drawn_regimes) > 1
        return getattr(self, {"dtype": "dtype", "biases": "biases", "depth": "widths"}[dimension]) is None

    def possible_dtypes(self) -> tuple[str, ...]:
        return DTYPES if self.dtype is None else (self.dtype,)

    def possible_activations(self) -> tuple[str, ...]:
        return _vocabulary.NAMES if self.activations is None else tuple(dict.fromkeys(self.activations))

    def max_depth(self) -> int:
        if self.widths is not None:
            return len(self.widths) - 1
        if self.activations is not None and len(self.activations) > 1:
            return len(self.activations)
        return LARGE_DEPTH[1]

    def quantity_names(self) -> list[str]:
        """Every quantity a network of the space can have, in order: loss, dL/dW_l, dL/db_l, dL/dx."""
        depth = self.max_depth()
        names = ["loss", *(f"dL/dW_{i + 1}" for i in range(depth))]
        names += [f"dL/db_{i + 1}" for i in range(depth)] if self.biases is not False else []
        return [*names, "dL/dx"]

    def describe(self) -> str:
        """Return what the space draws, e.g. for the sweep's first line."""
        spec = self.fixed
        if spec is not None:
            regimes = "" if self.regimes == ("ordinary",) else f", regimes {'/'.join(self.drawn_regimes)}"
            return spec.describe() + regimes
        depth = f"depth {SMALL_DEPTH[0]}-{SMALL_DEPTH[1]}, widths 1-{SMALL_WIDTH}"
        large = f"the large sizes in 1 block in {round(1 / LARGE_SHARE)}"
        parts = [
            f"architecture {'-'.join(map(str, self.widths))}"
            if self.widths
            else f"architectures drawn ({depth}; {large})",
            "activations drawn (all nine, mixed per layer)"
            if self.activations is None
            else f"activations {','.join(self.activations)}",
            "float32 and float64" if self.dtype is None else self.dtype,
            {None: "biases on and off", True: "biases", False: "no biases"}[self.biases],
            f"batch {self.batch}" if self.batch else "batch drawn",
            f"regimes {'/'.join(self.drawn_regimes)}",
            f"seed {self.seed}",
        ]
        return ", ".join(parts)

    def rebuild_call(self, index: int) -> str:
        """Return the Python call that rebuilds network ``index`` of this sweep."""
        spec = self.fixed
        if spec is not None and self.regimes == ("ordinary",):
            return spec.rebuild_call(index)  # as the sweep always printed it
        given = [f"{f.name}={v!r}" for f in fields(self)[1:] if (v := getattr(self, f.name)) is not None]
        return (
            f"mlp_crosscheck.commands.sweep.rebuild(seed={self.seed}, index={index}{''.join(', ' + g for g in given)})"
        )

    def signature_at(self, index: int) -> SweepSpec:
        """Return the signature of network ``index``."""
        return _block_draws(self, index // self.block).spec


@functools.cache
def palette(space: SweepSpace) -> tuple[SweepSpec, ...]:
    """Return the space's signatures: ``PALETTE`` of them, the first ``PALETTE_LARGE`` of the large sizes.

    Entry ``i`` is drawn by ``default_rng([seed, i, 2])``: depth, widths, activations (one for every layer or one
    per layer), dtype, biases, batch, each always drawn and replaced by the option given in its place.
    """
    return tuple(_draw_signature(space, i, large=i < PALETTE_LARGE) for i in range(PALETTE))


def _draw_signature(space: SweepSpace, i: int, *, large: bool) -> SweepSpec:
    rng = np.random.default_rng([space.seed, i, 2])
    depths, width, batches = (
        (LARGE_DEPTH, LARGE_WIDTH, LARGE_BATCH) if large else (SMALL_DEPTH, SMALL_WIDTH, SMALL_BATCH)
    )
    depth = int(rng.integers(depths[0], depths[1] + 1))
    if space.widths is not None:
        depth = len(space.widths) - 1
    elif space.activations is not None and len(space.activations) > 1:
        depth = len(space.activations)
    widths = rng.integers(1, width + 1, size=max(LARGE_DEPTH[1], depth) + 1)
    uniform = rng.random() < UNIFORM_SHARE
    drawn = [_vocabulary.NAMES[i] for i in rng.integers(len(_vocabulary.NAMES), size=max(LARGE_DEPTH[1], depth))]
    dtype = DTYPES[int(rng.integers(len(DTYPES)))]
    biases = bool(rng.integers(2))
    batch = int(rng.integers(batches[0], batches[1] + 1))
    return SweepSpec(
        seed=space.seed,
        widths=space.widths or tuple(int(n) for n in widths[: depth + 1]),
        activations=space.activations or ((drawn[0],) if uniform else tuple(drawn[:depth])),
        dtype=space.dtype or dtype,
        batch=space.batch or batch,
        biases=biases if space.biases is None else space.biases,
    )


class _BlockDraws(NamedTuple):
    spec: SweepSpec
    regimes: np.ndarray  # per network of the block: its index in REGIMES
    factors: np.ndarray  # per network: u in [0, 1)
    layers: np.ndarray  # per network: the layer a one-layer regime scales


def _block_draws(space: SweepSpace, k: int) -> _BlockDraws:
    """Return block ``k``'s signature and its networks' regimes, in the order of the module docstring."""
    if space.fixed is not None and space.drawn_regimes == ("ordinary",):
        # One signature, every network ordinary: nothing the stream would draw is used (the values' stream is
        # apart), so it is not drawn, which is ~0.14 µs per network of a one-signature sweep.
        none = np.zeros(space.block, np.int8)
        return _BlockDraws(space.fixed, none + REGIMES.index("ordinary"), np.zeros(space.block), none)
    rng = np.random.default_rng([space.seed, k, 1])
    large = rng.random() < LARGE_SHARE
    entry = int(rng.integers(PALETTE_LARGE)) if large else PALETTE_LARGE + int(rng.integers(PALETTE - PALETTE_LARGE))
    spec = palette(space)[entry]
    allowed = np.array([REGIMES.index(r) for r in space.drawn_regimes], np.int8)
    regimes = allowed[rng.integers(len(allowed), size=space.block)]
    factors = rng.random(space.block)
    layers = rng.integers(spec.depth, size=space.block)
    return _BlockDraws(spec, regimes, factors, layers)


class Group(NamedTuple):
    """Networks ``start .. start + size - 1``, of one signature: one batched evaluation."""

    spec: SweepSpec
    start: int
    stack: NetworkStack
    x: np.ndarray
    y: np.ndarray
    regimes: np.ndarray  # per network: its index in REGIMES

    @property
    def size(self) -> int:
        """The number of networks in the group."""
        return len(self.regimes)


def generate_groups(space: SweepSpace, start: int, stop: int) -> list[Group]:
    """Return networks ``start .. stop - 1`` of ``space`` in groups of one signature each, in index order.

    A space of one signature gives one group; a drawn one, one group per block (or part of one) in the range.
    """
    if not 0 <= start < stop:
        raise ValueError(f"need 0 <= start < stop, got {start}, {stop}")
    block = space.block
    spans = [
        (k, max(start, k * block), min(stop, (k + 1) * block)) for k in range(start // block, (stop - 1) // block + 1)
    ]
    draws = [(lo, hi, _block_draws(space, k)) for k, lo, hi in spans]
    runs = [draws] if space.fixed is not None else [[d] for d in draws]  # one signature: one group
    groups = []
    for run in runs:
        lo, hi, spec = run[0][0], run[-1][1], run[0][2].spec
        # each block's per-network draws, the part inside the range (a block's first index is a // block * block)
        part = lambda name, run=run: np.concatenate(
            [getattr(d, name)[a % block : a % block + b - a] for a, b, d in run]
        )
        regimes, factors, layers = part("regimes"), part("factors"), part("layers")
        arrays = _unit_values(spec, lo, hi, block)
        _apply_regimes(spec, arrays, regimes, factors, layers)
        stack, x, y = _stacked(spec, arrays)
        groups.append(Group(spec, lo, stack, x, y, regimes))
    return groups


def _apply_regimes(spec: SweepSpec, arrays: list[np.ndarray], regimes, factors, layers) -> None:
    """Scale each network's float64 values by its regime, in place (module constants say how; 1 is exact)."""
    regime = lambda name: regimes == REGIMES.index(name)
    if not (regimes != REGIMES.index("ordinary")).any():
        return  # every network ordinary: the values as drawn, bit for bit
    depth, n = spec.depth, len(regimes)
    layer_scale = np.ones((n, depth))
    small = regime("small")
    layer_scale[small] = (10.0 ** (-1 - 2 * factors[small]))[:, None]
    for name, scale in (
        ("large", 10.0 ** (1 + factors)),
        ("near-exp", math.log(np.finfo(spec.dtype).max) / 3 * 2.0 ** (2 * factors - 1)),
    ):
        chosen = np.flatnonzero(regime(name))
        layer_scale[chosen, layers[chosen]] = scale[chosen]
    data_scale = np.where(
        regime("near-underflow"), math.sqrt(np.finfo(spec.dtype).tiny) * 2.0 ** (8 * factors - 4), 1.0
    )
    per_network = lambda a, s: a.__imul__(s.reshape(-1, *(1,) * (a.ndim - 1)))
    for layer in range(depth):
        per_network(arrays[layer], layer_scale[:, layer])
        if spec.biases:
            per_network(arrays[depth + layer], layer_scale[:, layer] * data_scale)
    per_network(arrays[-2], data_scale)
    per_network(arrays[-1], data_scale)


def rebuild(seed: int, index: int, **options) -> Case:
    """Return network ``index`` of the sweep with ``seed`` and the ``options`` of ``SweepSpace``.

    Example: ``rebuild(seed=7, index=123456)`` is network 123456 of ``mlp-crosscheck sweep --seed 7``; a failure
    report prints the full call, with the options that narrowed its sweep.
    """
    (group,) = generate_groups(SweepSpace(seed=seed, **options), index, index + 1)
    return Case(group.stack.network(0), group.x[0].copy(), group.y[0].copy())


def signature_is_large(spec: SweepSpec) -> bool:
    """Whether a signature is beyond the small sizes (depth, a width or the batch): the coverage's size class."""
    return spec.depth > SMALL_DEPTH[1] or max(spec.widths) > SMALL_WIDTH or spec.batch > SMALL_BATCH[1]


# -- coverage ---------------------------------------------------------------------------------------------------


class Coverage:
    """Networks checked per activation, dtype, regime, depth, biases and size class, and those excluded per reason.

    A network counts once in every dimension but the activations, where it counts once per activation it uses.
    """

    DIMENSIONS = ("activation", "layers", "dtype", "regime", "depth", "biases", "sizes")

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {d: Counter() for d in self.DIMENSIONS}
        self.excluded: Counter[str] = Counter()

    def add(self, spec: SweepSpec, regimes: np.ndarray) -> None:
        """Count networks of signature ``spec`` with ``regimes`` (indices in REGIMES) as checked."""
        n = len(regimes)
        if n == 0:
            return
        for name in dict.fromkeys(spec.activations):
            self.counts["activation"][name] += n
        self.counts["layers"]["one activation" if len(set(spec.activations)) == 1 else "mixed"] += n
        self.counts["dtype"][spec.dtype] += n
        for r, c in zip(*np.unique(regimes, return_counts=True), strict=True):
            self.counts["regime"][REGIMES[int(r)]] += int(c)
        self.counts["depth"][str(spec.depth)] += n
        self.counts["biases"]["on" if spec.biases else "off"] += n
        self.counts["sizes"]["large" if signature_is_large(spec) else "small"] += n

    def update(self, record: dict) -> None:
        """Add a ``to_json()`` record's counts (a shard's)."""
        for d in self.DIMENSIONS:
            self.counts[d].update(record["checked"].get(d, {}))
        self.excluded.update(record["excluded"])

    def to_json(self) -> dict:
        return {"checked": {d: dict(c) for d, c in self.counts.items()}, "excluded": dict(self.excluded)}

    def lines(self, space: SweepSpace) -> list[str]:
        """Return the coverage table: every value the space can draw, with its count (0 shows a gap)."""
        possible = {
            "activation": space.possible_activations(),
            "layers": ("one activation", "mixed"),
            "dtype": space.possible_dtypes(),
            "regime": space.drawn_regimes,
            "depth": sorted(self.counts["depth"], key=int),
            "biases": ("on", "off") if space.biases is None else ("on" if space.biases else "off",),
            "sizes": ("small", "large"),
        }
        lines = ["coverage, networks checked (a network counts once for each activation it uses):"]
        for d in self.DIMENSIONS:
            values = list(possible[d]) + [v for v in self.counts[d] if v not in possible[d]]
            lines.append(f"  {d:<12}" + " · ".join(f"{v} {self.counts[d][v]:,}" for v in values))
        reasons = [*EXCLUSIONS, *(r for r in sorted(self.excluded) if r not in EXCLUSIONS)]
        lines.append(f"  {'excluded':<12}" + " · ".join(f"{r} {self.excluded[r]:,}" for r in reasons))
        return lines
