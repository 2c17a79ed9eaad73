"""Family 3's checks: complex step and central differences (the claim: ``properties/test_finite_differences.py``).

Complex step (every entry). For a function analytic along the perturbed entry, ``Im f(theta + i h) / h``
is ``f'(theta)`` up to ``h^2 |f'''| / 6`` and involves no subtraction, so it is exact to the rounding of
the evaluation. Long double reaches 2^-16382, so we take ``h = 2^-4000``: the truncation term, below
``2^-8000 |f'''|``, vanishes when the result is rounded to float64 (smallest number 2^-1074). (With
``h = 2^-200`` it showed, as 1e-125, where the true gradient is exactly 0: a zero last layer and ``y = 0``.)
We evaluate the network in ``np.clongdouble`` (64-bit significand on x86-64) with each activation's
complex-valued formula, written below and independent of the reference's derivative formulas. Piecewise
activations (relu, leaky_relu, elu) take the branch of the real part, which is the branch the hand-derived
gradient takes wherever that is determined (ambiguous kinks are rejected; at an exact kink both take the left
branch, the reference's convention). Error allowed: the hand gradient's float64 bound plus one more for the
complex-step side (``Bounds.agree()``); the latter's actual error is ~2^-11 of it (unit roundoff 2^-64),
except that gelu's ``Phi`` comes from float64 ``ndtr`` (a float64 implementation's error, which that one
bound covers). Where long double is float64 (some platforms), the same argument holds with a factor 1.

Central differences (sampled entries). ``D = (L(theta+h) - L(theta-h)) / (2h)`` with ``h`` relative to the
entry's magnitude, against a derived error bound, never a fitted one. Let ``t_+ = fl(theta + h)``,
``t_- = fl(theta - h)``, ``c = (t_+ + t_-)/2``, ``w = (t_+ - t_-)/2`` (exact rationals). Taylor's theorem
about ``c`` (``f`` is C^3 on the interval when no pre-activation crosses a point where sigma is not C^3)::

    |D_computed - f'(theta)| <= (beta_+ + beta_-) / (2w)       the loss's rounding at t_+- (gradient_bounds)
                              + 4 u |D_computed|                subtraction, division, rounding of 2w
                              + w^2 / 6  sup |f'''|             truncation
                              + |c - theta| sup |f''|           c is not exactly theta

``sup |f''|`` and ``sup |f'''|`` over the interval come from propagating derivative magnitudes along the
perturbation (Faa di Bruno: ``(s o z)'' = s'' z'^2 + s' z''``, ``(s o z)''' = s''' z'^3 + 3 s'' z' z'' + s' z'''``)
with the global bounds of ``|sigma'|, |sigma''|, |sigma'''|``, and ``f = 0.5 sum r^2`` gives
``f'' = sum r'^2 + r r''``, ``f''' = sum 3 r' r'' + r r'''``. An entry whose interval lets a pre-activation
reach a kink (or elu's 0, where sigma'' jumps) is not checked by central differences (complex step covers it).
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st
from mlp_crosscheck.backends.contract import Result
from mlp_crosscheck.properties import helpers
from mlp_crosscheck.properties.assertions import assert_arrays_within_bound, assert_gradients_within_bounds
from mlp_crosscheck.properties.tolerances import CONSTANTS, forward_bound, gradient_bounds, unit_roundoff
from mlp_crosscheck.reference import network
from mlp_crosscheck.reference.activations import LEAKY_RELU_SLOPE
from mlp_crosscheck.reference.network import Network
from scipy import special

FLOAT64 = np.dtype(np.float64)

# -- the parameters: every entry of every weight matrix, bias vector and of the input -------------------------


class Group(NamedTuple):
    """One array of parameters: ``kind`` is "W", "b" or "x"; ``layer`` is 0-based (0 for x)."""

    kind: str
    layer: int

    def label(self) -> str:
        return "x" if self.kind == "x" else f"{self.kind}_{self.layer + 1}"


def groups(net: Network) -> list[Group]:
    """Return every parameter group of ``net`` and its input, in a fixed order."""
    found = [Group("W", layer) for layer in range(net.depth)]
    if net.biases is not None:
        found += [Group("b", layer) for layer in range(net.depth)]
    return [*found, Group("x", 0)]


def _array(group: Group, net: Network, x: np.ndarray) -> np.ndarray:
    if group.kind == "x":
        return x
    arrays = net.weights if group.kind == "W" else net.biases
    assert arrays is not None, "a bias group of a network without biases"
    return arrays[group.layer]


def _entry(group: Group, quantities) -> np.ndarray:
    """Return the array for ``group`` from a Gradients/Result/Bounds-like tuple (weights, biases, x)."""
    return {
        "W": lambda: quantities.weights[group.layer],
        "b": lambda: quantities.biases[group.layer],
        "x": lambda: quantities.x,
    }[group.kind]()


def _with_entry(group: Group, net: Network, x: np.ndarray, index: tuple, value: float) -> tuple[Network, np.ndarray]:
    """Return ``(net, x)`` with one entry of ``group`` replaced by ``value``."""
    if group.kind == "x":
        x = x.copy()
        x[index] = value
        return net, x
    weights, biases = list(net.weights), None if net.biases is None else list(net.biases)
    target = weights if group.kind == "W" else biases
    assert target is not None, "a bias group of a network without biases"
    target[group.layer] = target[group.layer].copy()
    target[group.layer][index] = value
    return Network(tuple(weights), None if biases is None else tuple(biases), net.activations), x


def _hand_derived(net, x, y, gradients) -> Result:
    loss, g = gradients(net, x, y)
    return Result(loss, g.weights, g.biases, g.x)


# -- complex step ---------------------------------------------------------------------------------------------

CS_STEP = np.longdouble(2.0) ** -4000  # a power of two: dividing by it is exact; see the module docstring
_LD_SQRT_2PI = np.sqrt(np.longdouble(2) * np.longdouble("3.14159265358979323846264338327950288"))
_LD_SLOPE = np.longdouble(LEAKY_RELU_SLOPE)  # the float64 0.01 the reference multiplies by, exactly


def _csigmoid(z):
    return 1 / (1 + np.exp(-z))


def _ctanh(z):
    # tanh(a + ib) = (sinh 2a + i sin 2b) / (cosh 2a + cos 2b): the imaginary part sin(2b) / (cosh 2a + cos 2b)
    # has no cancellation at any a (no library complex tanh involved).
    a, b = z.real, z.imag
    den = np.cosh(2 * a) + np.cos(2 * b)
    return (np.sinh(2 * a) / den) + 1j * (np.sin(2 * b) / den)


def _cgelu(z):
    # z Phi(z) with Phi(a + ib) = Phi(a) + i b phi(a) + O(b^2), phi = Phi' the normal density (the definition
    # of Phi, not the reference's product-rule gelu'). b = O(2^-4000), so the O(b^2) term is far below
    # rounding. Phi(a) is float64 ndtr: there is no long-double erfc.
    a, b = z.real, z.imag
    phi = np.exp(-a * a / 2) / _LD_SQRT_2PI
    cdf = special.ndtr(a.astype(np.float64)).astype(np.longdouble)
    return z * (cdf + 1j * (b * phi))


COMPLEX_ACTIVATIONS = {
    "identity": lambda z: z,
    "tanh": _ctanh,
    "sigmoid": _csigmoid,
    "relu": lambda z: np.where(z.real > 0, z, 0),
    "leaky_relu": lambda z: np.where(z.real > 0, z, _LD_SLOPE * z),
    "elu": lambda z: np.where(z.real > 0, z, np.exp(np.minimum(z.real, 0) + 1j * z.imag) - 1),
    "softplus": lambda z: np.log(1 + np.exp(z)),
    "gelu": _cgelu,
    "silu": lambda z: z * _csigmoid(z),
}


def _cmatmul(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    # A complex matrix times a real one: two real long-double products (much cheaper than complex ones).
    if np.iscomplexobj(w):
        return a @ w
    return (a.real @ w) + 1j * (a.imag @ w)


def complex_step_gradients(net: Network, x: np.ndarray, y: np.ndarray) -> Result:
    """Return the loss and every gradient of ``0.5 sum (forward(x) - y)^2`` by complex step, in long double.

    For each group, all its entries are perturbed at once along a leading axis (one network per entry).
    """
    ld = np.longdouble
    weights = [w.astype(ld) for w in net.weights]
    biases = None if net.biases is None else [b.astype(ld) for b in net.biases]
    x_ld, y_ld = x.astype(ld), y.astype(ld)

    def loss_along(group: Group | None) -> np.ndarray:
        bump = 0
        if group is not None:
            shape = _array(group, net, x).shape
            count = int(np.prod(shape))
            # One unit perturbation i*h per entry: eye(count) reshaped onto the array, along a leading axis.
            bump = (1j * CS_STEP) * np.eye(count, dtype=ld).reshape((count, *shape))
        a = x_ld + bump if group is not None and group.kind == "x" else x_ld.astype(np.clongdouble)
        for layer, name in enumerate(net.activations):
            w = weights[layer] + bump if group == Group("W", layer) else weights[layer]
            z = _cmatmul(a, w)
            if biases is not None:
                b = biases[layer] + bump if group == Group("b", layer) else biases[layer]
                z = z + (b[:, None, :] if np.ndim(b) == 2 else b)
            a = COMPLEX_ACTIVATIONS[name](z)
        r = a - y_ld
        return 0.5 * (r * r).sum(axis=(-2, -1))  # r*r, not |r|^2: the complex extension of the loss

    def gradient(group: Group) -> np.ndarray:
        shape = _array(group, net, x).shape
        return (loss_along(group).imag / CS_STEP).astype(np.float64).reshape(shape)

    plain = loss_along(None)  # no entry perturbed: the loss itself
    grads = {g: gradient(g) for g in groups(net)}
    return Result(
        float(plain.real),
        tuple(grads[Group("W", layer)] for layer in range(net.depth)),
        None if biases is None else tuple(grads[Group("b", layer)] for layer in range(net.depth)),
        grads[Group("x", 0)],
    )


def check_gradients_match_complex_step(net, x, y, gradients=network.loss_and_gradients) -> None:
    """Assert the hand-derived gradients (``gradients``, default the reference) agree with complex step.

    Args:
        gradients: ``(net, x, y) -> (loss, reference.network.Gradients)``; a planted bug is passed here.
    """
    bounds = gradient_bounds(net, x, y)
    helpers.assume_no_ambiguous_kinks(bounds)
    with helpers.reproduction_on_failure(net, x, y):
        # Hand-derived backprop (float64).
        hand = _hand_derived(net, x, y, gradients)
        # Complex step (long double, every entry).
        stepped = complex_step_gradients(net, x, y)
        # Compare: the hand gradient's bound plus one more for the complex-step side.
        context = f"hand-derived vs complex step; network {net.widths} {list(net.activations)}"
        assert_gradients_within_bounds(hand, stepped, bounds.agree(), context)


# -- central differences --------------------------------------------------------------------------------------

FD_RELATIVE_STEP = 2.0**-17  # ~ u^(1/3) = 6e-6, the step that balances rounding (u/h) against truncation (h^2)
FD_STEP_FLOOR = 2.0**-4  # the magnitude used for entries smaller than this (exact zeros included)

# sup |sigma'''| (sup |sigma'| and sup |sigma''| are tolerances.CONSTANTS), rounded up; derivations:
# tanh''' = -2 + 8 t^2 - 6 t^4 (t = tanh z), largest in magnitude at z = 0: 2; sigmoid''' = s(1-s)(1 - 6 s(1-s)),
# at z = 0: -1/8; softplus''' = sigmoid'', 1/(6 sqrt 3) = 0.0962250; gelu''' = phi(z) (z^3 - 4z), largest at
# |z| = 0.79229: 0.778770; silu''' largest at |z| = 1.03196: 0.308182 (both located with 40-digit mpmath and
# its root finder on silu'''' and gelu''''); elu''' = e^z <= 1 for z < 0 and 0 for z > 0.
SUP_THIRD_DERIVATIVE = {
    "identity": 0.0,
    "tanh": 2.0,
    "sigmoid": 0.125,
    "relu": 0.0,
    "leaky_relu": 0.0,
    "elu": 1.0,
    "softplus": 0.09623,
    "gelu": 0.7788,
    "silu": 0.3082,
}
# Where sigma is not C^3: the kinks of relu and leaky_relu, and 0 for elu (elu'' jumps from 1 to 0 there).
NOT_SMOOTH_AT = {"relu": 0.0, "leaky_relu": 0.0, "elu": 0.0}


class _ForwardMagnitudes(NamedTuple):
    """The float64 forward pass at theta and its per-layer error bounds (E_Z and E_A of tolerances)."""

    preactivations: tuple[np.ndarray, ...]
    inputs: tuple[np.ndarray, ...]
    out: np.ndarray
    e_z: tuple[np.ndarray, ...]
    e_a: tuple[np.ndarray, ...]


def _forward_magnitudes(net: Network, x: np.ndarray) -> _ForwardMagnitudes:
    out, cache = network.forward(net, x)
    e_z, e_a = [], []
    for layer in range(net.depth):
        weights, names = net.weights[: layer + 1], net.activations[: layer + 1]
        biases = None if net.biases is None else net.biases[: layer + 1]
        e_a.append(forward_bound(Network(weights, biases, names), x))
        # forward_bound of a last layer with identity is exactly that layer's E_Z (identity adds no error).
        e_z.append(forward_bound(Network(weights, biases, (*names[:-1], "identity")), x))
    return _ForwardMagnitudes(cache.preactivations, cache.inputs, out, tuple(e_z), tuple(e_a))


def loss_derivative_bounds(net, x, y, mags: _ForwardMagnitudes, group: Group, index: tuple, h: float):
    """Return ``(sup |f''|, sup |f'''|)`` of the loss along one entry over ``[theta - h, theta + h]``.

    Returns None when a pre-activation that moves with the entry can reach a point where its activation is
    not C^3 within the interval (Taylor's theorem does not apply there).
    """
    z_l = mags.preactivations[group.layer]
    p1, p2, p3 = np.zeros_like(z_l), np.zeros_like(z_l), np.zeros_like(z_l)
    if group.kind == "W":  # dZ_l/dW_l[i, j] = A_{l-1}[:, i] in column j (A_{l-1} does not move)
        i, j = index
        a_prev = mags.inputs[group.layer][:, i]
        e_prev = mags.e_a[group.layer - 1][:, i] if group.layer else 0.0
        p1[:, j] = np.abs(a_prev) + e_prev
    elif group.kind == "b":  # dZ_l/db_l[j] = 1 in column j
        p1[:, index[0]] = 1.0
    else:  # dZ_1/dx[s, i] = W_1[i, :] in row s
        s, i = index
        p1[s, :] = np.abs(net.weights[0][i, :])
    q1 = q2 = q3 = p1  # set in the loop's first pass, before any use
    for layer in range(group.layer, net.depth):
        if layer > group.layer:
            w_abs = np.abs(net.weights[layer])
            p1, p2, p3 = q1 @ w_abs, q2 @ w_abs, q3 @ w_abs  # Z = A W + b: each derivative is A^(m) W
        name = net.activations[layer]
        if name in NOT_SMOOTH_AT:
            # The exact Z(t) stays within h sup|Z'| of the exact Z(theta), itself within E_Z of the computed one.
            reach = h * p1 + mags.e_z[layer]
            if ((p1 > 0) & (np.abs(mags.preactivations[layer] - NOT_SMOOTH_AT[name]) <= reach)).any():
                return None
        s1, s2, s3 = CONSTANTS[name].lip, CONSTANTS[name].lip_derivative, SUP_THIRD_DERIVATIVE[name]
        q1 = s1 * p1
        q2 = s2 * p1**2 + s1 * p2
        q3 = s3 * p1**3 + 3 * s2 * p1 * p2 + s1 * p3
    u = unit_roundoff(FLOAT64)
    r = mags.out - y
    r0 = np.abs(r) * (1 + 2 * u) + 2 * mags.e_a[-1] + h * q1  # sup |r| over the interval
    second = float(np.sum(q1**2 + r0 * q2))
    third = float(np.sum(3 * q1 * q2 + r0 * q3))
    return second, third


def central_difference(net, x, y, group: Group, index: tuple, mags: _ForwardMagnitudes):
    """Return ``(D, error bound)`` for the loss derivative along one entry, or None where it does not apply."""
    u = unit_roundoff(FLOAT64)
    theta = float(_array(group, net, x)[index])
    h = FD_RELATIVE_STEP * max(abs(theta), FD_STEP_FLOOR)
    t_plus, t_minus = theta + h, theta - h
    # Exact rationals: the half-width and the midpoint's offset from theta.
    half_width = (Fraction(t_plus) - Fraction(t_minus)) / 2
    offset = abs((Fraction(t_plus) + Fraction(t_minus)) / 2 - Fraction(theta))
    reach = float(max(Fraction(t_plus) - Fraction(theta), Fraction(theta) - Fraction(t_minus))) * (1 + 4 * u)
    derivatives = loss_derivative_bounds(net, x, y, mags, group, index, reach)
    if derivatives is None:
        return None
    second, third = derivatives
    values, rounding = [], 0.0
    for t in (t_plus, t_minus):
        net_t, x_t = _with_entry(group, net, x, index, t)
        values.append(network.loss(network.forward(net_t, x_t)[0], y))
        rounding += gradient_bounds(net_t, x_t, y).loss
    d = (values[0] - values[1]) / float(2 * half_width)
    w = float(half_width) * (1 + 2 * u)
    bound = rounding / (2 * float(half_width)) * (1 + 4 * u) + 4 * u * abs(d)
    bound += w * w / 6 * third + float(offset) * (1 + 2 * u) * second
    return d, bound


def check_gradients_match_central_differences(
    net, x, y, entries: dict[Group, list[tuple]] | None = None, gradients=network.loss_and_gradients
) -> int:
    """Assert the hand-derived gradient agrees with central differences at ``entries`` (default: all).

    Returns the number of entries checked (the others' intervals reach a kink).

    Args:
        entries: ``{group: [index, ...]}`` to check; None checks every entry of every group.
        gradients: ``(net, x, y) -> (loss, reference.network.Gradients)``; a planted bug is passed here.
    """
    bounds = gradient_bounds(net, x, y)
    helpers.assume_no_ambiguous_kinks(bounds)
    mags = _forward_magnitudes(net, x)
    if entries is None:
        entries = {g: list(np.ndindex(_array(g, net, x).shape)) for g in groups(net)}
    checked = 0
    with helpers.reproduction_on_failure(net, x, y):
        # Hand-derived backprop (float64).
        hand = _hand_derived(net, x, y, gradients)
        for group, indices in entries.items():
            for index in indices:
                # Central difference with its derived error bound.
                found = central_difference(net, x, y, group, index, mags)
                if found is None:
                    continue
                d, d_bound = found
                checked += 1
                # Compare: the hand gradient's own bound plus the central difference's.
                allowed = _entry(group, bounds)[index] + d_bound
                name = f"dL/d{group.label()}{list(index)}"
                assert_arrays_within_bound(
                    name, _entry(group, hand)[index], d, allowed, "hand-derived vs central difference"
                )
    return checked


@st.composite
def sampled_entries(draw, net: Network, x: np.ndarray, per_group: int = 3) -> dict[Group, list[tuple]]:
    """Return a strategy for up to ``per_group`` distinct entries of every parameter group (and of x)."""
    chosen = {}
    for group in groups(net):
        shape = _array(group, net, x).shape
        size = int(np.prod(shape))
        flat = draw(
            st.lists(st.integers(0, size - 1), min_size=1, max_size=min(per_group, size), unique=True),
            label=f"entries of {group.label()}",
        )
        chosen[group] = [tuple(int(v) for v in np.unravel_index(f, shape)) for f in flat]
    return chosen
