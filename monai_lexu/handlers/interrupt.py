"""Ctrl-C stops a bundle run cleanly: one line saying what was saved and the command to go on, exit code 130.

Without it, SIGINT during ``python -m monai.bundle run`` raises ``KeyboardInterrupt`` inside ignite: the engine logs
"Engine run is terminating due to exception", MONAI's ``StatsHandler`` logs the full traceback, its
``CheckpointSaver`` writes the *final* weights (``model.pt``, which inference loads) from the half-trained network,
and Python prints a second traceback. :class:`StopOnInterrupt` runs first on ``EXCEPTION_RAISED`` (of the engine and
of the validator it is given): for a ``KeyboardInterrupt`` it skips the other exception handlers (nothing is saved
from the interrupted state: the last complete ``checkpoint.pt`` of
:class:`~monai_lexu.handlers.ResumableCheckpoint` and the published inference outputs stay as they are), drops
ignite's "terminating due to exception" line for it, logs one line and raises ``SystemExit(130)`` (the shell's code
for SIGINT; no traceback). Other exceptions go through the usual handlers unchanged.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from monai.utils import IgniteInfo, min_version, optional_import

from monai_lexu.handlers.checkpoint import ResumableCheckpoint
from monai_lexu.handlers.command import bundle_command

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")

__all__ = ["INTERRUPT_EXIT_CODE", "StopOnInterrupt", "install_interrupt_hook"]

logger = logging.getLogger(__name__)

INTERRUPT_EXIT_CODE = 130


STARTING_MESSAGE = (
    "interrupted while the run was starting (reading the configs, preparing or caching the data): nothing was "
    "trained, evaluated or written by it; run the same command again to start over"
)


def install_interrupt_hook() -> bool:
    """Make a Ctrl-C outside the engines (while the configs are parsed, data converted or cached) end with one line
    instead of a traceback.

    Wraps ``sys.excepthook`` once: an uncaught ``KeyboardInterrupt`` prints :data:`STARTING_MESSAGE` to stderr (Python
    then exits through SIGINT, status 130 in a shell); every other exception goes to the previous hook. Inside the
    engines :class:`StopOnInterrupt` handles Ctrl-C first. The configs call it in ``initialize`` through
    :func:`monai_lexu.handlers.quiet_run`.

    Returns:
        True.
    """
    previous = sys.excepthook
    if getattr(previous, "_monai_lexu_interrupt_hook", False):
        return True

    def hook(kind, value, traceback):  # noqa: ANN001 - sys.excepthook's signature
        if issubclass(kind, KeyboardInterrupt):
            print(STARTING_MESSAGE, file=sys.stderr, flush=True)
            return
        previous(kind, value, traceback)

    hook._monai_lexu_interrupt_hook = True  # type: ignore[attr-defined]
    sys.excepthook = hook
    return True


class _DropInterruptedRunLine(logging.Filter):
    """Drop ignite's "... is terminating due to exception: " record while a KeyboardInterrupt is being handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = sys.exc_info()[1]
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            return "terminating due to exception" not in record.getMessage()
        return True


def _first_exception_handler(engine: Any, handler: Any) -> None:
    """Register ``handler`` on ``EXCEPTION_RAISED`` ahead of the handlers already there (ignite runs them in order
    and stops at the first that raises)."""
    engine.add_event_handler(Events.EXCEPTION_RAISED, handler)
    handlers = engine._event_handlers[Events.EXCEPTION_RAISED]  # ignite keeps no public way to reorder
    handlers.insert(0, handlers.pop())
    if not any(isinstance(f, _DropInterruptedRunLine) for f in engine.logger.filters):
        engine.logger.addFilter(_DropInterruptedRunLine())


def _only_handler(engine: Any) -> bool:
    return len(engine._event_handlers[Events.EXCEPTION_RAISED]) <= 1


def _find_resumable(engine: Any) -> ResumableCheckpoint | None:
    for entries in engine._event_handlers.values():
        for handler, _, _ in entries:
            owner = getattr(handler, "__self__", None)
            if isinstance(owner, ResumableCheckpoint):
                return owner
    return None


