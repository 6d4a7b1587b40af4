"""Bundle inference that goes on after a bad input: per-file errors, atomic outputs, a summary and an exit code.

MONAI's ``SupervisedEvaluator`` over a ``Dataset`` stops at the first input it cannot read (earlier outputs left,
later files never processed) and writes each output straight to its final name. The two classes here keep the
bundle's ``inference.json`` and the user command (``python -m monai.bundle run --config_file .../inference.json``):

- :class:`GuardedDataset` loads and preprocesses each input on its own; an input that cannot be read, holds NaN/Inf
  or fails a transform becomes a failure record naming its file(s) instead of an exception;
- :class:`GuardedInferenceEvaluator` runs the network and the post-processing (whose ``SaveImaged`` write into a
  staging folder) case by case; a case is published (every output file ``os.replace``-d into ``output_dir``) only
  when all its outputs are written and finite, otherwise its staged files are deleted and the failure recorded. At
  the end it writes ``<output_dir>/inference_summary.json`` (written files and failures, atomically) and, when any
  input failed, raises a ``RuntimeError`` naming them, so the run exits non-zero after everything else is written.
  Its ``last_case`` (the latest input and its files or error) names each case in
  :class:`~monai_lexu.handlers.CaseProgress`'s per-case line, and the end of the run logs what was written where.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.data import Dataset
from monai.engines import SupervisedEvaluator

__all__ = [
    "FAILURE_KEY",
    "SOURCE_KEY",
    "SUMMARY_FILE",
    "GuardedDataset",
    "GuardedInferenceEvaluator",
    "describe_input_failure",
]

logger = logging.getLogger(__name__)

FAILURE_KEY = "inference_failure"
SOURCE_KEY = "inference_source"
SUMMARY_FILE = "inference_summary.json"


def _files(item: Mapping[str, Any]) -> dict[str, str]:
    """The input files of a datalist item: its string values, e.g. ``{"ct": ".../x__CT.nii.gz", "pet": ...}``."""
    return {str(k): str(v) for k, v in item.items() if isinstance(v, (str, os.PathLike))}


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def describe_input_failure(item: Mapping[str, Any], error: BaseException) -> str:
    """A one-line description of why the input ``item`` failed, naming the file at fault when it can be found.

    When ``error`` does not name one of the item's files, each file is read on its own (MONAI ``LoadImage``) to find
    the one that cannot be read or holds non-finite values.

    Args:
        item: the datalist item (``{key: path}``).
        error: the exception raised while loading or preprocessing it.

    Returns:
        e.g. ``"pet file /in/x__PT.nii.gz cannot be read: EOFError: Compressed file ended before ..."``.
    """
    files = _files(item)
    message = _first_line(error)
    if any(path in str(error) for path in files.values()):
        return message
    from monai.transforms import LoadImage

    for key, path in files.items():
        if not Path(path).exists():
            return f"{key} file {path} does not exist"
        try:
            image = torch.as_tensor(LoadImage(image_only=True)(path))
        except Exception as read_error:
            return f"{key} file {path} cannot be read: {_first_line(read_error)}"
        if image.is_floating_point() and not bool(torch.isfinite(image).all()):
            count = int((~torch.isfinite(image)).sum())
            return f"{key} file {path} holds {count} non-finite values (NaN/Inf)"
    shown = ", ".join(f"{k} {v}" for k, v in files.items())
    return f"{message} (input: {shown})"


def _nonfinite_keys(data: Any) -> list[str]:
    items = data if isinstance(data, list) else [data]
    bad = []
    for item in items:
        if isinstance(item, Mapping):
            for key, value in item.items():
                if isinstance(value, torch.Tensor) and value.is_floating_point():
                    if not bool(torch.isfinite(value).all()):
                        bad.append(str(key))
    return sorted(set(bad))


class GuardedDataset(Dataset):
    """A MONAI ``Dataset`` whose items never raise: a failed input becomes ``{FAILURE_KEY: why, SOURCE_KEY: files}``.

    Each successful item gets ``SOURCE_KEY`` too (its files as a JSON string), so the evaluator can name the case.
    With ``check_finite`` an item whose preprocessed tensors hold NaN/Inf is a failure (naming the file at fault,
    see :func:`describe_input_failure`): a non-finite input is refused rather than turned into NaN maps.

    Args:
        data: the datalist, ``[{key: path, ...}, ...]``.
        transform: the preprocessing.
        check_finite: refuse items with non-finite preprocessed tensors.
    """

    def __init__(self, data: Sequence, transform: Any = None, check_finite: bool = True) -> None:
        super().__init__(data=data, transform=transform)
        self.check_finite = check_finite

    def _transform(self, index: int) -> Any:
        item = self.data[index]
        source = json.dumps(_files(item))
        try:
            out = super()._transform(index)
            bad = _nonfinite_keys(out) if self.check_finite else []
            if bad:
                raise FloatingPointError(f"non-finite values after preprocessing in {', '.join(bad)}")
        except Exception as e:
            why = describe_input_failure(item, e)
            logger.error("skipping input %s: %s", source, why)
            return {FAILURE_KEY: why, SOURCE_KEY: source}
        if isinstance(out, Mapping):
            out = dict(out)
            out[SOURCE_KEY] = source
        return out


def _atomic_json(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


class GuardedInferenceEvaluator(SupervisedEvaluator):
    """``SupervisedEvaluator`` for bundle inference that skips failed inputs and publishes outputs atomically.

    Takes every argument of :class:`monai.engines.SupervisedEvaluator` plus the three below; the data loader must
    have ``batch_size=1`` over a :class:`GuardedDataset`. The post-processing's savers write into ``staging_dir``;
    after a case's network pass and post-processing succeeded and its outputs are finite, every file in
    ``staging_dir`` is moved into ``output_dir`` with ``os.replace`` (complete files only). A case that fails (read,
    non-finite input, network, post-processing, non-finite output) is logged, its staged files deleted, and the run
    goes on. ``run`` then writes ``<output_dir>/inference_summary.json``::

        {"num_inputs": 3, "num_written": 2, "num_failed": 1,
         "written": [{"input": {"ct": ..., "pet": ...}, "files": ["x__CT_label.nii.gz", ...]}, ...],
         "failed": [{"input": {...}, "error": "pet file ... cannot be read: EOFError: ..."}]}

    and, if any input failed and ``raise_on_failure``, raises ``RuntimeError`` naming the failed files.

    Args:
        output_dir: where the outputs and the summary go.
        staging_dir: where the savers write; default ``<output_dir>/.partial``; removed when empty at the end.
        raise_on_failure: raise at the end of the run when an input failed (non-zero exit of ``monai.bundle run``).
        args, kwargs: of ``SupervisedEvaluator``.

    Raises:
        ValueError: the data loader's batch size is not 1.
    """

    def __init__(
        self,
        *args: Any,
        output_dir: str | os.PathLike,
        staging_dir: str | os.PathLike | None = None,
        raise_on_failure: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        batch_size = getattr(self.data_loader, "batch_size", 1)
        if batch_size != 1:
            raise ValueError(f"GuardedInferenceEvaluator runs one input at a time; the data loader has {batch_size}")
        self.output_dir = Path(output_dir)
        self.staging_dir = Path(staging_dir) if staging_dir is not None else self.output_dir / ".partial"
        self.raise_on_failure = raise_on_failure
        self.written: list[dict] = []
        self.failed: list[dict] = []
        self.last_case: dict = {}  # the case of the latest iteration: {"input", "files"} or {"input", "error"}

    # ------------------------------------------------------------------ staging
    def _clear_staging(self) -> None:
        if self.staging_dir.exists():
            shutil.rmtree(self.staging_dir)

    def _publish(self) -> list[str]:
        names = []
        if self.staging_dir.exists():
            for path in sorted(p for p in self.staging_dir.rglob("*") if p.is_file()):
                rel = path.relative_to(self.staging_dir)
                dest = self.output_dir / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, dest)
                names.append(str(rel))
        self._clear_staging()
        return names

    def _fail(self, source: str, why: str) -> None:
        self.failed.append({"input": json.loads(source), "error": why})
        self.last_case = self.failed[-1]
        logger.error("inference failed for %s: %s", source, why)

    # ------------------------------------------------------------------ engine
    def _iteration(self, engine: Any, batchdata: dict) -> dict:
        sources = batchdata.get(SOURCE_KEY, ["{}"])
        source = sources[0] if isinstance(sources, (list, tuple)) else str(sources)
        if FAILURE_KEY in batchdata:
            why = batchdata[FAILURE_KEY]
            self._fail(source, why[0] if isinstance(why, (list, tuple)) else str(why))
            return {}
        self._clear_staging()
        try:
            output = super()._iteration(engine, batchdata)
            bad = _nonfinite_keys(output)
            if bad:
                raise FloatingPointError(f"non-finite values in the network output ({', '.join(bad)})")
            files = self._publish()
        except Exception as e:
            self._clear_staging()
            self._fail(source, _first_line(e))
            return {}
        self.written.append({"input": json.loads(source), "files": files})
        self.last_case = self.written[-1]
        return output

    def log_written(self, max_lines: int = 20) -> None:
        """Log what was written where: the output folder, then one line per input with its files (the first
        ``max_lines`` inputs; the full list is in the summary file)."""
        if not self.written:
            return
        lines = [
            f"  {Path(next(iter(w['input'].values()), '?')).name}: {', '.join(w['files'])}"
            for w in self.written[:max_lines]
        ]
        if len(self.written) > max_lines:
            lines.append(f"  ... and {len(self.written) - max_lines} more inputs (all in {SUMMARY_FILE})")
        logger.info("inference wrote into %s:\n%s", self.output_dir, "\n".join(lines))

    def run(self, *args: Any, **kwargs: Any) -> None:
        """Run over every input, write the summary, raise if any input failed.

        Raises:
            RuntimeError: (with ``raise_on_failure``) some inputs failed; the message names them and the summary.
        """
        self.written, self.failed, self.last_case = [], [], {}
        self._clear_staging()
        try:
            super().run(*args, **kwargs)
        finally:
            self._clear_staging()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        summary_path = self.output_dir / SUMMARY_FILE
        total = len(self.written) + len(self.failed)
        summary = {
            "output_dir": str(self.output_dir),
            "num_inputs": total,
            "num_written": len(self.written),
            "num_failed": len(self.failed),
            "written": self.written,
            "failed": self.failed,
        }
        _atomic_json(summary, summary_path)
        logger.info(
            "inference: %d of %d inputs written, %d failed; summary %s",
            len(self.written),
            total,
            len(self.failed),
            summary_path,
        )
        self.log_written()
        if self.failed and self.raise_on_failure:
            lines = "\n".join(f"  {f['error']}" for f in self.failed)
            raise RuntimeError(
                f"{len(self.failed)} of {total} inputs failed (the other {len(self.written)} were written to "
                f"{self.output_dir}):\n{lines}\nsee {summary_path}"
            )
