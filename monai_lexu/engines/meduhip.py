"""MONAI engine glue for MedUHIP: the three-stage trainer and the automatic (click-free) inferer.

* :class:`MedUHIPTrainer`: a ``SupervisedTrainer`` whose iteration is
  :func:`monai_lexu.interactive.meduhip_train_step` (``rounds`` simulated interaction rounds, each updating
  ``theta_Seg`` (Eq. 3), then ``theta_MVP`` with the Segmentation Net frozen (Eq. 6), then ``theta_W`` (Eq. 7)) on
  the raters of one structure of a multi-rater batch (:class:`~monai_lexu.engines.PrepareMultiRaterBatch`).
* :class:`MedUHIPInferer`: the project's inference contract ``cat([prob, unc], dim=1)`` for one structure from the
  ``N`` sample logits without clicks: ``prob`` = the fraction ``f`` of the ``N`` sample masks marking the pixel
  (``P_soft = f > 1/2`` is Eq. 2), ``unc`` = ``f (1 - f)``, the variance of the ``N`` binary votes (ours).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from monai.engines import SupervisedTrainer
from monai.inferers import Inferer
from monai.utils import CommonKeys as Keys

from monai_lexu.interactive.loop import meduhip_train_step
from monai_lexu.networks.meduhip import majority_soft_prediction

__all__ = ["MedUHIPInferer", "MedUHIPTrainer"]


class MedUHIPTrainer(SupervisedTrainer):
    """``SupervisedTrainer`` running MedUHIP's three-stage interactive training step per iteration.

    Args:
        structure_index: the structure (channel ``L`` of ``raters (B, R, L, *S)``) being segmented.
        rounds: simulated interaction rounds per iteration.
        num_candidates: ``K`` of K-means.
        seed: seed of the targets' rater subsets and the simulated clicks.
        kwargs: ``SupervisedTrainer``'s arguments (``loss_function`` is not used: the losses are the paper's).

    ``engine.state.output`` holds ``"loss"`` (sum of the three stage losses, a tensor) and ``"loss_seg"``,
    ``"loss_mvp"``, ``"loss_weight"`` (floats).
    """

    def __init__(
        self, *args: Any, structure_index: int = 1, rounds: int = 3, num_candidates: int = 4, seed: int = 0, **kwargs
    ) -> None:
        kwargs.setdefault("loss_function", torch.nn.Identity())
        super().__init__(*args, **kwargs)
        self.structure_index = int(structure_index)
        self.rounds = int(rounds)
        self.num_candidates = int(num_candidates)
        self.rng = np.random.default_rng(seed)

    def _iteration(self, engine: SupervisedTrainer, batchdata: dict[str, torch.Tensor]) -> dict:  # type: ignore[override]
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        batch = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        image, targets = batch[0], batch[1]
        if not isinstance(targets, dict) or "raters" not in targets:
            raise ValueError("MedUHIPTrainer needs PrepareMultiRaterBatch batches with 'raters' (B, R, L, *S).")
        raters = targets["raters"][:, :, self.structure_index]
        terms = meduhip_train_step(
            engine.network,
            engine.optimizer,
            torch.as_tensor(image).float(),
            torch.as_tensor(raters),
            targets.get("rater_valid"),
            self.rounds,
            self.num_candidates,
            self.rng,
        )
        engine.state.output = {
            Keys.IMAGE: image,
            Keys.LABEL: raters,
            Keys.LOSS: torch.tensor(terms["loss"]),
            **{k: v for k, v in terms.items() if k != "loss"},
        }
        return engine.state.output


class MedUHIPInferer(Inferer):
    """``network(x[, points, labels])`` gives ``(B, N, *S)`` sample logits; returns ``(B, 2, *S)`` =
    ``[vote fraction f, f (1 - f)]`` (see the module docstring).

    Args:
        points: optional ``(B, P, 2)`` clicks (row, column of the network input's grid), the prompt.
        labels: ``(B, P)`` 1 foreground, 0 background, -1 padding.
    """

    def __init__(self, points: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> None:
        super().__init__()
        self.points, self.labels = points, labels

    def __call__(self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any):
        if self.points is not None and self.labels is not None:
            pts, lab = self.points.to(inputs.device), self.labels.to(inputs.device)
            logits = network(inputs, pts.expand(inputs.shape[0], -1, -1), lab.expand(inputs.shape[0], -1))
        else:
            logits = network(inputs, *args, **kwargs)
        _, votes = majority_soft_prediction(logits)
        votes = votes.unsqueeze(1)
        return torch.cat([votes, votes * (1.0 - votes)], dim=1)
