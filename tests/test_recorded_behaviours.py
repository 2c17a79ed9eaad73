"""The recorded behaviours: the table's file handling, the accuracy grid's measurement, the drift between an
observation and a row, ``mlp-crosscheck conventions``, and each family-11 check failing on a planted case."""

from __future__ import annotations

import json
import math
import sys
import types

import numpy as np
import pytest
from mlp_crosscheck.backends import numpy_backend, recorded
from mlp_crosscheck.backends.contract import Implementation, on_device_of
from mlp_crosscheck.properties import accuracy, helpers, observed
from mlp_crosscheck.properties.claims.activation_accuracy import (
    check_accuracy_as_recorded,
    check_accuracy_within_error_model,
)
from mlp_crosscheck.properties.claims.recorded_behaviours import (
    check_installed_version_is_recorded,
    check_subnormal_inputs_are_treated_as_recorded,
)

from mlp_crosscheck import backends, cli


def numpy_with(name: str, forward=None, **declared) -> Implementation:
    """The NumPy backend under another name, with ``forward`` replaced and declarations added: a planted case."""
    module = types.ModuleType(name)
    module.NAME = name
    module.forward = forward or numpy_backend.forward
    module.loss_and_input_gradients = numpy_backend.loss_and_input_gradients
    module.loss_and_gradients = numpy_backend.loss_and_gradients
    vars(module).update(declared)
    return Implementation(module)


# -- the grid and the exact values ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_grid_is_symmetric_without_zero_and_reaches_subnormals_and_the_tails(dtype) -> None:
    z = accuracy.grid(dtype)
    info = np.finfo(dtype)
    assert z.dtype == np.dtype(dtype)
    assert 0 not in z
    assert np.array_equal(z, -z[::-1])
    assert {750.0, 710.0, 40.0, float(np.dtype(dtype).type(1e-10))} <= set(z.astype(np.float64).tolist())
    assert info.smallest_subnormal in z
    assert info.smallest_normal in z


def test_exact_values_avoid_cancellation_in_the_tails() -> None:
    # sigmoid'(700) = e^-700 / (1 + e^-700)^2: 1 - sigmoid(700) cancels to 0 at 60 digits, sigmoid(-700) does not.
    assert accuracy.exact("sigmoid", 700.0)[1] == pytest.approx(math.exp(-700), rel=1e-15)
    assert accuracy.exact("elu", -1e-10) == pytest.approx((-1e-10 + 5e-21, math.exp(-1e-10)), rel=1e-15)
    assert accuracy.exact("silu", -710.0)[0] == pytest.approx(-710 * math.exp(-710), rel=1e-12)
    with pytest.raises(ValueError, match="unknown activation 'selu'; known: identity, tanh"):
        accuracy.exact("selu", 1.0)


def test_a_correct_implementation_is_accurate_and_its_messages_name_the_point() -> None:
    points = accuracy.measure(backends.builtin("numpy"), "tanh", "float64")
    assert {p.quantity for p in points} == {"value", "derivative"}
    assert all(p.cls == "accurate" for p in points)
    one = next(p for p in points if p.z == 1.0 and p.quantity == "derivative")
    assert one.describe("numpy").startswith("numpy tanh'(1.0) = 0.41997434161402")


def test_a_subnormal_read_as_zero_is_judged_at_zero_and_a_kink_there_is_left_out() -> None:
    def denormals_are_zero(weights, biases, activations, x):
        tiny = np.finfo(x.dtype).smallest_normal
        weights = [np.where(np.abs(w) < tiny, 0, w).astype(w.dtype) for w in weights]
        return numpy_backend.forward(weights, biases, activations, x)

    impl = numpy_with("daz", denormals_are_zero)
    sigmoid = {p.z: p for p in accuracy.measure(impl, "sigmoid", "float64") if p.quantity == "value"}
    assert sigmoid[5e-324].effective_z == 0
    assert sigmoid[5e-324].exact == 0.5
    assert "received as 0.0" in sigmoid[5e-324].describe("daz")
    relu_points = {p.z for p in accuracy.measure(impl, "relu", "float64")}
    assert 5e-324 not in relu_points
    assert 1.0 in relu_points


def test_an_identity_layer_that_is_wrong_cannot_be_measured() -> None:
    def off_by_one(weights, biases, activations, x):
        return numpy_backend.forward(weights, biases, activations, x) + 1

    with pytest.raises(AssertionError, match=r"^off: an identity layer computed 1 \* -750\.0 = -749\.0 in float64"):
        accuracy.measure(numpy_with("off", off_by_one), "tanh", "float64")


