"""Targeted: an implementation's required ``loss_and_gradients`` is checked even when it also gives ``dL/dx``.

``backends.contract.Implementation`` calls ``loss_and_input_gradients`` whenever a module defines it, so for
every such module (the three built-in backends and every file in ``tests/faults`` among them) the contract's
*required* function ``loss_and_gradients`` was never called by any property: a slip there -- a user's wrapper
that drops a bias gradient, or returns a stale result -- passed the whole suite. Found by mutation testing
(``docs/mutation.md``): every mutant of ``backends/numpy_backend.loss_and_gradients`` had no test at all.

Claim: for every implementation that defines both, ``loss_and_gradients`` agrees with the reference within
the pair's rounding bound, exactly as family 2 claims for ``loss_and_input_gradients``; "mixed" activations
(one drawn per layer) and both dtypes, so two tests per implementation cover the whole vocabulary cheaply.
"""

from __future__ import annotations

import types

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlp_crosscheck.backends.contract import Implementation
from mlp_crosscheck.properties import helpers
from mlp_crosscheck.properties.test_gradient_agreement import check_gradients_match_reference


def required_entry_point_only(impl: Implementation) -> Implementation:
    """Return ``impl`` seen through its required functions only, so that checked calls use ``loss_and_gradients``.

    The view keeps the module's ``NAME``, ``ACTIVATIONS``, ``DTYPES``, ``KINK_DERIVATIVES`` and
    ``DETERMINISTIC``, and the built-in identity, so skips, test ids and the kink conventions treat it as the
    same implementation.
    """
    module = impl.module
    view = types.SimpleNamespace(
        __name__=getattr(module, "__name__", impl.name),
        NAME=impl.name,
        ACTIVATIONS=tuple(impl.activations),
        DTYPES=tuple(impl.dtypes),
        forward=module.forward,
        loss_and_gradients=module.loss_and_gradients,
    )
    for declaration in ("KINK_DERIVATIVES", "DETERMINISTIC"):
        if hasattr(module, declaration):
            setattr(view, declaration, getattr(module, declaration))
    return Implementation(view, builtin=impl.builtin)


@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@helpers.claim()
@given(data=st.data())
def test_required_loss_and_gradients_matches_reference(impl, dtype, data) -> None:
    if not impl.has_input_gradient:
        pytest.skip(f"{impl.name} defines only loss_and_gradients, which family 2 already checks")
    helpers.skip_if_unsupported(impl, helpers.MIXED, dtype)
    net, x, y = data.draw(helpers.cases_for(impl, helpers.MIXED, dtype, large=True), label="case")
    check_gradients_match_reference(required_entry_point_only(impl), net, x, y)
