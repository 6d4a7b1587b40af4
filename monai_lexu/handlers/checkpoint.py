"""Checkpoints that are never non-finite nor half-written, and training that resumes where it stopped.

- :class:`FiniteCheckpointSaver`: MONAI's ``CheckpointSaver`` (final / key-metric / interval checkpoints) that writes
  each file atomically (a temporary name, then ``os.replace``) and refuses a state with NaN/Inf tensors.
- :class:`ResumableCheckpoint`: one handler that saves everything a training needs to continue (network, optimiser,
  learning-rate scheduler, trainer epoch/iteration, best validation metric, random states) to
  ``<save_dir>/checkpoint.pt`` every ``interval`` epochs, and, with ``resume``, loads it when the trainer starts.
- :class:`RandomStates`: the torch, numpy, Python and MONAI random-transform states as a ``state_dict``.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.handlers import CheckpointSaver
from monai.transforms import Randomizable, Transform
from monai.utils import IgniteInfo, min_version, optional_import

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
Checkpoint, _ = optional_import("ignite.handlers", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Checkpoint")
BaseSaveHandler, _ = optional_import(
    "ignite.handlers.checkpoint", IgniteInfo.OPT_IMPORT_VERSION, min_version, "BaseSaveHandler"
)
idist, _ = optional_import("ignite.distributed", IgniteInfo.OPT_IMPORT_VERSION, min_version)

__all__ = [
    "FiniteCheckpointSaver",
    "NonFiniteCheckpointError",
    "RandomStates",
    "ResumableCheckpoint",
    "atomic_torch_save",
    "nonfinite_tensors",
    "resume_path",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"


class NonFiniteCheckpointError(FloatingPointError):
    """A checkpoint would hold NaN/Inf tensors; nothing was written."""


def nonfinite_tensors(state: Any, prefix: str = "") -> list[str]:
    """The dotted names of the floating-point tensors in a (nested) state dict that hold NaN or Inf.

    Args:
        state: a state dict, possibly nested in dicts and lists (an optimiser state, a checkpoint of several objects).
        prefix: prepended to the names.

    Returns:
        e.g. ``["model.encoder.0.weight", "optimizer.state.3.exp_avg"]``; ``[]`` when every tensor is finite.
    """
    if isinstance(state, torch.Tensor):
        return [prefix or "<tensor>"] if state.is_floating_point() and not bool(torch.isfinite(state).all()) else []
    items: Iterable[tuple[Any, Any]] = ()
    if isinstance(state, Mapping):
        items = state.items()
    elif isinstance(state, (list, tuple)):
        items = enumerate(state)
    bad: list[str] = []
    for key, value in items:
        bad += nonfinite_tensors(value, f"{prefix}.{key}" if prefix else str(key))
    return bad


def _check_finite(state: Any, path: str | os.PathLike) -> None:
    bad = nonfinite_tensors(state)
    if bad:
        more = f", ... ({len(bad) - 3} more)" if len(bad) > 3 else ""
        raise NonFiniteCheckpointError(
            f"refusing to write the checkpoint {path}: non-finite values in {len(bad)} tensors "
            f"({', '.join(bad[:3])}{more}); the training diverged, nothing was written"
        )


def atomic_torch_save(obj: Any, path: str | os.PathLike, check_finite: bool = True) -> Path:
    """``torch.save`` to a temporary file next to ``path``, then ``os.replace``: ``path`` is complete or absent.

    Args:
        obj: what to save.
        path: the destination; its folder is created.
        check_finite: refuse (raise, write nothing) when ``obj`` holds NaN/Inf tensors.

    Returns:
        ``path``.

    Raises:
        NonFiniteCheckpointError: with ``check_finite``, the message names ``path`` and the first bad tensors.
    """
    path = Path(path)
    if check_finite:
        _check_finite(obj, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _remove_stale_temporaries(path)
    return path


def _remove_stale_temporaries(path: Path) -> None:
    """Delete ``.<name>.<pid>.tmp`` files next to ``path`` left by a killed process (whose pid no longer runs)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        pid = stale.name[len(path.name) + 2 : -len(".tmp")]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            stale.unlink(missing_ok=True)
        except PermissionError:  # a live process of another user
            continue


