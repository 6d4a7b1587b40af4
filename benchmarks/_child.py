"""One measured run in a fresh subprocess: the protocol the benchmarks that time whole processes share.

The child prints its result as one line ``RESULT <json>`` (:func:`report`); the parent runs it and parses that line
(:func:`run_child`). A fresh process per run keeps imports, caches and allocator state of one method out of the next.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from typing import Any

__all__ = ["PREFIX", "report", "run_child"]

PREFIX = "RESULT "


def report(result: Any) -> None:
    """In the child: print ``result`` (JSON-serialisable) as the run's result line."""
    print(PREFIX + json.dumps(result), flush=True)


def run_child(cmd: Sequence[str], what: str, env: dict[str, str] | None = None, cwd: str | None = None) -> dict:
    """Run ``cmd`` and return the JSON of its last result line plus ``os.getloadavg()`` before and after it.

    Raises:
        RuntimeError: naming ``what`` with the end of the child's stderr, when it fails or prints no result line.
    """
    load_before = os.getloadavg()
    proc = subprocess.run(list(cmd), env=env, cwd=cwd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(PREFIX)]
    if proc.returncode or not lines:
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-3000:]}")
    run = json.loads(lines[-1][len(PREFIX) :])
    run.update({"loadavg_before": load_before, "loadavg_after": os.getloadavg()})
    return run
