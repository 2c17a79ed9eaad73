"""Family 10: results that underflow -- below the smallest normal number ``tiny``, where rounding is absolute.

Found by the no-false-positive soak (seeds 17 and 23, dev profile): a float32 leaky_relu network at the small
scale had targets of ``7e-21``, whose squares are subnormal; numpy's loss was 22 bounds off the reference
(gradual underflow) and jax's was 0 (XLA flushes subnormal results to zero). The bound model lacked an
underflow term; ``properties/tolerances.py`` (docstring, "Underflow") now has one that admits both behaviours.

Claims:
- Loss and gradients agree with the reference within the rounding bound on cases scaled into underflow: a
  drawn case whose inputs, biases and targets are multiplied by a power of two ``2^-k``, chosen so that the
  products fall between about ``sqrt(tiny)`` and ``tiny`` -- for every implementation, activation and dtype.
- An implementation that declares ``FLUSHES_SUBNORMALS`` keeps subnormal results or flushes them to zero as it
  declares (the built-in backends declare theirs, measured with the version in ``RECORDED_WITH``: jax flushes,
  numpy and torch keep): a real framework difference, reported here rather than hidden; the bounds admit
  both. A framework that changes fails here, and its declaration is updated on purpose. Anyone else's
  behaviour is reported, not assumed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlp_crosscheck.properties import helpers, kink_conventions, strategies
from mlp_crosscheck.properties.test_gradient_agreement import check_gradients_match_reference
from mlp_crosscheck.reference.network import Network


def measured_flushes_subnormals(impl, dtype) -> bool:
    """Return whether ``impl`` flushes a subnormal result to zero: one unit, ``x = tiny``, ``W = 0.5``."""
    dtype = np.dtype(dtype)
    tiny = np.finfo(dtype).smallest_normal
    net = Network((np.full((1, 1), 0.5, dtype),), None, ("identity",))
    out = impl.forward(net, np.full((1, 1), tiny, dtype))[0, 0]
    if out not in (0, tiny / 2):
        raise AssertionError(f"{impl.name}: 0.5 * tiny computed to {out!r}, neither tiny / 2 nor 0 ({dtype.name})")
    return bool(out == 0)


@st.composite
def underflowing_cases(draw, impl, activation: str, dtype) -> strategies.Case:
    """Return a strategy for ``cases_for`` cases scaled by ``2^-k`` into underflow.

    ``x``, the biases and ``y`` are multiplied by ``2^-k`` (exact, except where a value leaves the normal
    range: such values are flushed to 0, as every strategy does). ``k`` puts the largest input at ``2^-e``
    with ``e`` between half of ``-log2(tiny)`` (products of two such values underflow) and ``-log2(tiny)``.
    """
    net, x, y = draw(helpers.cases_for(impl, activation, dtype), label="case before scaling")
    dtype = np.dtype(dtype)
    min_exp = -int(np.finfo(dtype).minexp)  # tiny = 2^-min_exp: 126 for float32, 1022 for float64
    e = draw(st.integers(min_exp // 2, min_exp), label="exponent of the largest scaled input")
    top = max(float(np.abs(x).max()), float(np.abs(y).max()), 1.0)
    scale = 2.0 ** -(e + int(np.ceil(np.log2(top))))

    def shrink(a: np.ndarray) -> np.ndarray:
        a = (a.astype(np.float64) * scale).astype(dtype)
        a[np.abs(a) < np.finfo(dtype).smallest_normal] = 0
        return a

    biases = None if net.biases is None else tuple(shrink(b) for b in net.biases)
    return strategies.Case(Network(net.weights, biases, net.activations), shrink(x), shrink(y))


@pytest.mark.parametrize("activation", helpers.ACTIVATION_PARAMS)
@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@helpers.claim()
@given(data=st.data())
def test_gradients_match_reference_in_underflow(impl, dtype, activation, data) -> None:
    helpers.skip_if_unsupported(impl, activation, dtype)
    net, x, y = data.draw(underflowing_cases(impl, activation, dtype), label="case")
    check_gradients_match_reference(impl, net, x, y)


def check_flushing_matches_declaration(impl, dtype) -> None:
    """Assert ``impl`` keeps or flushes subnormal results as its ``FLUSHES_SUBNORMALS`` declares."""
    measured = measured_flushes_subnormals(impl, dtype)
    expected = impl.module.FLUSHES_SUBNORMALS
    assert measured == expected, (
        f"{impl.name}: flushes subnormal results = {measured} in {np.dtype(dtype).name}, but it declares "
        f"FLUSHES_SUBNORMALS = {expected}{kink_conventions.recorded_with(impl)}; if the framework changed, "
        "update FLUSHES_SUBNORMALS and RECORDED_WITH in its backend module"
    )


@helpers.claim()
@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
def test_subnormal_results_are_kept_or_flushed_as_recorded(impl, dtype) -> None:
    if getattr(impl.module, "FLUSHES_SUBNORMALS", None) is None:
        # An implementation that declares nothing may keep subnormal results or flush them (the bounds admit
        # both): what it does is reported, not assumed.
        measured = measured_flushes_subnormals(impl, dtype)
        helpers.report(f"{'flushes' if measured else 'keeps'} subnormal results in {np.dtype(dtype).name}")
        return
    check_flushing_matches_declaration(impl, dtype)
