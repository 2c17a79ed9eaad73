"""Family 6's checks, runs and data: training (the claim: ``properties/test_training.py``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from mlp_crosscheck.backends.contract import Result
from mlp_crosscheck.properties import helpers
from mlp_crosscheck.properties.assertions import assert_gradients_within_bounds
from mlp_crosscheck.properties.claims.collapse import check_identity_network_equals_collapsed_map
from mlp_crosscheck.properties.linear_maps import least_squares_floor
from mlp_crosscheck.properties.tolerances import forward_bound, gradient_bounds
from mlp_crosscheck.reference import seed
from mlp_crosscheck.reference.network import Network

XOR_X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
XOR_Y = np.array([[0], [1], [1], [0]])
# An identity network converges to the floor at this rate (at 1e-2 it diverges); tanh learns XOR at 5e-2.
XOR_IDENTITY_LEARNING_RATE = 8e-3
XOR_TANH_LEARNING_RATE = 5e-2
XOR_EPOCHS = 150


class RecordedRun(NamedTuple):
    """A training run and the implementation's loss and gradients at each epoch's network."""

    run: seed.TrainingRun
    results: tuple[Result, ...]
    lr: float


def train_recorded(
    impl, net: Network, x, y, lr=seed.LEARNING_RATE, epochs=seed.EPOCHS, train=seed.train
) -> RecordedRun:
    """Train ``net`` with ``impl``'s gradients (``train``: ``reference.seed.train``), recording each result."""
    results: list[Result] = []

    def gradients(n, xs, ys):
        result = impl.loss_and_gradients(n, xs, ys)
        results.append(result)
        return result

    return RecordedRun(train(gradients, net, x, y, lr=lr, epochs=epochs), tuple(results), lr)


_RUNS: dict[tuple, RecordedRun] = {}


def seed_run(impl, dtype) -> RecordedRun:
    """Return ``impl``'s run of the seed experiment in ``dtype`` (trained once per implementation and dtype)."""
    key = (id(impl.module), np.dtype(dtype).name)
    if key not in _RUNS:
        x, y = seed.data(dtype)
        _RUNS[key] = train_recorded(impl, seed.initial_network("identity", dtype), x, y)
    return _RUNS[key]


XOR_LEARNING_RATES = {"identity": XOR_IDENTITY_LEARNING_RATE, "tanh": XOR_TANH_LEARNING_RATE}


def xor_run(impl, activation: str, dtype) -> tuple[RecordedRun, np.ndarray, np.ndarray]:
    """Return ``impl``'s run on XOR (the seed's architecture with ``activation``), and XOR's ``x``, ``y`` in ``dtype``.

    ``activation`` is ``"identity"`` (trained to its floor) or ``"tanh"`` (which learns XOR).
    """
    x, y = XOR_X.astype(dtype), XOR_Y.astype(dtype)
    net = seed.initial_network(activation, dtype)
    return train_recorded(impl, net, x, y, XOR_LEARNING_RATES[activation], XOR_EPOCHS), x, y


# ---------------------------------------------------------------------------------------------------------
# Checks (plain functions: the properties run them on drawn cases, tests/ on planted bugs).


def check_gradients_match_reference_at_every_epoch(impl, recorded: RecordedRun, x, y) -> None:
    """Assert each epoch's loss and gradients agree with the reference's on that epoch's weights."""
    for epoch, (net, result) in enumerate(zip(recorded.run.networks, recorded.results, strict=True)):
        with helpers.reproduction_on_failure(net, x, y):
            expected = helpers.reference_result(net, x, y, impl)
            bounds = gradient_bounds(net, x, y).agree()
            assert_gradients_within_bounds(result, expected, bounds, f"epoch {epoch}: {helpers.describe(impl, net)}")


