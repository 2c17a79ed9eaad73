"""A sweep in shards: ``sweep --shard K/N`` reports, ``sweep --merge`` of them, and ``sweep --scheduler`` (Dask).

Invariants:
- Shard K of N checks networks ``shard_range(K, N, networks)`` of the sweep: the shards partition its index
  range in order, and each network is the unsharded sweep's own (``rebuild(seed, index)`` holds), sampled by
  its index, so merged shards report what one run reports: the same checked, excluded and failing networks
  with their ratios, the same max per quantity and where (ties go to the lower index, as in one run), the same
  p50/p99 (the histograms' counts add) and the same worst failures (each shard keeps its worst K, so their
  union holds the sweep's worst K). Every shard evaluates in batches of the whole sweep's chunk shape
  (``sweep.prepare``: JAX's values depend on it). Only the times, and the chunk a shard's size may cap, differ.
- A shard's ``--json`` report is ``SweepReport.to_json()`` plus ``shard`` (K, N and its range), ``sweep`` (what
  must be equal in every shard of one sweep: the space, the networks of the whole sweep, the backends,
  ``sample_every``, ``show_failures``) and ``histograms`` (the sampled ratios' bin counts).
- The merge refuses (exit 4), naming the files, shards that are not exactly the N shards of one sweep:
  different sweeps or shard counts, a shard given twice or missing, a backend skipped in some shards only, or
  a shard in which a backend checked nothing. A file that cannot be read or is no shard report is a usage
  error (exit 2). The merged report prints and exits as one run (``sweep.finish``).
- Dask is optional and imported only when ``--scheduler`` is given. A Dask run is its shards, each computed
  by ``run_shard`` on a worker and returned as the JSON a shard writes, then merged as files are: one path.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlp_crosscheck.commands import sweep as sw

TASKS_PER_WORKER = 4  # shards per Dask worker: a slow shard then delays the end by a quarter of a worker's share
CONNECT_TIMEOUT = "20s"  # to reach a --scheduler ADDRESS
# The options a Dask worker needs to run a shard as the command would (plain values: they travel pickled).
WORKER_OPTIONS = (
    "networks",
    "backends",
    "widths",
    "activations",
    "dtype",
    "seed",
    "batch",
    "biases",
    "regimes",
    "chunk",
    "threads",
    "show_failures",
    "sample_every",
)


class NotAShardReport(ValueError):
    """A ``--merge`` file that cannot be read, or that no ``sweep --shard K/N --json`` wrote."""


# -- a shard's report --------------------------------------------------------------------------------------


def sweep_fields(report: sw.SweepReport, args: argparse.Namespace) -> dict:
    """Return what every shard of one sweep must share: the merge compares it field by field."""
    return {
        "spec": report.space.to_json(),  # as SweepReport.to_json
        "networks": args.networks,
        "backends": [b.name for b in report.backends],
        "sample_every": args.sample_every,
        "show_failures": args.show_failures,
    }


def shard_fields(report: sw.SweepReport, args: argparse.Namespace, index: int, count: int) -> dict:
    """Return what a shard's JSON report adds to ``report.to_json()``, and say in ``report`` which shard it is."""
    start, stop = sw.shard_range(index, count, args.networks)
    report.shards = (
        f"shard {index}/{count}, networks {start:,} .. {stop - 1:,} of a sweep of {args.networks:,}; "
        "merge the shards' --json reports with sweep --merge"
    )
    histograms = {
        b.name: {q: {str(slot): int(c) for slot, c in enumerate(h.counts) if c} for q, h in b.stats.items()}
        for b in report.backends
        if b.skipped is None
    }
    shard = {"index": index, "count": count, "start": start, "stop": stop}
    return {"shard": shard, "sweep": sweep_fields(report, args), "histograms": histograms}


