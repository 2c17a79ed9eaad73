"""``reference.network.collapse`` returns ``K`` and ``c`` in the network's dtype, ``c = 0`` without biases.

Family 4 checks ``forward(x) == x @ K + c`` within the rounding bound, which a float64 ``c`` of zeros for a
float32 network also satisfies (the values are exact; only the dtype is wrong, and ``x @ K + c`` then
silently computes in float64). Mutation testing (``docs/mutation.md``) found that slip passing the suite.

Claim: for every all-identity network, float32 and float64, with and without biases, ``collapse`` returns
``K`` of shape ``(n_0, n_L)`` and ``c`` of shape ``(n_L,)``, both in the network's dtype, and ``c`` is exactly
zero when the network has no biases.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlp_crosscheck.properties import helpers, strategies
from mlp_crosscheck.reference import network


@pytest.mark.parametrize("dtype", helpers.DTYPE_PARAMS)
@given(data=st.data())
def test_collapsed_map_has_the_network_dtype_and_shape(dtype, data) -> None:
    net = data.draw(strategies.networks(activations="identity", dtype=dtype), label="net")
    with helpers.reproduction_on_failure(net):
        k, c = network.collapse(net)
        assert k.shape == (net.widths[0], net.widths[-1]), f"K has shape {k.shape}"
        assert c.shape == (net.widths[-1],), f"c has shape {c.shape}"
        assert k.dtype == net.dtype, f"K is {k.dtype} for a {net.dtype} network"
        assert c.dtype == net.dtype, f"c is {c.dtype} for a {net.dtype} network"
        if net.biases is None:
            assert not np.any(c), "c is not zero for a network without biases"
