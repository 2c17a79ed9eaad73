"""No-false-positive soak: run the property suite under many Hypothesis seeds and report every failure.

    python scripts/soak.py --seeds 50                 # dev profile, seeds 0..49, all backends
    python scripts/soak.py --profile thorough --seeds 1
    python scripts/soak.py --seeds 50 --workers 2 -- -k gradient   # extra pytest arguments after --

Every failure it ever finds is a bug in a claim, a strategy or a tolerance (or a real framework difference):
fix the cause, never the symptom. Results are appended, one JSON line per run, to --log (default
soak-results.jsonl) as each run ends, so an interrupted soak keeps what it measured. The log's first line for
each soak records the environment (Python, numpy, torch, jax, hypothesis versions, the machine), so a
result can be compared across machines and versions.

A run counts as failed when pytest exits with anything but 0, which includes "no test ran" (exit 5): a soak
whose selection collected nothing has proved nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from mlp_crosscheck.environment import fingerprint as environment

SUMMARY = re.compile(r"(\d+) (passed|failed|error|errors|skipped)")


def run_one(seed: int, profile: str, workers: int, extra: list[str]) -> dict:
    """Run the suite once; return the seed, counts, failing test ids and wall time."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "properties",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--hypothesis-profile={profile}",
        f"--hypothesis-seed={seed}",
        "--require-backends",  # a soak that silently skipped torch or jax would prove nothing about them
        "-rf",
        *extra,
    ]
    if workers > 1:
        cmd += ["-n", str(workers)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    counts = {kind: int(n) for n, kind in SUMMARY.findall(last)}
    failures = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return {
        "seed": seed,
        "profile": profile,
        "returncode": proc.returncode,
        "counts": counts,
        "failures": failures,
        "wall_s": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="number of seeds (default 50)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--profile", default="dev", choices=["dev", "ci", "thorough"])
    parser.add_argument("--workers", type=int, default=1, help="pytest-xdist workers per run")
    parser.add_argument("--log", type=Path, default=Path("soak-results.jsonl"))
    args = parser.parse_args(own)
    env = environment()
    header = {"profile": args.profile, "seeds": args.seeds, "first_seed": args.first_seed, "pytest_args": extra}
    with args.log.open("a") as log:
        log.write(json.dumps({"soak": header, "environment": env}) + "\n")
    print("environment: " + ", ".join(f"{k} {env[k]}" for k in ("python", "numpy", "torch", "jax", "hypothesis")))
    failed_runs = 0
    for i, seed in enumerate(range(args.first_seed, args.first_seed + args.seeds), 1):
        result = run_one(seed, args.profile, args.workers, extra)
        with args.log.open("a") as log:
            log.write(json.dumps(result) + "\n")
        bad = result["returncode"] != 0 or result["failures"]
        failed_runs += bool(bad)
        status = "ok" if not bad else "FAIL " + (", ".join(result["failures"]) or f"pytest exit {result['returncode']}")
        print(f"[{i}/{args.seeds}] seed {seed}: {result['counts']} in {result['wall_s']} s: {status}", flush=True)
    print(f"{args.seeds} runs, {failed_runs} with failures; log: {args.log}")
    return 1 if failed_runs else 0


if __name__ == "__main__":
    sys.exit(main())
