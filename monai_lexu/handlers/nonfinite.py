"""Stop training at the first non-finite loss, naming the cases of the batch that produced it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from monai.utils import IgniteInfo, min_version, optional_import

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
idist, _ = optional_import("ignite.distributed", IgniteInfo.OPT_IMPORT_VERSION, min_version)

__all__ = ["StopOnNonFiniteLoss", "batch_case_ids", "nonfinite_cases"]

logger = logging.getLogger(__name__)


def _loss_of(output: Any) -> Any:
    """The ``"loss"`` entry of a trainer output (a dict, or a list of dicts when decollated)."""
    first = output[0] if isinstance(output, list) else output
    return first["loss"]


def batch_case_ids(batch: Any, id_key: str = "id") -> list[str]:
    """The case ids of a collated batch, in batch order, each once (``RandCropByPosNegLabeld`` repeats a case).

    Args:
        batch: the collated batch dict (``engine.state.batch``).
        id_key: key of the case id (a list of strings after collation).

    Returns:
        the ids, or the source file names of ``image`` when the batch has no ids, or ``[]``.
    """
    ids: Sequence[Any] = []
    if isinstance(batch, Mapping) and id_key in batch:
        ids = batch[id_key]
        ids = [ids] if isinstance(ids, str) else list(ids)
    elif isinstance(batch, Mapping) and hasattr(batch.get("image"), "meta"):
        ids = batch["image"].meta.get("filename_or_obj", [])
        ids = [ids] if isinstance(ids, str) else list(ids)
    return list(dict.fromkeys(str(i) for i in ids))


def nonfinite_cases(batch: Any, keys: Sequence[str] = ("image",), id_key: str = "id") -> list[str]:
    """The ids of the batch items whose ``keys`` tensors hold NaN or Inf (first dimension = batch).

    Args:
        batch: the collated batch dict.
        keys: the input keys checked.
        id_key: key of the case ids.

    Returns:
        the ids (each once, batch order) of the items with non-finite inputs; ``[]`` if all are finite.
    """
    if not isinstance(batch, Mapping):
        return []
    raw_ids = batch.get(id_key)
    raw_ids = [raw_ids] if isinstance(raw_ids, str) else list(raw_ids) if raw_ids is not None else []
    bad: list[str] = []
    for key in keys:
        value = batch.get(key)
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.ndim == 0:
            continue
        finite = torch.isfinite(value.detach()).reshape(value.shape[0], -1).all(dim=1)
        for index in torch.nonzero(~finite).flatten().tolist():
            bad.append(str(raw_ids[index]) if index < len(raw_ids) else f"batch item {index}")
    return list(dict.fromkeys(bad))


class StopOnNonFiniteLoss:
    """Ignite handler: stop training with a ``FloatingPointError`` at the first NaN/Inf loss, naming the batch's cases.

    Checked at every ``ITERATION_COMPLETED``; attach it first in ``train#handlers`` so that no later handler (logging,
    validation, checkpoints) sees the iteration. The error names the epoch, the iteration, the loss, the case ids of
    the batch (its ``id`` entries) and, among them, those whose input (``image``) holds non-finite values::

        non-finite loss nan at epoch 1, iteration 3; batch cases: case_04, case_07; non-finite input in: case_07

    Ignite's ``TerminateOnNan`` stops the run too, but quietly (a warning, exit code 0, the final checkpoint still
    written) and without naming the cases. The optimiser step of that iteration has already run, so the weights in
    memory may be non-finite: the savers of the bundles (:class:`monai_lexu.handlers.FiniteCheckpointSaver`,
    :class:`monai_lexu.handlers.ResumableCheckpoint`) refuse to write them. Under DDP every rank checks its own
    loss and all ranks stop together (one all-reduce of a flag per iteration).

    Args:
        output_transform: ``engine.state.output`` -> the loss (a tensor or number); default the ``"loss"`` entry.
        id_key: key of the case ids in the batch.
        input_keys: batch keys searched for non-finite values when the loss is non-finite.
    """

    def __init__(
        self,
        output_transform: Callable[[Any], Any] | None = None,
        id_key: str = "id",
        input_keys: Sequence[str] = ("image",),
    ) -> None:
        self.output_transform = output_transform or _loss_of
        self.id_key = id_key
        self.input_keys = tuple(input_keys)

    def attach(self, engine: Any) -> None:
        """Register :meth:`__call__` at ``ITERATION_COMPLETED`` of ``engine`` (a MONAI trainer)."""
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Any) -> None:
        """Check the loss of the last iteration.

        Raises:
            FloatingPointError: the loss is NaN or infinite (on any rank).
        """
        loss = self.output_transform(engine.state.output)
        value = torch.as_tensor(loss.detach() if isinstance(loss, torch.Tensor) else loss, dtype=torch.float64)
        finite = bool(torch.isfinite(value).all())
        world = idist.get_world_size()
        if world > 1:  # every rank stops, not only the one that saw the bad batch
            flag = idist.all_reduce(torch.tensor(0.0 if finite else 1.0, device=idist.device()), op="MAX")
            if float(flag) == 0.0:
                return
        elif finite:
            return
        ids = batch_case_ids(engine.state.batch, self.id_key)
        bad = nonfinite_cases(engine.state.batch, self.input_keys, self.id_key)
        where = f" on rank {idist.get_rank()} of {world}" if world > 1 else ""
        shown = value.flatten()[0].item() if value.numel() else value
        msg = (
            f"non-finite loss {shown}{where} at epoch {engine.state.epoch}, iteration {engine.state.iteration}; "
            f"batch cases: {', '.join(ids) or '(no ids in the batch)'}"
        )
        if bad:
            msg += f"; non-finite input in: {', '.join(bad)}"
        elif not finite:
            msg += "; the inputs are finite (diverged training: lower the learning rate or check the labels)"
        else:
            msg += "; stopped because another rank saw a non-finite loss"
        msg += ". Training stopped, no checkpoint written for this iteration."
        logger.error(msg)
        raise FloatingPointError(msg)
