"""Assert helpers: each raises ``AssertionError`` with the evidence, never returns a bool.

A failure message gives the greatest absolute and relative difference, where it is, the values on both
sides there and the bound allowed there, so a reader can judge the discrepancy without rerunning anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from mlp_crosscheck.properties.tolerances import Bounds


def assert_arrays_within_bound(name: str, actual, expected, bound, context: str = "") -> None:
    """Assert ``|actual - expected| <= bound`` elementwise; NaN and infinity positions must match exactly.

    Args:
        name: what is compared, for the message (e.g. ``"dL/dW_2"``).
        actual, expected: arrays (or scalars) of the same shape.
        bound: the elementwise error allowed (broadcastable); must be finite and >= 0 where compared.
        context: appended to the message (e.g. which implementations).

    Raises:
        AssertionError: shapes differ, non-finite positions differ, or some element exceeds its bound.
        ValueError: the bound is NaN or negative (a broken tolerance, not a broken implementation).
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    b = np.broadcast_to(np.asarray(bound, dtype=np.float64), e.shape)
    where = f" ({context})" if context else ""
    if a.shape != e.shape:
        raise AssertionError(f"{name}{where}: shape {a.shape} != expected {e.shape}")
    if np.isnan(b).any() or (b < 0).any():
        raise ValueError(f"{name}{where}: the tolerance bound is NaN or negative; the error model is broken")
    finite_a, finite_e = np.isfinite(a), np.isfinite(e)
    special = ~(finite_a & finite_e)
    if special.any():
        same = (np.isnan(a) & np.isnan(e)) | (a == e)
        bad = special & ~same
        if bad.any():
            i = _index(np.argwhere(bad)[0])
            raise AssertionError(
                f"{name}{where}: non-finite values differ at {i}: got {float(a[i])!r}, expected {float(e[i])!r} "
                f"({int(bad.sum())} of {a.size} elements)"
            )
    diff = np.abs(np.where(special, 0.0, a) - np.where(special, 0.0, e))  # inf - inf would warn
    _record(name, diff, b)
    excess = diff - b
    if (excess > 0).any():
        # A subnormal bound makes diff / bound overflow to inf: that is the worst element, not a warning to raise.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            i = _index(np.unravel_index(np.argmax(np.where(excess > 0, diff / np.maximum(b, 1e-300), -1)), a.shape))
            rel = diff / np.abs(e)
        j = _index(np.unravel_index(np.argmax(diff), a.shape))
        k = _index(np.unravel_index(np.nanargmax(np.where(special, np.nan, rel)), a.shape))
        raise AssertionError(
            f"{name}{where}: {int((excess > 0).sum())} of {a.size} elements exceed the rounding-error bound.\n"
            f"  worst against its bound at {i}: got {float(a[i])!r}, expected {float(e[i])!r}, |diff| {diff[i]:.3e} > "
            f"bound {b[i]:.3e} ({_ratio(diff[i], b[i]):.3g} x the bound)\n"
            f"  greatest absolute difference {diff[j]:.3e} at {j}; greatest relative difference {rel[k]:.3e} at {k}"
        )


def _ratio(diff: float, bound: float) -> float:
    with np.errstate(over="ignore", divide="ignore"):
        return float(diff / bound) if bound > 0 else np.inf


def assert_scalars_within_bound(name: str, actual: float, expected: float, bound: float, context: str = "") -> None:
    """Assert ``|actual - expected| <= bound`` for two scalars (see ``assert_arrays_within_bound``)."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    assert_arrays_within_bound(name, np.float64(actual), np.float64(expected), bound, context)


def assert_gradients_within_bounds(actual, expected, bounds: Bounds, context: str = "") -> None:
    """Assert every gradient of ``actual`` agrees with ``expected`` within ``bounds`` (already the pair's).

    ``actual`` and ``expected`` are ``contract.Result``-like: ``loss``, ``weights``, ``biases``, ``x``
    (``x`` may be None on either side: an implementation without input gradients is not checked there).
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    assert_scalars_within_bound("loss", actual.loss, expected.loss, bounds.loss, context)
    for i, (a, e, b) in enumerate(zip(actual.weights, expected.weights, bounds.weights, strict=True)):
        assert_arrays_within_bound(f"dweights[{i}] (dL/dW_{i + 1})", a, e, b, context)
    if (actual.biases is None) != (expected.biases is None):
        raise AssertionError(f"dL/db ({context}): one side has bias gradients and the other has none")
    if expected.biases is not None and actual.biases is not None:
        assert bounds.biases is not None, "bounds without bias terms for a network with biases"
        for i, (a, e, b) in enumerate(zip(actual.biases, expected.biases, bounds.biases, strict=True)):
            assert_arrays_within_bound(f"dbiases[{i}] (dL/db_{i + 1})", a, e, b, context)
    if actual.x is not None and expected.x is not None:
        assert_arrays_within_bound("dx (dL/dx)", actual.x, expected.x, bounds.x, context)


def _index(i) -> tuple[int, ...]:
    return tuple(int(v) for v in i)


# -- the worst error-to-bound ratio seen, per quantity (for reports: ``mlp-crosscheck check``) ----------------

_ratios: dict[str, float] | None = None


@contextlib.contextmanager
def recording_ratios() -> Iterator[dict[str, float]]:
    """Within the block, record the worst ``|diff| / bound`` of every comparison, by quantity name."""
    global _ratios
    previous, _ratios = _ratios, {}
    try:
        yield _ratios
    finally:
        _ratios = previous


def merge_ratios(ratios: dict[str, float]) -> None:
    """Record ``ratios``, measured in a nested ``recording_ratios`` block, into the enclosing one (if any)."""
    if _ratios is None:
        return
    for name, worst in ratios.items():
        if worst > _ratios.get(name, -1.0):
            _ratios[name] = worst


@contextlib.contextmanager
def not_recorded() -> Iterator[None]:
    """Within the block, record nothing: for a negative control, whose comparison is meant to exceed its bound."""
    global _ratios
    previous, _ratios = _ratios, None
    try:
        yield
    finally:
        _ratios = previous


def _record(name: str, diff: np.ndarray, bound: np.ndarray) -> None:
    if _ratios is None or diff.size == 0:
        return
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / bound)  # a nonzero difference against a zero bound: inf
    worst = float(np.max(ratio))
    if worst > _ratios.get(name, -1.0):
        _ratios[name] = worst
