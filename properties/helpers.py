"""pytest and Hypothesis helpers shared by the property modules.

Invariants:
- Activations, dtypes and implementations are parametrized with pytest, never sampled by Hypothesis: each
  combination gets its own examples and its own test id (``[jax-float32-tanh]``). Hypothesis's choice among a
  few options leans towards the first ones, and a sampled option can go unexercised for a whole run.
- The comparison baseline is the reference evaluated in float64 on the exact float64 cast of the case. It is
  within the float64 bound of the exact result, which is far below any float32 bound, so comparing an
  implementation with it against ``Bounds.agree()`` (twice one implementation's bound) is rigorous.
- At an exact kink the reference reproduces the implementation's declared convention (``kink_conventions``);
  near a kink, where rounding decides the branch, the gradients must agree with the reference on one of the
  ways of taking those branches (``assert_gradients_agree_on_some_branch``); an example with more than
  ``MAX_BRANCH_ASSIGNMENTS`` ways is rejected, counted.
- Every failure carries the case as code that rebuilds it (``attach_reproduction``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import math
from collections import Counter
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from hypothesis import assume, currently_in_test_context, event, given, note
from hypothesis import strategies as st
from mlp_crosscheck.backends.contract import Implementation, Result
from mlp_crosscheck.properties import assertions, kink_conventions, profiles, strategies, tolerances
from mlp_crosscheck.properties.tolerances import Bounds
from mlp_crosscheck.reference import activations as vocabulary
from mlp_crosscheck.reference import network

MIXED = strategies.MIXED  # one activation drawn per layer

ACTIVATION_PARAMS = [pytest.param(name, id=name) for name in (*vocabulary.NAMES, MIXED)]
SINGLE_ACTIVATION_PARAMS = [pytest.param(name, id=name) for name in vocabulary.NAMES]  # no "mixed"
KINKED_ACTIVATION_PARAMS = [pytest.param(name, id=name) for name in kink_conventions.KINKED]
DTYPE_PARAMS = [pytest.param(np.dtype(name), id=name) for name in ("float32", "float64")]

# How often assume_no_ambiguous_kinks rejected an example, per reason; read by the report and by tests.
REJECTIONS: Counter = Counter()


def claim(fraction: float = 1.0, *, activations: Sequence = ACTIVATION_PARAMS):
    """Make a test a claim of the suite: run against each implementation, under the suite's own profile.

    The test's arguments give its matrix, so that each claim states only what it checks:

    - ``dtype``: parametrized over float32 and float64 (``DTYPE_PARAMS``);
    - ``activation``: parametrized over ``activations`` (default every activation, and ``mixed``);
    - ``data``: drawn by Hypothesis (``given(data=st.data())``), under the active profile's settings given
      explicitly (``profiles.claim_settings``), so that the caller's own Hypothesis profile never changes a
      verdict;
    - ``impl``: parametrized by the plugin, which finds the claims by their marker (``mlp_crosscheck``) and
      orders them by family.

    The test ids are ``[impl-dtype-activation]`` (``[jax-float32-tanh]``); a test's own ``parametrize`` marks,
    put above this decorator, come after them.

    Args:
        fraction: of the profile's ``max_examples`` (at least 10), for a property that is cheap to satisfy
            but expensive across the implementation x activation x dtype matrix; every use says why.
        activations: the ``activation`` parameters, when not every activation.
    """

    def decorate(test):
        arguments = inspect.signature(test).parameters
        if "data" in arguments:
            test = profiles.claim_settings(fraction)(given(data=st.data())(test))
        test = pytest.mark.mlp_crosscheck(test)
        if "dtype" in arguments:
            test = pytest.mark.parametrize("dtype", DTYPE_PARAMS)(test)
        if "activation" in arguments:
            test = pytest.mark.parametrize("activation", activations)(test)
        return test

    return decorate


def _names(activations) -> tuple[str, ...]:
    return (activations,) if isinstance(activations, str) else tuple(activations)


def skip_if_unsupported(impl: Implementation, activations: str | Sequence[str], dtype) -> None:
    """Skip the test, with the implementation's own reason, if it does not cover ``activations`` in ``dtype``.

    ``activations`` is a name, a sequence of names, or ``"mixed"`` (then the test draws only from the
    activations ``impl`` supports, and is skipped only when it supports none).
    """
    names = _names(activations)
    if names == (MIXED,):
        reason = impl.unsupported((), dtype) or (None if impl.activations else f"{impl.name} supports no activation")
    else:
        reason = impl.unsupported(names, dtype)
    if reason is not None:
        pytest.skip(reason)


def cases_for(
    impl: Implementation | None, activation: str, dtype, *, biases=None, well_scaled: bool = False, large: bool = False
) -> st.SearchStrategy[strategies.Case]:
    """Return a strategy for cases with ``activation`` (or ``"mixed"``) in ``dtype`` that ``impl`` supports.

    - impl: the implementation under test; None means every activation is allowed.
    - activation: a name, or ``"mixed"`` for one activation drawn per layer.
    - biases, well_scaled, large: as for ``strategies.cases``; a claim that can see a size bug (a slip that
      shows only from some depth or batch size on) passes ``large=True``.
    """
    try:
        return _built_cases_for(impl, activation, dtype, biases, well_scaled, large)
    except TypeError:  # an unhashable option (a list of names, say): built afresh
        return _build_cases_for(impl, activation, dtype, biases, well_scaled, large)


def _build_cases_for(impl, activation, dtype, biases, well_scaled: bool, large: bool) -> st.SearchStrategy:
    supported = vocabulary.NAMES if impl is None else tuple(n for n in vocabulary.NAMES if n in impl.activations)
    if activation != MIXED or supported == vocabulary.NAMES:
        return strategies.cases(
            activations=activation, dtype=dtype, biases=biases, well_scaled=well_scaled, large=large
        )
    return _mixed_cases(supported, dtype, biases, well_scaled, large)


# The claims ask for the same few strategies once per example: building one (its options checked) and
# validating it on its first draw cost about a tenth of drawing a case, so each is built once. A strategy is
# immutable, and a reused one draws exactly what a fresh one would.
_built_cases_for = functools.lru_cache(maxsize=1024)(_build_cases_for)


@st.composite
def _mixed_cases(draw, supported: tuple[str, ...], dtype, biases, well_scaled: bool, large: bool) -> strategies.Case:
    # "mixed" restricted to what the implementation supports: the depth must be known before the names.
    widths, batch = draw(strategies.shapes(large=large), label="shape")
    names = tuple(draw(st.sampled_from(supported)) for _ in widths[1:])
    return draw(
        strategies.cases(
            activations=names, dtype=dtype, biases=biases, widths=widths, batch=batch, well_scaled=well_scaled
        )
    )


def assume_no_ambiguous_kinks(bounds: Bounds) -> None:
    """Reject the example if some pre-activation lies within its rounding-error bound of a relu-type kink.

    There the branch that a correct implementation takes is not determined by the maths (its computed
    ``z`` may land on either side), so its derivative may be either one-sided value: no bound covers that
    without becoming vacuous. Exact kinks (``z == 0`` computed exactly by everyone) are not rejected: they
    are compared through the kink-convention table. Each rejection is counted in ``REJECTIONS`` and shown
    as a Hypothesis event (``--hypothesis-show-statistics``).

    Outside a Hypothesis test (a check run on a fixed example), an ambiguous example is an error in the
    example, not a rejection: it raises ``ValueError``.
    """
    if any(m.any() for m in bounds.ambiguous):
        reject("ambiguous kink", "a pre-activation within its error bound of a kink")


def reject(reason: str, what: str) -> None:
    """Reject the example with a named ``assume``: counted in ``REJECTIONS[reason]``, shown as an event.

    Outside a Hypothesis test (a check run on a fixed example) a rejected example is an error in the example:
    it raises ``ValueError`` naming ``what`` is wrong with it.
    """
    if not currently_in_test_context():
        raise ValueError(f"the example has {what}: it cannot be checked")
    REJECTIONS[reason] += 1
    event(f"rejected: {what}")
    assume(False)


# The most ways of taking the branches at the ambiguous kinks of one example that are tried one by one (each is
# one reference evaluation and one bound); an example with more is rejected, counted as "too many ambiguous
# kinks". Two or three choices per kink: 6 kinks at two choices each is 64 evaluations.
MAX_BRANCH_ASSIGNMENTS = 64


def branch_assignments(net: network.Network, bounds: Bounds, impl) -> list[tuple[np.ndarray | None, ...]] | None:
    """Return every way a correct implementation may take the branches at the example's ambiguous kinks.

    Where a pre-activation is within its error bound of a relu-type kink (``bounds.ambiguous``), an
    implementation's computed ``z`` may be negative, positive or exactly zero, so its derivative there is the
    left slope, the right slope, or its convention at the kink; anything else is wrong. Each assignment is,
    per layer, None (no ambiguous element) or an array of sigma' values, NaN where ``Z`` decides: the
    ``branches`` of the ``activations.Kinks`` that ``network.loss_and_gradients`` and
    ``tolerances.gradient_bounds`` take. Returns
    ``[]`` when nothing is ambiguous, None when there are more than ``MAX_BRANCH_ASSIGNMENTS`` assignments.
    """
    count = sum(int(m.sum()) for m in bounds.ambiguous)
    if count == 0:
        return []
    if 2**count > MAX_BRANCH_ASSIGNMENTS:  # every site has at least two choices, its two slopes
        return None
    conventions = kink_conventions.derivatives_at_kinks(impl)
    sites, choices = [], []
    for layer, mask in enumerate(bounds.ambiguous):
        if not mask.any():  # a layer without a near-kink element (any activation, kinked or not)
            continue
        name = net.activations[layer]
        layer_choices = sorted({*kink_conventions.SUBDIFFERENTIALS[name], conventions[name]})
        for index in zip(*np.nonzero(mask), strict=True):
            sites.append((layer, index))
            choices.append(layer_choices)
    if math.prod(len(c) for c in choices) > MAX_BRANCH_ASSIGNMENTS:
        return None
    assignments = []
    for values in itertools.product(*choices):
        layers: list[np.ndarray | None] = [None] * net.depth
        for (layer, index), value in zip(sites, values, strict=True):
            current = layers[layer]
            if current is None:
                current = layers[layer] = np.full(bounds.ambiguous[layer].shape, np.nan)
            current[index] = value
        assignments.append(tuple(layers))
    return assignments


def assert_gradients_agree_on_some_branch(impl, net: network.Network, x, y, actual, context: str) -> None:
    """Assert ``actual`` (``impl``'s result) agrees with the reference on one way of taking the ambiguous kinks.

    With no ambiguous kink this is the plain comparison with ``reference_result`` within ``Bounds.agree()``.
    Otherwise the reference and the bound are evaluated on every branch assignment (``branch_assignments``)
    and one must agree; the failure reported is the assignment that came closest. An example with too many
    assignments is rejected (counted in ``REJECTIONS``, shown as a Hypothesis event).
    """
    __tracebackhide__ = True
    bounds = gradient_bounds_for(net, x, y, impl)
    assignments = branch_assignments(net, bounds, impl)
    if assignments is None:
        reject("too many ambiguous kinks", f"more than {MAX_BRANCH_ASSIGNMENTS} ways of taking its ambiguous kinks")
    if not assignments:
        expected = reference_result(net, x, y, impl)
        assertions.assert_gradients_within_bounds(actual, expected, bounds.agree(), context)
        return
    REJECTIONS["ambiguous kinks checked on every branch"] += 1  # not a rejection: counted beside them
    if currently_in_test_context():
        event(f"ambiguous kinks: checked on each of {len(assignments)} ways of taking their branches")
    closest: tuple[float, AssertionError] | None = None
    overrides = kink_conventions.overrides(impl)
    for branches in assignments:
        branch_bounds = tolerances.gradient_bounds(net, x, y, vocabulary.Kinks(overrides, branches))
        expected = reference_result(net, x, y, impl, branches=branches)
        with assertions.recording_ratios() as ratios:
            try:
                assertions.assert_gradients_within_bounds(actual, expected, branch_bounds.agree(), context)
            except AssertionError as failure:
                worst = max(ratios.values(), default=np.inf)
                if closest is None or worst < closest[0]:
                    closest = (worst, failure)
                continue
        assertions.merge_ratios(ratios)  # agreed: report this branch's ratios, as the plain comparison would
        return
    assert closest is not None
    closest[1].add_note(
        f"{int(sum(m.sum() for m in bounds.ambiguous))} pre-activations lie within their error bound of a kink: "
        f"compared on each of the {len(assignments)} ways of taking their branches (left slope, right slope or "
        f"the kink convention), and on none within the bound; the closest is shown"
    )
    raise closest[1]


def gradient_bounds_for(net: network.Network, x: np.ndarray, y: np.ndarray, impl) -> Bounds:
    """Return ``tolerances.gradient_bounds`` for ``impl``: at an exact kink, with ``impl``'s convention.

    At an exact kink ``|delta| = |D| |sigma'(0)|``, so the magnitudes the bound is built from (there and in
    every layer below) depend on the convention: jax's leaky_relu'(0) = 1 makes them up to 100 times those of
    the reference's 0.01. Bounding jax with the reference's magnitudes would be too tight there.
    """
    bounds = tolerances.gradient_bounds(net, x, y)
    overrides = kink_conventions.overrides(impl)
    if not any(m.any() for m, name in zip(bounds.exact_kinks, net.activations, strict=True) if name in overrides):
        return bounds
    return tolerances.gradient_bounds(net, x, y, vocabulary.Kinks(overrides))


def reference_forward(net: network.Network, x: np.ndarray) -> np.ndarray:
    """Return the reference's output for ``(net, x)``, computed in float64 on the exact float64 cast."""
    return network.forward(net.astype(np.float64), x.astype(np.float64))[0]