class _GuardedSaver(BaseSaveHandler):
    """Wraps MONAI's disk saver: finite check and atomic write of ``dirname/filename``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        name = getattr(self.inner, "filename", None) or filename
        atomic_torch_save(checkpoint, Path(self.inner.dirname) / name)

    def remove(self, filename: str) -> None:
        name = getattr(self.inner, "filename", None) or filename
        if (Path(self.inner.dirname) / name).exists():  # a refused (never written) checkpoint has no file
            self.inner.remove(filename)


class FiniteCheckpointSaver(CheckpointSaver):
    """MONAI's ``CheckpointSaver`` that never writes NaN/Inf weights nor a half-written file.

    Same arguments and files as :class:`monai.handlers.CheckpointSaver`; every write goes to a temporary name first
    and is renamed when complete, and a state holding a non-finite tensor raises
    :class:`NonFiniteCheckpointError` (naming the file and the tensors) instead of being saved. On an exception in
    the run (e.g. :class:`monai_lexu.handlers.StopOnNonFiniteLoss`) MONAI's saver writes the final checkpoint of the
    current state; this one skips that write when the state is non-finite and re-raises the original error.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for checkpoint in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if checkpoint is not None:
                checkpoint.save_handler = _GuardedSaver(checkpoint.save_handler)

    def exception_raised(self, engine: Any, e: Exception) -> None:
        """Save the final checkpoint as MONAI does unless it is non-finite; always re-raise ``e``."""
        try:
            super().exception_raised(engine, e)
        except NonFiniteCheckpointError as refused:
            self.logger.error(f"{refused} (after: {type(e).__name__}: {e})")
            raise e from None


def _unwrap(obj: Any) -> Any:
    wrappers = (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)
    return obj.module if isinstance(obj, wrappers) else obj


def _numpy_state(rs: np.random.RandomState) -> dict:
    state = rs.get_state(legacy=False)
    key = torch.from_numpy(state["state"]["key"].astype(np.int64))  # tensors load with weights_only=True
    return {
        "bit_generator": state["bit_generator"],
        "key": key,
        "pos": int(state["state"]["pos"]),
        "has_gauss": int(state["has_gauss"]),
        "gauss": float(state["gauss"]),
    }


def _set_numpy_state(rs: np.random.RandomState, state: Mapping) -> None:
    rs.set_state(
        {
            "bit_generator": state["bit_generator"],
            "state": {"key": state["key"].numpy().astype(np.uint32), "pos": state["pos"]},
            "has_gauss": state["has_gauss"],
            "gauss": state["gauss"],
        }
    )


def _python_state() -> dict:
    version, internal, gauss = random.getstate()
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _set_python_state(state: Mapping) -> None:
    random.setstate((state["version"], tuple(int(v) for v in state["internal"].tolist()), state["gauss"]))


def _random_generators(obj: Any, seen: set[int] | None = None) -> list[np.random.RandomState]:
    """Every ``numpy.random.RandomState`` held by the MONAI transforms in ``obj``, depth first, each once.

    Walks a ``Compose`` (nested ones too), lists, tuples and dicts, and the attributes of every transform: a random
    dictionary transform often draws from an inner array transform's generator (``RandCropByPosNegLabeld.cropper``).
    """
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.random.RandomState):
        return [obj]
    if isinstance(obj, Mapping):
        children: Iterable[Any] = obj.values()
    elif isinstance(obj, (list, tuple)):
        children = obj
    elif isinstance(obj, (Transform, Randomizable)):
        children = vars(obj).values()
    else:
        return []
    found: list[np.random.RandomState] = []
    for child in children:
        found += _random_generators(child, seen)
    return found


