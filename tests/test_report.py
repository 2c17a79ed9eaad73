"""``mlp-crosscheck check --report DIR``: what report.json, report.md and report.png hold, and how it fails.

One ``check --report`` runs in a subprocess, as a user would, on a narrow ``-k`` selection under the ``ci``
profile. The behaviours and accuracy measurements are faked there (``report.OBSERVERS`` pointed at a stub
module, ``FAKE_OBSERVERS``), so these tests judge the report, not the measurements.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from user_shell import user_environment

from mlp_crosscheck.cli import build_parser, main
from mlp_crosscheck.commands import check, report

REPO = Path(__file__).resolve().parent.parent
TUTORIAL = REPO / "examples" / "tutorial_mlp.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SELECTION = "tanh and forward_matches_reference and float64"

# Run before the command: a stub observers module, so that the report does not depend on the real measurements.
FAKE_OBSERVERS = """
import sys, types
fake = types.ModuleType("fake_observers")
fake.behaviours = lambda impl: {
    "kink_derivatives": {"relu": 0.0, "leaky_relu": 0.01},
    "flushes_subnormals": False,
    "subnormal_inputs": "kept",
    "accuracy": {"float32": {"elu": {"value": {"-1e-10": "within_model"}}}},
}
fake.table = lambda impl: [
    {"dtype": "float32", "activation": "elu", "quantity": "value", "worst_ulps": 2.5, "worst_at": -1e-10,
     "got": -1e-10, "exact": -1e-10, "within_model": True, "inaccurate_points": 1, "points": 52},
    {"dtype": "float32", "activation": "elu", "quantity": "derivative", "worst_ulps": 1.0, "worst_at": -3.0,
     "got": 0.049787068, "exact": 0.049787068367863944, "within_model": True, "inaccurate_points": 0, "points": 52},
]
sys.modules["fake_observers"] = fake
from mlp_crosscheck.commands import report
report.OBSERVERS = {"behaviours": ("fake_observers", "behaviours"), "accuracy": ("fake_observers", "table")}
from mlp_crosscheck.cli import main
sys.exit(main(sys.argv[1:]))
"""


def check_with_fake_observers(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``mlp-crosscheck check ARGS`` in a fresh process from ``cwd``, with the observers faked."""
    return subprocess.run(
        [sys.executable, "-c", FAKE_OBSERVERS, "check", *args],
        cwd=cwd,
        env=user_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.fixture(scope="module")
def report_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    cwd = tmp_path_factory.mktemp("check-report")
    proc = check_with_fake_observers(
        cwd, str(TUTORIAL), "--backends", "numpy", "--profile", "ci", "-k", SELECTION, "--report", "out"
    )
    return proc, cwd / "out"


@pytest.fixture(scope="module")
def written(report_run) -> dict:
    proc, out = report_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    return json.loads((out / "report.json").read_text())


# -- what check --report writes -------------------------------------------------------------------------------


def test_check_report_writes_the_three_files_and_says_where(report_run, written) -> None:
    proc, out = report_run
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "report.png"]
    for name in ("report.json", "report.md", "report.png"):
        assert f"wrote {Path('out') / name}" in proc.stdout


def test_report_json_has_every_section(written) -> None:
    assert list(written) == [
        "format",
        "format_version",
        "created",
        "command",
        "exit_code",
        "profile",
        "environment",
        "summary",
        "worst_ratio",
        "tests",
        "implementations",
        "behaviours",
        "accuracy",
        "seed_experiment",
        "errors",
    ]
    assert written["format"] == report.FORMAT
    assert written["exit_code"] == 0
    assert written["implementations"] == ["numpy", "tutorial_mlp"]
    assert written["errors"] == []


def test_report_environment_records_versions_blas_device_profile_and_seed(written) -> None:
    env = written["environment"]
    for key in ("python", "numpy", "scipy", "torch", "jax", "jaxlib", "hypothesis", "blas", "cpu", "platform"):
        assert env[key], f"environment.{key} is empty"
    assert env["device"] == "cpu"
    assert env["profile"] == "ci"
    assert env["derandomize"] is True
    assert env["hypothesis_seed"] is None
    assert "blas_runtime" in env
    assert isinstance(env["precision"], dict)


