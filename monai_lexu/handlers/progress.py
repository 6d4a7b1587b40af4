"""What a bundle run is about to cost and how far it is: a start-up summary, an ETA in the training log, per-case lines.

Three ignite handlers, attached like MONAI's (``attach(engine)``), wired into the bundles' configs:

- :class:`RunSummary`: logs once, when the engine starts, what the run does (device, cores and loader workers, data
  folder and whether it is synthetic, cases per split, recipe/patch, epochs x steps per epoch = total steps, the
  command-line overrides); warns when the GPU recipe runs on a CPU (expected duration, from a measured per-step
  figure at once and from the first steps of this run, and the exact command with the CPU override) and when the data
  set's volumes are smaller than the training patch (naming the cases and shapes).
- :class:`TrainingProgress`: every N iterations (and at least every ``max_silence`` seconds) one line
  ``training: epoch 3/100, iteration 9/300, loss 1.0476 (dgm 0.0461, seg 0.9323), 0.52 s/it, ETA 0:02:31``; one
  line per validation with its duration; a final line with the totals.
- :class:`CaseProgress`: one line per case of an evaluation or inference run, ``evaluation: case 2/3 SYN-005 done
  (4.1 s; ETA 0:00:04)``, and at the end the totals and the files written into ``output_dir``.

Everything goes to the ``monai_lexu.handlers.progress`` logger (INFO; warnings at WARNING).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.utils import IgniteInfo, min_version, optional_import

from monai_lexu.data.runtime import available_cores, synthetic_marker
from monai_lexu.handlers.command import bundle_command, running_bundle_args
from monai_lexu.handlers.nonfinite import batch_case_ids

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")

__all__ = [
    "CaseProgress",
    "RunSummary",
    "TrainingProgress",
    "format_duration",
    "volumes_smaller_than_patch",
]

logger = logging.getLogger(__name__)

CPU_RECIPES = ("cpu", "cpu_small")


def format_duration(seconds: float | None) -> str:
    """``H:MM:SS`` (``"?"`` for None or a non-finite value); ``"1 day, 2:03:04"`` beyond 24 h."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(max(0.0, seconds)))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days} day{'s' if days > 1 else ''}, {text}" if days else text


def _about(seconds: float) -> str:
    """A rough human duration: ``about 9.4 hours``, ``about 35 minutes``, ``about 40 seconds``."""
    if seconds >= 5400:
        return f"about {seconds / 3600:.1f} hours"
    if seconds >= 90:
        return f"about {seconds / 60:.0f} minutes"
    return f"about {seconds:.0f} seconds"


def _dims(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


def _image_paths(item: Mapping[str, Any], key: str) -> list[str]:
    value = item.get(key)
    if isinstance(value, (str, os.PathLike)):
        return [str(value)]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if isinstance(v, (str, os.PathLike))]
    return []


def volumes_smaller_than_patch(
    data: Sequence[Mapping[str, Any]], patch_size: Sequence[int], image_key: str = "image", id_key: str = "id"
) -> list[tuple[str, tuple[int, ...]]]:
    """The cases whose image volume is smaller than ``patch_size`` along some axis (read from the NIfTI headers).

    Args:
        data: datalist items with ``image_key`` (one path or a list of channel paths; the first is read).
        patch_size: the spatial patch, e.g. ``(96, 96, 96)``.
        image_key: key of the image path(s).
        id_key: key of the case id (the file name is used when absent).

    Returns:
        ``[(case, spatial shape), ...]`` in datalist order; files that are not NIfTI are skipped.
    """
    import nibabel as nib

    smaller = []
    for item in data:
        paths = _image_paths(item, image_key)
        if not paths or not paths[0].endswith((".nii", ".nii.gz")) or not Path(paths[0]).is_file():
            continue
        shape = tuple(int(s) for s in nib.load(paths[0]).shape[: len(patch_size)])
        if len(shape) == len(patch_size) and any(s < p for s, p in zip(shape, patch_size)):
            smaller.append((str(item.get(id_key) or Path(paths[0]).name), shape))
    return smaller


