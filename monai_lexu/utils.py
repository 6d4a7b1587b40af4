"""Small helpers shared by the bundles' configs: bundle location, device choice and the checkpoint check."""

from __future__ import annotations

import ast
import json
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
    "record_weights_origin",
    "weights_origin",
    "find_inputs",
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
                f"the checkpoint {path} does not fit the network {type(net).__name__}: {problems}\n  "
                + _origin_hint(path)
            )
    return str(path)


def find_inputs(input_glob: str | os.PathLike) -> list[str]:
    """The sorted files matching an inference ``input_glob``; an error if there are none (instead of an empty run).

    Args:
        input_glob: a ``glob`` pattern such as ``"<input_dir>/*__CT.nii.gz"``; its folder is the part before the first
            component with a wildcard.

    Returns:
        the matching paths, sorted (at least one).

    Raises:
        FileNotFoundError: naming the folder if it does not exist, or the pattern (and a few files the folder does
            hold) if nothing matches.
    """
    import glob

    pattern = os.path.expanduser(str(input_glob))
    parts = Path(pattern).parts
    first_magic = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts) - 1)
    folder = Path(*parts[:first_magic]) if first_magic else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"input folder {folder} does not exist (input_glob {pattern}): check --input_dir / --input_glob. "
            "Nothing was written."
        )
    found = sorted(glob.glob(pattern))
    if not found:
        present = sorted(p.name for p in folder.iterdir())
        shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "") if present else "nothing"
        raise FileNotFoundError(
            f"no input file matches {pattern}: the folder {folder} holds {len(present)} entries ({shown}) but none of "
            f"the expected '{Path(*parts[first_magic:])}' "
            "files. Nothing was written."
        )
    return found


#: Arguments of MONAI's bundle workflow itself (``monai.bundle.scripts.run``), not config overrides.
WORKFLOW_ARGS = frozenset(
    {
        "config_file",
        "meta_file",
        "logging_file",
        "init_id",
        "run_id",
        "final_id",
        "tracking",
        "args_file",
        "workflow_name",
        "workflow_type",
        "properties_path",
    }
)


def _running_workflow_args() -> tuple[list[str] | None, dict[str, Any]]:
    """``(config files, command-line overrides)`` of the bundle run in progress: the arguments of MONAI's
    ``create_workflow`` on the call stack (``python -m monai.bundle run``), else the ``--config_file`` of the command
    line and no overrides; ``(None, {})`` when neither is known."""
    import inspect

    frame = inspect.currentframe()
    try:
        while frame is not None:
            code = frame.f_code
            if code.co_name == "create_workflow" and frame.f_globals.get("__name__") == "monai.bundle.scripts":
                local = frame.f_locals
                args = local.get("_args") or {}
                files = local.get("config_file") or args.get("config_file")
                if isinstance(files, (str, os.PathLike)):
                    files = [files]
                overrides = {k: v for k, v in args.items() if k not in WORKFLOW_ARGS}
                return ([str(f) for f in files] if files else None), overrides
            frame = frame.f_back
    finally:
        del frame
    files = [str(f) for f in _running_config_files() if f.name != "metadata.json"]
    return (files or None), {}


def _relative(path: str, root: Path) -> str:
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(root).as_posix()
    except ValueError:
        return str(resolved)


def record_weights_origin(ckpt_dir: str | os.PathLike, names: Any = ("model",), bundle_root: Any = None) -> list[str]:
    """Write ``<ckpt_dir>/<name>.json`` beside the weights ``<name>.pt`` a training is about to save: the config files
    and command-line overrides that make them, so that :func:`check_checkpoint` can say which configs a mismatching
    checkpoint needs.

    The bundles' ``train.json`` call it in ``initialize`` (before any weights are written):
    ``"$monai_lexu.utils.record_weights_origin(@ckpt_dir, ['model'], @bundle_root)"``. The record is
    ``{"weights": "model.pt", "config_file": [...], "overrides": {...}}``; config files inside ``bundle_root`` are
    relative to it (``configs/cpu_small.json``), others absolute. Each file is written to a temporary name and moved
    into place, so a record is never half-written.

    Args:
        ckpt_dir: the folder of the weights (created).
        names: the weights' file stems (``"model"`` for ``model.pt``), one record each.
        bundle_root: the bundle folder (paths inside it are stored relative to it).

    Returns:
        The written record paths.
    """
    files, overrides = _running_workflow_args()
    root = Path(bundle_root).resolve() if bundle_root else None
    record = {
        "config_file": [_relative(f, root) if root else str(Path(f).resolve()) for f in files] if files else None,
        "overrides": {k: v for k, v in overrides.items() if isinstance(v, (str, int, float, bool, list, dict))},
    }
    os.makedirs(ckpt_dir, exist_ok=True)
    written = []
    for name in [names] if isinstance(names, str) else names:
        path = Path(ckpt_dir) / f"{name}.json"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"weights": f"{name}.pt", **record}, indent=4, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        written.append(str(path))
    return written


def weights_origin(path: str | os.PathLike) -> dict | None:
    """The record :func:`record_weights_origin` wrote beside the weights ``path`` (``model.pt`` -> ``model.json``),
    or ``None`` when there is none or it cannot be read."""
    record = Path(path).with_suffix(".json")
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("weights") == Path(path).name else None


def _origin_hint(path: str | os.PathLike) -> str:
    """Line 2 of a size-mismatch error: the configs that made the weights and the ``--config_file`` to run with."""
    generic = (
        "run with the overrides it was trained with (e.g. configs/cpu_small.json for the CPU recipe, the same "
        "--features)"
    )
    record = weights_origin(path)
    if not record or not record.get("config_file"):
        return generic
    made_with = record["config_file"]
    shown = ", ".join(made_with[1:]) or made_with[0]
    overrides = record.get("overrides") or {}
    if overrides:
        shown += " with " + " ".join(f"--{k} {json.dumps(v)}" for k, v in overrides.items())
    running, _ = _running_workflow_args()
    extra = [f for f in made_with[1:] if Path(f).name not in {Path(r).name for r in running or []}]
    if not extra:
        return f"the weights were made with {shown} ({Path(path).with_suffix('.json')}): run with the same overrides"
    bundle = Path(running[0]).resolve().parent.parent if running else Path(path).resolve().parent.parent
    add = [f if Path(f).is_absolute() else str(bundle / f) for f in extra]
    command = '--config_file "[' + ",".join(f"'{f}'" for f in [*(running or ["<config>"]), *add]) + ']"'
    names = ", ".join(Path(f).name for f in extra)
    return f"the weights were made with {shown}: add {names}: {command}"
