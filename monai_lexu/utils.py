"""Small helpers shared by the bundles' configs: bundle location and device choice."""

from __future__ import annotations

import ast
import logging
import os
import sys
from pathlib import Path

__all__ = ["find_bundle_root", "default_device", "get_logger"]


def get_logger() -> logging.Logger:
    """The package logger (``monai_lexu``); bundle logging.conf files configure it like MONAI's."""
    return logging.getLogger("monai_lexu")


def _running_config_files() -> list[Path]:
    """Config files being run right now: those of every ``ConfigWorkflow`` on the call stack (innermost first), then
    the ``--config_file`` argument of the command line (``python -m monai.bundle run --config_file ...``)."""
    import inspect

    files: list[Path] = []
    try:
        from monai.bundle import ConfigWorkflow
    except ImportError:  # pragma: no cover - monai is a dependency
        ConfigWorkflow = None  # noqa: N806
    frame = inspect.currentframe()
    while frame is not None and ConfigWorkflow is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, ConfigWorkflow):
            root = getattr(owner, "config_root_path", None)
            if root is not None:
                files.append(Path(root) / "metadata.json")
        frame = frame.f_back
    del frame
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        value = None
        if arg == "--config_file" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--config_file="):
            value = arg.split("=", 1)[1]
        if value is None:
            continue
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value.split(",")
        for item in [parsed] if isinstance(parsed, str) else parsed:
            if isinstance(item, str) and item.strip():
                files.append(Path(item.strip()))
    return files


def find_bundle_root(name: str, start: str | os.PathLike | None = None) -> str:
    """Locate the directory of the bundle ``name``, wherever it is run from.

    MONAI never sets ``bundle_root`` by itself (the model-zoo default ``"."`` is relative to the current directory), so
    the configs call this function. The first directory named ``name`` that holds ``configs/metadata.json`` wins:

    1. the bundle whose configs are being run (only when ``start`` is None): the configs folder of a ``ConfigWorkflow``
       on the call stack (``python -m monai.bundle run``, ``ConfigWorkflow(...)``), else the ``--config_file`` files
       of the command line (``verify_net_in_out``/``ckpt_export`` from the CLI). This makes a bundle installed in the
       model-zoo layout, ``<dir>/<name>/`` (``python -m monai.bundle download --bundle_dir <dir>``), work from any
       current directory: ``python -m monai.bundle run --config_file <dir>/<name>/configs/inference.json``;
    2. below ``start`` (default: the current directory): ``bundles/<name>`` (this repository), ``start`` itself when
       it is the bundle, ``models/<name>`` (the model-zoo repository), ``<name>`` (downloaded with ``--bundle_dir .``);
    3. ``<torch hub dir>/bundle/<name>``, where ``python -m monai.bundle download`` installs bundles by default.

    The folder must keep the bundle's name (a bundle copied or packed under another name needs ``--bundle_root``):
    the name keeps a workflow of one bundle from claiming the configs of another parsed inside it.

    Args:
        name: bundle directory name, e.g. ``"lexu_riga"``.
        start: directory to search from instead of the running configs and the current directory.

    Returns:
        The absolute bundle directory.

    Raises:
        FileNotFoundError: no location holds ``configs/metadata.json``; pass ``--bundle_root`` explicitly.
    """
    import torch

    def is_bundle(path: Path) -> bool:
        return (path / "configs" / "metadata.json").is_file()

    if start is None:
        for config in _running_config_files():
            configs_dir = config.resolve().parent
            candidate = configs_dir.parent
            if configs_dir.name == "configs" and candidate.name == name and is_bundle(candidate):
                return str(candidate)
    base = Path(start or os.getcwd()).resolve()
    candidates = (
        base / "bundles" / name,
        base,
        base / "models" / name,
        base / name,
        Path(torch.hub.get_dir()) / "bundle" / name,
    )
    for candidate in candidates:
        if is_bundle(candidate):
            return str(candidate)
    raise FileNotFoundError(
        f"cannot find bundle '{name}' from {base}: run its configs by path (--config_file <dir>/{name}/configs/...), "
        f"run from the repository root or the bundle directory, or pass --bundle_root <path to {name}>"
    )


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