def check_run_is_gradient_descent(recorded: RecordedRun) -> None:
    """Assert every epoch's network is exactly ``fl(W - fl(lr g))`` of the previous one and its gradients."""
    run = recorded.run
    following = [*run.networks[1:], run.final]
    lr = run.networks[0].dtype.type(recorded.lr)
    if len(recorded.results) != len(run.networks):
        raise AssertionError(f"{len(recorded.results)} gradient evaluations for {len(run.networks)} epochs")
    for epoch, (net, result, after) in enumerate(zip(run.networks, recorded.results, following, strict=True)):
        if run.costs[epoch] != result.loss:
            raise AssertionError(f"epoch {epoch}: recorded cost {run.costs[epoch]!r} is not the loss {result.loss!r}")
        pairs: list[tuple[str, Any, Any, Any]] = [("W", net.weights, result.weights, after.weights)]
        if net.biases is not None:
            pairs.append(("b", net.biases, result.biases, after.biases))
        for name, old, grads, new in pairs:
            for layer, (w, g, w_next) in enumerate(zip(old, grads, new, strict=True)):
                expected = w - lr * g
                if not np.array_equal(w_next, expected):
                    i = np.unravel_index(np.argmax(w_next != expected), w.shape)
                    raise AssertionError(
                        f"epoch {epoch}: {name}_{layer + 1} after the update is not fl({name} - fl(lr g)): at {i} "
                        f"got {w_next[i]!r}, expected {expected[i]!r} (from {w[i]!r} - {lr!r} * {g[i]!r})"
                    )


def check_outputs_round_to_targets(impl, net: Network, x, y) -> None:
    """Assert ``round(impl.forward(net, x)) == y`` and that the rounding is determined by the maths."""
    with helpers.reproduction_on_failure(net, x, y):
        out = impl.forward(net, x).astype(np.float64)
        margin = np.abs(out - y) + forward_bound(net, x)
        if not (margin < 0.5).all():
            i = np.unravel_index(np.argmax(margin), margin.shape)
            raise AssertionError(
                f"{helpers.describe(impl, net)}: output {out[i]!r} at {i} does not round to the target {y[i]!r} "
                f"beyond doubt: |out - y| + forward bound = {margin[i]:.3e} >= 0.5 (outputs {out.ravel()})"
            )


def check_collapse_at_every_epoch(impl, recorded: RecordedRun, x) -> None:
    """Assert ``impl.forward == x @ K + c`` at every epoch's network and after the last update."""
    for epoch, net in enumerate([*recorded.run.networks, recorded.run.final]):
        try:
            check_identity_network_equals_collapsed_map(impl, net, x)
        except AssertionError as exc:
            exc.add_note(f"at epoch {epoch} of the seed run")
            raise


def check_loss_never_below_floor(impl, recorded: RecordedRun, x, y) -> None:
    """Assert every epoch's computed loss is at least the exact least-squares floor less its loss bound."""
    floor = least_squares_floor(x, y, intercept=recorded.run.networks[0].biases is not None)
    for epoch, (net, result) in enumerate(zip(recorded.run.networks, recorded.results, strict=True)):
        allowed = gradient_bounds(net, x, y).loss
        if not result.loss >= floor.lower() - allowed:
            raise AssertionError(
                f"epoch {epoch}: {impl.name}'s loss {result.loss!r} is below the least-squares floor "
                f"{float(floor.value)!r} by more than its rounding bound {allowed:.3e}"
            )


def check_loss_ends_below_floor(impl, recorded: RecordedRun, x, y) -> None:
    """Assert the loss after training is below the least-squares floor by more than its rounding bound."""
    floor = least_squares_floor(x, y, intercept=recorded.run.final.biases is not None)
    net = recorded.run.final
    loss = impl.loss_and_gradients(net, x, y).loss
    allowed = gradient_bounds(net, x, y).loss
    if not loss + allowed < float(floor.value):
        raise AssertionError(
            f"{helpers.describe(impl, net)}: after {len(recorded.results)} epochs the loss is {loss!r} (bound "
            f"{allowed:.3e}), not below the least-squares floor {float(floor.value)!r} (costs every 25 epochs: "
            f"{np.array2string(recorded.run.costs[::25], precision=4)})"
        )
