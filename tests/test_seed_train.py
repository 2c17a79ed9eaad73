"""``reference.seed.train`` updates every parameter, biases included, by exactly ``p - lr * g``.

Family 6 checks each epoch's update on the seed experiment, whose network has no biases, so the bias half of
``train``'s update was never exercised: mutation testing (``docs/mutation.md``) found that dropping the bias
update, flipping its sign or dividing by the gradient all passed the whole suite. Every training claim of
the suite (families 6 and 7) runs through ``train``, so its bookkeeping is itself a claim.

Claim: for every network (with and without biases), batch and target, float32 and float64, a run of
``train`` records each epoch's network and loss, and each next network is exactly ``fl(p - fl(lr g))`` for
every weight and bias, in the network's dtype, with the gradients of the function it was given.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlp_crosscheck.properties import helpers, strategies
from mlp_crosscheck.reference import network, seed

EPOCHS = 3
LEARNING_RATE = 1e-2


def reference_gradients(net, x, y):
    """The contract's ``loss_and_gradients`` shape, ``(loss, dweights, dbiases)``, from the reference."""
    loss, grads = network.loss_and_gradients(net, x, y)
    return loss, grads.weights, grads.biases


def assert_training_step_is_exact(before, after, lr, gradients) -> None:
    """Assert ``after`` is ``before`` moved by exactly ``-lr * g`` in every weight and bias, in its dtype."""
    _, dws, dbs = gradients
    pairs = [
        (f"W_{i + 1}", w, g, a) for i, (w, g, a) in enumerate(zip(before.weights, dws, after.weights, strict=True))
    ]
    assert (before.biases is None) == (after.biases is None), "training added or dropped the biases"
    if before.biases is not None:
        pairs += [
            (f"b_{i + 1}", b, g, a) for i, (b, g, a) in enumerate(zip(before.biases, dbs, after.biases, strict=True))
        ]
    for name, p, g, updated in pairs:
        expected = p - p.dtype.type(lr) * g  # two correctly rounded operations in the parameter's dtype
        assert updated.dtype == p.dtype, f"{name}: updated to {updated.dtype} from {p.dtype}"
        if not np.array_equal(updated, expected):
            worst = np.unravel_index(np.argmax(np.abs(updated - expected)), p.shape)
            raise AssertionError(
                f"{name}: the update is not p - lr g at {worst}: got {updated[worst]!r}, expected {expected[worst]!r}"
            )


@pytest.mark.parametrize("biases", [pytest.param(True, id="biases"), pytest.param(False, id="no_biases")])
@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@given(data=st.data())
def test_training_moves_every_parameter_by_its_gradient_step(dtype, biases, data) -> None:
    net, x, y = data.draw(
        strategies.cases(activations="mixed", dtype=dtype, biases=biases, well_scaled=True), label="case"
    )
    with helpers.reproduction_on_failure(net, x, y):
        run = seed.train(reference_gradients, net, x, y, lr=LEARNING_RATE, epochs=EPOCHS)
        assert len(run.networks) == EPOCHS
        assert run.costs.shape == (EPOCHS,)
        assert run.networks[0] is net
        for epoch, before in enumerate(run.networks):
            after = run.networks[epoch + 1] if epoch + 1 < EPOCHS else run.final
            gradients = reference_gradients(before, x, y)
            assert run.costs[epoch] == gradients[0], f"epoch {epoch}: recorded cost {run.costs[epoch]!r}"
            assert_training_step_is_exact(before, after, LEARNING_RATE, gradients)
