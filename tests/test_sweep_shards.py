"""``sweep --shard K/N``, ``sweep --merge`` and ``sweep --scheduler``: shards report what one run reports.

Each claim compares the sharded (or Dask) sweep with the single-process sweep of the same options: the same
networks checked, excluded and failing, the same ratios, maxima and quantiles, the same worst failures and
exit code. Only times and the chunk may differ (``_results`` drops them).
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sweep_helpers import run_quiet_sweep as run_sweep
from sweep_helpers import threads_given_back  # noqa: F401 (an autouse fixture)

from mlp_crosscheck import backends
from mlp_crosscheck.cli import main
from mlp_crosscheck.commands import sweep as sw

FAULTS = Path(__file__).parent / "faults"
SIGN_IMPL = FAULTS / "faulty_gradient_sign.py"  # every gradient wrong in every network

FRAMEWORKS = [name for name in ("torch", "jax") if backends.missing_reason(name) is None]
# Sweeps of 2,000 networks of the drawn space (sweep_space): numpy in float32 (nonzero ratios, so maxima and
# quantiles mean something; no failure), numpy with a planted fault (every network it checks fails), and the
# installed frameworks in float32 on one signature in every regime (JAX's values depend on the compiled group
# shape: every shard must use the whole sweep's; one signature compiles once).
SWEEPS = {
    "numpy-float32": ["--networks", "2000", "--backends", "numpy", "--dtype", "float32", "--seed", "3"],
    "faulty-gradient-sign": ["--networks", "2000", "--backends", "numpy", "--impl", SIGN_IMPL],
    "frameworks-float32": [
        "--networks", "2000", "--backends", ",".join(FRAMEWORKS), "--dtype", "float32", "--arch", "3,4,10,1",
        "--activation", "tanh,softplus,gelu", "--no-biases", "--regime", ",".join(sw.REGIMES),
    ],
}  # fmt: skip
# What may differ between one run and its merged shards: times, rates and the chunk (capped by a shard's size).
TIMED = {"cpu_seconds", "wall_seconds", "networks_per_cpu_second_all_backends", "stage_seconds", "chunk"}
TIMED_PER_BACKEND = {"evaluate_seconds", "compare_seconds", "setup_seconds", "networks_per_cpu_second_alone"}


def _results(path: Path) -> dict:
    """Return the JSON report at ``path`` without what may differ (``TIMED``) and without shard bookkeeping."""
    report = json.loads(path.read_text())
    kept = {k: v for k, v in report.items() if k not in TIMED | {"merged_from", "shard", "sweep", "histograms"}}
    kept["backends"] = {
        name: {k: v for k, v in b.items() if k not in TIMED_PER_BACKEND} for name, b in report["backends"].items()
    }
    return kept


def _summary(printed: str) -> list[str]:
    """Return the printed summary without what may differ: times, rates, the chunk, where --json went."""
    lines = []
    for line in printed.splitlines():
        if re.match(r"(mlp-crosscheck sweep:|time:|  shared|  per backend|  \(CPU seconds|shards:)", line):
            continue
        row = re.fullmatch(r"(\S+\s+[\d,]+\s+[\d,]+\s+[\d,]+)\s+[\d,]+", line)  # a backend's row: drop its rate
        lines.append(row.group(1) if row else re.sub(r"in \S+\.json$", "in JSON", line))
    return lines


def _single_and_shards(tmp_path: Path, options: list, count: int) -> tuple[Path, list[Path], int, str]:
    """Run the sweep once and as ``count`` shards (each with --json); return the single run's JSON path, the
    shards' JSON paths, its exit code and its printed summary."""
    single = tmp_path / "single.json"
    code, printed, _ = run_sweep(*options, "--json", single)
    shards = []
    for k in range(1, count + 1):
        shards.append(tmp_path / f"shard-{k}-of-{count}.json")
        shard_code, shard_printed, _ = run_sweep(*options, "--shard", f"{k}/{count}", "--json", shards[-1])
        assert shard_code == code, shard_printed
        assert f"shards: shard {k}/{count}, networks " in shard_printed
    return single, shards, code, printed


