"""The parametric loss ``L_w`` of calibrated ensembles (Buddenkotte et al., Eq. 1) for sigmoid structure channels.

``L_w = L_w^ce + L_w^DSC`` with one weight ``w_l`` per structure ``l``:

- ``L_w^ce = mean_{b, l, i} -[exp(-w_l) y log p + (1 - y) log(1 - p)]``: binary cross-entropy with the POSITIVE
  class weighted by ``exp(-w_l)`` (the background keeps weight 1), a plain mean over all ``B * L * S`` voxels (not a
  weight-normalised mean, so ``w`` also changes the loss scale, as the reference ``cross_entropy_exp_weight``);
- ``L_w^DSC = 1 - mean_{b, l} (TP + eps) / (TP + sigma(w_l) FP + sigma(-w_l) FN + eps)`` with, per sample ``b`` and
  structure ``l``, ``TP = sum_i y p``, ``FP = sum_i (1 - y) p``, ``FN = sum_i y (1 - p)`` and ``eps = 1e-5`` in both
  numerator and denominator (the reference ``dice_loss_sigm_weighted``; the paper's "2 TP / (...)" has a stray
  factor 2: with ``w = 0`` the term is ``(TP + eps) / (TP + FP/2 + FN/2 + eps) = (2TP + 2eps) / (2TP + FP + FN +
  2eps)``, the soft Dice).

``w = 0`` therefore equals BCE + soft Dice (``1 - (2TP + 2eps) / (2TP + FP + FN + 2eps)``) exactly. ``w < 0``
weights missed foreground more (CE weight ``exp(-w) > 1``, FP weight ``sigma(w) < 1/2``): the model segments more and
becomes more sensitive; ``w > 0`` makes it more precise.

Deliberate differences from the reference (softmax over background + C classes): our structures are independent
sigmoid channels (design.md), so ``p = sigmoid(z)`` and the background term of the CE is ``(1 - y) log(1 - p)`` per
structure; the target is the strict majority of the valid raters (``soft_label > 0.5``, the paper's KiTS choice) or,
with ``target="soft"``, the soft label itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.modules.loss import _Loss

from monai_lexu.contract import split_heads

__all__ = ["PARAMETRIC_TARGETS", "ParametricCalibrationLoss", "parametric_loss", "shifted_loss_weights"]

PARAMETRIC_TARGETS = ("majority", "soft")


def shifted_loss_weights(
    w_base: float | Sequence[float], shifts: Sequence[float], num_structures: int
) -> list[list[float]]:
    """Loss weights of the members of a calibrated ensemble: ``w[k][l] = w_base[l] + shifts[k]``.

    Args:
        w_base: ``w_DSC`` per structure (a number applies to every structure).
        shifts: ``delta_k`` per member (the paper: ``-3, ..., 3``; member 0 is the most sensitive).
        num_structures: ``L``.

    Returns:
        ``K x L`` nested list.

    Raises:
        ValueError: if ``w_base`` does not have ``L`` entries or ``shifts`` is empty.
    """
    base = [float(w_base)] * num_structures if isinstance(w_base, (int, float)) else [float(v) for v in w_base]
    if len(base) != num_structures:
        raise ValueError(f"w_base has {len(base)} entries, expected one per structure ({num_structures}).")
    if len(shifts) == 0:
        raise ValueError("shifts must hold at least one member shift.")
    return [[b + float(d) for b in base] for d in shifts]


def parametric_loss(
    logits: torch.Tensor, target: torch.Tensor, w: torch.Tensor | Sequence[float], eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two terms of ``L_w`` (module docstring) for one head.

    Args:
        logits: ``(B, L, *S)`` logits of the sigmoid structure channels.
        target: ``(B, L, *S)`` target in [0, 1] (binary, or soft).
        w: ``(L,)`` loss weight per structure.
        eps: the Dice smoothing (reference: 1e-5) in numerator and denominator.

    Returns:
        ``(ce, dice_loss)``: float32 scalars; ``L_w = ce + dice_loss``.
    """
    z = logits.float()
    y = target.to(device=z.device, dtype=torch.float32)
    if z.shape != y.shape or z.ndim < 3:
        raise ValueError(f"logits {tuple(z.shape)} and target {tuple(y.shape)} must share one (B, L, *S) shape.")
    wt = torch.as_tensor(w, dtype=torch.float32, device=z.device).reshape(-1)
    if wt.numel() != z.shape[1]:
        raise ValueError(f"w has {wt.numel()} entries, expected one per structure ({z.shape[1]}).")
    shape = (1, -1) + (1,) * (z.ndim - 2)
    pos_weight = torch.exp(-wt).reshape(shape)
    # -log p = softplus(-z), -log(1 - p) = softplus(z): stable for large |z|
    ce = (pos_weight * y * F.softplus(-z) + (1.0 - y) * F.softplus(z)).mean()
    p = torch.sigmoid(z)
    dims = tuple(range(2, z.ndim))
    tp = (y * p).sum(dims)
    fp = ((1.0 - y) * p).sum(dims)
    fn = (y * (1.0 - p)).sum(dims)
    sw = torch.sigmoid(wt).unsqueeze(0)
    dice = (tp + eps) / (tp + sw * fp + (1.0 - sw) * fn + eps)
    return ce, 1.0 - dice.mean()