# -- the checks fail on planted cases ---------------------------------------------------------------------


def _elu_exp_minus_one(weights, biases, activations, x):
    if list(activations) != ["elu"]:
        return numpy_backend.forward(weights, biases, activations, x)
    z = x @ weights[0]
    return np.where(z > 0, z, np.exp(np.minimum(z, 0)) - 1).astype(x.dtype)


def test_the_error_model_check_fails_on_elu_as_exp_minus_one_naming_the_input() -> None:
    impl = numpy_with("planted", _elu_exp_minus_one)
    check_accuracy_within_error_model(backends.builtin("numpy"), "elu", "float32")  # the control
    with pytest.raises(AssertionError, match=r"^planted elu\(-[0-9.e-]+\) = -?0\.0 in float32; exact -[0-9.e-]+ "):
        check_accuracy_within_error_model(impl, "elu", "float32")


def test_the_record_check_fails_on_a_changed_class_and_warns_against_a_nearest_row(monkeypatch) -> None:
    numpy = backends.builtin("numpy")
    row = numpy.module.RECORDED_ROW
    check_accuracy_as_recorded(numpy, "sigmoid", "float64")  # the control: as recorded
    # Recorded as inaccurate at z = 1 (it is accurate): a class that changed.
    changed = json.loads(json.dumps(row.row))
    changed["accuracy"]["float64"]["sigmoid"] = {"value": {"1.0": "within_model"}}
    planted = numpy_with("planted", RECORDED_ROW=row._replace(row=changed))
    with pytest.raises(AssertionError, match=r"^planted sigmoid\(1\.0\) = 0\.7310585786300049 in float64.*recorded "):
        check_accuracy_as_recorded(planted, "sigmoid", "float64")
    nearest = numpy_with("planted", RECORDED_ROW=row._replace(row=changed, exact=False, installed="99.0"))
    monkeypatch.setattr(observed, "STRICT", False)
    with helpers.recording_notes() as notes:
        check_accuracy_as_recorded(nearest, "sigmoid", "float64")
    assert notes
    assert notes[0].startswith("warning: planted sigmoid(1.0) = ")
    monkeypatch.setattr(observed, "STRICT", True)
    with pytest.raises(AssertionError, match=r"installed 99\.0\): the accuracy class of 1 grid point\(s\) changed"):
        check_accuracy_as_recorded(nearest, "sigmoid", "float64")


def test_the_version_check_fails_only_when_strict(monkeypatch) -> None:
    row = backends.builtin("numpy").module.RECORDED_ROW
    check_installed_version_is_recorded(numpy_with("control", RECORDED_ROW=row))
    unrecorded = numpy_with("planted", RECORDED_ROW=row._replace(installed="99.0", exact=False))
    monkeypatch.setattr(observed, "STRICT", True)
    with pytest.raises(AssertionError) as caught:
        check_installed_version_is_recorded(unrecorded)
    assert str(caught.value) == (
        f"planted: numpy 99.0 has no recorded row of behaviours; the nearest recorded version is {row.version} "
        f"({row.source}); every observed behaviour equals that row's\n"
        "Record the installed version's row: mlp-crosscheck conventions --record --backends planted"
    )
    monkeypatch.setattr(observed, "STRICT", False)
    with helpers.recording_notes() as notes:
        check_installed_version_is_recorded(unrecorded)
    assert notes == ["warning: " + str(caught.value).replace("\n", " ")]


def test_a_builtin_backend_without_any_recorded_row_fails_when_strict(monkeypatch) -> None:
    numpy = backends.builtin("numpy")
    monkeypatch.setattr(numpy.module, "RECORDED_ROW", None)
    monkeypatch.setattr(observed, "STRICT", True)
    with pytest.raises(AssertionError, match=r"^numpy: no recorded behaviours for its framework at all \(looked in "):
        check_installed_version_is_recorded(numpy)


def test_the_package_ships_its_recorded_rows() -> None:
    assert recorded.PACKAGED.exists()
    assert {"numpy", "torch", "jax"} <= set(recorded.read(recorded.PACKAGED))
    assert backends.builtin("numpy").module.RECORDED_ROW.exact  # the version CI installs is recorded


