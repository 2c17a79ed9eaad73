"""Claims about ``mlp-crosscheck reproduce``: the report it writes, its table, and how it fails.

The experiment runs once per module for each configuration (fixtures below); the tests read its report.
"""

from __future__ import annotations

import contextlib
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from mlp_crosscheck.properties import tolerances
from mlp_crosscheck.reference import seed

from mlp_crosscheck import backends
from mlp_crosscheck.cli import main

BACKENDS = [
    pytest.param(name, id=name, marks=[pytest.mark.skip(reason=backends.missing_reason(name))])
    if backends.missing_reason(name)
    else pytest.param(name, id=name)
    for name in backends.BUILTINS
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_reproduce(*args) -> tuple[int, str, Path]:
    """Run ``mlp-crosscheck reproduce ARGS``; return its exit code, what it printed, and its --out directory."""
    out_dir = Path(args[args.index("--out") + 1])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["reproduce", *args])
    return code, printed.getvalue(), out_dir


@pytest.fixture(scope="module")
def identity_run(tmp_path_factory):
    return run_reproduce("--out", tmp_path_factory.mktemp("identity") / "nested" / "report-dir")


@pytest.fixture(scope="module")
def identity_report(identity_run) -> dict:
    return json.loads((identity_run[2] / "report.json").read_text())


@pytest.fixture(scope="module")
def tanh_run(tmp_path_factory):
    return run_reproduce("--activation", "tanh", "--out", tmp_path_factory.mktemp("tanh"))


@pytest.fixture(scope="module")
def tanh_report(tanh_run) -> dict:
    return json.loads((tanh_run[2] / "report.json").read_text())


# -- the identity network: the post ---------------------------------------------------------------------------


def test_reproducing_the_post_exits_0_and_says_so(identity_run):
    code, printed, _ = identity_run
    assert code == 0, printed
    assert "reproduce the post" in printed


def test_report_records_environment_and_config(identity_report):
    env = identity_report["environment"]
    for key in ("python", "numpy", "scipy", "torch", "jax", "hypothesis", "platform", "cpu", "machine"):
        assert env[key], f"environment.{key} is empty"
    assert identity_report["config"]["activation"] == "identity"
    assert identity_report["config"]["epochs"] == seed.EPOCHS
    assert identity_report["config"]["lr"] == seed.LEARNING_RATE
    assert identity_report["ok"] is True


@pytest.mark.parametrize("name", BACKENDS)
def test_report_has_a_cost_for_each_of_the_150_epochs(identity_report, name):
    costs = identity_report["backends"][name]["costs"]
    assert len(costs) == 150
    assert costs[-1] < costs[0]


@pytest.mark.parametrize("name", BACKENDS)
def test_outputs_round_to_y(identity_report, name):
    entry = identity_report["backends"][name]
    _, y = seed.data()
    np.testing.assert_array_equal(np.round(entry["outputs"]), y)
    assert entry["reproduces_post"] is True


@pytest.mark.parametrize("name", BACKENDS)
def test_x_at_K_equals_the_output_within_the_rounding_bound(identity_report, name):
    entry = identity_report["backends"][name]
    x, _ = seed.data()
    diff = np.abs(x @ np.array(entry["K"]) + np.array(entry["c"]) - np.array(entry["outputs"]))
    allowed = np.array(entry["collapse_bound"]) + np.array(entry["forward_bound"])
    assert np.all(diff <= allowed), f"max diff {diff.max()} > bound {allowed.max()}"
    assert entry["collapse_max_abs_diff"] == diff.max()
    assert entry["collapse_within_bound"] is True
    assert "within the rounding bound" in entry["collapse_statement"]


@pytest.mark.parametrize("name", BACKENDS)
def test_first_epoch_cost_agrees_with_numpy_within_the_rounding_bound(identity_report, name):
    # Every backend starts from the same network, so epoch 1's costs differ only by rounding: bound_a + bound_b.
    x, y = seed.data()
    bound = tolerances.gradient_bounds(seed.initial_network(), x, y).agree().loss
    first = identity_report["backends"][name]["costs"][0]
    assert abs(first - identity_report["backends"]["numpy"]["costs"][0]) <= bound


@pytest.mark.parametrize("name", BACKENDS)
def test_every_epoch_stays_close_to_the_numpy_run(identity_report, name):
    # After epoch 1 the trajectories part by rounding and no per-step bound applies to the whole run; the
    # report shows ~1e-13 relative in float64. 1e-9 leaves four orders of headroom for other BLAS builds,
    # while a wrong gradient anywhere moves the costs by O(1) relative within a few epochs.
    diff = identity_report["backends"][name]["max_diff_from_numpy"]
    assert diff["costs_relative"] <= 1e-9
    assert diff["outputs"] <= 1e-9 * 32  # |output| <= ~32
    if name == "numpy":  # the baseline against itself
        assert (diff["costs"], diff["outputs"], diff["weights"]) == (0.0, 0.0, 0.0)


def test_table_has_one_column_per_backend(identity_run, identity_report):
    _, printed, _ = identity_run
    header = next(line for line in printed.splitlines() if line.lstrip().startswith("numpy"))
    assert header.split() == list(identity_report["backends"])
    for row in ("cost, epoch 1", "cost, epoch 150", "round(output) vs y = 8 16 24 32", "K = W1 W2 ... WL",
                "max |x @ K - output|", "max |cost - numpy|, any epoch"):  # fmt: skip
        assert row in printed, f"the table has no row {row!r}"


