"""Exact and independent helpers for the claims about linear maps (property families 4 to 7).

What is here: exact rational arithmetic on float matrices (``exact``, ``Exact``), the least-squares loss
floor of a data set (``least_squares_floor``), exact ranks, the exactly collapsed map of an identity network
(``exact_collapse``), an implementation's input Jacobian measured through its input gradients
(``input_jacobian``), second differences along lines as witnesses of non-affinity (``second_differences``),
and an exact criterion that proves a network affine on all of R^n (``affine_analysis``).

Invariants:
- Exact where the claim is exact. Every finite float is a dyadic rational ``m 2^e``, so a float matrix is an
  integer matrix times a power of two, and sums and products of them are again exact integers (Python ints,
  held in NumPy object arrays, so that ``@`` runs the integer loops in C). Where a non-dyadic factor appears
  (leaky_relu's slope 1/100) the common scale becomes a ``Fraction``. Results computed this way carry no
  rounding error, so they need no tolerance of their own: the floor is exact, ranks are exact, and the only
  rounding left in a comparison is the implementation's (``properties.tolerances``) plus, where a result is
  rounded to float64 to compare, one rounding that is added to the bound explicitly.
- Independent: nothing here calls the implementation under test except the two measuring functions, which
  take it as an argument and return their own rigorous error bound with the measurement; nothing here uses
  ``reference.network.collapse``, whose output is among the things compared.
- The floating-point bounds come from ``properties.tolerances`` only; this module never loosens or rescales
  them.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np
from mlp_crosscheck.properties.tolerances import forward_bound, gradient_bounds
from mlp_crosscheck.reference.network import Network

U64 = 2.0**-53  # unit roundoff of float64, the precision the helpers round their exact results to


# ---------------------------------------------------------------------------------------------------------
# Exact arithmetic on float matrices.


class Exact(NamedTuple):
    """An exact rational matrix: ``ints * scale``, ``ints`` an object array of Python ints."""

    ints: np.ndarray
    scale: Fraction

    @property
    def shape(self) -> tuple[int, ...]:
        return self.ints.shape

    @property
    def T(self) -> Exact:
        return Exact(self.ints.T, self.scale)

    def __matmul__(self, other: Exact) -> Exact:
        return Exact(self.ints @ other.ints, self.scale * other.scale)

    def __add__(self, other: Exact) -> Exact:  # type: ignore[override]  # adds the maps, not the tuples
        common = fraction_gcd(self.scale, other.scale)
        return Exact(self.ints * _as_int(self.scale / common) + other.ints * _as_int(other.scale / common), common)

    def __neg__(self) -> Exact:
        return Exact(-self.ints, self.scale)

    def to_float64(self) -> np.ndarray:
        """Return the entries correctly rounded to float64 (error at most ``U64 |value|``, plus underflow)."""
        n, d = self.scale.numerator, self.scale.denominator
        flat = [int(v) * n / d for v in self.ints.ravel()]  # int / int true division is correctly rounded
        return np.array(flat, dtype=np.float64).reshape(self.shape)


def _as_int(q: Fraction) -> int:
    if q.denominator != 1:
        raise ArithmeticError(f"expected an integer ratio of scales, got {q}")
    return q.numerator


def fraction_gcd(*values: Fraction) -> Fraction:
    """Return the largest positive rational ``g`` with every ``value / g`` an integer (zeros ignored)."""
    g = Fraction(0)
    for v in values:
        v = abs(Fraction(v))
        if v == 0:
            continue
        if g == 0:
            g = v
            continue
        # gcd(a/b, c/d) = gcd(a d, c b) / (b d)
        g = Fraction(math.gcd(g.numerator * v.denominator, v.numerator * g.denominator), g.denominator * v.denominator)
    return g if g != 0 else Fraction(1)


def exact(a) -> Exact:
    """Return the float array ``a`` (float32 or float64, finite) as an exact ``Exact`` matrix, losslessly."""
    a = np.asarray(a)
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"exact() takes float32 or float64 arrays, got {a.dtype}")
    a = a.astype(np.float64)  # exact: every float32 is a float64
    if not np.all(np.isfinite(a)):
        raise ValueError("exact() needs finite values")
    mantissa, exponent = np.frexp(a)  # a = mantissa 2^exponent, 0.5 <= |mantissa| < 1, 53 significant bits
    m = (mantissa * 2.0**53).astype(np.int64)  # exact integer
    e = exponent.astype(np.int64) - 53
    nonzero = m != 0
    if not nonzero.any():
        return Exact(np.zeros(a.shape, dtype=np.int64).astype(object), Fraction(1))
    # Strip trailing zero bits so the integers stay short (a float32 needs 24 bits, not 53).
    mv = m[nonzero]
    trailing = np.log2((mv & -mv).astype(np.float64)).astype(np.int64)  # exact: a power of two <= 2^53
    m, e = m.copy(), e.copy()
    m[nonzero] = mv >> trailing
    e[nonzero] = e[nonzero] + trailing
    e0 = int(e[nonzero].min())
    shifts = np.where(nonzero, e - e0, 0).astype(object)
    ints = m.astype(object) << shifts  # Python ints: exact, however far apart the exponents
    return Exact(ints, Fraction(2) ** e0)


def exact_rank(a) -> int:
    """Return the exact rank of a float (or ``Exact``) matrix: fraction-free Gaussian elimination (Bareiss)."""
    m = (a if isinstance(a, Exact) else exact(a)).ints.copy()
    rows, cols = m.shape
    rank, prev = 0, 1
    for col in range(cols):
        pivot_rows = [r for r in range(rank, rows) if m[r, col] != 0]
        if not pivot_rows:
            continue
        p = pivot_rows[0]
        m[[rank, p]] = m[[p, rank]]
        piv = m[rank, col]
        below = slice(rank + 1, rows)
        # Bareiss: every entry stays an integer minor, so the division by the previous pivot is exact.
        m[below, col + 1 :] = (piv * m[below, col + 1 :] - np.outer(m[below, col], m[rank, col + 1 :])) // prev
        m[below, col] = 0
        prev = piv
        rank += 1
        if rank == rows:
            break
    return rank


def exact_collapse(net: Network) -> tuple[Exact, Exact]:
    """Return the exact ``(K, c)`` of an all-identity network: ``K = W_1 ... W_L``, ``c = c_L`` (row vector).

    ``A_l = x W_1...W_l + c_l`` with ``c_l = c_{l-1} W_l + b_l`` (``c_0 = 0``), in exact arithmetic.

    Raises:
        ValueError: a layer is not ``identity``.
    """
    if any(name != "identity" for name in net.activations):
        raise ValueError(f"exact_collapse needs an all-identity network, got {list(net.activations)}")
    k = exact(net.weights[0])
    c = exact(net.biases[0][None, :]) if net.biases is not None else exact(np.zeros((1, net.widths[1])))
    for layer in range(1, net.depth):
        w = exact(net.weights[layer])
        k = k @ w
        c = c @ w
        if net.biases is not None:
            c = c + exact(net.biases[layer][None, :])
    return k, c


def exact_affine_values(x: np.ndarray, k: Exact, c: Exact | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``x @ K + c`` rounded to float64, and its rounding error bound ``U64 |value| + tiny``.

    The product is computed exactly, then rounded once (Python's int/Fraction to float is correctly rounded).
    """
    v = exact(x) @ k
    if c is not None:
        ones = Exact(np.full((x.shape[0], 1), 1, dtype=object), Fraction(1))
        v = v + ones @ c
    values = v.to_float64()
    return values, U64 * np.abs(values) + np.finfo(np.float64).smallest_normal


