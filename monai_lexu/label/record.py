"""A training handler the MONAI Label train task adds: it records how many raters each sample brought to the loss."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["RaterCountRecorder"]


class RaterCountRecorder:
    """Write the number of valid raters of every training sample, as the loss received them, to a JSON file.

    The trainer's ``engine.state.output["label"]`` is the target dict that ``PrepareMultiRaterBatch`` handed to the
    loss (``decollate=False``); its ``rater_valid`` ``(B, R)`` says which of the padded rater slots are real. At the
    end of training ``path`` holds ``{"rater_counts": [...], "distinct": [...], "iterations": n}`` (written
    atomically).

    Args:
        path: the JSON file to write.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.counts: list[int] = []
        self.iterations = 0

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.COMPLETED, self.write)

    def iteration_completed(self, engine: Any) -> None:
        output = engine.state.output
        target = output.get("label") if isinstance(output, dict) else None
        if not isinstance(target, dict) or "rater_valid" not in target:
            return
        self.iterations += 1
        self.counts += [int(c) for c in target["rater_valid"].sum(dim=1).tolist()]

    def write(self, engine: Any = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        record = {"rater_counts": self.counts, "distinct": sorted(set(self.counts)), "iterations": self.iterations}
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, self.path)