def _device_type(device: Any) -> str:
    return str(getattr(device, "type", device or "cpu")).split(":")[0]


class RunSummary:
    """Log once at the start of a run what it is about to do and cost; warn about a GPU recipe on a CPU.

    Attach to the trainer (training) or the evaluator (evaluation, inference). At ``Events.STARTED`` it logs::

        lexu_hecktor training: start-up summary
          device       cpu (2 cores for this process, 1 torch thread; 2 loader workers)
          data         /.../data/hecktor: SYNTHETIC (raw/SYNTHETIC_DATA.txt), not real patients
          cases        6 training, 3 validation (fold 0 of 3)
          recipe       gpu: patch 96x96x96, features [32, 64, 128, 256, 320]
          schedule     300 epochs x 3 steps = 900 steps; validation every 10 epochs (3 cases)
          command      python -m monai.bundle run --config_file "['bundles/lexu_hecktor/configs/train.json']"

    and, when ``compute_recipe`` is not a CPU recipe and the device is a CPU, a WARNING with the expected duration
    (``cpu_seconds_per_step`` x steps, a measured figure) and the command with ``cpu_config`` added; after
    ``estimate_after`` steps of this run it logs the estimate measured on this machine. When ``data`` and
    ``patch_size`` are given, volumes smaller than the patch are a WARNING naming them (the patch is zero-padded,
    so such steps cost a full patch and learn mostly padding).

    Args:
        mode: ``"training"``, ``"evaluation"`` or ``"inference"`` (the word in the log; "steps" vs "cases").
        bundle: the bundle name.
        device: the run's device (default: ``engine.state.device``).
        dataset_dir: the data set folder or its ``datalist.json``; checked for the synthetic marker.
        splits: ``{"training": 6, "validation": 3}``, cases per split.
        recipe: a short description of the recipe (patch, features, ...), shown after ``compute_recipe``.
        compute_recipe: ``"gpu"`` (the full configs) or ``"cpu_small"`` (``configs/cpu_small.json``).
        cpu_config: the CPU override file whose command the warning prints.
        cpu_seconds_per_step: a measured seconds per step (training iteration or case) of this recipe on a CPU.
        validator: the training's evaluator (number of validation cases), or None.
        val_interval: validation every this many epochs, or None.
        data: datalist items checked against ``patch_size``, or None.
        patch_size: the training/sliding-window patch, or None.
        synthetic: whether the data are synthetic; None: look for the marker in ``dataset_dir``.
        details: more ``{label: text}`` lines (e.g. ``{"fold": "0 of 3"}``).
        estimate_after: steps after which the measured estimate is logged (GPU recipe on a CPU only).
    """

    def __init__(
        self,
        mode: str = "training",
        bundle: str = "",
        device: Any = None,
        dataset_dir: str | os.PathLike | None = None,
        splits: Mapping[str, int] | None = None,
        recipe: str | None = None,
        compute_recipe: str = "gpu",
        cpu_config: str | os.PathLike | None = None,
        cpu_seconds_per_step: float | None = None,
        validator: Any = None,
        val_interval: int | None = None,
        data: Sequence[Mapping[str, Any]] | None = None,
        patch_size: Sequence[int] | None = None,
        synthetic: bool | None = None,
        details: Mapping[str, Any] | None = None,
        estimate_after: int = 3,
    ) -> None:
        self.mode = mode
        self.bundle = bundle
        self.device = device
        self.dataset_dir = dataset_dir
        self.splits = dict(splits or {})
        self.recipe = recipe
        self.compute_recipe = str(compute_recipe)
        self.cpu_config = cpu_config
        self.cpu_seconds_per_step = cpu_seconds_per_step
        self.validator = validator
        self.val_interval = val_interval
        self.data = data
        self.patch_size = list(patch_size) if patch_size is not None else None
        self.synthetic = synthetic
        self.details = dict(details or {})
        self.estimate_after = max(2, int(estimate_after))
        self.lines: list[str] = []
        self._first_step_done: float | None = None
        self._first_step_iteration = 0

    # ------------------------------------------------------------------ content
    @property
    def unit(self) -> str:
        return "steps" if self.mode == "training" else "cases"

    def gpu_recipe_on_cpu(self, engine: Any = None) -> bool:
        """Whether the GPU recipe runs on a CPU."""
        device = self.device if self.device is not None else getattr(getattr(engine, "state", None), "device", None)
        return _device_type(device) == "cpu" and self.compute_recipe.lower() not in CPU_RECIPES

    def _data_line(self) -> str:
        if self.dataset_dir is None:
            return "not given"
        folder = Path(self.dataset_dir)
        folder = folder.parent if folder.suffix == ".json" else folder
        marker = synthetic_marker(folder)
        synthetic = self.synthetic if self.synthetic is not None else marker is not None
        if synthetic:
            note = f" ({marker})" if marker is not None else ""
            return f"{folder}: SYNTHETIC{note}, results on it say nothing about real patients"
        return f"{folder}: no synthetic-data marker (real data)"

    def _steps(self, engine: Any) -> tuple[int, int, int]:
        epochs = int(getattr(engine.state, "max_epochs", 1) or 1)
        per_epoch = int(getattr(engine.state, "epoch_length", 0) or 0)
        return epochs, per_epoch, epochs * per_epoch

    def summary_lines(self, engine: Any) -> list[str]:
        """The lines of the start-up summary (without the title)."""
        device = self.device if self.device is not None else getattr(engine.state, "device", None)
        workers = getattr(getattr(engine, "data_loader", None), "num_workers", None)
        workers_text = f"; {workers} loader workers" if workers is not None else ""
        import torch

        threads = torch.get_num_threads()
        lines = [
            f"device       {device} ({available_cores()} cores for this process, {threads} torch "
            f"thread{'s' if threads != 1 else ''}{workers_text})"
        ]
        lines.append(f"data         {self._data_line()}")
        if self.splits:
            cases = ", ".join(f"{n} {name}" for name, n in self.splits.items())
            lines.append(f"cases        {cases}")
        for label, text in self.details.items():
            lines.append(f"{label:<12} {text}")
        recipe = self.compute_recipe
        if self.patch_size is not None:
            recipe += f": patch {_dims(self.patch_size)}"
        if self.recipe:
            recipe += (", " if self.patch_size is not None else ": ") + str(self.recipe)
        lines.append(f"recipe       {recipe}")
        epochs, per_epoch, total = self._steps(engine)
        if self.mode == "training":
            schedule = f"{epochs} epoch{'s' if epochs != 1 else ''} x {per_epoch} steps = {total} steps"
            if engine.state.iteration:
                schedule += f" (resumed at epoch {engine.state.epoch}, {total - engine.state.iteration} to go)"
            if self.val_interval:
                every = "every epoch" if int(self.val_interval) == 1 else f"every {self.val_interval} epochs"
                schedule += f"; validation {every}"
                dataset = getattr(getattr(self.validator, "data_loader", None), "dataset", None)
                if dataset is not None:
                    schedule += f" ({len(dataset)} cases)"
        else:
            batch = getattr(getattr(engine, "data_loader", None), "batch_size", 1) or 1
            schedule = f"{per_epoch} cases, one line each" if batch == 1 else f"{per_epoch} batches of {batch}"
        lines.append(f"schedule     {schedule}")
        files, overrides = running_bundle_args()
        if files:
            shown = " + ".join(Path(f).name for f in files)
            if overrides:
                shown += "; overrides " + " ".join(f"--{k} {v}" for k, v in overrides.items())
            lines.append(f"configs      {shown}")
        return lines

    # ------------------------------------------------------------------ events
    def attach(self, engine: Any) -> None:
        """Log at ``STARTED``; with the GPU recipe on a CPU, also measure the first ``estimate_after`` steps."""
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)

    def started(self, engine: Any) -> None:
        """Log the summary and the warnings."""
        title = f"{self.bundle} {self.mode}".strip()
        self.lines = self.summary_lines(engine)
        logger.info("%s: start-up summary\n  %s", title, "\n  ".join(self.lines))
        if self.data is not None and self.patch_size is not None:
            self.check_patch()
        if self.gpu_recipe_on_cpu(engine):
            logger.warning(self.gpu_on_cpu_message(engine, self.cpu_seconds_per_step, measured=False))
        self._first_step_done = None
        self._first_step_iteration = engine.state.iteration

    def check_patch(self) -> list[tuple[str, tuple[int, ...]]]:
        """Warn (once, naming the cases) when volumes of ``data`` are smaller than ``patch_size``."""
        smaller = volumes_smaller_than_patch(self.data or [], self.patch_size or [])
        if smaller:
            patch = self.patch_size or []
            largest = max(smaller, key=lambda s: math.prod(min(a, b) for a, b in zip(s[1], patch)))
            padding = 1.0 - math.prod(min(a, b) for a, b in zip(largest[1], patch)) / math.prod(patch)
            shown = ", ".join(f"{case} {_dims(shape)}" for case, shape in smaller[:4])
            more = f", ... ({len(smaller) - 4} more)" if len(smaller) > 4 else ""
            hint = f"; the CPU recipe {Path(self.cpu_config).name} fits them" if self.cpu_config else ""
            logger.warning(
                "%d of %d volumes are smaller than the patch %s (%s%s): every patch is zero-padded to %s, so at "
                "least %.0f%% of each step is padding and costs as much as real voxels. Use a patch that fits "
                "(--patch_size)%s.",
                len(smaller),
                len(self.data or []),
                _dims(patch),
                shown,
                more,
                _dims(patch),
                100 * padding,
                hint,
            )
        return smaller

    def gpu_on_cpu_message(self, engine: Any, seconds_per_step: float | None, measured: bool) -> str:
        """The warning about the GPU recipe on a CPU: expected duration and the command with the CPU override."""
        _, _, total = self._steps(engine)
        remaining = max(0, total - int(engine.state.iteration or 0))
        if seconds_per_step:
            source = "measured on this machine" if measured else "measured on a 2-core CPU"
            cost = (
                f"{seconds_per_step:.1f} s per {self.unit[:-1]} ({source}) x {remaining} {self.unit} = "
                f"{_about(seconds_per_step * remaining)}"
            )
            if self.mode == "training" and self.val_interval:
                cost += " plus validations"
        else:
            cost = f"{remaining} {self.unit} at an unmeasured cost"
        command = ""
        if self.cpu_config:
            command = f"; for a CPU-sized run use: {bundle_command(add_files=[str(self.cpu_config)])}"
        return f"the GPU recipe is running on a CPU: {cost}{command}"

    def iteration_completed(self, engine: Any) -> None:
        """After ``estimate_after`` steps of a GPU recipe on a CPU, log the duration measured on this machine."""
        done = engine.state.iteration - self._first_step_iteration
        if done == 1:
            self._first_step_done = time.perf_counter()
        elif done == self.estimate_after and self._first_step_done is not None and self.gpu_recipe_on_cpu(engine):
            per_step = (time.perf_counter() - self._first_step_done) / (done - 1)
            logger.warning(self.gpu_on_cpu_message(engine, per_step, measured=True))


