"""Family 2's checks: loss and gradient agreement (the claim: ``properties/test_gradient_agreement.py``)."""

from __future__ import annotations

import types

from mlp_crosscheck.backends.contract import Implementation
from mlp_crosscheck.properties import helpers


def check_gradients_match_reference(impl, net, x, y) -> None:
    """Assert ``impl``'s loss and gradients agree with the reference's within the pair's rounding bound."""
    with helpers.reproduction_on_failure(net, x, y):
        # Implementation under test (dL/dx only when it defines loss_and_input_gradients).
        actual = impl.loss_and_gradients(net, x, y)
        # Reference: float64, with impl's convention at exact kinks and, near a kink, on each way of taking the
        # branches; every quantity compared against bound_impl + bound_reference.
        context = helpers.describe(impl, net, "loss_and_gradients")
        helpers.assert_gradients_agree_on_some_branch(impl, net, x, y, actual, context)


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
