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
    repository root. The lookup order is: ``<start>/bundles/<name>``, then ``start`` (or the current directory)
    itself when it holds ``configs/metadata.json``, then ``<torch hub dir>/bundle/<name>``, where
    ``python -m monai.bundle download`` installs bundles by default.

    Args:
        name: bundle directory name, e.g. ``"lexu_riga"``.
        start: directory to search from; defaults to the current working directory.

    Returns:
        The absolute bundle directory.

    Raises:
        FileNotFoundError: neither location holds ``configs/metadata.json``; pass ``--bundle_root`` explicitly.
    """
    import torch

    base = Path(start or os.getcwd()).resolve()
    for candidate in (base / "bundles" / name, base, Path(torch.hub.get_dir()) / "bundle" / name):
        if (candidate / "configs" / "metadata.json").is_file():
            return str(candidate)
    raise FileNotFoundError(
        f"cannot find bundle '{name}' from {base}: run from the repository root or the bundle directory, "
        f"or pass --bundle_root <path to {name}>"
    )


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