def test_report_has_a_result_per_implementation_and_claim_with_examples_and_ratios(written) -> None:
    rows = {(r["implementation"], r["family"]): r for r in written["summary"]}
    assert set(rows) == {("numpy", "forward_agreement"), ("tutorial_mlp", "forward_agreement")}
    for row in rows.values():
        assert row["result"] == "passed"
        assert row["examples"] >= 60  # the ci profile's examples
    assert set(written["worst_ratio"]) == {"numpy", "tutorial_mlp"}
    assert 0 <= written["worst_ratio"]["tutorial_mlp"]["forward output"] <= 1
    assert {t["impl"] for t in written["tests"]} == {"numpy", "tutorial_mlp"}


def test_report_holds_each_implementations_behaviours_and_accuracy(written) -> None:
    assert written["behaviours"]["tutorial_mlp"]["kink_derivatives"] == {"relu": 0.0, "leaky_relu": 0.01}
    assert set(written["behaviours"]) == set(written["accuracy"]) == {"numpy", "tutorial_mlp"}
    assert written["accuracy"]["numpy"][0]["worst_ulps"] == 2.5


def test_report_runs_the_seed_experiment_on_the_baseline_and_each_checked_implementation(written) -> None:
    seed = written["seed_experiment"]
    assert seed["config"]["activation"] == "identity"
    assert seed["config"]["epochs"] == 150
    assert list(seed["backends"]) == ["numpy", "tutorial_mlp"]
    assert seed["ok"] is True
    for entry in seed["backends"].values():
        assert len(entry["costs"]) == 150
        assert entry["reproduces_post"] is True
        assert len(entry["K"]) == 3
    assert seed["backends"]["tutorial_mlp"]["device"] == "its own"


def test_report_markdown_shows_every_section(report_run) -> None:
    text = (report_run[1] / "report.md").read_text()
    for heading in ("## Environment", "## Claims", "## Observed behaviours", "## Activation accuracy",
                    "## Seed experiment"):  # fmt: skip
        assert heading in text
    assert "| tutorial_mlp | forward agreement | passed | 1 | 0 | 0 |" in text
    assert "| kink_derivatives.relu | 0.0 |" in text
    assert "| float32 | elu | value | 2.5 | -1e-10 | -1e-10 | -1e-10 | yes | 1/52 |" in text
    assert "| numpy | cpu | 47.24433473 | 0.02327383691 |" in text
    assert "![worst error-to-bound ratios and the seed experiment's costs](report.png)" in text