def run_shard(options: dict, index: int, count: int) -> dict:
    """Run shard ``index`` of ``count`` of the sweep ``options`` (``WORKER_OPTIONS``) here, without printing, and
    return its report as ``sweep --shard index/count --json`` writes it (through JSON: the same values).

    A Dask worker calls it; ``CannotRun`` (a framework missing on the worker, say) reaches the command.
    """
    args = argparse.Namespace(**options)
    start, stop = sw.shard_range(index, count, args.networks)
    report = sw.sweep_range(sw.prepare(args), args, start, stop)
    record = {**report.to_json(), **shard_fields(report, args, index, count)}
    return json.loads(json.dumps(record, default=float))


# -- merging -----------------------------------------------------------------------------------------------


def load_shard(path: str) -> dict:
    """Return the shard report in ``path``.

    Raises:
        NotAShardReport: it cannot be read, is not JSON, or is not a shard's report; the message names it.
    """
    try:
        record = json.loads(Path(path).read_text())
    except OSError as exc:
        raise NotAShardReport(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotAShardReport(f"{path} is not a JSON report: {exc}") from None
    keys = {"shard", "sweep", "histograms", "backends", "failures"}
    if not isinstance(record, dict) or not keys <= record.keys():
        raise NotAShardReport(f"{path} is not a shard's report (sweep --shard K/N --json PATH writes one)")
    return record


def _which(path: str, record: dict) -> str:
    return f"{path} (shard {record['shard']['index']}/{record['shard']['count']})"


def _differences(records: Sequence[tuple[str, dict]], values) -> dict[str, list[str]]:
    """Group the files by ``values(record)`` (as JSON), in order of first appearance: value -> files."""
    groups: dict[str, list[str]] = {}
    for path, record in records:
        groups.setdefault(json.dumps(values(record)), []).append(path)
    return groups


def inconsistencies(records: Sequence[tuple[str, dict]]) -> list[str]:
    """Return why ``(path, record)`` shard reports are not exactly the shards of one sweep, one line each; none
    when they are. Different sweeps or shard counts are reported alone: the rest would follow from them."""
    problems = []
    flat = lambda r: {**r["sweep"]["spec"], **{k: v for k, v in r["sweep"].items() if k != "spec"}}
    for key in dict.fromkeys(key for _, r in records for key in flat(r)):
        groups = _differences(records, lambda r, key=key: flat(r).get(key))
        if len(groups) > 1:
            listed = "; ".join(f"{value} in {', '.join(paths)}" for value, paths in groups.items())
            problems.append(f"the shards are of different sweeps: {key} is {listed}")
    groups = _differences(records, lambda r: r["shard"]["count"])
    if len(groups) > 1:
        listed = "; ".join(f"{count} in {', '.join(paths)}" for count, paths in groups.items())
        problems.append(f"the shards cut the sweep into different numbers of shards: N is {listed}")
    if problems:
        return problems

    count, networks = records[0][1]["shard"]["count"], records[0][1]["sweep"]["networks"]
    given: dict[int, list[str]] = {}
    for path, record in records:
        index = record["shard"]["index"]
        given.setdefault(index, []).append(path)
        expected = sw.shard_range(index, count, networks)
        claimed = (record["shard"]["start"], record["shard"]["stop"])
        if claimed != expected:
            problems.append(
                f"{_which(path, record)} holds networks {claimed[0]:,} .. {claimed[1] - 1:,}, but shard "
                f"{index}/{count} of a sweep of {networks:,} is networks {expected[0]:,} .. {expected[1] - 1:,}"
            )
    for index, paths in sorted(given.items()):
        if len(paths) > 1:
            problems.append(f"shard {index}/{count} is given {len(paths)} times (overlapping): {', '.join(paths)}")
    missing = [k for k in range(1, count + 1) if k not in given]
    if missing:
        ranges = {k: sw.shard_range(k, count, networks) for k in missing}
        listed = ", ".join(f"{k}/{count} (networks {a:,} .. {b - 1:,})" for k, (a, b) in ranges.items())
        problems.append(f"missing shard{'s' if len(missing) > 1 else ''} {listed}")

    for name in records[0][1]["sweep"]["backends"]:
        skipped = _differences(records, lambda r, name=name: r["backends"].get(name, {}).get("skipped"))
        if len(skipped) > 1:
            said = lambda reason: "ran" if json.loads(reason) is None else f"was skipped ({json.loads(reason)})"
            listed = "; ".join(f"{said(reason)} in {', '.join(paths)}" for reason, paths in skipped.items())
            problems.append(f"{name} did not run in every shard: it {listed}")
    for path, record in records:
        for name, b in record["backends"].items():
            # A shard whose networks were all skipped for an implementation (a dtype it lacks, say) is a part of
            # the sweep like any other; the merged report says whether it checked anything at all.
            if b["skipped"] is None and b["checked"] == 0 and not b["skipped_networks"]:
                problems.append(
                    f"{_which(path, record)}: {name} checked nothing (all {b['excluded']:,} of its networks were "
                    "excluded)"
                )
    return problems


def merge(records: Sequence[dict]) -> sw.SweepReport:
    """Return the report of the sweep whose shards' reports are ``records`` (consistent: ``inconsistencies``
    finds nothing), as one run would report it; CPU and wall seconds are the shards' sums."""
    records = sorted(records, key=lambda r: r["shard"]["index"])  # so that ties in the max go to the lower index
    sweep = records[0]["sweep"]
    space = sw.SweepSpace.from_json(sweep["spec"])
    names = space.quantity_names()
    reports = []
    for name in sweep["backends"]:
        if records[0]["backends"][name]["skipped"] is not None:
            reports.append(sw.BackendReport(name, skipped=records[0]["backends"][name]["skipped"]))
            continue
        b = sw.BackendReport(name, stats={q: sw.RatioStats() for q in names})
        for record in records:
            part = record["backends"][name]
            b.checked += part["checked"]
            b.excluded += part["excluded"]
            b.failures += part["failures"]
            b.seconds += part["evaluate_seconds"]
            b.compare_seconds += part["compare_seconds"]
            b.setup_seconds += part["setup_seconds"]
            b.skipped_networks.update(part["skipped_networks"])
            for q, stats in b.stats.items():
                stats.note_worst(part["ratios"][q]["max"], part["ratios"][q]["max_index"])
                for slot, n in record["histograms"][name][q].items():
                    stats.counts[int(slot)] += n
            if part["failures"]:
                b.failed_indices.append(np.array(record["failing_indices"][name], np.int64))
                columns = record["failing_ratios"][name]
                b.failed_ratios.append(np.array([columns[q] for q in names], dtype=float).T)  # None -> NaN
                b.failed_signatures += record["failing_signatures"][name]
                b.failed_regimes += record["failing_regimes"][name]
            errors = record["contract_errors"].get(name, {})
            b.contract_errors.update({int(index): message for index, message in errors.items()})
            kept = [f for f in record["failures"] if f["backend"] == name]
            b.worst += [sw.Failure(name, f["index"], f["ratios"], f["message"]) for f in kept]
        b.worst.sort(key=lambda f: (-f.worst, f.index))  # as ``sweep`` keeps them
        del b.worst[sweep["show_failures"] :]
        reports.append(b)
    report = sw.SweepReport(
        space, sweep["networks"], max(r["chunk"] for r in records), reports, sample_every=sweep["sample_every"]
    )
    for record in records:
        report.coverage.update(record["coverage"])
    report.failures = [f for b in reports for f in b.worst]
    report.stage_seconds = {k: sum(r["stage_seconds"][k] for r in records) for k in records[0]["stage_seconds"]}
    report.seconds = sum(r["cpu_seconds"] for r in records)
    report.wall_seconds = sum(r["wall_seconds"] for r in records)
    report.threads = "; ".join(dict.fromkeys(r["threads"] for r in records if r["threads"]))
    return report


def _refuse(problems: Sequence[str]) -> int:
    for line in problems:
        print(f"mlp-crosscheck sweep: --merge: {line}", file=sys.stderr)
    return 4


def run_merge(args: argparse.Namespace) -> int:
    """``sweep --merge FILE...``: print (and with ``--json`` write) the merged report; exit as one run would, 4
    for shards that are not those of one sweep, 2 for a file that cannot be read."""
    try:
        records = [(path, load_shard(path)) for path in args.merge]
    except NotAShardReport as exc:
        print(f"mlp-crosscheck sweep: --merge: {exc}", file=sys.stderr)
        return 2
    problems = inconsistencies(records)
    if problems:
        return _refuse(problems)
    report = merge([record for _, record in records])
    report.shards = (
        f"{len(records)} merged ({', '.join(args.merge)}); CPU and wall seconds are the sums of the shards' own"
    )
    return sw.finish(report, json_path=args.json, extra_json={"merged_from": list(args.merge)})


# -- on a Dask cluster -------------------------------------------------------------------------------------


def missing_dask() -> str | None:
    """Return why ``--scheduler`` cannot run here (Dask distributed is not installed), or None if it can."""
    try:
        import distributed  # noqa: F401  (imported here only: the command line must not need Dask)
    except ImportError as exc:
        return f"--scheduler needs Dask distributed ({exc}): pip install 'mlp-crosscheck[dask]'"
    return None


def worker_options(args: argparse.Namespace) -> dict:
    """Return the options a worker needs (``WORKER_OPTIONS``), an ``--impl`` file as an absolute path."""
    impls = [str(Path(p).resolve()) if Path(p).is_file() else p for p in args.impl]
    return {**{name: getattr(args, name) for name in WORKER_OPTIONS}, "impl": impls}


def run_on_dask(args: argparse.Namespace) -> int:
    """``sweep --scheduler ADDRESS``: run the sweep's shards on a Dask cluster (``local:N``: a ``LocalCluster``
    of N worker processes, started and stopped here), with a progress bar over all of them, and merge them.

    The spec was checked here (``sweep.prepare``) before; a worker that cannot run its shard stops the run.
    """
    from dask.distributed import Client, LocalCluster, as_completed

    with contextlib.ExitStack() as stack:
        if args.scheduler.startswith("local:"):
            cluster = LocalCluster(
                n_workers=int(args.scheduler.removeprefix("local:")),
                threads_per_worker=1,  # a shard is one process's work: threads would share one interpreter
                processes=True,
                dashboard_address=None,  # no web server (and no bokeh needed)
                silence_logs=logging.ERROR,
            )
            stack.enter_context(cluster)
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(args.scheduler, timeout=CONNECT_TIMEOUT))
            except (OSError, TimeoutError) as exc:
                print(f"mlp-crosscheck sweep: cannot reach the Dask scheduler {args.scheduler}: {exc}", file=sys.stderr)
                return 4
        workers = max(1, len(client.nthreads()))
        count = min(args.networks, TASKS_PER_WORKER * workers)
        options = worker_options(args)
        started = time.perf_counter()
        futures = [client.submit(run_shard, options, k, count, pure=False) for k in range(1, count + 1)]
        progress = sw.progress_bar(args.networks, enabled=not args.quiet)
        records = []
        try:
            for future in as_completed(futures):
                record = future.result()
                records.append((f"shard {record['shard']['index']}/{count}", record))
                progress.update(record["networks"])
        except (sw.CannotRun, sw.backends.ContractError) as exc:  # e.g. a framework or --impl file missing there
            for line in str(exc).splitlines():
                print(f"mlp-crosscheck sweep: on the Dask cluster: {line}", file=sys.stderr)
            return 4
        finally:
            progress.close()
        wall = time.perf_counter() - started
    problems = inconsistencies(records)  # a backend missing on some workers only, or a shard all excluded
    if problems:
        return _refuse(problems)
    report = merge([record for _, record in records])
    report.wall_seconds = wall
    report.shards = (
        f"{count} on Dask ({args.scheduler}, {workers} worker{'s' if workers > 1 else ''}); CPU seconds are the "
        "workers' sum, wall seconds the whole distributed run's"
    )
    return sw.finish(report, json_path=args.json)
