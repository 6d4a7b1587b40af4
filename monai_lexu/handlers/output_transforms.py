"""Output transforms that read multi-rater engine outputs for metric, stats and report handlers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

__all__ = ["from_engine_output", "loss_terms_output", "lookup_key"]


def lookup_key(key: str, output: Any, batch: Any = None) -> Any:
    """Find ``key`` in a decollated output item, its ``label`` dict (multi-rater targets), or the batch item.

    Args:
        key: the key to look up.
        output: one decollated engine output item (a mapping).
        batch: the matching decollated batch item, or None.

    Raises:
        KeyError: if none of them holds ``key``.
    """
    for source in (output, output.get("label") if isinstance(output, Mapping) else None, batch):
        if isinstance(source, Mapping) and key in source:
            return source[key]
    raise KeyError(f"'{key}' is neither in the engine output, its 'label' targets nor the batch")


def from_engine_output(keys: Sequence[str]) -> Callable[[Any], tuple[list[Any], ...]]:
    """Like :func:`monai.handlers.from_engine` for multi-rater outputs: also looks inside ``output["label"]``.

    ``SupervisedEvaluator`` with :class:`monai_lexu.engines.PrepareMultiRaterBatch` stores the rater targets
    (``soft_label``, ``rater_var``, ...) as a dict under ``label``; this lets a metric handler take e.g.
    ``from_engine_output(["prob", "soft_label"])``: one list per key, with one (L, *S) item per image.
    """

    def _transform(data: Any) -> tuple[list[Any], ...]:
        items = data if isinstance(data, list) else [data]
        return tuple([lookup_key(k, item) for item in items] for k in keys)

    return _transform


def loss_terms_output(loss_function: Any) -> Callable[[Any], dict[str, float]]:
    """Output transform for ``StatsHandler``/``TensorBoardStatsHandler`` on a trainer: the loss and its terms.

    Returns ``{"loss": total, **loss_function.last_terms}`` as floats (e.g. ``seg`` and ``dgm`` of
    :class:`monai_lexu.losses.LEXULoss`), so the log shows how the segmentation and disagreement terms evolve.
    Works with ``decollate=False`` (output is a dict) and with decollated outputs (a list of dicts).
    """

    def _transform(output: Any) -> dict[str, float]:
        first = output[0] if isinstance(output, list) else output
        terms = {"loss": float(torch.as_tensor(first["loss"]).detach())}
        for name, value in getattr(loss_function, "last_terms", {}).items():
            if name != "loss":
                terms[name] = float(torch.as_tensor(value).detach())
        return terms

    return _transform
