"""Wall time of the README's two quick-start jobs before and after issue 11 (item 9), on whatever cores are free.

The two trees are ``git archive``\\ s of two commits (``--before``, default the parent of the first issue-11 commit
4e73440; ``--after``, default ``HEAD``) under ``--work``; each job runs in its own tree with that tree's own Makefile
(``make -o install quickstart`` / ``make -o install test``: the install step is skipped so the shared environment is
not re-pointed; ``PYTHONPATH`` puts the tree's ``monai_lexu`` first, and every bundle subprocess inherits it).
Jobs alternate (before, after, after, before, ... per job); ``MONAI_LEXU_NUM_THREADS`` and ``OMP_NUM_THREADS`` are
removed from the environment so that each tree uses its own thread policy (before issue 11: torch's default, one
thread per core; after: the bundles' ``num_threads: auto``). Recorded per run: wall time, CPU time of the children
(user + system, all processes of the job), the exit status, pytest's final line for the tests, and the 1-minute
load average before and after. Runs of the jobs not given now are kept from an existing ``--output`` of the same
two commits, so the jobs can be measured one after the other. The quick start's outputs (models, eval, inference)
are deleted before each run, so every run trains from scratch.

Example::

    python benchmarks/bench_first_hour.py --jobs quickstart test --rounds 1   # -> results/first_hour.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_ISSUE_11_COMMIT = "4e73440"
QUICKSTART_OUTPUTS = ("models", "eval", "inference", "logs", "runs", "data")
"""Folders under ``bundles/lexu_hecktor`` a quick-start run may write (removed before each run, if not in git)."""


def _archive(commit: str, dest: Path) -> str:
    """Extract ``commit``'s tree into ``dest`` (once) and return the full hash."""
    full = subprocess.run(
        ["git", "rev-parse", commit], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    if not (dest / ".commit").exists() or (dest / ".commit").read_text() != full:
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", full], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        (dest / ".commit").write_text(full)
    return full


def _clean_outputs(tree: Path) -> None:
    bundle = tree / "bundles" / "lexu_hecktor"
    tracked = set(
        subprocess.run(
            ["git", "ls-files", "bundles/lexu_hecktor"], cwd=ROOT, capture_output=True, text=True
        ).stdout.split()
    )
    for name in QUICKSTART_OUTPUTS:
        path = bundle / name
        if path.exists() and not any(t.startswith(f"bundles/lexu_hecktor/{name}/") for t in tracked):
            shutil.rmtree(path)


def run_job(tree: Path, job: str, log: Path) -> dict:
    """Run ``make -o install <job>`` in ``tree``; wall and children's CPU time, exit status, last line."""
    env = {k: v for k, v in os.environ.items() if k not in ("MONAI_LEXU_NUM_THREADS", "OMP_NUM_THREADS")}
    env["PYTHONPATH"] = str(tree)
    env["PYTHON"] = sys.executable
    if job == "quickstart":
        _clean_outputs(tree)
    load_before = os.getloadavg()
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(
            ["make", "-o", "install", job, f"PYTHON={sys.executable}"],
            cwd=tree,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    wall = time.perf_counter() - t0
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    final = next((ln for ln in reversed(lines) if " passed" in ln or " failed" in ln), lines[-1] if lines else "")
    return {
        "job": job,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "returncode": proc.returncode,
        "final_line": final.strip("= "),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "log": str(log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default=f"{FIRST_ISSUE_11_COMMIT}^", help="commit before issue 11")
    parser.add_argument("--after", default="HEAD", help="commit after")
    parser.add_argument("--jobs", nargs="+", default=["quickstart", "test"], choices=["quickstart", "test"])
    parser.add_argument("--rounds", type=int, default=1, help="runs of each tree per job (alternating)")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "first_hour")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "first_hour.json")
    args = parser.parse_args()
    trees = {"before": args.work / "before", "after": args.work / "after"}
    commits = {name: _archive(commit, trees[name]) for name, commit in (("before", args.before), ("after", args.after))}
    result: dict = {
        "what": "wall time of `make quickstart` and `make test` (install skipped) before and after issue 11",
        "commits": commits,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "runs": [],
    }
    if args.output.is_file():  # keep the earlier runs of the jobs not run now (e.g. --jobs test after quickstart)
        earlier = json.loads(args.output.read_text())
        if earlier.get("commits") == commits:
            result["runs"] = [run for run in earlier.get("runs", []) if run["job"] not in args.jobs]
    for job in args.jobs:
        for r in range(args.rounds):
            order = ("before", "after") if r % 2 == 0 else ("after", "before")
            for name in order:
                log = args.work / f"{job}_{name}_{r}.log"
                print(f"[{time.strftime('%H:%M:%S')}] {job}: {name} tree, round {r + 1}/{args.rounds}", flush=True)
                run = run_job(trees[name], job, log)
                run.update({"tree": name, "round": r})
                print(f"  -> {run['wall_s']} s wall, {run['cpu_s']} CPU-s, exit {run['returncode']}", flush=True)
                result["runs"].append(run)
                args.output.parent.mkdir(parents=True, exist_ok=True)
                args.output.write_text(json.dumps(result, indent=2) + "\n")  # after every run: resumable reading
    print(json.dumps(result["runs"], indent=1))


if __name__ == "__main__":
    main()