class RandomStates:
    """The random states a training draws from, as an object with ``state_dict``/``load_state_dict``.

    Holds torch's CPU (and, when present, CUDA) generator, numpy's and Python's global generators and the own
    ``numpy.random.RandomState`` of every MONAI random transform in ``transforms`` (e.g. the training preprocessing:
    ``RandCropByPosNegLabeld`` draws from its inner cropper's ``R``, not from the global generators). Every value is a
    tensor or a plain number, so the checkpoint loads with ``torch.load(weights_only=True)``.

    Args:
        transforms: a ``Compose`` (nested ones are searched), a list of transforms, or None.
    """

    def __init__(self, transforms: Any = None) -> None:
        self.generators = _random_generators(transforms)

    def state_dict(self) -> dict:
        """The current states."""
        state = {
            "torch": torch.get_rng_state(),
            "numpy": _numpy_state(np.random.mtrand._rand),
            "python": _python_state(),
            "transforms": [_numpy_state(g) for g in self.generators],
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: Mapping) -> None:
        """Restore the states saved by :meth:`state_dict`.

        Raises:
            ValueError: the saved transform states do not match the number of random transforms.
        """
        if len(state["transforms"]) != len(self.generators):
            raise ValueError(
                f"the checkpoint holds {len(state['transforms'])} random-transform generators, the training "
                f"preprocessing has {len(self.generators)}: resume with the configuration that saved it"
            )
        torch.set_rng_state(state["torch"])
        _set_numpy_state(np.random.mtrand._rand, state["numpy"])
        _set_python_state(state["python"])
        for generator, saved in zip(self.generators, state["transforms"]):
            _set_numpy_state(generator, saved)
        if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])


class _BestMetric:
    """``best_metric`` / ``best_metric_epoch`` of a MONAI evaluator as a state dict."""

    def __init__(self, evaluator: Any) -> None:
        self.evaluator = evaluator

    def state_dict(self) -> dict:
        s = self.evaluator.state
        return {"best_metric": float(s.best_metric), "best_metric_epoch": int(s.best_metric_epoch)}

    def load_state_dict(self, state: Mapping) -> None:
        self.evaluator.state.best_metric = state["best_metric"]
        self.evaluator.state.best_metric_epoch = state["best_metric_epoch"]


def resume_path(resume: bool | str | os.PathLike | None, default: str | os.PathLike) -> Path | None:
    """The checkpoint a ``resume`` setting points to: ``None`` for false, ``default`` for true, else the given path.

    Raises:
        FileNotFoundError: resuming from a checkpoint that does not exist (the message names it).
    """
    if resume is None or resume is False or (isinstance(resume, str) and resume.strip().lower() in ("", "false")):
        return None
    path = Path(default) if resume is True or str(resume).strip().lower() == "true" else Path(resume)
    if not path.is_file():
        raise FileNotFoundError(
            f"cannot resume: no checkpoint {path}\n  a training writes it every `checkpoint_interval` epochs; start "
            "without --resume, or pass --resume <path of a checkpoint.pt>"
        )
    return path


