"""Family 4's checks and strategies: identity networks collapse (the claim: ``properties/test_collapse.py``)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from mlp_crosscheck.properties import helpers, strategies
from mlp_crosscheck.properties.assertions import assert_arrays_within_bound
from mlp_crosscheck.properties.linear_maps import (
    U64,
    assert_rank_at_most,
    exact_collapse,
    input_jacobian,
    least_squares_floor,
)
from mlp_crosscheck.properties.tolerances import collapse_bound, forward_bound, gradient_bounds
from mlp_crosscheck.reference import network
from mlp_crosscheck.reference.network import Network

# ---------------------------------------------------------------------------------------------------------
# Checks (plain functions: the properties run them on drawn cases, tests/ on planted bugs).


def check_identity_network_equals_collapsed_map(impl, net: Network, x: np.ndarray, collapse=network.collapse) -> None:
    """Assert ``impl.forward(net, x) == x @ K + c`` with ``(K, c) = collapse(net)`` evaluated in ``net.dtype``.

    Bound: ``forward_bound`` (the implementation's rounding) + ``collapse_bound`` (the rounding of forming K
    and c by chained products and of ``x @ K + c``): both are within their bound of the same exact value.
    """
    with helpers.reproduction_on_failure(net, x):
        k, c = collapse(net)
        predicted = x @ k + c  # as the post: x.dot(k), in the network's dtype
        actual = impl.forward(net, x)
        bound = forward_bound(net, x) + collapse_bound(net, x)
        assert_arrays_within_bound(
            "forward output against x @ K + c", actual, predicted, bound, helpers.describe(impl, net)
        )


def check_identity_network_jacobian_is_constant(impl, net: Network, x1: np.ndarray, x2: np.ndarray) -> None:
    """Assert the input Jacobian ``impl`` implies is the same at every sample of ``x1`` and ``x2``, and is K^T.

    Each sample's Jacobian is measured through input gradients (``linear_maps.input_jacobian``) with a
    rigorous bound; the exact ``K`` (``exact_collapse``) is rounded once to float64 (``U64 |K|``).
    """
    with helpers.reproduction_on_failure(net, x1):
        k, _ = exact_collapse(net)
        kt = k.to_float64().T  # (n_L, n_0)
        j1, j2 = input_jacobian(impl, net, x1), input_jacobian(impl, net, x2)
        value = np.concatenate([j1.value, j2.value])
        bound = np.concatenate([j1.bound, j2.bound])
        context = helpers.describe(impl, net)
        # The same constant everywhere: every sample's Jacobian against the first sample of the second batch.
        first = j2.value[:1]
        assert_arrays_within_bound(
            "input Jacobian at each sample against another sample's",
            value,
            np.broadcast_to(first, value.shape),
            bound + j2.bound[:1],
            context,
        )
        # ... and that constant is K^T.
        assert_arrays_within_bound(
            "input Jacobian against K^T", value, np.broadcast_to(kt, value.shape), bound + U64 * np.abs(kt), context
        )


def measured_linear_part(impl, net: Network) -> tuple[np.ndarray, np.ndarray]:
    """Return ``K`` measured through ``impl.forward`` as ``f(e_i) - f(0)`` (exact for an affine f), and its bound.

    Each row is within ``forward_bound(e_i) + forward_bound(0)`` of exact; the float64 subtraction adds
    ``U64 (|f(e_i)| + |f(0)|)``.
    """
    n = net.widths[0]
    batch = np.concatenate([np.zeros((1, n)), np.eye(n)]).astype(net.dtype)
    out = impl.forward(net, batch).astype(np.float64)
    fb = forward_bound(net, batch)
    k = out[1:] - out[:1]
    return k, fb[1:] + fb[:1] + U64 * (np.abs(out[1:]) + np.abs(out[:1]))


def check_identity_network_rank_is_at_most_narrowest_width(impl, net: Network) -> None:
    """Assert the linear part ``impl`` computes has rank at most the network's narrowest width."""
    with helpers.reproduction_on_failure(net):
        k, bound = measured_linear_part(impl, net)
        assert_rank_at_most("K measured as f(e_i) - f(0)", k, bound, min(net.widths), helpers.describe(impl, net))


def check_identity_network_loss_is_at_least_floor(impl, net: Network, x: np.ndarray, y: np.ndarray) -> None:
    """Assert ``impl``'s loss is at least the exact least-squares floor of ``(x, y)``, less its loss bound.

    An identity network's output is ``x K + c`` (``x K`` without biases), one particular affine (linear) map,
    so its exact loss is at least the floor over all of them; the computed loss is within ``bounds.loss``.
    """
    with helpers.reproduction_on_failure(net, x, y):
        floor = least_squares_floor(x, y, intercept=net.biases is not None)
        loss = impl.loss_and_gradients(net, x, y).loss
        allowed = gradient_bounds(net, x, y).loss
        if not loss >= floor.lower() - allowed:
            raise AssertionError(
                f"{helpers.describe(impl, net)}: loss {loss!r} is below the least-squares floor "
                f"{float(floor.value)!r} ({'affine' if net.biases is not None else 'linear'}, x of exact rank "
                f"{floor.rank}) by {floor.lower() - loss:.3e}, more than the loss's rounding bound {allowed:.3e}"
            )


# ---------------------------------------------------------------------------------------------------------
# Strategies of this family.


@st.composite
def bottleneck_architectures(draw) -> tuple[int, ...]:
    """Draw ``(n_0, ..., n_L)``, depth 2-4, ends in [2, 16], one hidden width strictly below both ends."""
    depth = draw(st.integers(2, 4), label="depth")
    widths = [draw(st.integers(2, 16)) for _ in range(depth + 1)]
    narrow = draw(st.integers(1, depth - 1), label="bottleneck layer")
    widths[narrow] = draw(st.integers(1, min(widths[0], widths[-1]) - 1), label="bottleneck width")
    return tuple(widths)


@st.composite
def floor_attaining_targets(draw, net: Network, x: np.ndarray) -> np.ndarray:
    """Draw ``y = f(x) + r`` with ``r`` orthogonal to the column space of ``[x, 1]`` (``x`` without biases).

    ``f(x) = x K + c`` lies in that space, so the network's loss is exactly the floor, up to the rounding of
    ``y`` and of the projection (which leave it within rounding of the floor, far inside the loss bound).
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="residual seed"))
    design = x.astype(np.float64)
    if net.biases is not None:
        design = np.concatenate([design, np.ones((x.shape[0], 1))], axis=1)
    out = helpers.reference_forward(net, x)
    g = rng.standard_normal(out.shape) * (1.0 + np.abs(out).max())
    r = g - design @ np.linalg.lstsq(design, g, rcond=None)[0]
    return (out + r).astype(net.dtype)


@st.composite
def identity_cases_with_targets(draw, dtype) -> strategies.Case:
    """Draw an identity case whose targets are either any targets, or ones at which the network attains its floor."""
    net, x, y = draw(strategies.cases(activations="identity", dtype=dtype), label="case")
    if draw(st.booleans(), label="targets at the floor"):
        y = draw(floor_attaining_targets(net, x))
    return strategies.Case(net, x, y)
