"""MedUHIP's interaction loop (Fig. 2) and its three-stage training step (Eq. 3, 6, 7).

One round ``t`` of :func:`run_interaction`: the clicks so far are encoded; the Mean-Variance Network gives
``mu^t, sigma^t`` (or the click-free ``mu^0, sigma^0`` when ``use_mean_variance`` is off); ``N`` samples are drawn
from the mixture with weights ``pi^t`` (eval-mode fixed draws, so rounds differ only by the prompt and the sampling
space); the ``N`` masks give ``P_soft`` (Eq. 2) and its Dice to the target; K-means gives ``K`` candidate regions;
the simulated clinician (:mod:`~monai_lexu.interactive.clicks`) adds a click; for MedUHIP's own strategy the
selected candidate's posterior (Eq. 5, over the pixels where the ``N`` samples disagree) goes through the Weight
Network to ``pi^{t+1}`` (when ``use_weights``). The other strategies select no candidate, so their weights stay
uniform (ours). ``k = 0`` is the automatic prediction without any click.

:func:`meduhip_train_step` runs ``rounds`` such rounds on a batch with the training targets, each round in the
paper's three stages: (a) ``theta_Seg`` (image encoder, Eq. 1 convolution, mask decoder) by the cross-entropy of
``P_soft`` against the target, with the Sampling Net and prompt encoder frozen (Eq. 3; Eq. 2's indicator has no
gradient, so the cross-entropy is taken of the mean of the ``N`` sample probabilities, ours); (b) the simulated
clinician (MedUHIP's candidate choice) adds a click; (c) ``theta_MVP`` (Mean-Variance Network + prompt encoder)
by the same cross-entropy of the prediction with the new click, the Segmentation Net frozen (Eq. 6); (d)
``theta_W`` by the MSE between the Weight Network's output from the selection's posterior and the target's
posterior (Eq. 7; ours: the paper's ``P(Z | P_mod)`` is read as the Weight Network's new weights computed from
the clinician-modified region). Targets: a random subset of 1..R raters per image per step, fused by majority.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from monai_lexu.interactive.candidates import kmeans_candidates, select_candidate
from monai_lexu.interactive.clicks import (
    CLICK_STRATEGIES,
    Click,
    candidate_click,
    disagreement_click,
    last_wrong_click,
    random_select_click,
)
from monai_lexu.interactive.targets import rater_subset_target
from monai_lexu.networks.meduhip import MedUHIPNet, majority_soft_prediction, mixture_posterior

__all__ = ["ABLATIONS", "InteractionRecord", "clicks_to_tensors", "meduhip_train_step", "run_interaction"]

#: Table 4's rows: (use the Mean-Variance Network's click-dependent mu/sigma, update the weights)
ABLATIONS: dict[str, tuple[bool, bool]] = {
    "sampling": (False, False),
    "mean_variance": (True, False),
    "weight": (False, True),
    "full": (True, True),
}


@dataclass
class InteractionRecord:
    """One case through ``k = 0..K`` interactions.

    Attributes:
        dice: ``K + 1`` Dice values of ``P_soft`` against the target, after ``k`` clicks.
        clicks: the clicks ``(row, col, label)`` in order (fewer than ``K`` if the clinician had nothing to click).
        weights: the mixture weights ``pi^k`` used at each step.
        masks: ``P_soft`` per step (``keep_maps``).
        votes: the fraction of the ``N`` samples marking each pixel, per step (``keep_maps``).
        candidates: the candidate regions offered after each step (``keep_maps``).
        selected: the candidate the clinician selected after each step (None for the other strategies).
    """

    dice: list[float] = field(default_factory=list)
    clicks: list[Click] = field(default_factory=list)
    weights: list[list[float]] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    votes: list[np.ndarray] = field(default_factory=list)
    candidates: list[np.ndarray] = field(default_factory=list)
    selected: list[int | None] = field(default_factory=list)


def clicks_to_tensors(
    clicks: Sequence[Sequence[Click]], device: torch.device | str = "cpu"
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Per-image click lists -> ``points (B, P, 2)`` and ``labels (B, P)`` (padding label -1); None if no click."""
    p = max((len(c) for c in clicks), default=0)
    if p == 0:
        return None, None
    points = torch.zeros(len(clicks), p, 2, device=device)
    labels = -torch.ones(len(clicks), p, device=device)
    for b, cl in enumerate(clicks):
        for j, (r, c, lab) in enumerate(cl):
            points[b, j, 0], points[b, j, 1], labels[b, j] = float(r), float(c), float(lab)
    return points, labels


def _dice(pred: np.ndarray, target: np.ndarray) -> float:
    from monai_lexu.metrics.heatmap import binary_dice

    return float(binary_dice(pred[None], target[None])[0])


