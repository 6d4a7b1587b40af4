"""Small helpers shared by the bundles' configs: bundle location, device choice and the checkpoint check."""

from __future__ import annotations

import ast
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "find_bundle_root",
    "default_device",
    "get_logger",
    "load_checkpoint",
    "state_dict_mismatch",
    "check_checkpoint",
]


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


def load_checkpoint(path: str | os.PathLike, key: str = "model") -> dict:
    """The state dict in the checkpoint file ``path``, read with ``torch.load(weights_only=True)`` on the CPU.

    Accepts what MONAI's ``CheckpointLoader`` with ``load_dict={key: network}`` accepts: a plain state dict
    ``{name: tensor}``, or a checkpoint dict holding it under ``key`` (e.g. ``{"model": ..., "optimizer": ...}``).

    Args:
        path: the checkpoint file.
        key: the key of the network's state dict in a checkpoint dict.

    Returns:
        ``{parameter or buffer name: tensor}``.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message names it).
        ValueError: the file cannot be read (truncated, corrupt, not a PyTorch file, or a pickle that is not plain
            weights) or does not hold a state dict; the message names the file, two lines at most.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint not found: {path}\n  train the bundle first (docs/README.md) or set --ckpt_dir to the folder "
            "that holds it"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(
            f"cannot read the checkpoint {path} ({path.stat().st_size} bytes): {type(e).__name__}: {first}\n  the "
            "file is truncated, corrupt or not a PyTorch weights file; copy or train it again"
        ) from e
    if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
        state = state[key]
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"the checkpoint {path} does not hold a state dict (got {_describe(state)})\n  expected {{name: tensor}} "
            f"or {{{key!r}: {{name: tensor}}, ...}} as the bundle's training saves it"
        )
    return dict(state)


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        kinds = sorted({type(v).__name__ for v in obj.values()})
        return f"a dict of {len(obj)} entries of type {', '.join(kinds)}" if obj else "an empty dict"
    return type(obj).__name__


def state_dict_mismatch(expected: Mapping[str, Any], found: Mapping[str, Any], show: int = 3) -> str:
    """How the state dict ``found`` differs from ``expected`` (missing/unexpected keys, shapes); ``""`` when they
    match. At most ``show`` examples per kind, e.g. ``"2 shape mismatches (head.weight (8, 16) vs (4, 16), ...)"``
    (found vs expected)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [
        f"{k} {tuple(found[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in found and tuple(found[k].shape) != tuple(v.shape)
    ]
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if items:
            more = f", ... ({len(items) - show} more)" if len(items) > show else ""
            parts.append(f"{len(items)} {label} ({', '.join(items[:show])}{more})")
    return "; ".join(parts)


def check_checkpoint(path: str | os.PathLike, network: Any = None, key: str = "model") -> str:
    """Check a checkpoint before MONAI's ``CheckpointLoader`` loads it; return ``path`` for its ``load_path``.

    The bundles' inference and evaluation configs call it as the loader's path,
    ``"load_path": "$monai_lexu.utils.check_checkpoint(@ckpt_dir + '/model.pt', @network)"``, so a missing, truncated
    or corrupt file, a file that holds no state dict, one with non-finite weights, or weights that do not fit the
    network stop the run before any input is read or output written, with a two-line error naming the file (MONAI's
    loader alone raises a bare ``FileNotFoundError`` or unpickling error at the first iteration).

    Args:
        path: the checkpoint file.
        network: the network the weights are for (a DDP/DataParallel wrapper is unwrapped); ``None`` skips the fit.
        key: the key of the network's state dict in a checkpoint dict (the ``load_dict`` key of the loader).

    Returns:
        ``str(path)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unreadable file, no state dict, non-finite weights, or weights that do not fit ``network``.
    """
    import torch

    state = load_checkpoint(path, key)
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        more = f", ... ({len(bad) - 3} more)" if len(bad) > 3 else ""
        raise ValueError(
            f"the checkpoint {path} holds non-finite weights in {len(bad)} tensors ({', '.join(bad[:3])}{more})\n  "
            "the training that saved it diverged; train again or use an earlier checkpoint"
        )
    if network is not None:
        wrapped = isinstance(network, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel))
        net = network.module if wrapped else network
        problems = state_dict_mismatch(net.state_dict(), state)
        if problems:
            raise ValueError(
                f"the checkpoint {path} does not fit the network {type(net).__name__}: {problems}\n  run with the "
                "overrides it was trained with (e.g. configs/cpu_small.json for the CPU recipe, the same --features)"
            )
    return str(path)
