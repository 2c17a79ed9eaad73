"""The installed pytest plugin: its options, its gate, and what it leaves alone in someone else's project.

Each test runs pytest in a subprocess from a temporary project directory (outside this repository, so only
the installed plugin is in play, never this repository's conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import settings
from mlp_crosscheck.properties import profiles
from user_shell import user_environment

from mlp_crosscheck import backends

REPO = Path(__file__).resolve().parent.parent
TUTORIAL = REPO / "examples" / "tutorial_mlp.py"


def run_pytest(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run pytest in ``project`` with the installed plugin; return the finished process (text output)."""
    environment = user_environment(**(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def write(project: Path, name: str, body: str) -> Path:
    path = project / name
    path.write_text(textwrap.dedent(body))
    return path


def test_an_empty_backend_selection_without_impl_is_a_usage_error(tmp_path) -> None:
    proc = run_pytest(tmp_path, "--backends=", "--pyargs", "mlp_crosscheck.properties")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "selects no backend and no --impl is given: nothing to check" in proc.stderr


def test_an_impl_outside_the_project_is_an_option_not_a_test_path(tmp_path) -> None:
    # The plugin is loaded before the command line is parsed, so --impl /abs/path is never read as a test path.
    proc = run_pytest(tmp_path, f"--impl={TUTORIAL}", "--pyargs", "mlp_crosscheck.properties", "-k", "forward and tanh")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "2 passed" in proc.stdout  # forward agreement, tanh, float32 and float64


def test_an_impl_that_cannot_load_is_one_usage_error_with_the_contracts_message(tmp_path) -> None:
    write(
        tmp_path, "mine.py", "def forward(w, b, a, x):\n    return x\n\ndef loss_and_grads(w, b, a, x, y):\n    pass\n"
    )
    proc = run_pytest(tmp_path, "--impl=mine.py", "--pyargs", "mlp_crosscheck.properties")
    assert proc.returncode == 4
    assert "did you mean loss_and_gradients instead of loss_and_grads?" in proc.stderr


@pytest.mark.skipif(backends.missing_reason("jax") is not None, reason="needs jax installed")
def test_require_backends_names_a_backend_that_imports_but_cannot_compute(tmp_path) -> None:
    # A stray environment variable: jax imports, and fails only when asked to compute.
    proc = run_pytest(
        tmp_path, "--backends=jax", "--require-backends", "--collect-only", env={"JAX_PLATFORMS": "no_such_platform"}
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--require-backends: jax: " in proc.stderr
    assert "JAX_PLATFORMS" in proc.stderr  # the cause, in jax's own words
    assert "(jax 0.10.2, jaxlib 0.10.2)" in proc.stderr or "jaxlib " in proc.stderr  # the versions behind it


@pytest.mark.skipif(backends.missing_reason("torch") is not None, reason="needs torch installed")
def test_require_backends_names_an_absent_device(tmp_path) -> None:
    if backends.first_call_problem("torch", "cuda") is None:
        pytest.skip("this machine has a GPU")
    proc = run_pytest(tmp_path, "--backends=torch", "--device=cuda", "--require-backends", "--collect-only")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--require-backends: torch: " in proc.stderr
    assert "cuda" in proc.stderr


def test_require_backends_passes_on_a_working_backend(tmp_path) -> None:
    proc = run_pytest(tmp_path, "--backends=numpy", "--require-backends", "--collect-only", "-q")
    assert proc.returncode == 5, proc.stdout + proc.stderr  # the gate passed; this empty project has no tests


def test_the_command_line_wins_over_the_environment(tmp_path) -> None:
    env = {"MLP_CROSSCHECK_PROFILE": "thorough", "MLP_CROSSCHECK_DEVICE": "cuda"}
    proc = run_pytest(
        tmp_path, "--hypothesis-profile=dev", "--device=cpu", "--backends=numpy", "--collect-only", env=env
    )
    assert "profile dev; device cpu" in proc.stdout, proc.stdout
    proc = run_pytest(tmp_path, "--backends=numpy", "--collect-only", env={"MLP_CROSSCHECK_PROFILE": "ci"})
    assert "profile ci" in proc.stdout, proc.stdout


def test_an_unknown_profile_in_the_environment_is_a_usage_error(tmp_path) -> None:
    proc = run_pytest(tmp_path, "--backends=numpy", "--collect-only", env={"MLP_CROSSCHECK_PROFILE": "fast"})
    assert proc.returncode == 4
    assert "MLP_CROSSCHECK_PROFILE='fast': the profiles are dev, ci, thorough" in proc.stderr


def test_the_report_header_names_the_versions_that_decide_the_numbers(tmp_path) -> None:
    proc = run_pytest(tmp_path, "--backends=numpy", "--collect-only")
    header = next(line for line in proc.stdout.splitlines() if line.startswith("mlp-crosscheck "))
    versions = proc.stdout.splitlines()[proc.stdout.splitlines().index(header) + 1]
    assert "checking numpy; profile dev; device cpu" in header
    for name in ("numpy", "scipy", "torch", "jax", "jaxlib", "hypothesis", "blas"):
        assert f"{name} " in versions, versions


@pytest.mark.slow  # a user's project's whole run in a subprocess (~13 s); in the scheduled job
def test_a_projects_own_impl_fixture_and_hypothesis_profile_are_left_alone(tmp_path) -> None:
    # The plugin is loaded in every pytest run where it is installed: it must change nothing that is not its own.
    write(
        tmp_path,
        "test_theirs.py",
        """
        import pytest
        from hypothesis import given, settings, strategies as st

        @pytest.fixture
        def impl():
            return "their own"

        def test_their_impl_fixture(impl):
            assert impl == "their own"

        def test_their_hypothesis_default_is_recorded():
            with open("default-settings.txt", "w") as out:
                out.write(repr(settings.default))

        @given(st.integers())
        def test_their_property(n):
            assert n == n
        """,
    )
    # Their Hypothesis default is whatever Hypothesis makes it without the plugin (on a CI machine, Hypothesis's
    # own "ci" profile): compared with a run that disables the plugin, on and off a detected CI machine.
    for ci in ("", "true"):
        seen = []
        for disable in ((), ("-p", "no:mlp_crosscheck")):
            proc = run_pytest(tmp_path, "-q", *disable, env={"CI": ci})
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert "3 passed" in proc.stdout
            seen.append((tmp_path / "default-settings.txt").read_text())
        assert seen[0] == seen[1], f"CI={ci!r}"


def test_claims_run_direct_evidence_first(tmp_path) -> None:
    proc = run_pytest(tmp_path, f"--impl={TUTORIAL}", "--pyargs", "mlp_crosscheck.properties", "--collect-only", "-q")
    ids = [line for line in proc.stdout.splitlines() if "::test_" in line and "tutorial_mlp" in line]
    families = [line.split("::")[0].rpartition("/")[2] for line in ids]
    first_seen = list(dict.fromkeys(families))
    direct = ["test_activation_accuracy.py", "test_forward_agreement.py", "test_gradient_agreement.py"]
    assert first_seen[:4] == [*direct, "test_contract.py"], first_seen


def test_registering_the_profiles_keeps_a_profile_the_user_registered_first() -> None:
    settings.register_profile("their-ci-like", max_examples=3)
    before = settings.get_profile("ci")
    profiles.register()
    assert settings.get_profile("ci") is before
    assert settings.get_profile("their-ci-like").max_examples == 3


def test_the_claims_settings_come_from_the_suites_profile_not_the_global_default() -> None:
    previous = profiles.active()
    try:
        with settings_loaded(settings(max_examples=2, deadline=5)):
            profiles.select("ci")
            chosen = profiles.claim_settings()
            assert (chosen.max_examples, chosen.deadline, chosen.derandomize) == (60, None, True)
            assert profiles.claim_settings(1 / 3).max_examples == 20
    finally:
        profiles.select(previous)


def test_the_profiles_are_the_same_on_a_machine_hypothesis_detects_as_ci() -> None:
    # Hypothesis loads its own "ci" profile as the default when it sees CI=true; ours must not inherit from it.
    code = "from mlp_crosscheck.properties import profiles; print(sorted(map(repr, profiles.PROFILES.values())))"
    printed = [
        subprocess.run(
            [sys.executable, "-c", code], env=user_environment(CI=ci), capture_output=True, text=True, check=True
        ).stdout
        for ci in ("", "true")
    ]
    assert printed[0] == printed[1]
    assert "derandomize=False" in printed[0]


class settings_loaded:
    """Within the block, ``settings.default`` is ``value`` (as a user's own loaded profile would make it)."""

    def __init__(self, value: settings) -> None:
        self.value = value

    def __enter__(self) -> None:
        self.previous = settings.default
        settings.register_profile("_mlp_crosscheck_test_user_profile", self.value)
        settings.load_profile("_mlp_crosscheck_test_user_profile")

    def __exit__(self, *exc: object) -> None:
        settings.register_profile("_mlp_crosscheck_test_previous", self.previous)
        settings.load_profile("_mlp_crosscheck_test_previous")


def test_a_users_test_module_naming_a_missing_implementation_fails_to_import_with_the_reason(tmp_path) -> None:
    write(
        tmp_path,
        "test_mine.py",
        "from mlp_crosscheck import crosscheck_tests\n\nglobals().update(crosscheck_tests('nope.py'))\n",
    )
    proc = run_pytest(tmp_path, "-q")
    assert proc.returncode == 2, proc.stdout  # a collection error
    assert f"ContractError: '{tmp_path / 'nope.py'}': no such file" in proc.stdout


def test_within_a_claim_only_the_spurious_blas_flag_warning_is_not_an_error(tmp_path) -> None:
    # OpenBLAS may flag "invalid value encountered in matmul" on finite data; any other warning of the suite's
    # own code stays an error under the project's filterwarnings = error.
    write(tmp_path, "pytest.ini", "[pytest]\nfilterwarnings = error\n")
    write(
        tmp_path,
        "test_claims.py",
        f"""
        import warnings
        from mlp_crosscheck.backends import load
        from mlp_crosscheck.properties import helpers

        CROSSCHECK_IMPLEMENTATIONS = [load({str(TUTORIAL)!r})]

        @helpers.claim()
        def test_a_claim_whose_matmul_raised_a_spurious_flag(impl):
            warnings.warn("invalid value encountered in matmul", RuntimeWarning)

        @helpers.claim()
        def test_a_claim_whose_own_code_overflowed(impl):
            warnings.warn("overflow encountered in exp", RuntimeWarning)
        """,
    )
    proc = run_pytest(tmp_path, "-q", "-rf")
    assert "1 failed, 1 passed" in proc.stdout, proc.stdout
    assert "FAILED test_claims.py::test_a_claim_whose_own_code_overflowed" in proc.stdout


def test_a_claims_hypothesis_settings_are_put_back_after_each_run() -> None:
    # Hypothesis's plugin wraps a @given function's settings once per parametrized run and never unwraps
    # them (past ~950 runs in one process a settings lookup overflows the stack: the kill matrix hit it).
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from mlp_crosscheck import plugin

    @given(st.integers())
    def claim(n) -> None:
        pass

    original = claim._hypothesis_internal_use_settings

    class Item:
        obj = claim
        marked = True

        def __init__(self) -> None:
            self.stash = pytest.Stash()

        def get_closest_marker(self, name):
            return object() if self.marked and name == plugin.MARKER else None

    for marked in (True, False):
        item = Item()
        item.marked = marked
        plugin.pytest_runtest_setup(item)
        claim._hypothesis_internal_use_settings = settings(original, max_examples=3)  # what a run leaves behind
        plugin.pytest_runtest_teardown(item)
        restored = claim._hypothesis_internal_use_settings is original
        assert restored == marked  # a claim's are put back; anyone else's test is left as Hypothesis leaves it
        claim._hypothesis_internal_use_settings = original
