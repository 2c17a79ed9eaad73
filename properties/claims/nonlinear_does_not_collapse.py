"""Family 5's checks and strategies: nonlinear networks do not collapse, degenerate ones do.

The claim, and the trichotomy each drawn network is checked against: ``properties/test_nonlinear_does_not_collapse.py``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import numpy as np
from hypothesis import assume
from hypothesis import event as _hypothesis_event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from mlp_crosscheck.properties import helpers, strategies
from mlp_crosscheck.properties.activation_regions import RegionVerdict, region_analysis
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


# ---------------------------------------------------------------------------------------------------------
# Checks (plain functions: the properties run them on drawn cases, tests/ on planted bugs).


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


_REGIONS: dict[bytes, RegionVerdict] = {}


def decide_by_regions(net: Network) -> RegionVerdict:
    """Return ``region_analysis(net)`` (cached): the stronger exact criterion, for small relu / leaky_relu
    networks; its ``affine`` is None (undecided) for any other network."""
    key = _key(net)
    if key not in _REGIONS:
        if len(_REGIONS) > 2048:
            _REGIONS.clear()
        _REGIONS[key] = region_analysis(net)
    return _REGIONS[key]


def event(message: str) -> None:
    """Record a Hypothesis event when running under Hypothesis (the checks also run outside it, in tests/)."""
    if currently_in_test_context():
        _hypothesis_event(message)


def assume_decided(visible: np.ndarray, regions: RegionVerdict) -> bool:
    """Reject an example that no exact criterion proves affine on R^n and whose nonlinearity is not visible.

    Such a network is over the region criterion's budget (or not piecewise linear), or proved not affine by it
    but only below the implementation's precision on the witness lines: neither verdict can be asserted of
    the implementation. Counted in ``helpers.REJECTIONS`` and shown as a Hypothesis event; under Hypothesis
    the example is discarded, outside it (a fixed case in tests/) this returns False. Returns True when a
    witness is visible.
    """
    if visible.any():
        return True
    if regions.affine is False:
        reason = "not affine on R^n (exact regions), but no second difference visible at this precision"
    else:
        reason = "not provably affine on R^n, and no second difference visible at this precision"
    helpers.REJECTIONS[f"undecided nonlinearity: {reason}"] += 1
    if not currently_in_test_context():
        return False
    event(f"rejected: {reason}")
    assume(False)
    return False  # unreachable: assume(False) raises


def check_network_is_witnessed_or_provably_affine(impl, net: Network, analyse=analyse, decide=decide_by_regions) -> str:
    """Assert the trichotomy of the module docstring for ``net``; return which side holds: ``"provably
    affine"``, ``"witnessed"`` or (outside Hypothesis; under it the example is discarded) ``"undecided"``.

    Args:
        analyse: the exact criterion (``affine_analysis``); a parameter so that tests can plant a wrong one.
        decide: the stronger exact criterion (``region_analysis``), tried only when ``analyse`` proves nothing
            and no witness is visible (it is the slower one); a parameter for the same reason.
    """
    facts = network_facts(net)
    analysis, lines, reference = analyse(net), facts.lines, facts.reference
    criterion = "exact identities"
    # |exact| >= |reference| - bound_reference. Where that exceeds twice the largest bound a correct
    # implementation can carry (computed without it, so a wrong implementation cannot widen it), a correct
    # implementation's measured value exceeds its own bound: it must show the nonlinearity there.
    visible = np.abs(reference.value) - reference.bound > 2 * facts.correct_bound
    regions = RegionVerdict(None, None, 0)
    if not analysis.affine and not visible.any():
        regions = decide(net)
        if regions.affine:
            analysis, criterion = regions, f"exact activation regions ({regions.regions}, one affine map)"
    with helpers.reproduction_on_failure(net):
        if analysis.affine:
            context = f"{criterion} prove {list(net.activations)} {net.widths} affine on R^n"
            # Independent check of the criterion: no exact second difference may be nonzero.
            assert_arrays_within_bound(
                "float64 reference second differences",
                reference.value,
                np.zeros_like(reference.value),
                reference.bound,
                context,
            )
            check_forward_is_affine_map(impl, net, lines.batch(), analysis.linear_part, context)
            event(f"provably affine on R^n ({criterion.split(' (')[0]})")
            return "provably affine"
        if not assume_decided(visible, regions):
            return "undecided"
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
# Strategies of this family.


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
    return Network(tuple(weights), None if biases is None else tuple(biases), net.activations)


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
        net = Network((*net.weights[:-1], np.zeros_like(net.weights[-1])), net.biases, net.activations)
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
    net = Network(tuple(weights), tuple(biases), net.activations)
    pre = exact_forward(net, x)
    assume(all(all(v > 0 for v in z.ints.ravel()) for z in pre))  # float64 slack can miss; rare
    return strategies.Case(net, x, np.zeros((x.shape[0], net.widths[-1]), dtype))


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


def assume_not_provably_affine(verdict: str) -> None:
    """Discard an all-active example that an exact criterion proves affine on R^n (zero or cancelling weights).

    It is affine on its data for that reason too, so "not affine on R^n" is false of it; the implementation
    was still checked against ``f(0) + x K`` on the witness points before it is discarded. Counted in
    ``helpers.REJECTIONS`` and shown as a Hypothesis event.
    """
    if verdict != "provably affine":
        return
    helpers.REJECTIONS["all-active relu network affine on R^n"] += 1
    event("rejected: all-active relu network provably affine on R^n (degenerate)")
    assume(False)
