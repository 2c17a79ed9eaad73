"""Family 5: nonlinear networks do not collapse to one affine map -- unless they are degenerate, and then they do.

The post's second claim, stated so that it holds for every example. "Not affine" is a statement about all of
R^n, so it is checked on points we choose (``linear_maps.witness_lines``: equally spaced collinear triples at
scales 2^-6 to 2^18), not on the data: any network is affine on n_0 + 1 points in general position, and a
relu network whose units are all active on the data is affine there (``test_all_active_relu_network_...``).

For every drawn network exactly one of three things holds, and the main property checks which:

- provably affine: ``linear_maps.affine_analysis`` proves, in exact arithmetic, that the network is affine on
  all of R^n (zero, dead or unused units, duplicate units with cancelling outgoing weights, flipped pairs such
  as ``relu(z) - relu(-z) = z``, outputs that ignore their inputs...). Then the implementation must equal
  ``f(0) + x K`` (the criterion's exact K) on every witness point, within its rounding bound, and the float64
  reference must show no second difference beyond its bound (the criterion is checked independently).
- visibly not affine: the float64 reference's second differences, with their rigorous bound, prove that some
  exact second difference exceeds twice the bound a correct implementation carries. Then it must show
  that nonlinearity there: its measured second difference must exceed its bound (a witness). (The criterion
  said "not affine", and the reference confirms it: the criterion is right in this direction too.)
- neither: the criterion cannot prove degeneracy (a relu unit can be dead on all of R^n because of the
  geometry of its inputs' regions, which no interval argument sees) and the nonlinearity is not visible at
  the implementation's precision on the witness lines. Such examples are rejected by the named assume
  ``assume_decided``, counted in ``helpers.REJECTIONS``, and shown as a Hypothesis event.

The dichotomy is drawn from ``well_scaled_networks`` (moderate magnitudes, with every structural regime:
zeros, repeats, duplicate and flipped units). The degenerate families get their own tests, over every value
regime of ``networks``, showing that they really do collapse (on R^n, or on the data, as appropriate).
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import event as _hypothesis_event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from mlp_crosscheck.properties import helpers, strategies
from mlp_crosscheck.properties.assertions import assert_arrays_within_bound
from mlp_crosscheck.properties.linear_maps import (
    U64,
    Exact,
    Lines,
    Measured,
    affine_analysis,
    exact,
    exact_affine_values,
    exact_collapse,
    exact_forward,
    reference_second_differences,
    second_difference_bound,
    second_differences,
    witness_lines,
)
from mlp_crosscheck.properties.tolerances import forward_bound
from mlp_crosscheck.reference import activations as vocabulary
from mlp_crosscheck.reference.network import Network

NONLINEAR = tuple(name for name in vocabulary.NAMES if name != "identity")
NONLINEAR_PARAMS = [pytest.param(name, id=name) for name in (*NONLINEAR, helpers.MIXED)]
# sigma(z) + parity * sigma(-z) is affine in z: parity -1 (relu(z) - relu(-z) = z, ...) or +1 (tanh, sigmoid).
# (value of sigma(z) + parity sigma(-z)) = slope z + constant:
PAIR_IDENTITIES: dict[str, tuple[int, Fraction, Fraction]] = {
    "relu": (-1, Fraction(1), Fraction(0)),
    "leaky_relu": (-1, Fraction(101, 100), Fraction(0)),
    "gelu": (-1, Fraction(1), Fraction(0)),
    "silu": (-1, Fraction(1), Fraction(0)),
    "softplus": (-1, Fraction(1), Fraction(0)),
    "tanh": (1, Fraction(0), Fraction(0)),
    "sigmoid": (1, Fraction(0), Fraction(1)),
}
PAIR_PARAMS = [pytest.param(name, id=name) for name in PAIR_IDENTITIES]


# ---------------------------------------------------------------------------------------------------------
# Checks (plain functions, so that tests/ can run them on planted bugs).


class NetworkFacts(NamedTuple):
    """What the dichotomy needs about a network that does not depend on the implementation under test."""

    analysis: object  # linear_maps.AffineAnalysis
    lines: Lines
    reference: Measured  # the float64 reference's second differences: an enclosure of the exact ones
    points_bound: np.ndarray  # forward_bound(net, lines.batch()) in the network's dtype
    # The largest bound a correct implementation's measured second differences can carry: its own outputs
    # are within points_bound of exact, hence within 2 points_bound of the reference's.
    correct_bound: np.ndarray


_FACTS: dict[bytes, NetworkFacts] = {}


def _key(net: Network) -> bytes:
    parts = [*net.weights, *(net.biases or ())]
    return repr((net.activations, [a.shape for a in parts], net.biases is None, net.dtype.name)).encode() + b"".join(
        a.tobytes() for a in parts
    )


def network_facts(net: Network) -> NetworkFacts:
    """Return the exact analysis and the reference's second differences of ``net``, cached by its contents.

    A derandomized run draws the same networks for every implementation, so each is analysed once.
    """
    key = _key(net)
    if key not in _FACTS:
        if len(_FACTS) > 2048:
            _FACTS.clear()
        lines = witness_lines(net.widths[0], net.dtype)
        points_bound = forward_bound(net, lines.batch())
        magnitudes = np.abs(helpers.reference_forward(net, lines.batch())) + 2 * points_bound
        _FACTS[key] = NetworkFacts(
            affine_analysis(net),
            lines,
            reference_second_differences(net, lines),
            points_bound,
            second_difference_bound(points_bound, magnitudes),
        )
    return _FACTS[key]


def analyse(net: Network):
    """Return ``affine_analysis(net)`` (cached)."""
    return network_facts(net).analysis


def event(message: str) -> None:
    """Record a Hypothesis event when running under Hypothesis (the checks also run outside it, in tests/)."""
    if currently_in_test_context():
        _hypothesis_event(message)


class UndecidedError(ValueError):
    """Raised outside Hypothesis when ``assume_decided`` would reject the example."""


def assume_decided(visible: np.ndarray) -> None:
    """Reject an example that the criterion cannot prove degenerate and whose nonlinearity is not visible.

    Such a network may be affine for a reason the exact criterion does not know (a relu unit dead on all of
    R^n by the geometry of its inputs), or non-affine only below the implementation's precision or outside
    the witness lines. Neither verdict can be asserted of it. Counted in ``helpers.REJECTIONS``; outside a
    Hypothesis test (a fixed case in tests/), raises ``UndecidedError`` instead.
    """
    if visible.any():
        return
    helpers.REJECTIONS["undecided nonlinearity"] += 1
    if not currently_in_test_context():
        raise UndecidedError("not provably affine, and no nonlinearity visible at this precision: undecided")
    event("rejected: not provably affine, and no nonlinearity visible at this precision")
    assume(False)


def check_network_is_witnessed_or_provably_affine(impl, net: Network, analyse=analyse) -> str:
    """Assert the dichotomy of the module docstring for ``net``; return which side holds.

    Args:
        analyse: the exact criterion (``affine_analysis``); a parameter so that tests can plant a wrong one.
    """
    facts = network_facts(net)
    analysis, lines, reference = analyse(net), facts.lines, facts.reference
    with helpers.reproduction_on_failure(net):
        if analysis.affine:
            context = f"the exact criterion proves {list(net.activations)} {net.widths} affine on R^n"
            # Independent check of the criterion: no exact second difference may be nonzero.
            assert_arrays_within_bound(
                "float64 reference second differences",
                reference.value,
                np.zeros_like(reference.value),
                reference.bound,
                context,
            )
            check_forward_is_affine_map(impl, net, lines.batch(), analysis.linear_part, context)
            event("provably affine (degenerate)")
            return "provably affine"
        # |exact| >= |reference| - bound_reference. Where that exceeds twice the largest bound a correct
        # implementation can carry (computed without it, so a wrong implementation cannot widen it), a correct
        # implementation's measured value exceeds its own bound: it must show the nonlinearity there.
        visible = np.abs(reference.value) - reference.bound > 2 * facts.correct_bound
        assume_decided(visible)
        measured = second_differences(impl, net, lines, facts.points_bound)
        lines_at = np.nonzero(visible.any(axis=1))[0]
        _assert_witnessed(measured, visible, impl, net, lines)
        event(f"witnessed (first at scale 2^{int(np.log2(lines.scales[lines_at[0]]))})")
        return "witnessed"


def _assert_witnessed(measured, visible, impl, net, lines) -> None:
    hidden = visible & ~(np.abs(measured.value) > measured.bound)
    if hidden.any():
        line, out = (int(i) for i in np.argwhere(hidden)[0])
        raise AssertionError(
            f"{helpers.describe(impl, net)}: the float64 reference proves the exact second difference at "
            f"s={lines.scales[line]:g}, points {lines.minus[line]} | {lines.centre[line]} | {lines.plus[line]}, "
            f"output {out}, exceeds twice this implementation's bound, but the implementation measures "
            f"{measured.value[line, out]:.6e} within its bound {measured.bound[line, out]:.3e}: it computes an "
            f"affine map there ({int(hidden.sum())} of {int(visible.sum())} such triples)"
        )


def check_forward_is_affine_map(impl, net: Network, points: np.ndarray, k: Exact, context: str = "") -> None:
    """Assert ``impl.forward(p) == impl.forward(0) + p K`` at every point, within the rounding bounds.

    Bound: each forward value is within ``forward_bound`` of exact; ``p K`` is exact, rounded once to float64;
    the two float64 additions add ``U64 (|f(0)| + |p K|)`` each, at most.
    """
    zero = np.zeros((1, points.shape[1]), dtype=points.dtype)
    batch = np.concatenate([zero, points])
    out = impl.forward(net, batch).astype(np.float64)
    fb = forward_bound(net, batch)
    pk, pk_bound = exact_affine_values(points, k)
    predicted = out[:1] + pk
    bound = fb[1:] + fb[:1] + pk_bound + 2 * U64 * (np.abs(out[:1]) + np.abs(pk)) + U64 * np.abs(out[1:])
    assert_arrays_within_bound(
        "forward(p) against forward(0) + p K", out[1:], predicted, bound, context or helpers.describe(impl, net)
    )


def check_network_is_constant(impl, net: Network, x: np.ndarray, analyse=analyse) -> None:
    """Assert ``net`` is constant on R^n: the criterion proves it (K = 0) and ``impl`` agrees on ``x``.

    The constant is the float64 reference's output at 0, within its float64 forward bound of exact; every row of
    ``impl.forward(net, x)`` must be within its own forward bound plus that one of the constant.
    """
    analysis = analyse(net)
    with helpers.reproduction_on_failure(net, x):
        if not analysis.affine or not all(v == 0 for v in analysis.linear_part.ints.ravel()):
            raise AssertionError(
                f"the exact criterion does not prove {net.widths} {list(net.activations)} constant "
                f"(affine: {analysis.affine}, surviving nonlinear terms per output {analysis.nonlinear_terms})"
            )
        zero = np.zeros((1, net.widths[0]), dtype=net.dtype)
        constant = helpers.reference_forward(net, zero)
        bound = forward_bound(net, x) + forward_bound(net.astype(np.float64), zero.astype(np.float64))
        actual = impl.forward(net, x)
        assert_arrays_within_bound(
            "forward output of a constant network",
            actual,
            np.broadcast_to(constant, actual.shape),
            bound,
            helpers.describe(impl, net),
        )


def check_network_equals_affine_map(impl, net: Network, x: np.ndarray, k: Exact, c: Exact, analyse=analyse) -> None:
    """Assert ``impl.forward(net, x) == x K + c`` (exact K, c) and that the criterion proves the same K."""
    analysis = analyse(net)
    with helpers.reproduction_on_failure(net, x):
        if not analysis.affine:
            raise AssertionError(
                f"the exact criterion does not prove {net.widths} {list(net.activations)} affine "
                f"(surviving nonlinear terms per output {analysis.nonlinear_terms})"
            )
        difference = analysis.linear_part + (-k)
        if not all(v == 0 for v in difference.ints.ravel()):
            found, exact_k = analysis.linear_part.to_float64(), k.to_float64()
            raise AssertionError(f"the criterion's K differs from the exact K:\n{found}\n!=\n{exact_k}")
        expected, rounding = exact_affine_values(x, k, c)
        actual = impl.forward(net, x)
        bound = forward_bound(net, x) + rounding
        assert_arrays_within_bound(
            "forward output against x K + c", actual, expected, bound, helpers.describe(impl, net)
        )


# ---------------------------------------------------------------------------------------------------------
# Strategies for this module.


@st.composite
def well_scaled_nonlinear_networks(draw, impl, activation: str, dtype) -> Network:
    """Draw a well-scaled network whose activations are ``activation`` (or mixed, among ``impl``'s)."""
    if activation != helpers.MIXED:
        return draw(strategies.well_scaled_networks(activations=activation, dtype=dtype), label="net")
    widths = draw(strategies.architectures(), label="widths")
    supported = [n for n in vocabulary.NAMES if n in impl.activations]
    names = tuple(draw(st.sampled_from(supported)) for _ in widths[1:])
    return draw(strategies.well_scaled_networks(activations=names, dtype=dtype, widths=widths), label="net")


def _replace_layers(net: Network, layer: int, w_in, b_in, w_out) -> Network:
    weights, biases = list(net.weights), None if net.biases is None else list(net.biases)
    weights[layer], weights[layer + 1] = w_in, w_out
    if biases is not None:
        biases[layer] = b_in
    return Network(weights, biases, net.activations)


@st.composite
def degenerate_cases(draw, impl, kind: str, dtype) -> strategies.Case:
    """Draw a network made degenerate in the way ``kind`` names, with inputs from every value regime.

    One activation for the whole network is drawn from the nonlinear ones ``impl`` supports (the mechanism
    does not depend on it); depth 2 (1 or 2 for ``output_ignores_hidden``: one layer after the degenerate one
    is all the mechanism needs, and each further depth costs a JAX compilation per activation); weights and
    inputs come from every regime of ``networks`` and ``batches``.

    - ``dead_or_unused``: every unit of the first hidden layer has zero incoming weights (its value is the
      constant sigma(b)) or zero outgoing weights (nothing reads it): the network is constant.
    - ``cancelling_duplicates``: the first hidden layer is duplicated, unit for unit, and the copies' outgoing
      weights are the originals' negated: the next layer sees only its bias, so the network is constant.
    - ``output_ignores_hidden``: the last layer's weights are zero: the output is sigma(b_L), constant.
    """
    min_depth = 1 if kind == "output_ignores_hidden" else 2
    max_width = 8 if kind == "cancelling_duplicates" else 16
    widths = draw(strategies.architectures(min_depth=min_depth, max_depth=2, max_width=max_width), label="widths")
    supported = [n for n in NONLINEAR if n in impl.activations]
    activation = draw(st.sampled_from(supported), label="activation")
    net = draw(strategies.networks(activations=activation, dtype=dtype, widths=widths), label="net")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="construction seed"))
    if kind == "dead_or_unused":
        w_in, w_out = net.weights[0].copy(), net.weights[1].copy()
        dead = rng.random(w_in.shape[1]) < 0.5
        w_in[:, dead] = 0
        w_out[~dead, :] = 0
        net = _replace_layers(net, 0, w_in, None if net.biases is None else net.biases[0], w_out)
    elif kind == "cancelling_duplicates":
        w_in = np.concatenate([net.weights[0], net.weights[0]], axis=1)
        b_in = None if net.biases is None else np.concatenate([net.biases[0], net.biases[0]])
        w_out = np.concatenate([net.weights[1], -net.weights[1]], axis=0)
        net = _replace_layers(net, 0, w_in, b_in, w_out)
    elif kind == "output_ignores_hidden":
        weights = [*net.weights[:-1], np.zeros_like(net.weights[-1])]
        net = Network(weights, net.biases, net.activations)
    else:
        raise ValueError(kind)
    x = draw(strategies.batches(net), label="x")
    return strategies.Case(net, x, np.zeros((x.shape[0], net.widths[-1]), dtype))


