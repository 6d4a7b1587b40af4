"""Batch preparation for MONAI engines with multi-rater targets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.engines.utils import PrepareBatch

__all__ = ["PrepareMultiRaterBatch", "MULTI_RATER_KEYS"]

MULTI_RATER_KEYS = ("raters", "rater_valid", "soft_label", "rater_var")


class PrepareMultiRaterBatch(PrepareBatch):
    """``prepare_batch`` for ``SupervisedTrainer``/``SupervisedEvaluator`` returning ``(image, target_dict)``.

    MONAI's ``SupervisedTrainer`` calls ``prepare_batch(batchdata, device, non_blocking, **to_kwargs)``, stores the
    two results as ``engine.state.output["image"]`` / ``["label"]``, computes
    ``pred = inferer(image, network)`` and then ``loss = loss_function(pred, target).mean()``. With this class
    ``target`` is a dict ``{"raters": (B, R, L, *S), "rater_valid": (B, R), "soft_label": (B, L, *S),
    "rater_var": (B, L, *S)}`` (only the keys present in the batch), which is exactly what
    :class:`monai_lexu.losses.LEXULoss` expects. Consequently ``engine.state.output["label"]`` is that dict too;
    with the engines' default ``decollate=True`` the output becomes a list of per-sample dicts whose ``"label"`` is a
    per-sample dict (``"raters"`` ``(R, L, *S)``, ``"soft_label"`` ``(L, *S)``, ...). Metric handlers therefore need
    an ``output_transform`` that picks the entry they want, e.g.
    ``lambda out: ([o["pred"] for o in out], [o["label"]["soft_label"] for o in out])``.
    Use ``SimpleInferer`` (raw logits) in the trainer and :class:`monai_lexu.inferers.MultiHeadInferer` (prob/unc) in
    the evaluator.

    Args:
        image_key: key of the network input ``(B, C, *S)`` in the batch.
        target_keys: keys copied into the target dict when present.

    Raises:
        ValueError: (on call) if the batch is not a mapping, lacks ``image_key`` or a value is not a tensor.
    """

    def __init__(self, image_key: str = "image", target_keys: Sequence[str] = MULTI_RATER_KEYS) -> None:
        self.image_key = image_key
        self.target_keys = tuple(target_keys)

    def __call__(
        self,
        batchdata: Mapping[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Move the image and the multi-rater targets to ``device``.

        Args:
            batchdata: collated batch dict.
            device: target device.
            non_blocking: passed to ``Tensor.to``.
            kwargs: further ``Tensor.to`` arguments (e.g. ``memory_format``); applied to the image and to floating
                point targets, never to the bool ``rater_valid``.

        Returns:
            ``(image, target)``.
        """
        if not isinstance(batchdata, Mapping):
            raise ValueError(f"PrepareMultiRaterBatch expects a dict batch, got {type(batchdata).__name__}.")
        if self.image_key not in batchdata:
            raise ValueError(f"batch has no image key {self.image_key!r}; keys present: {sorted(batchdata.keys())}.")
        image = batchdata[self.image_key]
        if not isinstance(image, torch.Tensor):
            raise ValueError(f"batch[{self.image_key!r}] must be a tensor, got {type(image).__name__}.")
        image = image.to(device=device, non_blocking=non_blocking, **kwargs)
        target: dict[str, torch.Tensor] = {}
        for key in self.target_keys:
            if key not in batchdata:
                continue
            value = batchdata[key]
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"batch[{key!r}] must be a tensor, got {type(value).__name__}.")
            extra = kwargs if value.is_floating_point() else {}
            target[key] = value.to(device=device, non_blocking=non_blocking, **extra)
        return image, target