class _Clock:
    """Seconds per step from the steps completed so far, leaving out validation time."""

    def __init__(self) -> None:
        self.reset(0)

    def reset(self, iteration: int) -> None:
        self.started = time.perf_counter()
        self.first_done: float | None = None
        self.first_iteration = iteration
        self.excluded = 0.0

    def per_step(self, iteration: int, now: float) -> float | None:
        """Mean seconds per step after the first (worker start-up) step; the first step's time before that."""
        done = iteration - self.first_iteration
        if done <= 0:
            return None
        if done == 1 or self.first_done is None:
            return now - self.started - self.excluded
        return (now - self.first_done - self.excluded) / (done - 1)


class TrainingProgress:
    """An ETA in the training log: every ``every`` iterations (and at least every ``max_silence`` s) one line.

    The line (also at the first iteration of the run and its last)::

        training: epoch 3/100, iteration 9/300, loss 1.0476 (dgm 0.0461, seg 0.9323), 0.52 s/it, ETA 0:02:31

    where the ETA is the remaining iterations x the mean seconds per iteration (validation time left out) plus the
    remaining validations x the mean measured validation time (``+ N validations`` while none has been timed).
    After each validation: ``validation at epoch 25: 3 cases in 0:00:12``. At the end: the totals.

    Args:
        every: log every this many iterations; 0: about 20 lines per run (``max(1, total // 20)``).
        max_silence: log at the next iteration when this many seconds passed since the last line.
        output_transform: ``engine.state.output`` -> ``{"loss": x, term: y, ...}`` (e.g.
            :func:`monai_lexu.handlers.loss_terms_output`); None: no loss in the line.
        validator: the evaluator run by the ``ValidationHandler`` (its duration is measured), or None.
        val_interval: validation every this many epochs (for the ETA), or None.
        name: the first word of the lines.
    """

    def __init__(
        self,
        every: int = 0,
        max_silence: float = 60.0,
        output_transform: Callable[[Any], Mapping[str, float]] | None = None,
        validator: Any = None,
        val_interval: int | None = None,
        name: str = "training",
    ) -> None:
        self.every = int(every or 0)
        self.max_silence = float(max_silence)
        self.output_transform = output_transform
        self.validator = validator
        self.val_interval = int(val_interval) if val_interval else None
        self.name = name
        self.clock = _Clock()
        self.validation_times: list[float] = []
        self._val_started: float | None = None
        self._last_line = 0.0
        self.last_message = ""

    def attach(self, engine: Any) -> None:
        """Register on the trainer (and the validator's ``STARTED``/``COMPLETED``)."""
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.COMPLETED, self.completed)
        if self.validator is not None:
            self.validator.add_event_handler(Events.STARTED, self._validation_started)
            self.validator.add_event_handler(Events.COMPLETED, self._validation_completed)

    def started(self, engine: Any) -> None:
        self.clock.reset(engine.state.iteration)
        self.validation_times = []
        self._last_line = time.perf_counter()
        self._trainer = engine

    def _validation_started(self, _: Any) -> None:
        self._val_started = time.perf_counter()

    def _validation_completed(self, validator: Any) -> None:
        if self._val_started is None:
            return
        took = time.perf_counter() - self._val_started
        self._val_started = None
        self.validation_times.append(took)
        self.clock.excluded += took
        trainer = getattr(self, "_trainer", None)
        epoch = trainer.state.epoch if trainer is not None else validator.state.epoch
        dataset = getattr(getattr(validator, "data_loader", None), "dataset", None)
        cases = f"{len(dataset)} cases" if dataset is not None else f"{validator.state.epoch_length} batches"
        logger.info("validation at epoch %d: %s in %s", epoch, cases, format_duration(took))
        self._last_line = time.perf_counter()

    def remaining_validations(self, engine: Any) -> int:
        """Validations still to run after the current iteration."""
        if not self.val_interval or self.validator is None:
            return 0
        # at ITERATION_COMPLETED the current epoch's validation (at EPOCH_COMPLETED) is still to come
        epoch, max_epochs = max(1, engine.state.epoch), engine.state.max_epochs
        return sum(1 for e in range(epoch, max_epochs + 1) if e % self.val_interval == 0)

    def eta(self, engine: Any, now: float | None = None) -> tuple[float | None, float | None, int]:
        """``(seconds per iteration, ETA seconds, validations not yet timed)``."""
        now = time.perf_counter() if now is None else now
        per_step = self.clock.per_step(engine.state.iteration, now)
        total = engine.state.max_epochs * (engine.state.epoch_length or 0)
        remaining = max(0, total - engine.state.iteration)
        if per_step is None:
            return None, None, 0
        eta = remaining * per_step
        validations = self.remaining_validations(engine)
        if validations and self.validation_times:
            eta += validations * sum(self.validation_times) / len(self.validation_times)
            validations = 0
        return per_step, eta, validations

    def message(self, engine: Any) -> str:
        """The progress line for the engine's current state."""
        s = engine.state
        total = s.max_epochs * (s.epoch_length or 0)
        parts = [f"{self.name}: epoch {s.epoch}/{s.max_epochs}, iteration {s.iteration}/{total}"]
        if self.output_transform is not None and s.output is not None:
            try:
                terms = dict(self.output_transform(s.output))
            except Exception:  # the line must never stop a training
                terms = {}
            if "loss" in terms:
                rest = ", ".join(f"{k} {v:.4f}" for k, v in terms.items() if k != "loss")
                parts.append(f"loss {terms['loss']:.4f}" + (f" ({rest})" if rest else ""))
        per_step, eta, untimed = self.eta(engine)
        if per_step is not None:
            parts.append(f"{per_step:.2f} s/it")
            more = f" + {untimed} validation{'s' if untimed > 1 else ''}" if untimed else ""
            parts.append(f"ETA {format_duration(eta)}{more}")
        return ", ".join(parts)

    def should_log(self, engine: Any) -> bool:
        s = engine.state
        total = s.max_epochs * (s.epoch_length or 0)
        every = self.every or max(1, total // 20)
        done = s.iteration - self.clock.first_iteration
        return (
            done == 1
            or s.iteration % every == 0
            or s.iteration >= total
            or time.perf_counter() - self._last_line >= self.max_silence
        )

    def iteration_completed(self, engine: Any) -> None:
        now = time.perf_counter()
        if engine.state.iteration - self.clock.first_iteration == 1:
            self.clock.first_done = now
        if self.should_log(engine):
            self.last_message = self.message(engine)
            logger.info(self.last_message)
            self._last_line = time.perf_counter()

    def completed(self, engine: Any) -> None:
        took = time.perf_counter() - self.clock.started
        steps = engine.state.iteration - self.clock.first_iteration
        val = ""
        if self.validation_times:
            n = len(self.validation_times)
            val = f", {n} validation{'s' if n != 1 else ''} {format_duration(sum(self.validation_times))}"
        logger.info(
            "%s finished: %d iterations in %s (%.2f s/it%s)",
            self.name,
            steps,
            format_duration(took),
            (took - sum(self.validation_times)) / max(1, steps),
            val,
        )


def _item_id(item: Any) -> str | None:
    if not isinstance(item, Mapping):
        return None
    if item.get("id") is not None:
        value = item["id"]
        return str(value[0] if isinstance(value, (list, tuple)) and value else value)
    meta = getattr(item.get("image"), "meta", None) or item.get("image_meta_dict") or {}
    name = meta.get("filename_or_obj") if isinstance(meta, Mapping) else None
    if isinstance(name, (list, tuple)):
        name = name[0] if name else None
    return Path(str(name)).name if name else None


def case_label(engine: Any) -> str:
    """The case of the engine's current iteration and what became of it.

    ``engine.last_case`` of :class:`~monai_lexu.engines.GuardedInferenceEvaluator` gives ``"x__CT.nii.gz: 3 files
    written"`` or ``"x__CT.nii.gz: FAILED (why)"``; otherwise the case ids of ``engine.state.batch`` (collated or
    decollated: ``id``, else the image file name) give ``"SYN-005 done"``.
    """
    last = getattr(engine, "last_case", None)
    if isinstance(last, Mapping) and last:
        inputs = last.get("input") or {}
        first = next(iter(inputs.values()), "?") if isinstance(inputs, Mapping) else str(inputs)
        name = Path(str(first)).name
        if "error" in last:
            return f"{name}: FAILED ({last['error']})"
        return f"{name}: {len(last.get('files') or [])} files written"
    batch = engine.state.batch
    if isinstance(batch, (list, tuple)):
        ids = list(dict.fromkeys(i for i in (_item_id(item) for item in batch) if i))
    else:
        ids = batch_case_ids(batch)
        ids = [Path(i).name if os.sep in i else i for i in ids]
    shown = ", ".join(ids[:3]) + (f" (+{len(ids) - 3} more)" if len(ids) > 3 else "")
    return f"{shown or '?'} done"


class CaseProgress:
    """One line per case of an evaluation or inference run, with an ETA, and what was written at the end.

    Lines::

        evaluation: case 2/3 SYN-005 done (4.1 s; ETA 0:00:04)
        inference: case 2/9 SYN-002__CT.nii.gz: 3 files written (4.7 s; ETA 0:00:44)
        evaluation: 3 cases in 0:00:12 (4.1 s/case)
        evaluation wrote 8 files to /.../eval: metrics_fold0.json, metrics_fold0_summary.md, ...

    Args:
        name: the first word of the lines (``"evaluation"``, ``"inference"``).
        output_dir: at the end (``COMPLETED``; attach after the handlers that write) list the files written into
            it, recursively, changed since the run started; None: no list (e.g. inference, whose evaluator lists
            its outputs itself).
        max_listed: list at most this many files (then ``... (N more)``).
    """

    def __init__(self, name: str = "evaluation", output_dir: str | os.PathLike | None = None, max_listed: int = 12):
        self.name = name
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.max_listed = max_listed
        self.clock = _Clock()
        self._wall_start = time.time()
        self._previous = self.clock.started

    def attach(self, engine: Any) -> None:
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def started(self, engine: Any) -> None:
        self.clock.reset(engine.state.iteration)
        self._wall_start = time.time()
        self._previous = self.clock.started

    def message(self, engine: Any, now: float | None = None) -> str:
        now = time.perf_counter() if now is None else now
        s = engine.state
        total = s.epoch_length or 0
        done = s.iteration - self.clock.first_iteration
        took = now - self._previous
        elapsed = now - self.clock.started
        eta = elapsed / done * max(0, total - done) if done else None
        unit = "batch" if (getattr(getattr(engine, "data_loader", None), "batch_size", 1) or 1) > 1 else "case"
        return f"{self.name}: {unit} {done}/{total} {case_label(engine)} ({took:.1f} s; ETA {format_duration(eta)})"

    def iteration_completed(self, engine: Any) -> None:
        now = time.perf_counter()
        logger.info(self.message(engine, now))
        self._previous = now

    def written_files(self) -> list[Path]:
        """Files under ``output_dir`` changed since the run started, sorted."""
        if self.output_dir is None or not self.output_dir.is_dir():
            return []
        start = self._wall_start - 1.0
        return sorted(
            p
            for p in self.output_dir.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(self.output_dir).parts)
            and p.stat().st_mtime >= start
        )

    def completed(self, engine: Any) -> None:
        took = time.perf_counter() - self.clock.started
        done = engine.state.iteration - self.clock.first_iteration
        logger.info("%s: %d cases in %s (%.1f s/case)", self.name, done, format_duration(took), took / max(1, done))
        self.log_written()

    def log_written(self) -> list[Path]:
        """Log the files written into ``output_dir`` since the run started (call after the last writer ran)."""
        files = self.written_files()
        if files and self.output_dir is not None:
            shown = ", ".join(p.relative_to(self.output_dir).as_posix() for p in files[: self.max_listed])
            more = f", ... ({len(files) - self.max_listed} more)" if len(files) > self.max_listed else ""
            logger.info("%s wrote %d files to %s: %s%s", self.name, len(files), self.output_dir, shown, more)
        return files