# -- the shards of a sweep ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("networks", "count"), [(2000, 3), (2000, 7), (10, 10), (1, 1), (4097, 2)])
def test_shards_partition_the_index_range_in_order(networks, count):
    ranges = [sw.shard_range(k, count, networks) for k in range(1, count + 1)]

    assert ranges[0][0] == 0
    assert ranges[-1][1] == networks
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1
    assert min(sizes) >= 1


@pytest.mark.parametrize(
    "sweep",
    [
        pytest.param(name, marks=pytest.mark.skipif(not FRAMEWORKS, reason="neither torch nor jax is installed"))
        if name == "frameworks-float32"
        else name
        for name in SWEEPS
    ],
)
def test_merged_shards_report_exactly_what_one_run_reports(sweep, tmp_path):
    single, shards, code, printed = _single_and_shards(tmp_path, SWEEPS[sweep], 3)
    merged = tmp_path / "merged.json"

    merged_code, merged_printed, err = run_sweep("--merge", *reversed(shards), "--json", merged)  # any order

    assert merged_code == code == (1 if sweep == "faulty-gradient-sign" else 0), err
    assert _results(merged) == _results(single)
    assert _summary(merged_printed) == _summary(printed)
    assert f"shards: 3 merged ({', '.join(map(str, reversed(shards)))})" in merged_printed
    report = json.loads(merged.read_text())
    assert report["networks"] == 2000
    for b in report["backends"].values():
        assert b["checked"] + b["excluded"] == 2000
        assert b["checked"] > 1800
    first = next(iter(report["backends"].values()))
    assert sum(report["coverage"]["checked"]["dtype"].values()) == first["checked"]  # the shards' coverage, added
    if sweep == "faulty-gradient-sign":
        planted = report["backends"]["faulty_gradient_sign"]
        failures, checked = planted["failures"], planted["checked"]
        assert len(report["failing_indices"]["faulty_gradient_sign"]) == failures
        assert failures > 0.9 * checked  # all but networks whose gradients are within their bound of 0
        says = f"FAILURES: {failures:,} failing networks (faulty_gradient_sign {failures:,} of {checked:,} checked)"
        assert says in merged_printed
    else:
        for b in report["backends"].values():
            ratios = b["ratios"]["dL/dW_1"]
            assert 0 < ratios["p50"] < ratios["p99"] <= ratios["max"] <= 1  # float32 rounding: they mean something


def test_a_shard_checks_the_networks_of_the_whole_sweep_at_its_indices(tmp_path):
    single, shards, _, _ = _single_and_shards(tmp_path, SWEEPS["faulty-gradient-sign"], 3)
    whole = json.loads(single.read_text())

    for k, path in enumerate(shards, start=1):
        shard = json.loads(path.read_text())
        start, stop = sw.shard_range(k, 3, 2000)
        assert shard["shard"] == {"index": k, "count": 3, "start": start, "stop": stop}
        assert shard["networks"] == stop - start
        assert shard["sweep"]["networks"] == 2000
        failing = whole["failing_indices"]["faulty_gradient_sign"]
        mine = [p for p, index in enumerate(failing) if start <= index < stop]  # positions in the whole run's table
        assert shard["failing_indices"]["faulty_gradient_sign"] == [failing[p] for p in mine]
        ratios, whole_ratios = shard["failing_ratios"]["faulty_gradient_sign"], whole["failing_ratios"]
        assert ratios == {q: [column[p] for p in mine] for q, column in whole_ratios["faulty_gradient_sign"].items()}
        for table in ("failing_signatures", "failing_regimes"):
            column = whole[table]["faulty_gradient_sign"]
            assert shard[table]["faulty_gradient_sign"] == [column[p] for p in mine]


# -- shard sets that are not one sweep's are refused, saying which --------------------------------------------