class ResumableCheckpoint:
    """Save everything a training needs to continue, and continue from it.

    Every ``interval`` epochs (attach it after the ``ValidationHandler``, so the validation of that epoch is
    included) and when training completes, writes ``<save_dir>/<filename>`` atomically with::

        {**save_dict (network, optimizer, lr_scheduler, ...), "trainer": epoch/iteration,
         "validator": best metric and its epoch, "random": RandomStates(random_transforms)}

    refusing non-finite tensors (:class:`NonFiniteCheckpointError`). With ``resume`` (``True``: that file; a path:
    that checkpoint) the same objects are loaded (``torch.load(weights_only=True)``) when the trainer starts, so the
    run continues at the next epoch with the same weights, optimiser moments, best metric and random streams: on the
    CPU a killed and resumed training ends with exactly the weights of an uninterrupted one. ``max_epochs`` is the
    current configuration's (a resumed run may train longer). Under DDP only rank 0 writes; every rank loads the
    weights, rank 0 also its random states (the others keep their own seeds).

    Args:
        save_dir: folder of the checkpoint.
        save_dict: ``{name: object with state_dict/load_state_dict}``; the trainer is added as ``"trainer"``.
        interval: save every ``interval`` epochs; 0 or None: only when training completes.
        resume: False/None (start afresh), True (``<save_dir>/<filename>``) or a checkpoint path.
        validator: the evaluator whose ``best_metric``/``best_metric_epoch`` are kept, or None.
        random_transforms: the training preprocessing, whose random transforms' states are kept.
        filename: file name in ``save_dir``.
        map_location: ``torch.load`` map location.

    Raises:
        FileNotFoundError: (at construction) ``resume`` names a checkpoint that does not exist.
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        save_dict: Mapping[str, Any],
        interval: int | None = 1,
        resume: bool | str | os.PathLike | None = False,
        validator: Any = None,
        random_transforms: Any = None,
        filename: str = CHECKPOINT_FILE,
        map_location: Any = "cpu",
    ) -> None:
        self.path = Path(save_dir) / filename
        self.objects: dict[str, Any] = dict(save_dict)
        for reserved in ("trainer", "validator", "random"):
            if reserved in self.objects:
                raise ValueError(f"save_dict must not use the reserved key {reserved!r}")
        if validator is not None:
            self.objects["validator"] = _BestMetric(validator)
        self.objects["random"] = RandomStates(random_transforms)
        self.interval = int(interval or 0)
        self.resume_from = resume_path(resume, self.path)
        self.map_location = map_location
        self._saved_at: int | None = None
        self.saved_epoch: int | None = None  # epoch of the checkpoint this run saved or resumed from

    def attach(self, engine: Any) -> None:
        """Load at ``STARTED`` when resuming; save at ``EPOCH_COMPLETED(every=interval)`` and ``COMPLETED``."""
        self.objects["trainer"] = engine
        if self.resume_from is not None:
            engine.add_event_handler(Events.STARTED, self.load)
        if self.interval > 0:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self.save)
        engine.add_event_handler(Events.COMPLETED, self.save)

    def state(self) -> dict:
        """``{name: state_dict}`` of every object (network wrappers unwrapped)."""
        return {name: _unwrap(obj).state_dict() for name, obj in self.objects.items()}

    def save(self, engine: Any) -> None:
        """Write the checkpoint (rank 0 only)."""
        if idist.get_rank() != 0 or self._saved_at == engine.state.iteration:
            return
        atomic_torch_save(self.state(), self.path)
        self._saved_at = engine.state.iteration
        self.saved_epoch = int(engine.state.epoch)
        logger.info("saved the resumable checkpoint %s at epoch %d", self.path, engine.state.epoch)

    def load(self, engine: Any) -> None:
        """Restore every object from the resume checkpoint; ``engine.state.max_epochs`` keeps the current value.

        Raises:
            ValueError: the file is unreadable or lacks an entry (the message names the file and the entries).
        """
        path = self.resume_from
        try:
            checkpoint = torch.load(path, map_location=self.map_location, weights_only=True)
        except Exception as e:
            raise ValueError(f"cannot resume from {path}: {type(e).__name__}: {e}") from e
        missing = [k for k in self.objects if k not in checkpoint]
        if missing:
            raise ValueError(
                f"cannot resume from {path}: it has no {', '.join(missing)} (holds {', '.join(sorted(checkpoint))}); "
                "it is not a checkpoint.pt of this training"
            )
        max_epochs = engine.state.max_epochs
        for name, obj in self.objects.items():
            if name == "random" and idist.get_rank() != 0:
                continue
            _unwrap(obj).load_state_dict(checkpoint[name])
        if max_epochs is not None and engine.state.epoch > max_epochs:
            raise ValueError(
                f"cannot resume from {path}: it is at epoch {engine.state.epoch}, beyond max_epochs {max_epochs}"
            )
        engine.state.max_epochs = max_epochs
        self.saved_epoch = int(engine.state.epoch)
        logger.info("resumed from %s at epoch %d (iteration %d)", path, engine.state.epoch, engine.state.iteration)
