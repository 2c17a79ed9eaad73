"""Family 9's checks and strategy: derivatives at exact kinks (the claim: ``properties/test_kink_conventions.py``).

The table of conventions itself, and how a derivative at the kink is measured, are ``properties/kink_conventions.py``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from mlp_crosscheck.properties import helpers, kink_conventions, strategies
from mlp_crosscheck.reference.network import Network


def check_kink_derivative_matches_table(impl, activation: str, dtype) -> None:
    """Assert ``impl``'s derivative of ``activation`` at exactly 0 is the table's entry for it.

    An implementation that declares no convention for ``activation`` (and is not a built-in backend) may make
    any valid choice: its derivative must lie in the subdifferential, and which one it chose is reported.
    """
    if activation in kink_conventions.undeclared(impl):
        measured = kink_conventions.measured_derivative(impl, activation, dtype)
        lo, hi = kink_conventions.SUBDIFFERENTIALS[activation]
        if not kink_conventions.is_valid_choice(measured, activation, dtype):
            raise AssertionError(
                f"{impl.name}: {activation}'(0) is {measured!r} in {np.dtype(dtype).name}, outside the "
                f"subdifferential [{lo:g}, {hi:g}]: no one-sided derivative of {activation} is {measured!r}"
            )
        helpers.report(f"{activation}'(0) = {measured:g} (not declared; a valid choice in [{lo:g}, {hi:g}])")
        return
    # The implementation's declared KINK_DERIVATIVES (or the reference's convention).
    # Rounded to the dtype: 0.01 in float32 is 0.009999999776482582.
    expected = float(np.dtype(dtype).type(kink_conventions.derivatives_at_kinks(impl)[activation]))
    # What the implementation's autodiff returns.
    measured = kink_conventions.measured_derivative(impl, activation, dtype)
    # Compare exactly: a convention is a choice of value, not a rounding.
    if measured != expected:
        raise AssertionError(
            f"{impl.name}: {activation}'(0) is {measured!r} in {np.dtype(dtype).name}, but it declares "
            f"{expected!r}{kink_conventions.recorded_with(impl)}. If the framework changed its convention, "
            f"update KINK_DERIVATIVES and RECORDED_WITH in its backend module; a user's implementation declares "
            f"KINK_DERIVATIVES = {{{activation!r}: {measured!r}}}."
        )


def check_gradients_at_exact_kinks_follow_the_table(impl, net, x, y) -> None:
    """Assert gradients agree with the reference run with ``impl``'s kink convention, on a case with exact kinks."""
    bounds = helpers.gradient_bounds_for(net, x, y, impl)
    if not any(m.any() for m in bounds.exact_kinks):
        raise ValueError("the case has no exact kink: exact_kink_cases is broken")  # not a failed claim
    with helpers.reproduction_on_failure(net, x, y):
        # Implementation under test.
        actual = impl.loss_and_gradients(net, x, y)
        # Reference: float64, with impl's convention where z == 0 exactly (and, near other kinks, on each way of
        # taking their branches); the convention enters through the reference, the bound is the usual one.
        conventions = kink_conventions.derivatives_at_kinks(impl)
        context = f"{helpers.describe(impl, net)}; kink convention {conventions}"
        helpers.assert_gradients_agree_on_some_branch(impl, net, x, y, actual, context)


@st.composite
def exact_kink_cases(draw, impl, activation: str, dtype) -> strategies.Case:
    """Return a strategy for cases with pre-activations exactly on the kink, in every layer.

    From a drawn case: in every layer one unit loses its incoming weights and bias (its pre-activation is an
    exact 0 for every sample, whatever the rounding of the layers above); and, when drawn, one sample
    becomes all zeros and the first layer's biases zero (that sample's first-layer pre-activations are 0).
    The dead unit's convention shows in ``dL/dW_l[:, j]`` and ``dL/db_l[j]`` (``delta = D sigma'(0)``).

    - impl, activation, dtype: as for ``helpers.cases_for``.
    """
    net, x, y = draw(helpers.cases_for(impl, activation, dtype), label="case before the kinks")
    weights = [w.copy() for w in net.weights]
    biases = None if net.biases is None else [b.copy() for b in net.biases]
    for layer, w in enumerate(weights):
        unit = draw(st.integers(0, w.shape[1] - 1), label=f"dead unit of layer {layer + 1}")
        w[:, unit] = 0
        if biases is not None:
            biases[layer][unit] = 0
    x = x.copy()
    if draw(st.booleans(), label="a zero sample"):
        x[draw(st.integers(0, x.shape[0] - 1), label="zero sample")] = 0
        if biases is not None:
            biases[0][:] = 0
    return strategies.Case(Network(tuple(weights), None if biases is None else tuple(biases), net.activations), x, y)