def test_report_figure_is_a_png(report_run) -> None:
    data = (report_run[1] / "report.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert data.endswith(b"IEND\xaeB`\x82")


# -- how it fails ---------------------------------------------------------------------------------------------


def test_a_report_path_that_is_a_file_is_a_usage_error_before_anything_runs(tmp_path, capsys) -> None:
    target = tmp_path / "a-file"
    target.write_text("keep me")
    assert main(["check", TUTORIAL, "--report", target]) == 4
    assert capsys.readouterr().err == f"mlp-crosscheck check: error: --report {target} exists and is not a directory\n"
    assert target.read_text() == "keep me"


def test_no_report_is_written_when_no_claim_ran(tmp_path) -> None:
    proc = check_with_fake_observers(tmp_path, str(TUTORIAL), "-k", "no_claim_is_called_this", "--report", "out")
    assert proc.returncode == 5
    assert "mlp-crosscheck check: no report written to out: no claim ran" in proc.stderr
    assert not (tmp_path / "out").exists()


def _stub_observers(monkeypatch, **functions) -> None:
    fake = types.ModuleType("stub_observers")
    for name, function in functions.items():
        setattr(fake, name, function)
    monkeypatch.setitem(sys.modules, "stub_observers", fake)
    monkeypatch.setattr(
        report, "OBSERVERS", {"behaviours": ("stub_observers", "behaviours"), "accuracy": ("stub_observers", "table")}
    )


def _no_claims_result() -> dict:
    return {"command": "mlp-crosscheck check x", "exit_code": 0, "profile": "dev", "environment": {"python": "3"},
            "summary": [], "worst_ratio": {}, "tests": []}  # fmt: skip


class _Selection:
    def __init__(self, impls) -> None:
        self.backends: list[str] = []
        self.impls = impls
        self.device = "cpu"


def test_an_implementation_that_cannot_be_measured_costs_its_entry_not_the_report(monkeypatch) -> None:
    def broken(impl):
        raise RuntimeError("no grid for you")

    _stub_observers(monkeypatch, behaviours=broken, table=lambda impl: [])
    from mlp_crosscheck.backends import load

    impl = load(str(TUTORIAL))
    built = report.build(_no_claims_result(), argparse.Namespace(device=None), _Selection([impl]))
    assert built["behaviours"] == {"tutorial_mlp": None}
    assert built["accuracy"] == {"tutorial_mlp": []}
    assert built["errors"] == [
        "behaviours of tutorial_mlp not measured: stub_observers.behaviours raised RuntimeError: no grid for you"
    ]
    assert "not measured (see Errors)" in report.markdown(json.loads(json.dumps(report_json(built))))


def report_json(built: dict) -> dict:
    from mlp_crosscheck.commands.reproduce import jsonable

    return jsonable(built)


# -- the environment's extras ---------------------------------------------------------------------------------


def test_precision_flags_come_only_from_frameworks_already_imported(monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    assert report.precision_flags() == {}
    fake_jax = types.SimpleNamespace(
        config=types.SimpleNamespace(jax_enable_x64=True, jax_default_matmul_precision=None)
    )
    monkeypatch.setitem(sys.modules, "jax", fake_jax)
    assert report.precision_flags() == {"jax": {"enable_x64": True, "default_matmul_precision": None}}
    assert "torch" not in sys.modules  # reading the flags imported nothing


def test_runtime_blas_without_threadpoolctl_says_so(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # importing it raises ImportError
    assert report.blas_runtime() == (
        "unknown: threadpoolctl is not installed (environment.blas names the BLAS NumPy was built with)"
    )


def test_runtime_blas_with_threadpoolctl_lists_the_loaded_libraries(monkeypatch) -> None:
    info = {"user_api": "blas", "internal_api": "openblas", "version": "0.3.31", "num_threads": 2,
            "threading_layer": "pthreads", "architecture": "Haswell", "prefix": "libscipy_openblas",
            "filepath": "/somewhere/machine/specific.so"}  # fmt: skip
    monkeypatch.setitem(sys.modules, "threadpoolctl", types.SimpleNamespace(threadpool_info=lambda: [info]))
    assert report.blas_runtime() == [{k: v for k, v in info.items() if k != "filepath"}]


# -- the gate's options ---------------------------------------------------------------------------------------


def test_workers_accept_auto_and_counts_and_reach_pytest(tmp_path) -> None:
    args = build_parser().parse_args(["check", "mine.py", "-n", "auto", "--require-backends", "--hypothesis-seed", "7"])
    assert args.workers == "auto"
    argv = check.pytest_arguments(args, tmp_path)
    assert argv[argv.index("-n") + 1] == "auto"
    assert "--require-backends" in argv
    assert "--hypothesis-seed=7" in argv
    assert build_parser().parse_args(["check", "mine.py", "-n", "2"]).workers == 2


def test_a_bad_worker_count_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["check", "mine.py", "-n", "many"])
    assert exc.value.code == 2
    assert (
        "argument -n/--workers: must be 'auto' or a number of worker processes, got 'many'" in capsys.readouterr().err
    )


def test_require_backends_reaches_the_plugin_and_a_broken_backend_is_a_usage_error(tmp_path) -> None:
    pytest.importorskip("torch")
    proc = check_with_fake_observers(
        tmp_path, str(TUTORIAL), "--backends", "torch", "--require-backends", "--device", "cuda:99", "--report", "out"
    )
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr
    # Without CUDA the device is refused when the backend loads; with it, the first call fails: either names it.
    assert "--require-backends: torch: " in proc.stderr
    assert "cuda:99" in proc.stderr
    assert "mlp-crosscheck check: no report written to out: no claim ran" in proc.stderr


def test_runtime_blas_is_listed_in_one_order_whatever_order_the_loader_gives(monkeypatch) -> None:
    # The loader reports NumPy's and SciPy's OpenBLAS in either order from one run to the next (seen in CI, where
    # two reports of one environment then differed): the list is sorted.
    numpy_blas = {"user_api": "blas", "internal_api": "openblas", "version": "0.3.30", "prefix": "libscipy_openblas"}
    scipy_blas = {**numpy_blas, "version": "0.3.31.188.0"}
    orders = []
    for loaded in ([numpy_blas, scipy_blas], [scipy_blas, numpy_blas]):
        monkeypatch.setitem(sys.modules, "threadpoolctl", types.SimpleNamespace(threadpool_info=lambda x=loaded: x))
        orders.append(report.blas_runtime())
    assert orders[0] == orders[1]
    assert [lib["version"] for lib in orders[0]] == ["0.3.30", "0.3.31.188.0"]