def test_figure_is_a_valid_png(identity_run):
    data = (identity_run[2] / "reproduce.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    # The first chunk is IHDR: 4-byte length, b"IHDR", then width and height as big-endian uint32.
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 100
    assert height > 100
    assert data.endswith(b"IEND\xaeB`\x82")


def test_out_directory_is_created(identity_run):
    assert identity_run[2].name == "report-dir"
    assert (identity_run[2] / "report.json").is_file()


def test_report_md_shows_the_environment_and_every_backends_costs(identity_run, identity_report):
    report = identity_report
    text = (identity_run[2] / "report.md").read_text()
    assert text.startswith("# mlp-crosscheck reproduce\n\n`mlp-crosscheck reproduce ")
    assert f"| numpy | {report['environment']['numpy']} |" in text
    assert "## Seed experiment" in text
    assert "![the seed experiment in every backend](reproduce.png)" in text
    for name in report["backends"]:
        assert f"| {name} |" in text


# -- tanh: no collapse ----------------------------------------------------------------------------------------


def test_tanh_run_exits_0(tanh_run):
    code, printed, _ = tanh_run
    assert code == 0, printed


@pytest.mark.parametrize("name", BACKENDS)
def test_tanh_network_reports_no_K_and_an_affine_residual(tanh_report, name):
    entry = tanh_report["backends"][name]
    assert entry["collapsible"] is False
    assert entry["K"] is None
    assert "nonlinear" in entry["not_collapsible"]
    fit = entry["affine_fit"]
    assert fit["residual_norm"] > 0
    assert fit["max_abs_residual"] > 0
    # The residual is what lstsq leaves: recompute it from the reported coefficients.
    x, _ = seed.data()
    residual = np.array(entry["outputs"]) - np.hstack([x, np.ones((4, 1))]) @ np.array(fit["coefficients"])
    assert np.linalg.norm(residual) == pytest.approx(fit["residual_norm"], rel=1e-12)


def test_tanh_table_says_no_K_exists(tanh_run):
    _, printed, _ = tanh_run
    assert "none (nonlinear)" in printed
    assert "no K exists" in printed
    assert "affine fit" in printed


# -- failures and options -------------------------------------------------------------------------------------


def test_unknown_backend_is_a_usage_error_naming_the_builtins(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--backends", "numpy,caffe", "--out", tmp_path])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown backend 'caffe'" in err
    assert "numpy, torch, jax" in err
    assert not (tmp_path / "report.json").exists()


def test_missing_framework_is_reported_in_one_line_not_raised(tmp_path, monkeypatch):
    real = backends.missing_reason
    fake = lambda name: "jax is not installed (simulated)" if name == "jax" else real(name)
    monkeypatch.setattr(backends, "missing_reason", fake)
    code, printed, _ = run_reproduce("--backends", "numpy,jax", "--out", tmp_path)
    assert code == 0, printed
    assert [line for line in printed.splitlines() if "jax" in line and "simulated" in line] == [
        "skipped: jax (jax is not installed (simulated))"
    ]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["skipped"] == {"jax": "jax is not installed (simulated)"}
    assert list(report["backends"]) == ["numpy"]


def test_not_reproducing_the_post_exits_1_and_says_why(tmp_path):
    # One epoch of training leaves the outputs far from y.
    code, printed, _ = run_reproduce("--backends", "numpy", "--epochs", "1", "--out", tmp_path)
    assert code == 1
    assert "FAILED" in printed
    assert "numpy: the outputs round to" in printed
    assert json.loads((tmp_path / "report.json").read_text())["ok"] is False


def test_divergence_exits_1_and_says_so(tmp_path):
    code, printed, _ = run_reproduce("--backends", "numpy", "--lr", "0.01", "--out", tmp_path)
    assert code == 1
    assert "numpy: training diverged: the cost is not finite from epoch" in printed
    report = json.loads((tmp_path / "report.json").read_text())  # valid JSON: NaN is written as null
    assert None in report["backends"]["numpy"]["costs"]


def test_rerun_replaces_the_report_and_says_where(tmp_path):
    run_reproduce("--backends", "numpy", "--epochs", "1", "--out", tmp_path)
    code, printed, _ = run_reproduce("--backends", "numpy", "--out", tmp_path)
    assert code == 0
    assert f"wrote {tmp_path / 'report.json'} (replaced the previous one)" in printed
    assert len(json.loads((tmp_path / "report.json").read_text())["backends"]["numpy"]["costs"]) == 150
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md", "reproduce.png"]


@pytest.mark.parametrize("name", BACKENDS)
def test_float32_run_reproduces_the_post(tmp_path, name):
    code, printed, _ = run_reproduce("--backends", name, "--dtype", "float32", "--out", tmp_path)
    assert code == 0, printed
    entry = json.loads((tmp_path / "report.json").read_text())["backends"][name]
    assert entry["reproduces_post"] is True
    assert entry["collapse_within_bound"] is True


def test_no_subcommand_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "reproduce" in capsys.readouterr().out


def test_out_that_is_a_file_is_an_error_not_overwritten(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    assert main(["reproduce", "--backends", "numpy", "--out", target]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_explicit_device_runs_a_fresh_backend_instance(tmp_path):
    name = next((n for n in ("torch", "jax") if backends.missing_reason(n) is None), None)
    if name is None:
        pytest.skip("neither torch nor jax is installed")
    code, printed, _ = run_reproduce("--backends", name, "--device", "cpu", "--out", tmp_path)
    assert code == 0, printed
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["config"]["device"] == "cpu"
    assert report["backends"][name]["device"].startswith("cpu")