def test_the_subnormal_input_check_fails_on_a_wrong_declaration_and_reports_an_undeclared_one() -> None:
    check_subnormal_inputs_are_treated_as_recorded(numpy_with("kept", SUBNORMAL_INPUTS="kept"), "float64")
    with pytest.raises(AssertionError, match=r"^wrong: subnormal inputs are 'kept' in float32 \(4 \* \(tiny / 2\) "):
        check_subnormal_inputs_are_treated_as_recorded(numpy_with("wrong", SUBNORMAL_INPUTS="zero"), "float32")
    with helpers.recording_notes() as notes:
        check_subnormal_inputs_are_treated_as_recorded(numpy_with("quiet"), "float64")
    assert notes == ["keeps subnormal inputs in float64"]


# -- the table's file ------------------------------------------------------------------------------------


def test_lookup_takes_the_installed_row_else_the_newest_older_else_the_oldest(tmp_path, monkeypatch) -> None:
    row = {field: {} for field in recorded.FIELDS}
    path = tmp_path / "rows.json"
    for version in ("0.4.30", "0.10.2", "0.6.2"):
        recorded.record(path, "fake", version, row)
    assert list(json.loads(path.read_text())["fake"]) == ["0.4.30", "0.6.2", "0.10.2"]  # by release, not text
    monkeypatch.setenv(recorded.OVERLAY_VARIABLE, str(path))
    assert recorded.lookup("fake", "0.6.2")[2:5:2] == ("0.6.2", True)
    assert recorded.lookup("fake", "0.9.0").version == "0.6.2"
    assert recorded.lookup("fake", "0.4.13").version == "0.4.30"
    assert not recorded.lookup("fake", "0.4.13").exact
    with pytest.raises(LookupError, match="no recorded behaviours for other"):
        recorded.lookup("other", "1.0")


def test_rows_are_kept_per_device_and_another_device_falls_back_to_the_cpu_row_as_not_exact(
    tmp_path, monkeypatch
) -> None:
    row = {field: {} for field in recorded.FIELDS}
    path = tmp_path / "rows.json"
    assert recorded.record(path, "fake", "0.10.2", row) == "0.10.2"
    assert recorded.record(path, "fake", "0.10.2", {**row, "subnormal_inputs": "zero"}, "cuda:1") == "0.10.2@cuda"
    assert list(json.loads(path.read_text())["fake"]) == ["0.10.2", "0.10.2@cuda"]
    monkeypatch.setenv(recorded.OVERLAY_VARIABLE, str(path))
    on_cpu, on_gpu = recorded.lookup("fake", "0.10.2"), recorded.lookup("fake", "0.10.2", "cuda:0")
    assert (on_cpu.version, on_cpu.exact, on_cpu.device, on_cpu.on()) == ("0.10.2", True, "cpu", "")
    assert (on_gpu.version, on_gpu.exact, on_gpu.device, on_gpu.row["subnormal_inputs"]) == (
        "0.10.2@cuda",
        True,
        "cuda",
        "zero",
    )
    newer_gpu = recorded.lookup("fake", "0.11.0", "cuda")  # the nearest row of the same device
    assert (newer_gpu.version, newer_gpu.exact) == ("0.10.2@cuda", False)
    other = recorded.lookup("fake", "0.10.2", "mps")  # no row of its own: the cpu's, not exact
    assert (other.version, other.exact, other.on()) == ("0.10.2", False, " on mps")


def test_a_backend_on_a_device_without_its_row_is_unrecorded_and_says_how_to_record_it(monkeypatch) -> None:
    # A GPU's kernels are not the CPU's (accuracy, flushing): a backend computing there is not held to the CPU
    # row as if it were its own. No GPU is needed: the declarations are what is checked.
    fake = types.ModuleType("fake_device_backend")
    fake.NAME = "numpy"
    fake.RECORDED_ROW = cpu_row = backends.builtin("numpy").module.RECORDED_ROW
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    network = lambda device: types.SimpleNamespace(
        forward=numpy_backend.forward, loss_and_input_gradients=numpy_backend.loss_and_input_gradients
    )
    on_device = on_device_of(fake.__name__, network)
    assert cpu_row == on_device("cpu").RECORDED_ROW  # the module's own
    gpu = on_device("cuda:0")
    assert (gpu.RECORDED_ROW.version, gpu.RECORDED_ROW.exact, gpu.RECORDED_ROW.device) == (
        cpu_row.version,
        False,
        "cuda",
    )
    assert cpu_row.row["kink_derivatives"] == gpu.KINK_DERIVATIVES
    monkeypatch.setattr(observed, "STRICT", True)
    with pytest.raises(AssertionError) as caught:
        check_installed_version_is_recorded(Implementation(gpu, label="planted"))
    assert f" {cpu_row.installed} on cuda has no recorded row of behaviours; the nearest recorded version is " in str(
        caught.value
    )
    assert str(caught.value).endswith("mlp-crosscheck conventions --record --backends numpy --device cuda")