@st.composite
def flipped_pair_cases(draw, activation: str, dtype) -> tuple[strategies.Case, Exact, Exact]:
    """Draw a network whose first layer is pairs ``(z, -z)`` through ``activation``, combined so they are affine.

    Layer 1 has units ``[W, -W]`` (biases ``[b, -b]``), layer 2 reads them with ``[V; parity V]``: each pair
    contributes ``(sigma(z) + parity sigma(-z)) V = (slope z + constant) V`` (``PAIR_IDENTITIES``), so the
    network, followed by identity layers, is the affine map ``x K + c`` returned with it (exact).
    """
    parity, slope, constant = PAIR_IDENTITIES[activation]
    widths = draw(strategies.architectures(min_depth=2, max_depth=3, max_width=8), label="widths")
    names = (activation, *("identity",) * (len(widths) - 2))
    net = draw(strategies.networks(activations=names, dtype=dtype, widths=widths), label="net")
    w, v = net.weights[0], net.weights[1]
    b = None if net.biases is None else net.biases[0]
    w_in = np.concatenate([w, -w], axis=1)
    b_in = None if b is None else np.concatenate([b, -b])
    w_out = np.concatenate([v, parity * v], axis=0)
    paired = _replace_layers(net, 0, w_in, b_in, w_out)
    # Each pair's output is slope (x W + b) + constant, read by V: layer 2's pre-activation is
    # x (slope W V) + (slope b + constant) V + b_2; the identity layers after it multiply on.
    scaled = lambda a, q: Exact(exact(a).ints, exact(a).scale * q)  # q = 0 gives exact zeros
    bias_row = np.zeros((1, w.shape[1]), dtype) if b is None else b[None, :]
    k = scaled(w, slope) @ exact(v)
    c = (scaled(bias_row, slope) + scaled(np.ones((1, w.shape[1]), dtype), constant)) @ exact(v)
    for layer in range(1, paired.depth):
        if layer > 1:
            k = k @ exact(paired.weights[layer])
            c = c @ exact(paired.weights[layer])
        if paired.biases is not None:
            c = c + exact(paired.biases[layer][None, :])
    x = draw(strategies.batches(paired), label="x")
    return strategies.Case(paired, x, np.zeros((x.shape[0], paired.widths[-1]), dtype)), k, c