PIECEWISE_LINEAR = ("identity", "relu", "leaky_relu")


def exact_forward(net: Network, x: np.ndarray) -> list[Exact]:
    """Return the exact pre-activations ``Z_1, ..., Z_L`` of a piecewise-linear network (identity, relu,
    leaky_relu with slope exactly 1/100) on the batch ``x``: no rounding anywhere.

    Raises:
        ValueError: an activation is not piecewise linear (its values are not rational).
    """
    if any(name not in PIECEWISE_LINEAR for name in net.activations):
        raise ValueError(f"exact_forward needs {PIECEWISE_LINEAR} activations, got {list(net.activations)}")
    a = exact(x)
    ones = Exact(np.full((x.shape[0], 1), 1, dtype=object), Fraction(1))
    pre = []
    for layer, name in enumerate(net.activations):
        z = a @ exact(net.weights[layer])
        if net.biases is not None:
            z = z + ones @ exact(net.biases[layer][None, :])
        pre.append(z)
        if name == "identity":
            a = z
        else:  # the scale is positive, so an entry's sign is its integer's sign
            slope = HOMOGENEOUS[name]
            positive = np.vectorize(lambda v: v > 0, otypes=[bool])(z.ints)
            common = fraction_gcd(z.scale, z.scale * slope) if slope else z.scale
            up = _as_int(z.scale / common)
            down = _as_int(z.scale * slope / common) if slope else 0
            a = Exact(np.where(positive, z.ints * up, z.ints * down), common)
    return pre


# ---------------------------------------------------------------------------------------------------------
# The least-squares floor.


class LeastSquaresFloor(NamedTuple):
    """The exact minimum of ``0.5 ||X beta - y||^2`` over all ``beta`` (X = x, or [x, 1] with an intercept)."""

    value: Fraction
    rank: int  # the exact rank of X

    def lower(self) -> float:
        """Return the largest float64 that is ``<= value`` (a rigorous lower bound on the floor)."""
        f = float(self.value)
        return f if Fraction(f) <= self.value else math.nextafter(f, -math.inf)