def test_conventions_on_the_cpu_only_backend_off_the_cpu_is_a_usage_error(capsys) -> None:
    assert cli.main(["conventions", "--backends", "numpy", "--device", "cuda"]) == 4
    assert capsys.readouterr().err == (
        "mlp-crosscheck conventions: numpy: the numpy backend runs on the cpu only, not 'cuda'\n"
    )


def test_conventions_on_a_device_the_framework_does_not_see_is_a_usage_error(monkeypatch, capsys) -> None:
    def unseen(name, device=None):
        raise RuntimeError(f"device {device!r} asked for, but torch 2.13.0+cpu sees no CUDA device")

    monkeypatch.setattr(backends, "builtin", unseen)
    assert cli.main(["conventions", "--backends", "numpy", "--device", "cuda"]) == 4
    assert capsys.readouterr().err == (
        "mlp-crosscheck conventions: numpy: device 'cuda' asked for, but torch 2.13.0+cpu sees no CUDA device\n"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "cannot be read as JSON"),
        ("[]", r"expected \{framework: \{version: row\}\}"),
        ('{"torch": {"2.0": {"kink_derivatives": {}}}}', "torch 2.0 lacks flushes_subnormals, subnormal_inputs"),
    ],
)
def test_a_malformed_table_is_an_error_naming_the_file(tmp_path, text, message) -> None:
    path = tmp_path / "rows.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"recorded behaviours file {path}: {message}"):
        recorded.read(path)


def test_differences_name_each_changed_behaviour() -> None:
    row = {
        "kink_derivatives": {"relu": 0.0},
        "flushes_subnormals": False,
        "subnormal_inputs": "kept",
        "accuracy": {"float32": {"elu": {"derivative": {"-40.0": "within_model"}}}},
    }
    now = json.loads(json.dumps(row))
    now["kink_derivatives"]["relu"] = 1.0
    now["subnormal_inputs"] = "zero"
    now["accuracy"]["float32"]["elu"] = {"value": {"-1e-10": "outside_model"}}
    assert observed.differences(now, row) == [
        "relu'(0): observed 1.0, recorded 0.0",
        "subnormal_inputs: observed 'zero', recorded 'kept'",
        "float32 elu(-1e-10): observed outside_model, recorded accurate",
        "float32 elu'(-40.0): observed accurate, recorded within_model",
    ]
    assert observed.differences(row, row) == []


# -- mlp-crosscheck conventions -------------------------------------------------------------------------


def test_conventions_says_each_installed_version_is_recorded(capsys) -> None:
    assert cli.main(["conventions", "--backends", "numpy"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"numpy: numpy {backends.version('numpy')} is recorded (")
    assert out.rstrip().endswith("and behaves as recorded")


def test_conventions_records_an_unrecorded_version_and_then_finds_it(tmp_path, monkeypatch, capsys) -> None:
    overlay = tmp_path / "mine.json"
    monkeypatch.setenv(recorded.OVERLAY_VARIABLE, str(overlay))
    monkeypatch.setattr(backends, "version", lambda distribution: "99.0")
    assert cli.main(["conventions", "--backends", "numpy"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("numpy: numpy 99.0 is not recorded; nearest recorded: ")
    assert "  record it: mlp-crosscheck conventions --record --backends numpy" in out
    assert cli.main(["conventions", "--backends", "numpy", "--record"]) == 0
    assert capsys.readouterr().out == f"numpy: recorded numpy 99.0 in {overlay}\n"
    assert set(json.loads(overlay.read_text())["numpy"]) == {"99.0"}
    assert cli.main(["conventions", "--backends", "numpy"]) == 0
    assert capsys.readouterr().out == f"numpy: numpy 99.0 is recorded ({overlay}) and behaves as recorded\n"


def test_conventions_on_a_missing_framework_is_a_usage_error(monkeypatch, capsys) -> None:
    monkeypatch.setattr(backends, "missing_reason", lambda name: f"{name} is not installed (pip install x)")
    assert cli.main(["conventions", "--backends", "torch"]) == 4
    assert capsys.readouterr().err == "mlp-crosscheck conventions: torch: torch is not installed (pip install x)\n"