@st.composite
def all_active_relu_cases(draw, dtype) -> strategies.Case:
    """Draw a relu network with biases, and inputs on which every unit is strictly active (checked exactly).

    Each layer's biases are set, in order, to ``1 - min over the batch of (A W)`` rounded up in ``dtype``, so
    every pre-activation on the data is at least about 1; exactness is verified with ``exact_forward``.
    """
    widths = draw(strategies.architectures(), label="widths")
    net = draw(strategies.networks(activations="relu", dtype=dtype, widths=widths, biases=True), label="net")
    x = draw(strategies.batches(net), label="x")
    weights, biases = list(net.weights), []
    a = x.astype(np.float64)
    for w in weights:
        z = a @ w.astype(np.float64)
        b = np.nextafter((1.0 - z.min(axis=0)).astype(dtype), np.inf)  # about 1 above the smallest entry
        biases.append(b.astype(dtype))
        a = np.maximum(z + b, 0)
    net = Network(weights, biases, net.activations)
    pre = exact_forward(net, x)
    assume(all(all(v > 0 for v in z.ints.ravel()) for z in pre))  # float64 slack can miss; rare
    return strategies.Case(net, x, np.zeros((x.shape[0], net.widths[-1]), dtype))


# ---------------------------------------------------------------------------------------------------------
# Properties.


