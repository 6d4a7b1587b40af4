"""Soft Dice as an ignite metric handler, the multi-rater counterpart of :class:`monai.handlers.MeanDice`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monai.handlers import IgniteMetricHandler
from monai.utils import MetricReduction

from monai_lexu.handlers.output_transforms import from_engine_output
from monai_lexu.metrics.soft_dice import DEFAULT_THRESHOLDS, SoftDiceMetric

__all__ = ["SoftDice"]


class SoftDice(IgniteMetricHandler):
    """Soft Dice of the probability map against the soft label, averaged over images (and structures).

    A thin wrapper of :class:`monai_lexu.metrics.SoftDiceMetric` (see :func:`monai_lexu.metrics.soft_dice` for
    the definition), like :class:`monai.handlers.MeanDice` wraps ``DiceMetric``: the per-image values are
    gathered across DDP ranks by the metric's ``Cumulative`` buffer and, with ``save_details``, stored in
    ``engine.state.metric_details[name]`` as (N, L). Used as the bundles' validation key metric::

        "key_metric": {"val_soft_dice": {"_target_": "monai_lexu.handlers.SoftDice"}}

    Args:
        thresholds: thresholds applied to both maps, see :func:`monai_lexu.metrics.soft_dice`.
        smooth: added to numerator and denominator.
        reduction: MONAI reduction of the (N, L) per-image values; default ``"mean"`` (one number over images and
            structures, NaN values skipped).
        output_transform: ``engine.state.output`` -> ``(y_pred, y)``: probability maps and soft labels, batch-first
            tensors (B, L, *S) or lists of (L, *S). Default: ``from_engine_output(["prob", "soft_label"])``, the
            post-processed ``prob`` and the ``soft_label`` target of
            :class:`monai_lexu.engines.PrepareMultiRaterBatch`.
        save_details: store the per-image values in ``engine.state.metric_details``.
    """

    def __init__(
        self,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        smooth: float = 1e-6,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        output_transform: Callable | None = None,
        save_details: bool = True,
    ) -> None:
        metric_fn = SoftDiceMetric(thresholds=thresholds, smooth=smooth, reduction=reduction)
        if output_transform is None:
            output_transform = from_engine_output(["prob", "soft_label"])
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)
