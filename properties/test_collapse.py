"""Family 4: an identity network is one affine map, in every implementation.

Claims, for every all-identity network (every value regime of ``strategies``, float32 and float64, with and
without biases):

- it equals its collapsed map: ``forward(x) == x @ K + c`` with ``K = W_1 ... W_L`` and ``c`` formed as the post
  does (``reference.network.collapse``, in the network's dtype), within the implementation's forward bound
  plus the collapsed evaluation's own bound (``collapse_bound``);
- its input Jacobian is one constant, ``K^T``, at every input: measured through the implementation's input
  gradients at every sample of two different batches, each equals the exact ``K^T``;
- ``rank(K) <= `` its narrowest width: measured through the implementation's forward pass on bottleneck
  architectures (a hidden layer narrower than both ends, so the claim says something), every singular value
  past the narrowest width is within its rigorous tolerance of zero;
- its loss on any data is at least the least-squares floor of that data (``linear_maps.least_squares_floor``,
  exact): affine with biases, linear without. The targets include ones at which the network attains its
  floor exactly (its own output plus a residual orthogonal to the data's column space), where the claim is
  an equality up to rounding and a loss that is too small by any amount above the bound is caught.

The checks and this family's strategies: ``properties/claims/collapse.py``.
"""

from __future__ import annotations

import pytest
from mlp_crosscheck.properties import helpers, strategies
from mlp_crosscheck.properties.claims.collapse import (
    bottleneck_architectures,
    check_identity_network_equals_collapsed_map,
    check_identity_network_jacobian_is_constant,
    check_identity_network_loss_is_at_least_floor,
    check_identity_network_rank_is_at_most_narrowest_width,
    identity_cases_with_targets,
)


@helpers.claim()
def test_identity_network_equals_its_collapsed_map(impl, dtype, data) -> None:
    helpers.skip_if_unsupported(impl, "identity", dtype)
    net, x, _ = data.draw(strategies.cases(activations="identity", dtype=dtype), label="case")
    check_identity_network_equals_collapsed_map(impl, net, x)


@helpers.claim()
def test_identity_network_input_jacobian_is_one_constant(impl, dtype, data) -> None:
    helpers.skip_if_unsupported(impl, "identity", dtype)
    if not impl.has_input_gradient:
        pytest.skip(f"{impl.name} defines no loss_and_input_gradients")
    net = data.draw(strategies.networks(activations="identity", dtype=dtype), label="net")
    x1 = data.draw(strategies.batches(net), label="x1")
    x2 = data.draw(strategies.batches(net), label="x2")
    check_identity_network_jacobian_is_constant(impl, net, x1, x2)


@helpers.claim()
def test_identity_network_rank_is_at_most_its_narrowest_width(impl, dtype, data) -> None:
    helpers.skip_if_unsupported(impl, "identity", dtype)
    widths = data.draw(bottleneck_architectures(), label="widths")
    net = data.draw(strategies.networks(activations="identity", dtype=dtype, widths=widths), label="net")
    check_identity_network_rank_is_at_most_narrowest_width(impl, net)


@helpers.claim()
def test_identity_network_loss_is_at_least_the_least_squares_floor(impl, dtype, data) -> None:
    helpers.skip_if_unsupported(impl, "identity", dtype)
    net, x, y = data.draw(identity_cases_with_targets(dtype), label="case")
    check_identity_network_loss_is_at_least_floor(impl, net, x, y)