def reference_result(net: network.Network, x: np.ndarray, y: np.ndarray, impl, branches=None) -> Result:
    """Return the reference's loss and gradients in float64, with ``impl``'s convention at exact kinks.

    Args:
        impl: the implementation the result is compared with, or its name (``kink_conventions`` keys).
        branches: the branches taken at ambiguous kinks, as in ``network.loss_and_gradients``.
    """
    loss, grads = network.loss_and_gradients(
        net.astype(np.float64),
        x.astype(np.float64),
        y.astype(np.float64),
        vocabulary.Kinks(kink_conventions.overrides(impl), branches),
    )
    return Result(loss, grads.weights, grads.biases, grads.x)


def attach_reproduction(exc: BaseException | None, net, x=None, y=None) -> BaseException | None:
    """Attach the case as code that rebuilds it: to ``exc`` as a note, or (``exc`` None) as a Hypothesis note.

    Returns ``exc``, so that ``raise attach_reproduction(exc, ...)`` reads naturally.
    """
    code = "Reproduce with:\n" + strategies.network_as_code(net, x, y)
    if exc is None:
        note(code)
    else:
        exc.add_note(code)
    return exc


@contextlib.contextmanager
def reproduction_on_failure(net, x=None, y=None) -> Iterator[None]:
    """Within the block, add the case as code to any ``AssertionError`` (a failed check) that escapes it."""
    try:
        yield
    except AssertionError as exc:
        attach_reproduction(exc, net, x, y)
        raise