def _uncertain_region(votes: np.ndarray) -> np.ndarray:
    """Where the ``N`` samples disagree (``0 < vote fraction < 1``): the region Eq. 5's posteriors average over."""
    return (votes > 0) & (votes < 1)


@torch.no_grad()
def run_interaction(
    net: MedUHIPNet,
    image: torch.Tensor,
    target: np.ndarray,
    raters: np.ndarray,
    strategy: str = "meduhip",
    num_interactions: int = 6,
    num_candidates: int = 4,
    use_mean_variance: bool = True,
    use_weights: bool = True,
    rng: np.random.Generator | int | None = 0,
    keep_maps: bool = False,
) -> InteractionRecord:
    """Run one case through ``num_interactions`` rounds (see the module docstring); the network is put in eval mode.

    Args:
        net: a :class:`~monai_lexu.networks.MedUHIPNet`.
        image: ``(C, H, W)`` the preprocessed image.
        target: ``(H, W)`` the simulated clinician's binary target.
        raters: ``(R, H, W)`` all raters' masks (the disagreement strategy reads them).
        strategy: one of :data:`~monai_lexu.interactive.clicks.CLICK_STRATEGIES`.
        num_interactions: ``K`` (clicks at most).
        num_candidates: ``K`` of K-means.
        use_mean_variance: recompute ``mu, sigma`` from the clicks (else the click-free ones: Table 4 ablation).
        use_weights: update ``pi`` by the Weight Network after each selection (MedUHIP's strategy only).
        rng: random generator or seed for the clinicians' draws.
        keep_maps: keep masks, vote fractions and candidate regions per step (for figures and MONAI Label).

    Returns:
        :class:`InteractionRecord`.
    """
    if strategy not in CLICK_STRATEGIES:
        raise ValueError(f"run_interaction: strategy must be one of {CLICK_STRATEGIES}, got {strategy!r}.")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    net.eval()
    device = next(net.parameters()).device
    x = image[None].to(device=device, dtype=torch.float32)
    h, w = x.shape[2], x.shape[3]
    target = (np.asarray(target) >= 0.5).astype(np.float32)
    embedding = net.encode_image(x)
    tokens0, valid0 = net.encode_prompts(None, None, 1, h, w)
    mean0, var0 = net.sampling_space(embedding, tokens0, valid0)
    weights = net.uniform_weights(1)
    record = InteractionRecord()
    clicked: list[tuple[int, int]] = []
    for k in range(num_interactions + 1):
        points, labels = clicks_to_tensors([record.clicks], device)
        tokens, valid = net.encode_prompts(points, labels, 1, h, w)
        mean, var = net.sampling_space(embedding, tokens, valid) if use_mean_variance else (mean0, var0)
        samples, _ = net.draw(weights, mean, var, True)
        logits = net.decode(embedding, tokens, samples, h, w)
        soft, votes = majority_soft_prediction(logits)
        pred = soft[0].cpu().numpy()
        vote = votes[0].cpu().numpy()
        record.dice.append(_dice(pred, target))
        record.weights.append([float(v) for v in weights[0].cpu()])
        if keep_maps:
            record.masks.append(pred)
            record.votes.append(vote)
        if k == num_interactions:
            break
        masks = (torch.sigmoid(logits[0]) > 0.5).float().cpu().numpy()
        cands = kmeans_candidates(masks, num_candidates)
        if keep_maps:
            record.candidates.append(cands.regions)
        selected: int | None = None
        if strategy == "meduhip":
            selected = select_candidate(cands.regions, target)
            click = candidate_click(cands.regions, selected, pred, target, rng, clicked)
            if use_weights:
                region = torch.as_tensor(cands.regions[selected], dtype=torch.float32, device=device)[None]
                roi = torch.as_tensor(_uncertain_region(vote), device=device)[None]
                posterior = mixture_posterior(region, weights, mean, var, roi)
                weights = net.next_weights(weights, posterior)
        elif strategy == "random":
            click = random_select_click(pred, target, rng, clicked)
        elif strategy == "disagreement":
            click = disagreement_click(raters, target, rng, clicked, pred=pred)
        else:
            click = last_wrong_click(pred, target, clicked)
        record.selected.append(selected)
        if click is not None:
            record.clicks.append(click)
            clicked.append((click[0], click[1]))
    return record


@contextlib.contextmanager
def _frozen(params: Sequence[torch.nn.Parameter]) -> Iterator[None]:
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


