"""An exact decision, for small relu / leaky_relu networks, of whether a network is affine on all of R^n.

``linear_maps.affine_analysis`` proves networks affine by exact identities, and cannot see a unit that is dead
on all of R^n only because of the geometry of its inputs' regions: ``relu(relu(x1 + x2) - relu(x1) - relu(x2)
- 1)`` is identically 0 (relu is subadditive), yet every interval bound on its outer pre-activation is
unbounded above. This module decides such networks by enumerating their activation regions.

Proof. Every activation is identity, relu or leaky_relu; a kinked one is ``z`` on ``z >= 0`` and ``slope z`` on
``z <= 0`` (slope 0 or 1/100), the two branches agreeing at ``z = 0``. A pattern p picks a branch for every
unit; following it layer by layer each pre-activation is an affine function ``z_j^p(x)`` and the output an
affine map ``A_p``. Let ``C_p`` be the closed polyhedron where every picked branch's condition holds.
1. ``f = A_p`` on ``C_p``: by induction over the layers each unit takes its picked branch there, also where
   ``z = 0``, since the branches agree at 0.
2. The ``C_p`` cover R^n: for any x, pick each unit's branch by the sign of its pre-activation at x.
3. So the full-dimensional ``C_p`` cover R^n: the others lie in hyperplanes, whose finite union has empty
   interior, so the complement of the (closed) union of the full-dimensional ones is open and empty.
Hence f is affine iff the ``A_p`` of all full-dimensional ``C_p`` are equal: if all equal A, f = A on R^n (3);
if f = B, then B = A_p on the interior of each full-dimensional ``C_p``, so each such ``A_p`` is B.

A condition ``z >= 0`` whose z does not depend on x is decided by the constant's sign (at 0 both branches give
0; one is kept). The rest have nonzero normals ``a``, and then ``C_p`` is full-dimensional iff its conditions
hold strictly at some point: an interior point satisfies each strictly (else a step along ``+-a`` leaves
``C_p``), and a strict solution has a ball around it inside ``C_p``. Strict feasibility is decided by
Fourier-Motzkin elimination, exact for strict inequalities (pairs are combined with positive multipliers), and
back-substitution gives a rational interior point, so a prefix of choices is pruned only on a proof.

Design constraints: integers and Fractions only, never floats; a budget on the work, beyond which the verdict
is None (undecided, and the property discards the example), never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple

import numpy as np
from mlp_crosscheck.properties.linear_maps import HOMOGENEOUS, Exact, exact
from mlp_crosscheck.reference.network import Network

# The budget, beyond which the verdict is None. The networks that reach this criterion in the property (the
# exact identities prove nothing and no witness is visible) are mostly small; a larger one is discarded.
MAX_UNITS = 24  # nonlinear units in the whole network
MAX_NODES = 2048  # choices (pattern prefixes) visited; about 1.5 ms each where the search is needed
MAX_ROWS = 2048  # inequalities in one Fourier-Motzkin step


class RegionVerdict(NamedTuple):
    """The verdict of ``region_analysis``.

    - affine: True (proved affine on R^n), False (proved not affine on R^n), None (undecided: an activation
      other than identity, relu, leaky_relu, or over the budget).
    - linear_part: the exact ``K`` (n_0 x n_L) with ``f(x) = f(0) + x K`` when affine, else None.
    - regions: full-dimensional regions enumerated (all of them when affine).
    - points: when not affine, rational interior points of two regions whose affine maps differ.
    """

    affine: bool | None
    linear_part: Exact | None
    regions: int
    points: tuple[tuple[Fraction, ...], ...] = ()


class _OverBudget(Exception):
    pass


class _MapsDiffer(Exception):
    pass


def region_analysis(net: Network) -> RegionVerdict:
    """Decide exactly whether ``net`` is affine on all of R^n by enumerating its activation regions."""
    if any(name != "identity" and name not in HOMOGENEOUS for name in net.activations):
        return RegionVerdict(None, None, 0)
    kinked = [layer for layer, name in enumerate(net.activations) if name in HOMOGENEOUS]
    if sum(net.widths[layer + 1] for layer in kinked) > MAX_UNITS:
        return RegionVerdict(None, None, 0)
    n = net.widths[0]
    # A layer's values are [x, 1] @ V, V an exact (n + 1) x width matrix; the inputs are V = [I; 0].
    inputs = Exact(np.eye(n + 1, n, dtype=np.int64).astype(object), Fraction(1))
    search = _Search(net)
    try:
        search.layer(0, inputs, [], (Fraction(0),) * n)
    except _OverBudget:
        return RegionVerdict(None, None, search.regions)
    except _MapsDiffer:
        return RegionVerdict(False, None, search.regions, search.points)
    first = search.first
    assert first is not None  # the search ended with every region's map equal to the first one found
    return RegionVerdict(True, Exact(first.ints[:n], first.scale), search.regions)


class _Search:
    """Depth-first enumeration of the full-dimensional regions, comparing each one's affine map to the first's."""

    def __init__(self, net: Network):
        self.net, self.n = net, net.widths[0]
        self.nodes, self.regions = 0, 0
        self.first: Exact | None = None
        self.first_point: tuple[Fraction, ...] = ()
        self.points: tuple[tuple[Fraction, ...], ...] = ()

    def layer(self, layer: int, values: Exact, rows: list[tuple[int, ...]], point: tuple[Fraction, ...]) -> None:
        if layer == self.net.depth:
            self.leaf(values, point)
            return
        z = values @ exact(self.net.weights[layer])
        if self.net.biases is not None:  # the bias enters through the constant coordinate, the last row
            bias = np.zeros((self.n + 1, z.shape[1]), dtype=self.net.weights[layer].dtype)
            bias[self.n] = self.net.biases[layer]
            z = z + exact(bias)
        if self.net.activations[layer] == "identity":
            self.layer(layer + 1, z, rows, point)
        else:
            self.unit(layer, z, 0, (), rows, point)

    def unit(self, layer, z: Exact, j: int, slopes: tuple[Fraction, ...], rows, point) -> None:
        """Pick a branch for unit ``j`` of ``layer`` (pre-activations ``z``), in every way that leaves a
        full-dimensional region, then go on to the next unit."""
        if j == z.shape[1]:
            self.layer(layer + 1, _scale_columns(z, slopes), rows, point)
            return
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _OverBudget
        negative_slope = HOMOGENEOUS[self.net.activations[layer]]
        column = [int(v) for v in z.ints[:, j]]  # z_j = scale * (a . x + b), scale > 0
        if not any(column[: self.n]):  # constant: its sign decides (at 0 both branches give 0)
            slope = Fraction(1) if column[self.n] >= 0 else negative_slope
            self.unit(layer, z, j + 1, (*slopes, slope), rows, point)
            return
        for sign, slope in ((1, Fraction(1)), (-1, negative_slope)):
            row = _primitive([sign * v for v in column])
            # The current interior point if it is strictly inside the new half-space; else one a step across
            # the new boundary (cheap, and usually there is one); else the full search.
            inside = point if _evaluate(row, point) > 0 else _across(rows, row, point)
            if inside is None:
                inside = interior_point([*rows, row], self.n)
            if inside is not None:
                self.unit(layer, z, j + 1, (*slopes, slope), [*rows, row], inside)

    def leaf(self, values: Exact, point) -> None:
        self.regions += 1
        if self.first is None:
            self.first, self.first_point = values, point
        elif any(v != 0 for v in (values + (-self.first)).ints.ravel()):  # f(0) and K, exactly
            self.points = (self.first_point, point)
            raise _MapsDiffer


def _scale_columns(z: Exact, slopes: tuple[Fraction, ...]) -> Exact:
    """Return ``z`` with column j multiplied by ``slopes[j]``, exactly (one common denominator)."""
    d = math.lcm(*(s.denominator for s in slopes))
    factors = np.array([int(s * d) for s in slopes], dtype=object)
    return Exact(z.ints * factors[None, :], z.scale / d)


def _primitive(row) -> tuple[int, ...]:
    g = math.gcd(*row)
    return tuple(v // g for v in row) if g > 1 else tuple(row)


def _evaluate(row: tuple[int, ...], point: Sequence[Fraction]) -> Fraction:
    return sum((a * p for a, p in zip(row, point, strict=False) if a), Fraction(row[-1]))


def _across(rows, row, point) -> tuple[Fraction, ...] | None:
    """Return a point strictly inside every one of ``rows`` and ``row`` on the ray ``point + t a`` (``a`` the
    normal of ``row``), or None if the ray leaves ``rows`` before it crosses ``row``.

    ``point`` is strictly inside ``rows``; along the ray row i's value is ``s_i + t d_i`` (``d_i = a_i . a``),
    positive for ``t < T = min over d_i < 0 of s_i / -d_i``, and ``row``'s is positive for ``t > t0``.
    """
    a = row[:-1]
    t0 = -_evaluate(row, point) / sum(v * v for v in a)
    limits = []
    for r in rows:
        d = sum(u * v for u, v in zip(r, a, strict=False))
        if d < 0:
            limits.append(_evaluate(r, point) / -d)
    limit = min(limits, default=None)
    if limit is not None and limit <= t0:
        return None
    t = t0 + 1 if limit is None else (t0 + limit) / 2
    return tuple(p + t * v for p, v in zip(point, a, strict=True))


def _reduce(rows) -> list[tuple[int, ...]] | None:
    """Return the inequalities ``a . x + b > 0`` without redundant ones, or None when they cannot all hold.

    Rows with ``a = 0`` are dropped (``b > 0``) or prove infeasibility (``b <= 0``). A row is ``g (d . x) + b > 0``
    with ``d`` primitive, i.e. ``d . x > -b / g``; of rows with the same ``d`` only the tightest (the smallest
    ``b / g``, compared exactly) is kept.
    """
    tightest: dict[tuple[int, ...], Fraction] = {}
    for row in rows:
        g = math.gcd(*row[:-1])
        if g == 0:
            if row[-1] <= 0:
                return None
            continue
        direction, offset = tuple(v // g for v in row[:-1]), Fraction(row[-1], g)
        if direction not in tightest or offset < tightest[direction]:
            tightest[direction] = offset
    return [(*a, b.numerator) if b.denominator == 1 else _scaled(a, b) for a, b in tightest.items()]


def _scaled(a: tuple[int, ...], b: Fraction) -> tuple[int, ...]:
    return _primitive([v * b.denominator for v in a] + [b.numerator])


def interior_point(rows: list[tuple[int, ...]], n: int) -> tuple[Fraction, ...] | None:
    """Return a rational ``x`` with ``a . x + b > 0`` for every row ``(a_1, ..., a_n, b)``, or None if none exists.

    Fourier-Motzkin: eliminating ``x_k`` keeps the rows without it and, for each ``p`` with ``p_k > 0`` and ``q``
    with ``q_k < 0``, ``-q_k p + p_k q`` -- given the other variables, ``x_k`` exists iff every lower bound
    ``-P / p_k`` is below every upper bound ``-Q / q_k``, i.e. iff ``-q_k P + p_k Q > 0``. Back-substitution picks
    each ``x_k`` strictly between its bounds.

    Raises:
        _OverBudget: a step would hold more than ``MAX_ROWS`` inequalities.
    """
    system = _reduce(rows)
    stages = []
    while system:  # every row left has a nonzero coefficient
        counts = [(sum(r[k] > 0 for r in system) * sum(r[k] < 0 for r in system), k) for k in range(n)]
        k = min((c, k) for c, k in counts if any(r[k] for r in system))[1]
        pos = [r for r in system if r[k] > 0]
        neg = [r for r in system if r[k] < 0]
        if len(pos) * len(neg) > MAX_ROWS:
            raise _OverBudget
        stages.append((k, pos, neg))
        combined = [tuple(-q[k] * a + p[k] * b for a, b in zip(p, q, strict=True)) for p in pos for q in neg]
        system = _reduce([r for r in system if r[k] == 0] + combined)
    if system is None:
        return None
    x = [Fraction(0)] * n
    for k, pos, neg in reversed(stages):
        x[k] = Fraction(0)  # so that _evaluate gives the rest of each row, without x_k
        lower = max((-_evaluate(p, x) / p[k] for p in pos), default=None)
        upper = min((-_evaluate(q, x) / q[k] for q in neg), default=None)
        if lower is None:
            x[k] = Fraction(0) if upper is None else upper - 1
        else:
            x[k] = lower + 1 if upper is None else (lower + upper) / 2
    return tuple(x)