class ParametricCalibrationLoss(_Loss):
    """``L_w`` (Eq. 1 of Buddenkotte et al.) summed over the heads of a head-major output.

    With one head this is the loss of one member (or of the base model at ``w_DSC``). With ``K`` heads (e.g. the
    members of a :class:`monai_lexu.networks.DeepEnsemble` that share no parameter) head ``k`` gets its own weights
    ``w[k]`` and the loss is the SUM of the heads' ``L_w``, so every member receives exactly the gradient it would
    get alone.

    Args:
        w: loss weights: a number (every head and structure), ``L`` numbers (every head) or ``K x L`` (per head, see
            :func:`shifted_loss_weights`).
        num_heads: ``K``.
        target: ``"majority"`` (strict majority of the valid raters, ``soft_label > 0.5``) or ``"soft"``.
        eps: Dice smoothing (reference 1e-5).
        base_w: ``w_DSC`` (a number or ``L`` numbers) used while ``shared`` is True.

    Attributes:
        shared: phase 1 of a :class:`monai_lexu.networks.SharedBaseEnsemble` (set by
            :class:`monai_lexu.handlers.BranchMembers`): every head is the one base model, so the loss is the MEAN over
            heads of ``L_{base_w}`` (= the base model's loss) instead of the sum of the members' ``L_{w_k}``.
        last_terms: detached scalars of the last call: ``"ce"`` and ``"dice"`` (summed over heads) and ``"loss"``.

    ``forward(input, target)``: ``input`` head-major logits ``(B, K * L, *S)``; ``target`` a mapping with
    ``"soft_label"`` (or ``"raters"``/``"rater_valid"``, see :class:`monai_lexu.engines.PrepareMultiRaterBatch`) or
    a ``(B, L, *S)`` target tensor used as it is.
    """

    def __init__(
        self, w: Any = 0.0, num_heads: int = 1, target: str = "majority", eps: float = 1e-5, base_w: Any = None
    ) -> None:
        super().__init__()
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}.")
        if target not in PARAMETRIC_TARGETS:
            raise ValueError(f"target must be one of {PARAMETRIC_TARGETS}, got {target!r}.")
        wt = torch.as_tensor(w, dtype=torch.float32)
        if wt.ndim > 2 or (wt.ndim == 2 and wt.shape[0] != num_heads):
            raise ValueError(f"w must be a number, (L,) or (K={num_heads}, L), got shape {tuple(wt.shape)}.")
        self.w = wt
        self.base_w = None if base_w is None else torch.as_tensor(base_w, dtype=torch.float32)
        if self.base_w is not None and self.base_w.ndim > 1:
            raise ValueError(f"base_w must be a number or (L,), got shape {tuple(self.base_w.shape)}.")
        self.shared = False
        self.num_heads = int(num_heads)
        self.target = target
        self.eps = float(eps)
        self.last_terms: dict[str, torch.Tensor] = {}

    def _weights(self, num_structures: int) -> torch.Tensor:
        w = self.base_w if self.shared and self.base_w is not None else self.w
        if w.ndim == 0:
            w = w.expand(num_structures)
        if w.ndim == 1:
            if w.numel() != num_structures:
                raise ValueError(f"w has {w.numel()} entries, the output has {num_structures} structures.")
            w = w.unsqueeze(0).expand(self.num_heads, num_structures)
        if w.shape[1] != num_structures:
            raise ValueError(f"w has shape {tuple(w.shape)}, the output has {num_structures} structures per head.")
        return w

    def _target(self, target: Any) -> torch.Tensor:
        if isinstance(target, torch.Tensor):
            return target
        if not isinstance(target, Mapping):
            raise ValueError(f"target must be a tensor or a mapping with 'soft_label', got {type(target).__name__}.")
        soft = target.get("soft_label")
        if soft is None:
            raters = target.get("raters")
            if raters is None:
                raise ValueError(f"target has neither 'soft_label' nor 'raters'; keys: {sorted(target.keys())}.")
            from monai_lexu.transforms import rater_statistics  # lazy: pulls in MONAI transforms

            valid = target.get("rater_valid")
            if valid is None:
                valid = torch.ones(raters.shape[:2], dtype=torch.bool, device=raters.device)
            soft = torch.as_tensor(rater_statistics(raters, valid, unbiased=True)[0])
        soft = soft.as_subclass(torch.Tensor) if type(soft) is not torch.Tensor else soft
        return (soft > 0.5).float() if self.target == "majority" else soft

    def forward(self, input: torch.Tensor, target: Any) -> torch.Tensor:
        """Sum over heads of ``L_w`` (float32 scalar); see the class docstring for the inputs."""
        if type(input) is not torch.Tensor:
            input = input.as_subclass(torch.Tensor)
        y = self._target(target)
        with torch.autocast(device_type=input.device.type, enabled=False):
            logits = split_heads(input.float(), self.num_heads)  # (B, K, L, *S)
            if tuple(y.shape) != (logits.shape[0], *logits.shape[2:]):
                raise ValueError(
                    f"target shape {tuple(y.shape)} does not match the output {tuple(input.shape)} with "
                    f"num_heads={self.num_heads}: expected (B, L, *S) = {(logits.shape[0], *logits.shape[2:])}."
                )
            w = self._weights(logits.shape[2]).to(input.device)
            ce_sum = torch.zeros((), device=input.device)
            dice_sum = torch.zeros((), device=input.device)
            for k in range(self.num_heads):
                ce, dice = parametric_loss(logits[:, k], y, w[k], self.eps)
                ce_sum = ce_sum + ce
                dice_sum = dice_sum + dice
            total = ce_sum + dice_sum
            if self.shared:  # phase 1 of a shared base: every head is the base model, whose loss is the mean
                ce_sum, dice_sum, total = ce_sum / self.num_heads, dice_sum / self.num_heads, total / self.num_heads
        self.last_terms = {"ce": ce_sum.detach(), "dice": dice_sum.detach(), "loss": total.detach()}
        return total