def _soft_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the mean of the ``N`` sample probabilities ``(B, N, H, W)`` against ``target (B, H, W)``."""
    prob = torch.sigmoid(logits).mean(1).clamp(1e-6, 1.0 - 1e-6)
    return F.binary_cross_entropy(prob, target)


def meduhip_train_step(
    net: MedUHIPNet,
    optimizer: torch.optim.Optimizer,
    image: torch.Tensor,
    raters: torch.Tensor,
    rater_valid: torch.Tensor | None = None,
    rounds: int = 3,
    num_candidates: int = 4,
    rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """One training iteration: ``rounds`` interaction rounds, each with the three stages (module docstring).

    Args:
        net: the network (put in train mode).
        optimizer: one optimizer over all of ``net``'s parameters; each stage steps only its own group (the others
            are frozen, so their gradients stay None and the optimizer skips them).
        image: ``(B, C, H, W)``.
        raters: ``(B, R, H, W)`` binary masks of the one structure being segmented.
        rater_valid: ``(B, R)`` bool; all valid if None.
        rounds: interaction rounds per iteration (clicks 0..rounds-1 are seen by the Segmentation Net).
        num_candidates: ``K``.
        rng: random generator (targets, clicks).

    Returns:
        the mean over rounds of ``{"loss_seg", "loss_mvp", "loss_weight"}``, and ``"loss"`` their sum.
    """
    rng = rng or np.random.default_rng()
    net.train()
    groups = net.parameter_groups()
    device = image.device
    b, _, h, w = image.shape
    rat = raters.detach().cpu().numpy()
    val = None if rater_valid is None else rater_valid.detach().cpu().numpy()
    targets_np = np.stack(
        [rater_subset_target(rat[i], None, rng, None if val is None else val[i])[0] for i in range(b)]
    )
    targets = torch.as_tensor(targets_np, device=device)
    clicks: list[list[Click]] = [[] for _ in range(b)]
    weights = net.uniform_weights(b)
    sums = {"loss_seg": 0.0, "loss_mvp": 0.0, "loss_weight": 0.0}
    for _ in range(rounds):
        points, labels = clicks_to_tensors(clicks, device)
        # (a) Eq. 3: the Segmentation Net, Sampling Net and prompt encoder frozen
        with _frozen(groups["mvp"] + groups["weight"]):
            embedding = net.encode_image(image)
            tokens, valid = net.encode_prompts(points, labels, b, h, w)
            mean, var = net.sampling_space(embedding, tokens, valid)
            samples, _ = net.draw(weights, mean, var, False)
            logits = net.decode(embedding, tokens, samples, h, w)
            loss_seg = _soft_ce(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss_seg.backward()
            optimizer.step()
        # (b) the simulated clinician selects a candidate region and clicks
        masks = (torch.sigmoid(logits.detach()) > 0.5).float()
        votes = masks.mean(1).cpu().numpy()
        selected_regions = np.zeros((b, h, w), dtype=np.float32)
        for i in range(b):
            cands = kmeans_candidates(masks[i].cpu().numpy(), num_candidates)
            sel = select_candidate(cands.regions, targets_np[i])
            selected_regions[i] = cands.regions[sel]
            pred = (votes[i] > 0.5).astype(np.float32)
            click = candidate_click(cands.regions, sel, pred, targets_np[i], rng, [(r, c) for r, c, _ in clicks[i]])
            if click is not None:
                clicks[i].append(click)
        points, labels = clicks_to_tensors(clicks, device)
        # (c) Eq. 6: Mean-Variance Network + prompt encoder, the Segmentation Net frozen
        with _frozen(groups["seg"] + groups["weight"]):
            with torch.no_grad():
                embedding = net.encode_image(image)
            tokens, valid = net.encode_prompts(points, labels, b, h, w)
            mean, var = net.sampling_space(embedding, tokens, valid)
            samples, _ = net.draw(weights, mean, var, False)
            loss_mvp = _soft_ce(net.decode(embedding, tokens, samples, h, w), targets)
            optimizer.zero_grad(set_to_none=True)
            loss_mvp.backward()
            optimizer.step()
        # (d) Eq. 7: the Weight Network, MSE between its output and the target's posterior
        with _frozen(groups["seg"] + groups["mvp"]):
            roi = torch.as_tensor(_uncertain_region(votes), device=device)
            m, v = mean.detach(), var.detach()
            with torch.no_grad():
                post_sel = mixture_posterior(torch.as_tensor(selected_regions, device=device), weights, m, v, roi)
                post_gt = mixture_posterior(targets, weights, m, v, roi)
            new_weights = net.next_weights(weights, post_sel)
            loss_w = F.mse_loss(new_weights, post_gt)
            optimizer.zero_grad(set_to_none=True)
            loss_w.backward()
            optimizer.step()
        weights = new_weights.detach()
        sums["loss_seg"] += float(loss_seg.detach())
        sums["loss_mvp"] += float(loss_mvp.detach())
        sums["loss_weight"] += float(loss_w.detach())
    out = {k: v / rounds for k, v in sums.items()}
    out["loss"] = sum(out.values())
    return out