@pytest.fixture(scope="module")
def three_shards(tmp_path_factory) -> list[Path]:
    """The three shards of the planted-fault sweep of 30 networks, and a fourth file: shard 2 of seed 8."""
    folder = tmp_path_factory.mktemp("shards")
    options = ["--networks", "30", "--backends", "numpy", "--impl", SIGN_IMPL]
    paths = [folder / f"s{k}.json" for k in (1, 2, 3)]
    for k, path in enumerate(paths, start=1):
        assert run_sweep(*options, "--shard", f"{k}/3", "--json", path)[0] == 1
    assert run_sweep(*options, "--seed", "8", "--shard", "2/3", "--json", folder / "seed8.json")[0] == 1
    return paths


def _merge_refused(*paths) -> str:
    code, printed, err = run_sweep("--merge", *paths)
    assert code == 4, printed
    assert printed == ""
    return err


def test_a_missing_shard_is_refused_naming_it(three_shards):
    s1, _, s3 = three_shards

    err = _merge_refused(s1, s3)

    assert err == "mlp-crosscheck sweep: --merge: missing shard 2/3 (networks 10 .. 19)\n"


def test_a_shard_given_twice_is_refused_as_overlapping(three_shards, tmp_path):
    s1, s2, s3 = three_shards
    again = tmp_path / "again.json"
    shutil.copy(s2, again)

    err = _merge_refused(s1, s2, s3, again)

    assert err == f"mlp-crosscheck sweep: --merge: shard 2/3 is given 2 times (overlapping): {s2}, {again}\n"


def test_shards_of_different_sweeps_are_refused_naming_the_difference(three_shards):
    s1, _, s3 = three_shards
    seed8 = s1.parent / "seed8.json"

    err = _merge_refused(s1, seed8, s3)

    says = f"the shards are of different sweeps: seed is 7 in {s1}, {s3}; 8 in {seed8}"
    assert err == f"mlp-crosscheck sweep: --merge: {says}\n"


def test_shards_of_different_shard_counts_are_refused(three_shards, tmp_path):
    s1, _, _ = three_shards
    half = tmp_path / "half.json"
    options = ["--networks", "30", "--backends", "numpy", "--impl", SIGN_IMPL]
    assert run_sweep(*options, "--shard", "2/2", "--json", half)[0] == 1

    err = _merge_refused(s1, half)

    assert err == (
        "mlp-crosscheck sweep: --merge: the shards cut the sweep into different numbers of shards: "
        f"N is 3 in {s1}; 2 in {half}\n"
    )


def _edited(path: Path, folder: Path, edit) -> Path:
    """Write a copy of shard report ``path`` changed by ``edit(record)`` into ``folder``; return its path."""
    record = json.loads(path.read_text())
    edit(record)
    copy = folder / f"edited-{path.name}"
    copy.write_text(json.dumps(record))
    return copy


def test_a_shard_in_which_a_backend_checked_nothing_is_refused(three_shards, tmp_path):
    s1, s2, s3 = three_shards

    def all_excluded(record):
        b = record["backends"]["faulty_gradient_sign"]
        b["excluded"], b["checked"], b["failures"] = b["checked"], 0, 0

    nothing = _edited(s2, tmp_path, all_excluded)

    err = _merge_refused(s1, nothing, s3)

    assert err == (
        f"mlp-crosscheck sweep: --merge: {nothing} (shard 2/3): faulty_gradient_sign checked nothing (all 10 of its "
        "networks were excluded)\n"
    )


def test_a_backend_skipped_in_some_shards_only_is_refused(three_shards, tmp_path):
    s1, s2, s3 = three_shards
    skipped = _edited(s3, tmp_path, lambda r: r["backends"]["numpy"].update(skipped="numpy is not installed"))

    err = _merge_refused(s1, s2, skipped)

    assert err == (
        f"mlp-crosscheck sweep: --merge: numpy did not run in every shard: it ran in {s1}, {s2}; was skipped (numpy "
        f"is not installed) in {skipped}\n"
    )


def test_a_missing_or_unreadable_file_is_a_usage_error_naming_it(three_shards, tmp_path):
    s1, s2, _ = three_shards
    not_json = tmp_path / "notes.txt"
    not_json.write_text("hello")
    single = tmp_path / "single.json"
    run_sweep("--networks", "10", "--backends", "numpy", "--json", single)

    for path, says in [
        (tmp_path / "nowhere.json", f"cannot read {tmp_path / 'nowhere.json'}: No such file or directory"),
        (not_json, f"{not_json} is not a JSON report: Expecting value: line 1 column 1 (char 0)"),
        (single, f"{single} is not a shard's report (sweep --shard K/N --json PATH writes one)"),
    ]:
        code, printed, err = run_sweep("--merge", s1, path, s2)
        assert code == 2, printed
        assert err == f"mlp-crosscheck sweep: --merge: {says}\n"