@pytest.mark.parametrize("activation", NONLINEAR_PARAMS)
@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@helpers.claim()
@given(data=st.data())
def test_nonlinear_network_is_witnessed_or_provably_affine(impl, dtype, activation, data) -> None:
    helpers.skip_if_unsupported(impl, activation, dtype)
    net = data.draw(well_scaled_nonlinear_networks(impl, activation, dtype))
    check_network_is_witnessed_or_provably_affine(impl, net)


@pytest.mark.parametrize("kind", ["dead_or_unused", "cancelling_duplicates", "output_ignores_hidden"])
@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@helpers.claim()
@given(data=st.data())
def test_degenerate_network_is_constant_on_rn(impl, dtype, kind, data) -> None:
    helpers.skip_if_unsupported(impl, helpers.MIXED, dtype)
    if not any(n in impl.activations for n in NONLINEAR):
        pytest.skip(f"{impl.name} supports no nonlinear activation")
    net, x, _ = data.draw(degenerate_cases(impl, kind, dtype), label="case")
    check_network_is_constant(impl, net, x)


@pytest.mark.parametrize("activation", PAIR_PARAMS)
@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@helpers.claim()
@given(data=st.data())
def test_flipped_pairs_make_an_affine_network(impl, dtype, activation, data) -> None:
    helpers.skip_if_unsupported(impl, (activation, "identity"), dtype)
    (net, x, _), k, c = data.draw(flipped_pair_cases(activation, dtype), label="case")
    check_network_equals_affine_map(impl, net, x, k, c)


