"""Claims about the space ``mlp-crosscheck sweep`` draws (mlp_crosscheck/commands/sweep_space.py).

Each network is a function of its seed and index only: the same whether drawn in a whole run, a shard or another
grouping, and rebuilt by ``rebuild``. A modest default run covers every activation, dtype and regime, and finds a
planted float64 softplus with torch's default threshold. Narrowing every signature option gives back the sweep
of one signature as it always was. Nothing here measures speed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from mlp_crosscheck.reference import activations as vocabulary
from mlp_crosscheck.reference.batched import forward_batched
from sweep_helpers import run_quiet_sweep as run_sweep

from mlp_crosscheck import backends
from mlp_crosscheck.cli import main
from mlp_crosscheck.commands import sweep as sw
from mlp_crosscheck.commands import sweep_space as ss

FAULTS = Path(__file__).parent / "faults"
CORRECT_IMPL = FAULTS / "correct_fault_skeleton.py"
TODAYS = ("--arch", "3,4,10,1", "--activation", "tanh", "--dtype", "float64")  # the one signature of old

SPACES = {
    "drawn": ss.SweepSpace(seed=11),
    "float32": ss.SweepSpace(seed=3, dtype="float32"),
    "arch-and-regimes": ss.SweepSpace(seed=5, widths=(4, 6, 2), regimes=("large", "near-underflow")),
    "one-signature-every-regime": ss.SweepSpace(
        seed=2, widths=(3, 5, 1), activations=("softplus",), dtype="float64", regimes=ss.REGIMES
    ),
}


def _networks(space: ss.SweepSpace, start: int, stop: int) -> dict[int, tuple]:
    """Return index -> (signature, weights, biases, x, y) of networks ``start .. stop - 1``, through the groups."""
    found = {}
    for group in ss.generate_groups(space, start, stop):
        for k in range(group.size):
            net = group.stack.network(k)
            found[group.start + k] = (group.spec, net.weights, net.biases or (), group.x[k], group.y[k])
    return found


def _assert_same_network(a: tuple, b: tuple) -> None:
    assert a[0] == b[0]
    for u, v in zip([*a[1], *a[2], a[3], a[4]], [*b[1], *b[2], b[3], b[4]], strict=True):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(u, v)


# -- reproducible by index --------------------------------------------------------------------------------------


@pytest.mark.parametrize("space", SPACES.values(), ids=SPACES.keys())
def test_a_network_is_the_same_in_a_whole_run_a_shard_another_grouping_and_rebuilt(space):
    whole = _networks(space, 0, 1300)  # crosses block boundaries (256; 1024 for one signature)

    for start, stop in [(0, 1), (255, 257), (300, 700), (1023, 1030), (1, 1300)]:
        part = _networks(space, start, stop)
        assert sorted(part) == list(range(start, stop))
        for index in part:
            _assert_same_network(part[index], whole[index])
    options = {k: v for k, v in space.to_json().items() if k != "seed" and v is not None}
    for index in (0, 255, 256, 1023, 1024, 1299):
        case = sw.rebuild(space.seed, index, **options)
        net = (whole[index][0], case.net.weights, case.net.biases or (), case.x, case.y)
        _assert_same_network(net, whole[index])


def test_the_printed_rebuild_call_rebuilds_the_network():
    space = SPACES["arch-and-regimes"]
    call = space.rebuild_call(777)
    options = "widths=(4, 6, 2), regimes=('large', 'near-underflow')"
    assert call == f"mlp_crosscheck.commands.sweep.rebuild(seed=5, index=777, {options})"

    case = eval(call, {"mlp_crosscheck": __import__("mlp_crosscheck.commands.sweep")})  # the call as printed

    np.testing.assert_array_equal(case.x, _networks(space, 777, 778)[777][3])


def test_the_drawn_default_is_rebuilt_from_the_seed_and_index_alone():
    assert ss.SweepSpace().rebuild_call(12) == "mlp_crosscheck.commands.sweep.rebuild(seed=7, index=12)"
    _assert_same_network(_networks(ss.SweepSpace(), 12, 13)[12], _networks(ss.SweepSpace(seed=7), 0, 300)[12])


def test_networks_of_one_group_share_a_signature_and_a_run_has_a_bounded_palette():
    space = ss.SweepSpace(seed=1)
    groups = ss.generate_groups(space, 0, 60 * ss.SIGNATURE_BLOCK)

    assert all(g.size == ss.SIGNATURE_BLOCK for g in groups)
    assert {g.spec for g in groups} <= set(ss.palette(space))
    assert len(ss.palette(space)) == ss.PALETTE  # so JAX compiles at most PALETTE times per run
    for g in groups:
        assert g.stack.activations == g.spec.activations
        assert g.x.shape == (g.size, g.spec.batch, g.spec.widths[0])
        assert g.x.dtype == np.dtype(g.spec.dtype)


def test_narrowing_one_dimension_keeps_the_others_draws():
    drawn, narrowed = ss.palette(ss.SweepSpace(seed=4)), ss.palette(ss.SweepSpace(seed=4, dtype="float32"))

    for a, b in zip(drawn, narrowed, strict=True):
        assert b.dtype == "float32"
        assert (a.widths, a.activations, a.biases, a.batch) == (b.widths, b.activations, b.biases, b.batch)


# -- narrowed to one signature: the sweep as it always was ------------------------------------------------------


def test_a_space_of_one_signature_in_the_ordinary_regime_is_the_sweep_spec_bit_for_bit():
    space = ss.SweepSpace(widths=(3, 4, 10, 1), activations=("tanh",), dtype="float64")
    assert space.fixed == ss.SweepSpec()
    assert space.regimes == ("ordinary",)
    assert space.biases is True
    assert space.batch == 4

    (group,) = ss.generate_groups(space, 5, 3000)

    stack, x, y = ss.generate(ss.SweepSpec(), 5, 3000)
    got, want = [*group.stack.weights, *group.stack.biases, group.x, group.y], [*stack.weights, *stack.biases, x, y]
    for u, v in zip(got, want, strict=True):
        np.testing.assert_array_equal(u, v)


def test_narrowing_every_signature_option_reproduces_the_single_signature_sweep(tmp_path):
    path = tmp_path / "narrowed.json"

    code, printed, _ = run_sweep("--networks", "600", "--chunk", "256", "--backends", "numpy", *TODAYS, "--json", path)

    assert code == 0, printed
    assert printed.startswith("mlp-crosscheck sweep: 600 networks 3-4-10-1 tanh float64, biases, batch 4, seed 7")
    assert "coverage" not in printed  # one signature, one regime: nothing to cover
    spec = ss.SweepSpec()
    expected = sw.sweep(spec, 600, sw.make_evaluators(["numpy"], [], 256), chunk=256)
    report = json.loads(path.read_text())
    assert report["spec"] == ss.SweepSpace.of(spec).to_json()
    got = report["backends"]["numpy"]
    want = expected.to_json()["backends"]["numpy"]
    assert {k: got[k] for k in ("checked", "excluded", "failures", "ratios")} == {
        k: want[k] for k in ("checked", "excluded", "failures", "ratios")
    }


# -- the default covers the space ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> tuple[int, str, dict]:
    path = tmp_path_factory.mktemp("coverage") / "sweep.json"
    code, printed, _ = run_sweep("--networks", "5000", "--backends", "numpy", "--json", path)
    return code, printed, json.loads(path.read_text())


def test_a_modest_default_run_covers_every_activation_dtype_regime_and_bias(default_run):
    code, printed, report = default_run

    assert code == 0, printed
    checked = report["coverage"]["checked"]
    assert set(checked["activation"]) == set(vocabulary.NAMES)
    assert set(checked["dtype"]) == {"float32", "float64"}
    assert set(checked["regime"]) == set(ss.REGIMES)
    assert set(checked["biases"]) == {"on", "off"}
    assert set(checked["layers"]) == {"one activation", "mixed"}
    assert {int(d) for d in checked["depth"]} == {1, 2, 3, 4, 5}
    assert sum(checked["dtype"].values()) == report["backends"]["numpy"]["checked"]
    assert min(checked["regime"].values()) > 800  # one network in five each
    for dimension in ("activation", "dtype", "regime", "depth", "biases", "sizes", "excluded"):
        assert f"\n  {dimension:<12}" in printed
    assert "regimes ordinary/small/large/near-exp/near-underflow" in printed


def test_the_default_space_reaches_the_large_sizes_and_they_pass():
    space = ss.SweepSpace(seed=7)
    large = [k for k in range(200) if ss.signature_is_large(space.signature_at(k * ss.SIGNATURE_BLOCK))]
    assert 0 < len(large) < 200 * ss.LARGE_SHARE * 2  # a share of the blocks, as LARGE_SHARE says
    first = large[0] * ss.SIGNATURE_BLOCK

    report = sw.sweep(space, ss.SIGNATURE_BLOCK, sw.make_evaluators(["numpy"], [], 256), first=first)

    assert report.coverage.counts["sizes"]["large"] == report.backends[0].checked > 0
    assert report.ok


def test_the_regimes_reach_what_they_are_for():
    space = ss.SweepSpace(seed=9, dtype="float64", regimes=ss.REGIMES)
    largest_z: dict[str, list[float]] = {r: [] for r in ss.REGIMES}
    smallest_x: dict[str, list[float]] = {r: [] for r in ss.REGIMES}
    for group in ss.generate_groups(space, 0, 2048):
        _, cache = forward_batched(group.stack, group.x)
        z = np.max([np.abs(p).reshape(group.size, -1).max(axis=1) for p in cache.preactivations], axis=0)
        for k, r in enumerate(group.regimes):
            largest_z[ss.REGIMES[r]].append(z[k])
            smallest_x[ss.REGIMES[r]].append(np.abs(group.x[k]).max())

    exp_range = math.log(np.finfo(np.float64).max)  # 709.8
    assert np.median(largest_z["ordinary"]) < 5
    assert np.median(largest_z["small"]) < 5
    assert np.mean(np.array(largest_z["large"]) > 20) > 0.5  # softplus past torch's threshold, often
    assert np.mean(np.array(largest_z["near-exp"]) > exp_range / 4) > 0.5
    assert np.max(largest_z["near-exp"]) > exp_range  # past where exp overflows
    assert np.max(smallest_x["near-underflow"]) < 1e-150  # sqrt(tiny) = 1.5e-154, times at most 16 and sqrt 3


# -- it finds what the old default missed -------------------------------------------------------------------------


def _softplus_threshold_20_numpy(folder: Path) -> Path:
    """The correct skeleton with torch's default softplus: z (and slope 1) for z > 20, off by log1p(e^-20) ~ 2e-9."""
    source = CORRECT_IMPL.read_text()
    planted = source.replace(
        "return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))  # log(1 + e^z) without overflow",
        "return np.where(z > 20, z, np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))))  # BUG: threshold 20",
    ).replace(
        'if name == "softplus":\n        return _sigmoid(z)',
        'if name == "softplus":\n        return np.where(z > 20, np.ones_like(z), _sigmoid(z))  # BUG: threshold 20',
    )
    assert planted.count("# BUG") == source.count("# BUG") + 2
    path = folder / "softplus_threshold_20.py"
    path.write_text(planted + "\nNAME = 'softplus_threshold_20'\n")
    return path


