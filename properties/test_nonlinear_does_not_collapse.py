"""Family 5: nonlinear networks do not collapse to one affine map -- unless they are degenerate, and then they do.

The post's second claim, stated per example; it is not a theorem about every network (``relu(relu(x1 + x2) -
relu(x1) - relu(x2) - 1)`` is identically 0). "Not affine" is a statement about all of R^n, so it is checked
on points we choose (``linear_maps.witness_lines``: equally spaced collinear triples at scales 2^-6 to 2^18),
not on the data: any network is affine on n_0 + 1 points in general position, and a relu network whose units
are all active on the data is affine there.

For every drawn network the main property establishes one of three things, and checks the implementation
against it:

- affine on all of R^n, proved in exact rational arithmetic: by ``linear_maps.affine_analysis`` (exact
  identities: zero, dead or unused units, duplicates with cancelling outgoing weights, flipped pairs such as
  ``relu(z) - relu(-z) = z``, outputs that ignore their inputs...) or, when that proves nothing and no witness
  is visible, for small relu / leaky_relu networks by ``activation_regions.region_analysis`` (every
  full-dimensional activation region has the same affine map). Then the implementation must equal
  ``f(0) + x K`` (the criterion's exact K) on every witness point, within its rounding bound, and the float64
  reference must show no second difference beyond its bound (the criterion is checked independently).
- not affine along one witness line: the float64 reference's second differences, with their rigorous bound,
  prove that some exact second difference exceeds twice the bound a correct implementation carries. Then the
  implementation's measured second difference there must exceed its own bound (a witness).
- neither (not proved affine, and no second difference visible at the implementation's precision: a network
  over the region criterion's budget, or one it proves not affine only below that precision). Nothing is
  asserted: the example is discarded by the named assume ``assume_decided``, counted in
  ``helpers.REJECTIONS`` and shown as a Hypothesis event (``--hypothesis-show-statistics``). Outside
  Hypothesis (a fixed case in tests/) the check returns ``"undecided"``; it never raises for it.

The dichotomy is drawn from ``well_scaled_networks`` (moderate magnitudes, with every structural regime:
zeros, repeats, duplicate and flipped units). The degenerate families get their own tests, over every value
regime of ``networks``: each is proved constant (or affine) on all of R^n by the exact criterion, and the
implementation is checked on its data. All-active relu networks are affine on their data, and the
implementation must show a witness line on which they are not affine.

The checks and this family's strategies: ``properties/claims/nonlinear_does_not_collapse.py``.
"""

from __future__ import annotations

import pytest
from mlp_crosscheck.properties import helpers
from mlp_crosscheck.properties.claims.nonlinear_does_not_collapse import (
    NONLINEAR,
    PAIR_IDENTITIES,
    all_active_relu_cases,
    assume_not_provably_affine,
    check_all_active_relu_network_is_affine_on_its_data,
    check_network_equals_affine_map,
    check_network_is_constant,
    check_network_is_witnessed_or_provably_affine,
    degenerate_cases,
    flipped_pair_cases,
    well_scaled_nonlinear_networks,
)

NONLINEAR_PARAMS = [pytest.param(name, id=name) for name in (*NONLINEAR, helpers.MIXED)]
PAIR_PARAMS = [pytest.param(name, id=name) for name in PAIR_IDENTITIES]


@helpers.claim(activations=NONLINEAR_PARAMS)
def test_nonlinear_network_is_provably_affine_on_rn_or_not_affine_on_a_witness_line(
    impl, dtype, activation, data
) -> None:
    helpers.skip_if_unsupported(impl, activation, dtype)
    net = data.draw(well_scaled_nonlinear_networks(impl, activation, dtype))
    check_network_is_witnessed_or_provably_affine(impl, net)


@pytest.mark.parametrize("kind", ["dead_or_unused", "cancelling_duplicates", "output_ignores_hidden"])
@helpers.claim()
def test_degenerate_network_is_provably_constant_on_rn_and_constant_on_its_data(impl, dtype, kind, data) -> None:
    helpers.skip_if_unsupported(impl, helpers.MIXED, dtype)
    if not any(n in impl.activations for n in NONLINEAR):
        pytest.skip(f"{impl.name} supports no nonlinear activation")
    net, x, _ = data.draw(degenerate_cases(impl, kind, dtype), label="case")
    check_network_is_constant(impl, net, x)


@helpers.claim(activations=PAIR_PARAMS)
def test_flipped_pair_network_is_provably_affine_on_rn_and_equals_its_map_on_its_data(
    impl, dtype, activation, data
) -> None:
    helpers.skip_if_unsupported(impl, (activation, "identity"), dtype)
    (net, x, _), k, c = data.draw(flipped_pair_cases(activation, dtype), label="case")
    check_network_equals_affine_map(impl, net, x, k, c)


@helpers.claim()
def test_all_active_relu_network_is_affine_on_its_data_and_not_affine_on_a_witness_line(impl, dtype, data) -> None:
    helpers.skip_if_unsupported(impl, "relu", dtype)
    net, x, _ = data.draw(all_active_relu_cases(dtype), label="case")
    check_all_active_relu_network_is_affine_on_its_data(impl, net, x)
    # ... and yet not affine on R^n: the implementation must show a nonzero second difference on a witness
    # line (an example that is neither proved affine nor witnessed is discarded inside the check).
    assume_not_provably_affine(check_network_is_witnessed_or_provably_affine(impl, net))