def check_all_active_relu_network_is_affine_on_its_data(impl, net: Network, x: np.ndarray) -> None:
    """Assert ``impl.forward(net, x) == x K + c`` with ``K, c`` the collapse of ``net`` with identity units.

    Every unit is active on ``x`` (exactly), so on the data each relu is the identity. Bound: the relu
    network's forward bound plus the rounding of the exact ``x K + c`` to float64.
    """
    linear = Network(net.weights, net.biases, ("identity",) * net.depth)
    k, c = exact_collapse(linear)
    expected, rounding = exact_affine_values(x, k, c)
    with helpers.reproduction_on_failure(net, x):
        actual = impl.forward(net, x)
        assert_arrays_within_bound(
            "forward output on the data against x K + c",
            actual,
            expected,
            forward_bound(net, x) + rounding,
            helpers.describe(impl, net),
        )


@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@helpers.claim()
@given(data=st.data())
def test_all_active_relu_network_is_affine_on_its_data_but_not_on_rn(impl, dtype, data) -> None:
    helpers.skip_if_unsupported(impl, "relu", dtype)
    net, x, _ = data.draw(all_active_relu_cases(dtype), label="case")
    check_all_active_relu_network_is_affine_on_its_data(impl, net, x)
    # ... and yet, on R^n, it is either provably affine for a structural reason or visibly not affine.
    check_network_is_witnessed_or_provably_affine(impl, net)