def least_squares_floor(x: np.ndarray, y: np.ndarray, *, intercept: bool) -> LeastSquaresFloor:
    """Return the exact ordinary-least-squares floor of the data ``(x, y)``: no affine map does better.

    ``0.5 min_beta ||X beta - y||_F^2 = 0.5 sum_j ||P_perp y_j||^2`` where ``P_perp`` projects onto the
    orthogonal complement of X's column space; the minimum exists whatever X's rank (the seed's x has rank 2,
    so the normal equations are singular and ``beta`` is not unique, but the floor is).

    Computed exactly, not with ``lstsq``: ``lstsq`` decides the rank with a cut-off on the singular values,
    and a nearly dependent x (a column that is the rounded sum of two others) then gets a floor that is too
    high by an amount no rounding-error bound controls. Here the squared distance of ``y_j`` from the column
    space is a ratio of Gram determinants, ``det G(X_B, y_j) / det G(X_B)`` over a basis ``X_B`` of the
    columns, and symmetric fraction-free elimination (Bareiss) on the integer Gram matrix of ``[X, y]``
    delivers both at once: after eliminating the pivots of X, the entry ``(y_j, y_j)`` is the numerator and
    the last pivot the denominator. A zero diagonal entry on X's side means that column is (exactly) in the
    span of the pivots, so it is skipped, and the number of pivots is X's exact rank.

    Args:
        intercept: with a column of ones appended to x (the floor for networks with biases).
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must be (batch, n) and (batch, m) arrays, got {x.shape} and {y.shape}")
    xs = exact(x).ints  # scaling a column does not change the column space, so x's scale is dropped
    if intercept:
        xs = np.concatenate([xs, np.full((x.shape[0], 1), 1, dtype=object)], axis=1)
    ye = exact(y)
    ys = ye.ints
    gram = xs.T @ xs  # (p, p)
    cross = xs.T @ ys  # (p, q)
    diag = (ys * ys).sum(axis=0) if ys.size else np.zeros(ys.shape[1], dtype=object)
    remaining = list(range(gram.shape[0]))
    prev, rank = 1, 0
    while True:
        pivots = [i for i in remaining if gram[i, i] != 0]
        if not pivots:
            break
        p = pivots[0]
        rest = [i for i in remaining if i != p]
        piv = gram[p, p]
        col = gram[rest, p] if rest else np.zeros(0, dtype=object)
        # Bareiss update of the uneliminated X block, the X-y block and the y diagonal.
        if rest:
            gram[np.ix_(rest, rest)] = (piv * gram[np.ix_(rest, rest)] - np.outer(col, gram[p, rest])) // prev
            cross[rest] = (piv * cross[rest] - np.outer(col, cross[p])) // prev
        diag = (piv * diag - cross[p] * cross[p]) // prev
        prev = piv
        rank += 1
        remaining = rest
    # 0.5 sum_j (diag_j / prev) * scale_y^2
    total = Fraction(int(sum(diag, 0)), int(prev)) * ye.scale * ye.scale / 2
    return LeastSquaresFloor(total, rank)


# ---------------------------------------------------------------------------------------------------------
# Ranks from singular values with a rigorous tolerance.

# LAPACK's SVD (used by numpy.linalg.svd) is backward stable: the computed singular values satisfy
# |sigma^_i - sigma_i| <= p(m, n) eps ||A||_2 with p "a modestly growing function of m and n" (LAPACK Users'
# Guide, 3rd ed., 4.9.1, where the practical bound is quoted with p = 1). We take p(m, n) = 4 max(m, n), with
# eps = 2^-52 (float64, the precision the SVD runs in), which covers the Householder bidiagonalisation's
# gamma_{c max(m,n)} backward error with room to spare.
SVD_ERROR_FACTOR = 4


def singular_value_tolerance(a: np.ndarray, bound: np.ndarray) -> float:
    """Return ``t`` with ``sigma_i(exact) <= sigma^_i(a) + t`` and ``sigma^_i(a) <= sigma_i(exact) + t``.

    ``a`` is a measured matrix with ``|a - exact| <= bound`` elementwise. Weyl's inequality gives
    ``|sigma_i(a) - sigma_i(exact)| <= ||a - exact||_2 <= ||bound||_F``; the SVD's own error adds
    ``4 max(m, n) 2^-52 sigma_1``.
    """
    sigma = np.linalg.svd(np.asarray(a, dtype=np.float64), compute_uv=False)
    svd_error = SVD_ERROR_FACTOR * max(a.shape) * 2.0**-52 * (float(sigma[0]) if sigma.size else 0.0)
    return float(np.sqrt(np.sum(np.square(np.asarray(bound, dtype=np.float64))))) * (1 + 1e-12) + svd_error


def assert_rank_at_most(name: str, a: np.ndarray, bound: np.ndarray, rank: int, context: str = "") -> None:
    """Assert the matrix measured as ``a`` (within ``bound`` of an exact one) can have rank at most ``rank``.

    Every singular value past the ``rank``-th must be within ``singular_value_tolerance`` of zero; otherwise
    no matrix within the bound of ``a`` has rank ``<= rank``.

    Raises:
        AssertionError: with the singular values, the tolerance and the rank claimed.
    """
    sigma = np.linalg.svd(np.asarray(a, dtype=np.float64), compute_uv=False)
    tol = singular_value_tolerance(a, bound)
    excess = sigma[rank:]
    if excess.size and float(excess.max()) > tol:
        where = f" ({context})" if context else ""
        raise AssertionError(
            f"{name}{where}: rank must be <= {rank}, but singular value {rank + 1} is {excess[0]:.6e} > the "
            f"tolerance {tol:.3e} (||bound||_F + SVD error); singular values {np.array2string(sigma, precision=4)}"
        )


# ---------------------------------------------------------------------------------------------------------
# Measuring an implementation: input Jacobians and second differences.


class Measured(NamedTuple):
    """A quantity measured through an implementation, with a rigorous bound on ``|measured - exact|``."""

    value: np.ndarray
    bound: np.ndarray


# input_jacobian always hands the implementation this many rows (padded with zero inputs and targets, whose
# rows of dL/dx are discarded: each row's input gradient depends on that row alone), so that an implementation
# that compiles per shape compiles once per network shape, not once per batch size.
JACOBIAN_ROWS = 256


def input_jacobian(impl, net: Network, x: np.ndarray) -> Measured:
    """Return ``impl``'s Jacobian ``J[b, k, i] = d out_k / d x_i`` at every sample, through its input gradients.

    The loss ``0.5 ||f(x) - y||^2`` has ``dL/dx_b = r_b J(x_b)`` with ``r_b = f(x_b) - y_b``, and the
    residual enters linearly: for targets ``y = 0`` and ``y = -D`` the exact residuals differ by exactly
    ``D``, whatever ``f(x)`` is, so ``dL/dx(y=-D) - dL/dx(y=0) = D J``. Repeating each sample ``n_L`` times
    with ``D`` the identity on each block gives every row of every sample's Jacobian, for any network.
    Each gradient is within its ``gradient_bounds(...).x`` of exact; the float64 subtraction adds
    ``U64 (|g_0| + |g_1|)``. For activations with kinks the caller must exclude ambiguous kinks itself
    (``helpers.assume_no_ambiguous_kinks`` on ``jacobian_bounds``).

    Raises:
        ValueError: ``impl`` provides no input gradient.
    """
    if x.shape[0] * net.widths[-1] > JACOBIAN_ROWS:
        raise ValueError(f"input_jacobian handles batch * n_L <= {JACOBIAN_ROWS}, got {x.shape[0]} x {net.widths[-1]}")
    if not impl.has_input_gradient:
        raise ValueError(f"{impl.name} defines no loss_and_input_gradients: its input Jacobian cannot be measured")
    xr, y0, y1 = jacobian_batches(net, x)
    rows = xr.shape[0]
    padded = lambda a: np.concatenate([a, np.zeros((JACOBIAN_ROWS - rows, a.shape[1]), a.dtype)])
    g0 = impl.loss_and_gradients(net, padded(xr), padded(y0)).x[:rows].astype(np.float64)
    g1 = impl.loss_and_gradients(net, padded(xr), padded(y1)).x[:rows].astype(np.float64)
    b0, b1 = jacobian_bounds(net, x)
    bound = b0.x + b1.x + U64 * (np.abs(g0) + np.abs(g1))
    n_out, (batch, n_in) = net.widths[-1], x.shape
    return Measured((g1 - g0).reshape(batch, n_out, n_in), bound.reshape(batch, n_out, n_in))


def jacobian_batches(net: Network, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the repeated inputs and the two targets ``0`` and ``-D`` that ``input_jacobian`` uses."""
    n_out = net.widths[-1]
    xr = np.repeat(x, n_out, axis=0)
    d = np.tile(np.eye(n_out, dtype=net.dtype), (x.shape[0], 1))
    return xr, np.zeros_like(d), -d


