"""The ``python -m monai.bundle run`` command of the run in progress, to print it back with other files or overrides.

The start-up warning of the GPU recipe on a CPU prints the same command with ``cpu_small.json`` added; Ctrl-C prints
it with ``--resume true``. The command is read from MONAI's ``monai.bundle.scripts.run`` / ``create_workflow`` frame
on the call stack (their ``config_file`` and overrides), else from :func:`monai_lexu.utils._running_workflow_args`.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_lexu.utils import WORKFLOW_ARGS

__all__ = ["bundle_command", "running_bundle_args"]

# the arguments of MONAI's workflow itself, not config overrides (one list, in monai_lexu.utils)
_SKIP = WORKFLOW_ARGS


def _as_files(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        text = str(value)
        if text.strip().startswith("["):
            import ast

            try:
                return [str(v) for v in ast.literal_eval(text)]
            except (ValueError, SyntaxError):
                pass
        return [s for s in text.split(",") if s.strip()]
    return [str(v) for v in value]


def running_bundle_args() -> tuple[list[str], dict[str, Any]]:
    """``(config files, overrides)`` of the ``python -m monai.bundle run`` in progress; ``([], {})`` if unknown.

    Looks for the ``run``/``create_workflow`` frame of ``monai.bundle.scripts`` on the call stack (present during the
    workflow's ``initialize`` and ``run``), else falls back to :func:`monai_lexu.utils._running_workflow_args`
    (``--config_file`` of the command line).
    """
    frame = inspect.currentframe()
    try:
        while frame is not None:
            if frame.f_globals.get("__name__") == "monai.bundle.scripts" and frame.f_code.co_name in (
                "run",
                "create_workflow",
            ):
                local = frame.f_locals
                args = dict(local.get("_args") or {})
                overrides = dict(local.get("override") or {}) if frame.f_code.co_name == "run" else {}
                overrides.update({k: v for k, v in args.items() if k not in _SKIP})
                files = _as_files(local.get("config_file") or args.get("config_file"))
                if files:
                    return files, {k: v for k, v in overrides.items() if k not in _SKIP}
            frame = frame.f_back
    finally:
        del frame
    from monai_lexu.utils import _running_workflow_args

    files, overrides = _running_workflow_args()
    return list(files or []), dict(overrides)


def _shown_path(path: str) -> str:
    """``path`` relative to the current directory when it is inside it, else absolute."""
    resolved = Path(path).expanduser().resolve()
    try:
        return resolved.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(resolved)


def _same_file(a: str, b: str) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def bundle_command(
    add_files: Sequence[str | os.PathLike] = (),
    overrides: Mapping[str, Any] | None = None,
    default_files: Sequence[str | os.PathLike] = (),
) -> str:
    """The command of the run in progress, with config files appended and overrides set.

    Args:
        add_files: config files to append (each once; kept where it already is).
        overrides: ``{id: value}`` set after the run's own overrides (e.g. ``{"resume": True}``).
        default_files: the config files to use when the running command cannot be found.

    Returns:
        e.g. ``python -m monai.bundle run --config_file "['bundles/x/configs/train.json','bundles/x/configs/
        cpu_small.json']" --fold 1 --resume true``.
    """
    files, running_overrides = running_bundle_args()
    files = [str(f) for f in files] or [str(f) for f in default_files]
    for extra in add_files:
        if not any(_same_file(f, str(extra)) for f in files):
            files.append(str(extra))
    shown = ",".join(f"'{_shown_path(f)}'" for f in files)
    merged = {**running_overrides, **dict(overrides or {})}
    parts = [f'python -m monai.bundle run --config_file "[{shown}]"']
    for key, value in merged.items():
        text = json.dumps(value) if not isinstance(value, str) else value
        if isinstance(value, bool):
            text = "true" if value else "false"
        if any(c in text for c in " []{}'\"$"):
            text = "'" + text.replace("'", "'\\''") + "'"
        parts.append(f"--{key} {text}")
    return " ".join(parts)
