"""Family 6: training. The seed experiment reproduces in every implementation; XOR shows the loss floor.

The seed experiment (``reference.seed``: the post's data, its 3-4-10-1 identity network from
``RandomState(1234)``, learning rate 1e-4, 150 epochs of full-batch gradient descent) is run with each
implementation's own gradients, in float32 and float64. Claims about each implementation's own run:

- every epoch's loss and gradients, computed by the implementation on its own current weights, agree with
  the reference's on the same weights within ``gradient_bounds(...).agree()``;
- every epoch's update is exactly ``W <- fl(W - fl(lr g))`` with that gradient, for every layer;
  together: the implementation's trajectory is an exact gradient-descent trajectory perturbed at each step by
  at most ``lr`` times its gradient bound plus the update's two roundings. (Comparing two implementations'
  trajectories cost by cost would need those perturbations propagated through ``W <- W - lr g``; done
  elementwise, with ``|I - lr H|`` taken entrywise, that bound grows geometrically and overflows within 30
  epochs of this run (measured: 10-30 % of the weights by epoch 15 in float64), so it would assert nothing.
  The runs are compared epoch by epoch on each implementation's own weights instead.)
- the outputs after training round to ``y``, with the rounding determined: ``|out - y|`` plus the forward
  bound is below 1/2 for every sample;
- at every epoch ``x @ K`` equals the outputs, within ``collapse_bound + forward_bound`` (family 4's check).

And the loss floor (``linear_maps.least_squares_floor``, exact): on XOR, written as the seed writes its data
(a constant third input column), the same identity network trained with a learning rate that takes it to
its floor never has a loss below the floor, at any epoch; the same architecture with tanh units goes below
the floor by far more than the rounding bound. The claim is about the loss, not rounded accuracy: at the
floor every output is 1/2, which rounds half to even.

The checks, the recorded runs and the XOR data: ``properties/claims/training.py``.
"""

from __future__ import annotations

from mlp_crosscheck.properties import helpers
from mlp_crosscheck.properties.claims.training import (
    check_collapse_at_every_epoch,
    check_gradients_match_reference_at_every_epoch,
    check_loss_ends_below_floor,
    check_loss_never_below_floor,
    check_outputs_round_to_targets,
    check_run_is_gradient_descent,
    seed_run,
    xor_run,
)
from mlp_crosscheck.reference import seed


@helpers.claim()
def test_seed_run_gradients_match_reference_at_every_epoch(impl, dtype) -> None:
    helpers.skip_if_unsupported(impl, "identity", dtype)
    check_gradients_match_reference_at_every_epoch(impl, seed_run(impl, dtype), *seed.data(dtype))


@helpers.claim()
def test_seed_run_is_gradient_descent_on_its_own_gradients(impl, dtype) -> None:
    helpers.skip_if_unsupported(impl, "identity", dtype)
    check_run_is_gradient_descent(seed_run(impl, dtype))


@helpers.claim()
def test_seed_run_outputs_round_to_the_targets(impl, dtype) -> None:
    helpers.skip_if_unsupported(impl, "identity", dtype)
    check_outputs_round_to_targets(impl, seed_run(impl, dtype).run.final, *seed.data(dtype))


@helpers.claim()
def test_seed_run_outputs_equal_x_at_k_at_every_epoch(impl, dtype) -> None:
    helpers.skip_if_unsupported(impl, "identity", dtype)
    check_collapse_at_every_epoch(impl, seed_run(impl, dtype), seed.data(dtype)[0])


@helpers.claim()
def test_identity_network_on_xor_never_goes_below_its_least_squares_floor(impl, dtype) -> None:
    helpers.skip_if_unsupported(impl, "identity", dtype)
    check_loss_never_below_floor(impl, *xor_run(impl, "identity", dtype))


@helpers.claim()
def test_tanh_network_on_xor_goes_below_the_least_squares_floor(impl, dtype) -> None:
    helpers.skip_if_unsupported(impl, "tanh", dtype)
    check_loss_ends_below_floor(impl, *xor_run(impl, "tanh", dtype))