class StopOnInterrupt:
    """On Ctrl-C: one line (what was saved, how to go on), nothing written from the interrupted state, exit 130.

    Attach to the outermost engine of a run (the trainer; the evaluator of an evaluation or inference) before or
    after the other handlers: it places itself first. The line says, for a training, the epoch reached, the last
    ``checkpoint.pt`` of the :class:`~monai_lexu.handlers.ResumableCheckpoint` attached to the trainer (its epoch) and
    the command with ``--resume true``; for an evaluation or inference, the cases done and the command to run again
    (inference outputs of finished cases are already in ``output_dir``; no summary is written).

    Args:
        mode: ``"training"``, ``"evaluation"`` or ``"inference"``.
        validator: an inner engine (the training's evaluator), which then passes the interrupt up untouched.
        output_dir: for inference, where the finished cases' outputs are.
        default_files: config files for the printed command when the running command cannot be found.
    """

    def __init__(
        self,
        mode: str = "training",
        validator: Any = None,
        output_dir: str | None = None,
        default_files: Any = (),
    ) -> None:
        self.mode = mode
        self.validator = validator
        self.output_dir = output_dir
        self.default_files = [str(f) for f in (default_files or [])]
        self.message = ""
        self.completed: int | None = None

    def attach(self, engine: Any) -> None:
        """Run first on ``EXCEPTION_RAISED`` of ``engine`` (and of ``validator``)."""
        _first_exception_handler(engine, self.exception_raised)
        engine.add_event_handler(Events.STARTED, self._count)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._count)
        if self.validator is not None:
            _first_exception_handler(self.validator, self._pass_up)

    def _count(self, engine: Any) -> None:
        """Remember the iterations completed (``state.iteration`` already counts the one in progress)."""
        self.completed = int(engine.state.iteration)

    @staticmethod
    def _pass_up(engine: Any, e: BaseException) -> None:
        """Inner engine: let an interrupt through without its other handlers (no traceback, no final save)."""
        if isinstance(e, KeyboardInterrupt) or _only_handler(engine):
            raise e

    def describe(self, engine: Any) -> str:
        """The one line for an interrupt at the engine's current state."""
        s = engine.state
        if self.mode == "training":
            total = s.max_epochs * (s.epoch_length or 0)
            done = self.completed if self.completed is not None else s.iteration
            where = f"training interrupted in epoch {s.epoch}/{s.max_epochs} after {done} of {total} iterations"
            resumable = _find_resumable(engine)
            if resumable is not None and resumable.saved_epoch is not None and resumable.path.is_file():
                command = bundle_command(overrides={"resume": True}, default_files=self.default_files)
                return (
                    f"{where}; saved: {resumable.path} (epoch {resumable.saved_epoch}); nothing else was written. "
                    f"Resume with: {command}"
                )
            interval = resumable.interval if resumable is not None else None
            when = f" (the first is written at epoch {interval})" if interval else ""
            return (
                f"{where}; nothing was saved: no resumable checkpoint of this run yet{when}. Start again with: "
                f"{bundle_command(default_files=self.default_files)}"
            )
        done = self.completed if self.completed is not None else s.iteration
        total = s.epoch_length or "?"
        command = bundle_command(default_files=self.default_files)
        if self.mode == "inference":
            written = len(getattr(engine, "written", []) or [])
            where = self.output_dir or getattr(engine, "output_dir", "")
            return (
                f"inference interrupted after {written} of {total} inputs: their outputs are in {where}, no "
                f"inference_summary.json was written. Run again with: {command}"
            )
        return f"{self.mode} interrupted after {done} of {total} cases; nothing was written. Run again with: {command}"

    def exception_raised(self, engine: Any, e: BaseException) -> None:
        """For a ``KeyboardInterrupt``: log the line and exit 130; any other exception goes to the next handler."""
        if not isinstance(e, KeyboardInterrupt):
            if _only_handler(engine):  # ignite would swallow the exception
                raise e
            return
        self.message = self.describe(engine)
        logger.warning(self.message)
        for handler in logging.getLogger().handlers + logger.handlers:
            handler.flush()
        raise SystemExit(INTERRUPT_EXIT_CODE) from None

    @staticmethod
    def saved_path(engine: Any) -> Path | None:
        """The resumable checkpoint of the trainer ``engine``, or None."""
        resumable = _find_resumable(engine)
        return resumable.path if resumable is not None else None