# -- the options --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("0/4", "must be K/N with N >= 1 and K one of 1..N, got '0/4'"),
        ("5/4", "must be K/N with N >= 1 and K one of 1..N, got '5/4'"),
        ("1/0", "must be K/N with N >= 1 and K one of 1..N, got '1/0'"),
        ("3", "must be K/N, shard K of N (e.g. 2/4), got '3'"),
        ("a/b", "must be K/N, shard K of N (e.g. 2/4), got 'a/b'"),
    ],
)
def test_a_bad_shard_is_an_argparse_error_saying_what_is_allowed(value, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--networks", "10", "--shard", value])

    assert exit_info.value.code == 2
    assert f"argument --shard: {says}" in capsys.readouterr().err


def test_a_shard_beyond_the_networks_is_a_usage_error():
    code, _, err = run_sweep("--networks", "3", "--backends", "numpy", "--shard", "1/4")

    assert code == 2
    assert err == (
        "mlp-crosscheck sweep: --shard 1/4: a sweep of 3 networks has at most 3 shards, so shard 1 would check "
        "nothing\n"
    )


@pytest.mark.parametrize("other", [["--shard", "1/2"], ["--scheduler", "local:2"]])
def test_merge_takes_no_shard_or_scheduler(other, capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--merge", "a.json", *other])
    assert f"argument {other[0]}: not allowed with argument --merge" in capsys.readouterr().err


def test_a_bad_local_cluster_size_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--scheduler", "local:0"])
    assert "argument --scheduler: local:N needs N >= 1 worker processes, got 'local:0'" in capsys.readouterr().err


def test_without_dask_the_scheduler_is_an_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now raises ImportError

    code, printed, err = run_sweep("--networks", "10", "--backends", "numpy", "--scheduler", "local:2")

    assert code == 4
    assert printed == ""
    assert err.startswith("mlp-crosscheck sweep: --scheduler needs Dask distributed (")
    assert err.endswith("): pip install 'mlp-crosscheck[dask]'\n")


def test_the_command_line_does_not_import_dask():
    code = (
        "import sys; from mlp_crosscheck.cli import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert loaded.strip() == "[]"


# -- on a Dask cluster ---------------------------------------------------------------------------------------


def test_a_two_worker_local_cluster_reports_what_one_process_reports(tmp_path):
    pytest.importorskip("distributed")
    options = SWEEPS["faulty-gradient-sign"]
    single = tmp_path / "single.json"
    code, printed, _ = run_sweep(*options, "--json", single)
    on_dask = tmp_path / "dask.json"

    dask_code, dask_printed, err = run_sweep(*options, "--scheduler", "local:2", "--json", on_dask)

    assert dask_code == code == 1, err
    assert _results(on_dask) == _results(single)
    assert _summary(dask_printed) == _summary(printed)
    assert "shards: 8 on Dask (local:2, 2 workers)" in dask_printed


def test_a_shard_samples_as_the_whole_sweep_does(tmp_path):
    # --sample-every's default comes from the whole sweep's size: half of it alone would sample twice as often,
    # and the merge refuses shards that sampled differently.
    networks = 4 * sw.SAMPLED_AT_LEAST
    path = tmp_path / "s2.json"
    options = ["--networks", str(networks), "--backends", "numpy", "--arch", "3,4,1", "--activation", "tanh"]
    code, printed, _ = run_sweep(*options, "--dtype", "float64", "--shard", "2/2", "--json", path)
    assert code == 0, printed
    assert sw.default_sample_every(networks) == 4 != sw.default_sample_every(networks // 2)
    assert json.loads(path.read_text())["sample_every"] == 4
    assert "p50 and p99 over every 4th network" in printed