def _softplus_threshold_20_torch(folder: Path) -> Path:
    """The correct skeleton whose softplus and its derivative are torch's F.softplus at its default threshold."""
    source = CORRECT_IMPL.read_text()
    planted = source.replace(
        "return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))  # log(1 + e^z) without overflow",
        "return torch.nn.functional.softplus(torch.from_numpy(z)).numpy()  # BUG: threshold 20",
    ).replace(
        'if name == "softplus":\n        return _sigmoid(z)',
        'if name == "softplus":\n        return _torch_softplus_derivative(z)',
    )
    planted += (
        "\nimport torch\n\n\ndef _torch_softplus_derivative(z):\n"
        "    t = torch.from_numpy(z).requires_grad_()\n"
        "    (d,) = torch.autograd.grad(torch.nn.functional.softplus(t).sum(), t)\n"
        "    return d.numpy()\n\n\nNAME = 'torch_softplus_default'\n"
    )
    path = folder / "torch_softplus_default.py"
    path.write_text(planted)
    return path


PLANTED = [
    pytest.param(_softplus_threshold_20_numpy, id="numpy-threshold-20"),
    pytest.param(
        _softplus_threshold_20_torch,
        id="torch-F.softplus-default",
        marks=pytest.mark.skipif(backends.missing_reason("torch") is not None, reason="torch is not installed"),
    ),
]


