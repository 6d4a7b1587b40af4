"""Small helpers shared by the bundles' configs: bundle location and device choice."""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["find_bundle_root", "default_device", "get_logger"]


def get_logger() -> logging.Logger:
    """The package logger (``monai_lexu``); bundle logging.conf files configure it like MONAI's."""
    return logging.getLogger("monai_lexu")


def find_bundle_root(name: str, start: str | os.PathLike | None = None) -> str:
    """Locate the directory of the bundle ``name`` so configs work from the repository root or the bundle itself.

    MONAI never sets ``bundle_root`` by itself (the model-zoo default ``"."`` is relative to the current directory),
    but our quick start runs ``python -m monai.bundle run --config_file bundles/<name>/configs/train.json`` from the
    repository root. The lookup order is: ``start`` (or the current directory) when it is the bundle (its
    ``configs/metadata.json`` exists and the directory is named ``name``, or no ``bundles/<name>`` exists below it),
    then ``<start>/bundles/<name>``.

    Args:
        name: bundle directory name, e.g. ``"lexu_riga"``.
        start: directory to search from; defaults to the current working directory.

    Returns:
        The absolute bundle directory.

    Raises:
        FileNotFoundError: neither location holds ``configs/metadata.json``; pass ``--bundle_root`` explicitly.
    """
    base = Path(start or os.getcwd()).resolve()
    for candidate in (base / "bundles" / name, base):
        if (candidate / "configs" / "metadata.json").is_file() and (candidate.name == name or candidate == base):
            return str(candidate)
    raise FileNotFoundError(
        f"cannot find bundle '{name}' from {base}: run from the repository root or the bundle directory, "
        f"or pass --bundle_root <path to {name}>"
    )


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