def jacobian_bounds(net: Network, x: np.ndarray):
    """Return the two ``gradient_bounds`` (targets ``0`` and ``-D``) behind ``input_jacobian``."""
    xr, y0, y1 = jacobian_batches(net, x)
    return gradient_bounds(net, xr, y0), gradient_bounds(net, xr, y1)


class Lines(NamedTuple):
    """Triples of equally spaced collinear points ``s (v - w), s v, s (v + w)``, all exactly representable."""

    minus: np.ndarray  # (n, n_0)
    centre: np.ndarray
    plus: np.ndarray
    scales: np.ndarray  # (n,) the s of each triple

    def batch(self) -> np.ndarray:
        return np.concatenate([self.minus, self.centre, self.plus])


# Scales 2^k (k = -6, -4, ..., 18) of the witness lines: from well inside the curved region of a unit-scale
# activation to far out, where relu networks show their homogeneous part and saturating activations their plateaus.
WITNESS_EXPONENTS = tuple(range(-6, 19, 2))


def witness_lines(n_in: int, dtype, *, exponents=WITNESS_EXPONENTS, lines: int = 12, seed: int = 0) -> Lines:
    """Return triples of points along ``lines`` lines at each scale ``2^k``, in ``dtype``, exactly.

    Directions and centres are small integer vectors (entries in [-3, 3], from a fixed seed, so the points are
    the same for every implementation); scaled by a power of two and summed they stay exact in float32 and
    float64, so the three points are exactly collinear and equally spaced. A third of the lines pass through
    the origin.
    """
    rng = np.random.default_rng(seed + 7919 * n_in)
    centres = rng.integers(-3, 4, size=(lines, n_in))
    centres[: max(1, lines // 3)] = 0
    directions = rng.integers(-3, 4, size=(lines, n_in))
    for d in directions:
        if not d.any():
            d[rng.integers(n_in)] = 1
    scale = np.array([2.0**k for k in exponents])
    s = np.repeat(scale, lines)[:, None]
    v = np.tile(centres, (len(exponents), 1))
    w = np.tile(directions, (len(exponents), 1))
    cast = lambda a: a.astype(dtype)
    return Lines(cast(s * (v - w)), cast(s * v), cast(s * (v + w)), np.repeat(scale, lines))


def second_differences(impl, net: Network, lines: Lines, points_bound: np.ndarray | None = None) -> Measured:
    """Return ``f(s(v+w)) - 2 f(s v) + f(s(v-w))`` for every triple, computed from ``impl.forward``.

    For any affine map the exact second difference along equally spaced collinear points is exactly 0, so a
    measured value beyond its bound is a witness that ``f`` is not affine (on that line, hence on R^n).
    Bound: each output is within ``forward_bound`` of exact; the float64 combination adds at most
    ``gamma_3 (|f_+| + 2 |f_0| + |f_-|)`` with float64's ``u`` (three roundings).

    Args:
        points_bound: ``forward_bound(net, lines.batch())`` if the caller already has it (it depends only on
            the network and the points, not on the implementation).
    """
    points = lines.batch()
    out = impl.forward(net, points).astype(np.float64)
    fb = forward_bound(net, points) if points_bound is None else points_bound
    n = lines.minus.shape[0]
    value = out[2 * n :] - 2 * out[n : 2 * n] + out[:n]
    return Measured(value, second_difference_bound(fb, np.abs(out)))


def second_difference_bound(points_bound: np.ndarray, magnitudes: np.ndarray) -> np.ndarray:
    """Return the bound on a measured second difference: ``B_+ + 2 B_0 + B_-`` plus the float64 combination's
    ``gamma_3 (|f_+| + 2 |f_0| + |f_-|)``, given the forward bounds and output magnitudes of ``Lines.batch()``.
    """
    n = points_bound.shape[0] // 3
    b, m = points_bound, magnitudes
    gamma3 = 3 * U64 / (1 - 3 * U64)
    return (b[2 * n :] + 2 * b[n : 2 * n] + b[:n]) + gamma3 * (m[2 * n :] + 2 * m[n : 2 * n] + m[:n])


def reference_second_differences(net: Network, lines: Lines) -> Measured:
    """Return the second differences of the float64 reference (``reference.network.forward`` on the exact
    float64 cast), with the float64 forward bound: an enclosure of the exact second differences that does not
    depend on any implementation under test."""
    wide = net.astype(np.float64)
    return second_differences(
        _Reference(),
        wide,
        lines._replace(
            minus=lines.minus.astype(np.float64),
            centre=lines.centre.astype(np.float64),
            plus=lines.plus.astype(np.float64),
        ),
    )


class _Reference:
    """The float64 reference, with the one method ``second_differences`` calls."""

    name = "reference (float64)"

    @staticmethod
    def forward(net: Network, x: np.ndarray) -> np.ndarray:
        from mlp_crosscheck.reference.network import forward

        return forward(net, x)[0]


# ---------------------------------------------------------------------------------------------------------
# An exact criterion: is the network affine on all of R^n?

# sigma(-t) = sign sigma(t) + const + slope t, exactly, for every real t:
#   tanh is odd; sigmoid(-t) = 1 - sigmoid(t); relu(-t) = relu(t) - t (so relu(t) - relu(-t) = t);
#   gelu(-t) = -t Phi(-t) = -t (1 - Phi(t)) = gelu(t) - t; silu(-t) = -t s(-t) = -t (1 - s(t)) = silu(t) - t;
#   softplus(-t) = log(1 + e^-t) = log(1 + e^t) - t; leaky_relu(-t) = leaky_relu(t) - (1 + 1/100) t
#   (t > 0: -t/100 = t - 101 t / 100). elu has no such identity.
REFLECTIONS: dict[str, tuple[int, Fraction, Fraction]] = {
    "tanh": (-1, Fraction(0), Fraction(0)),
    "sigmoid": (-1, Fraction(1), Fraction(0)),
    "relu": (1, Fraction(0), Fraction(-1)),
    "leaky_relu": (1, Fraction(0), Fraction(-101, 100)),
    "gelu": (1, Fraction(0), Fraction(-1)),
    "silu": (1, Fraction(0), Fraction(-1)),
    "softplus": (1, Fraction(0), Fraction(-1)),
}
# sigma(a t) = a sigma(t) for a > 0 (piecewise linear through the origin).
HOMOGENEOUS = {"relu": Fraction(0), "leaky_relu": Fraction(1, 100)}  # name -> slope on the negative side
# Outer bounds [lo, hi] on sigma over all of R (None: unbounded); rational, rounded outwards:
# min gelu = -0.169971... at z = -0.7518, min silu = -0.278464... at z = -1.2785.
RANGES: dict[str, tuple[Fraction | None, Fraction | None]] = {
    "tanh": (Fraction(-1), Fraction(1)),
    "sigmoid": (Fraction(0), Fraction(1)),
    "relu": (Fraction(0), None),
    "leaky_relu": (None, None),
    "elu": (Fraction(-1), None),
    "softplus": (Fraction(0), None),
    "gelu": (Fraction(-17, 100), None),
    "silu": (Fraction(-28, 100), None),
}


class AffineAnalysis(NamedTuple):
    """The verdict of ``affine_analysis``.

    - affine: True when the network is proved affine on all of R^n (exactly, by the rules below).
    - linear_part: the exact ``K`` (n_0 x n_L) with ``f(x) = x K + f(0)`` when affine, else None.
    - nonlinear_terms: for each output, how many input-dependent nonlinear terms survive (all 0 when affine).
    """

    affine: bool
    linear_part: Exact | None
    nonlinear_terms: tuple[int, ...]


def _interval_sum(coefficients, intervals, constant=Fraction(0)) -> tuple[Fraction | None, Fraction | None]:
    """Return exact bounds on ``constant + sum a_i v_i`` given ``v_i`` in ``[lo_i, hi_i]`` (None: unbounded)."""
    lo, hi = constant, constant
    for a, (l_c, h_c) in zip(coefficients, intervals, strict=True):
        if a == 0:
            continue
        low, high = (l_c, h_c) if a > 0 else (h_c, l_c)
        lo = None if lo is None or low is None else lo + a * low
        hi = None if hi is None or high is None else hi + a * high
    return lo, hi


def _intersect(a, b):
    lo = a[0] if b[0] is None else b[0] if a[0] is None else max(a[0], b[0])
    hi = a[1] if b[1] is None else b[1] if a[1] is None else min(a[1], b[1])
    return lo, hi


def _image(name, interval):
    """Return exact bounds on ``sigma(z)`` for ``z`` in ``interval``."""
    lo, hi = interval
    if name == "identity":
        return interval
    if name in HOMOGENEOUS:
        slope = HOMOGENEOUS[name]
        act = lambda t: None if t is None else (t if t > 0 else slope * t)
        low = act(lo) if lo is not None else (Fraction(0) if name == "relu" else None)
        return low, act(hi)
    return RANGES[name]


def affine_analysis(net: Network) -> AffineAnalysis:
    """Decide, exactly, whether ``net`` is an affine map on all of R^n by symbolic propagation.

    Each unit's value is kept as an exact rational combination of a basis: the inputs ``x_i``, the constant 1,
    and "atoms" -- one per distinct nonlinear term ``sigma(t)``, where ``t`` is itself a combination of earlier
    basis elements. A pre-activation ``z`` is a combination computed exactly from the weights and biases;
    then ``sigma(z)`` is

    - ``z`` itself for identity;
    - exactly evaluated when ``z`` is a rational constant and sigma is relu or leaky_relu;
    - ``z`` or ``slope z`` (``0`` for relu, ``z/100`` for leaky_relu) when exact bounds show ``z >= 0`` or
      ``z <= 0`` on all of R^n (a unit active, or dead, everywhere). The bounds are the tighter of two sound
      interval bounds: one from the combination (each atom's range, ``RANGES``) and one propagated unit by
      unit through the layers (``relu >= 0`` whatever its argument);
    - otherwise an atom, reduced to a canonical one with the exact identities ``REFLECTIONS``
      (``sigma(-t)`` in terms of ``sigma(t)``) and, for relu and leaky_relu, positive homogeneity
      (``sigma(a t) = a sigma(t)``, a > 0), so that duplicate units, units that are another's negation, and
      the pairs ``relu(z) - relu(-z) = z`` meet as the same atom and cancel exactly in later sums.

    The network is affine when no output keeps an input-dependent atom with a nonzero coefficient. That
    direction is a proof (every step is an exact identity); the other is not: an atom that survives might
    cancel through an identity not listed here, which is why the property pairs this criterion with a search
    for a witness and requires them to agree.
    """
    n_in = net.widths[0]
    const = n_in  # column of the constant 1
    depends = [True] * n_in + [False]  # does the basis element depend on x?
    ranges: list[tuple[Fraction | None, Fraction | None]] = [(None, None)] * n_in + [(Fraction(1), Fraction(1))]
    atoms: dict[tuple, int] = {}
    values = np.zeros((n_in, n_in + 1), dtype=np.int64).astype(object)
    for i in range(n_in):
        values[i, i] = 1
    scale = Fraction(1)  # the values' true numbers are values * scale
    unit_ranges = [(None, None)] * n_in  # sound bounds on each unit's value over R^n
    for layer, name in enumerate(net.activations):
        w = exact(net.weights[layer])
        z = w.ints.T @ values  # (n_out, basis)
        z_scale = w.scale * scale
        b = exact(net.biases[layer]) if net.biases is not None else None
        if b is not None:
            common = fraction_gcd(z_scale, b.scale)
            z = z * _as_int(z_scale / common)
            z[:, const] = z[:, const] + b.ints * _as_int(b.scale / common)
            z_scale = common
        z_ranges: list[tuple[Fraction | None, Fraction | None]]
        if name in HOMOGENEOUS or name == "identity":
            z_ranges = _preactivation_ranges(net, layer, unit_ranges, z, z_scale, ranges, const)
            unit_ranges = [_image(name, r) for r in z_ranges]
        else:
            z_ranges = [(None, None)] * z.shape[0]  # not needed: only relu-type units use a sign
            unit_ranges = [RANGES[name]] * z.shape[0]  # type: ignore[list-item]  # an (lo, hi) pair, as _image's
        if name == "identity":
            values, scale = z, z_scale
            continue
        # Each unit's value = coef_z * z_true + sum of extras (column, rational coefficient).
        units = [
            _nonlinear_unit(name, z[j], z_scale, z_ranges[j], depends, ranges, atoms, const) for j in range(z.shape[0])
        ]
        width = len(depends)
        multipliers = [u[0] * z_scale for u in units if u[0] != 0] + [c for u in units for _, c in u[1]]
        new_scale = fraction_gcd(*multipliers)
        new_values = np.zeros((z.shape[0], width), dtype=np.int64).astype(object)
        for j, (coef_z, extras) in enumerate(units):
            if coef_z != 0:
                new_values[j, : z.shape[1]] = z[j] * _as_int(coef_z * z_scale / new_scale)
            for column, c in extras:
                new_values[j, column] += _as_int(c / new_scale)
        values, scale = new_values, new_scale
    surviving = tuple(
        sum(1 for column in range(n_in + 1, values.shape[1]) if depends[column] and values[k, column] != 0)
        for k in range(values.shape[0])
    )
    if any(surviving):
        return AffineAnalysis(False, None, surviving)
    k = Exact(np.ascontiguousarray(values[:, :n_in].T), scale)
    return AffineAnalysis(True, k, surviving)


def _preactivation_ranges(net, layer, unit_ranges, z, z_scale, ranges, const):
    """Return sound bounds on each unit's pre-activation over R^n: the tighter of two interval bounds.

    - propagated: ``sum_i W_ij [lo_i, hi_i] + b_j`` over the previous layer's unit ranges, in float64 rounded
      outwards (each bound padded by ``gamma_{n+2} (sum |W_ij| max(|lo_i|, |hi_i|) + |b_j|)``, which covers
      every rounding of the float64 sum), then converted exactly to Fractions;
    - combined: the exact combination over the basis, each atom in its range (only when the propagated bound
      does not already decide the sign, and the unit has no direct input term).
    """
    w = net.weights[layer].astype(np.float64)
    b = net.biases[layer].astype(np.float64) if net.biases is not None else np.zeros(w.shape[1])
    lo = np.array([-np.inf if r[0] is None else float(r[0]) for r in unit_ranges])
    hi = np.array([np.inf if r[1] is None else float(r[1]) for r in unit_ranges])
    # Fractions to float round to nearest: widen by one ulp so the float interval still contains the exact one.
    lo, hi = np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)
    pos, neg = np.maximum(w, 0), np.minimum(w, 0)
    with np.errstate(invalid="ignore"):
        low = (
            np.where(pos > 0, pos * lo[:, None], 0).sum(axis=0)
            + np.where(neg < 0, neg * hi[:, None], 0).sum(axis=0)
            + b
        )
        high = (
            np.where(pos > 0, pos * hi[:, None], 0).sum(axis=0)
            + np.where(neg < 0, neg * lo[:, None], 0).sum(axis=0)
            + b
        )
        size = np.where(w != 0, np.abs(w) * np.maximum(np.abs(lo), np.abs(hi))[:, None], 0).sum(axis=0) + np.abs(b)
    pad = (w.shape[0] + 2) * U64 / (1 - (w.shape[0] + 2) * U64) * size + np.finfo(np.float64).smallest_normal
    low, high = low - pad, high + pad
    result = []
    for j in range(z.shape[0]):
        propagated = (
            None if not np.isfinite(low[j]) else Fraction(float(low[j])),
            None if not np.isfinite(high[j]) else Fraction(float(high[j])),
        )
        decided = (propagated[0] is not None and propagated[0] >= 0) or (
            propagated[1] is not None and propagated[1] <= 0
        )
        nonzero = [c for c in range(z.shape[1]) if z[j, c] != 0]
        if decided or any(c < const for c in nonzero):
            result.append(propagated)
            continue
        combined = _interval_sum([Fraction(int(z[j, c])) * z_scale for c in nonzero], [ranges[c] for c in nonzero])
        result.append(_intersect(propagated, combined))
    return result


def _nonlinear_unit(name, row, z_scale, z_range, depends, ranges, atoms, const):
    """Return ``(coef_z, extras)`` with ``sigma(z) = coef_z z + sum(c * basis[col] for col, c in extras)``.

    May append new atoms to ``depends``, ``ranges`` and ``atoms`` (the basis grows).
    """
    nonzero = [c for c in range(len(row)) if row[c] != 0]
    input_dependent = any(depends[c] for c in nonzero)
    if name in HOMOGENEOUS:
        negative_slope = HOMOGENEOUS[name]
        if nonzero == [const] or not nonzero:  # a rational constant: evaluate exactly
            value = (Fraction(int(row[const])) * z_scale) if nonzero else Fraction(0)
            return Fraction(0), [(const, value if value > 0 else negative_slope * value)] if value != 0 else []
        lo, hi = z_range
        if lo is not None and lo >= 0:
            return Fraction(1), []  # active everywhere: sigma(z) = z
        if hi is not None and hi <= 0:
            return negative_slope, []  # inactive everywhere: sigma(z) = slope z
    g = math.gcd(*(int(row[c]) for c in nonzero)) if nonzero else 1
    primitive = [int(v) // g for v in row]
    m = g * z_scale  # z_true = m * sum(primitive_c basis_c), m > 0
    lead = next((v for v in primitive if v != 0), 0)
    flip = lead < 0 and name in REFLECTIONS
    if flip:
        primitive = [-v for v in primitive]
    while primitive and primitive[-1] == 0:
        primitive.pop()
    key = (name, tuple(primitive)) if name in HOMOGENEOUS else (name, tuple(primitive), m)
    column = atoms.get(key)
    if column is None:
        column = len(depends)
        atoms[key] = column
        depends.append(input_dependent)
        if name in HOMOGENEOUS:  # the atom is sigma(t), t = z / m or -z / m
            t_range = tuple(None if v is None else v / m for v in z_range)
            t_range = (
                (None if t_range[1] is None else -t_range[1], None if t_range[0] is None else -t_range[0])
                if flip
                else t_range
            )
            ranges.append(_image(name, t_range))
        else:
            ranges.append(RANGES[name])
    if name in HOMOGENEOUS:
        # sigma(z) = m sigma(p) when the lead is positive; else z = -m p' and
        # sigma(-m p') = m sigma(-p') = m (sigma(p') - (1 + slope) p') = m sigma(p') + (1 + slope) z.
        if not flip:
            return Fraction(0), [(column, m)]
        return -REFLECTIONS[name][2], [(column, m)]
    if not flip:
        return Fraction(0), [(column, Fraction(1))]
    # z = -t with t = m p' (the atom's argument): sigma(z) = sign sigma(t) + const + slope t = ... - slope z.
    sign, constant, slope = REFLECTIONS[name]
    extras = [(column, Fraction(sign))] + ([(const, constant)] if constant != 0 else [])
    return -slope, extras