@pytest.mark.parametrize("write", PLANTED)
def test_a_default_run_finds_a_float64_softplus_with_threshold_20(write, tmp_path):
    impl = write(tmp_path)
    name = impl.stem
    path = tmp_path / "sweep.json"

    code, printed, _ = run_sweep("--networks", "5000", "--backends", "numpy", "--impl", impl, "--json", path)

    assert code == 1, printed
    report = json.loads(path.read_text())
    assert report["backends"]["numpy"]["failures"] == 0
    failures = report["backends"][name]["failures"]
    assert failures >= 10
    per = report["backends"][name]["failures_per"]
    assert per["dtype"] == {"float64": failures}  # float32's bound is ~u 20 = 1e-6: it hides 2e-9
    assert per["activation"]["softplus"] == failures
    assert set(per["regime"]) <= {"large", "near-exp"}  # z > 20 takes a large pre-activation
    assert all("softplus" in s for s in report["failing_signatures"][name])
    assert "per dtype: float64" in printed
    assert f"mlp_crosscheck.commands.sweep.rebuild(seed=7, index={report['failures'][0]['index']})" in printed


def test_the_single_signature_sweep_of_old_misses_it(tmp_path):
    impl = _softplus_threshold_20_numpy(tmp_path)

    code, printed, _ = run_sweep(
        "--networks", "3000", "--backends", "numpy", "--impl", impl, "--arch", "3,4,10,1", "--activation", "softplus",
        "--dtype", "float64",
    )  # fmt: skip

    assert code == 0, printed  # unit-scale values: z never passes 20
    code, printed, _ = run_sweep(
        "--networks", "3000", "--backends", "numpy", "--impl", impl, "--arch", "3,4,10,1", "--activation", "softplus",
        "--dtype", "float64", "--regime", "large",
    )  # fmt: skip
    assert code == 1, printed


# -- what the bounds do not cover is excluded and counted ---------------------------------------------------------


def test_networks_beyond_the_dtypes_range_are_excluded_and_counted_not_failed(monkeypatch):
    generate_groups = sw.generate_groups

    def overflowing(space, start, stop):
        groups = generate_groups(space, start, stop)
        for group in groups:
            group.y[group.start % 2 :: 2] *= np.float32(1e30)  # every other network: its loss ~1e60 > 3.4e38
        return groups

    monkeypatch.setattr(sw, "generate_groups", overflowing)
    space = ss.SweepSpace(widths=(3, 4, 1), activations=("tanh",), dtype="float32")

    report = sw.sweep(space, 300, sw.make_evaluators(["numpy"], [], 300))

    (numpy,) = report.backends
    assert numpy.failures == 0
    assert report.coverage.excluded["beyond range"] == 150
    assert numpy.excluded == 150
    assert numpy.checked == 150
    assert "excluded    kink 0 · beyond range 150" in sw.format_report(report)


def test_the_help_describes_the_space_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--help"])

    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    for option in ("--arch", "--activation", "--dtype", "--biases", "--no-biases", "--batch", "--regime"):
        assert option in printed
    assert "near-underflow" in printed