_notes: list[str] | None = None


@contextlib.contextmanager
def recording_notes() -> Iterator[list[str]]:
    """Within the block, collect what the claims ``report`` (for ``mlp-crosscheck check``'s summary)."""
    global _notes
    previous, _notes = _notes, []
    try:
        yield _notes
    finally:
        _notes = previous


def report(message: str) -> None:
    """Report a finding that is not a failure (a convention an implementation chose), once per test."""
    if _notes is not None and message not in _notes:
        _notes.append(message)


def warn(message: str) -> None:
    """Report a finding that needs the user's action but fails nothing under this profile (an unrecorded
    framework version under dev): printed in the run's summary as an mlp-crosscheck warning."""
    report(WARNING_PREFIX + message)


WARNING_PREFIX = "warning: "  # the plugin prints the notes that start with it in its own summary section


def describe(impl: Implementation | str, net: network.Network, call: str | None = None) -> str:
    """Return a short context string for failure messages: who is compared, by which call, on what network.

    Args:
        call: the contract function whose result is compared, ``"forward"`` or ``"loss_and_gradients"``;
            the message then names the exact call (``mine.loss_and_gradients(weights, biases, activations,
            x, y)``, or ``loss_and_input_gradients`` where the implementation defines it).
    """
    name = impl if isinstance(impl, str) else impl.name
    biases = "with biases" if net.biases is not None else "no biases"
    who = name
    if call == "forward":
        who = f"{name}.forward(weights, biases, activations, x)"
    elif call is not None:
        fn = "loss_and_input_gradients" if getattr(impl, "has_input_gradient", False) else "loss_and_gradients"
        who = f"{name}.{fn}(weights, biases, activations, x, y)"
    return f"{who} vs reference; network {net.widths} {list(net.activations)} {net.dtype}, {biases}"
