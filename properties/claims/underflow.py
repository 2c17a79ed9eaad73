"""Family 10's checks and strategy: results that underflow (the claim: ``properties/test_underflow.py``)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from mlp_crosscheck.properties import helpers, kink_conventions, strategies
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


def check_flushing_matches_declaration(impl, dtype) -> None:
    """Assert ``impl`` keeps or flushes subnormal results as its ``FLUSHES_SUBNORMALS`` declares."""
    measured = measured_flushes_subnormals(impl, dtype)
    expected = impl.module.FLUSHES_SUBNORMALS
    if measured != expected:
        raise AssertionError(
            f"{impl.name}: flushes subnormal results = {measured} in {np.dtype(dtype).name}, but it declares "
            f"FLUSHES_SUBNORMALS = {expected}{kink_conventions.recorded_with(impl)}; if the framework changed, "
            "update FLUSHES_SUBNORMALS and RECORDED_WITH in its backend module"
        )


def check_subnormal_results_are_kept_or_flushed_as_recorded(impl, dtype) -> None:
    """Assert the declared behaviour (``check_flushing_matches_declaration``), or report an undeclared one.

    An implementation that declares nothing may keep subnormal results or flush them (the bounds admit both):
    what it does is reported, not assumed.
    """
    if getattr(impl.module, "FLUSHES_SUBNORMALS", None) is None:
        measured = measured_flushes_subnormals(impl, dtype)
        helpers.report(f"{'flushes' if measured else 'keeps'} subnormal results in {np.dtype(dtype).name}")
        return
    check_flushing_matches_declaration(impl, dtype)
