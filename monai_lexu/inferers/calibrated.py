"""Calibrated ensembles (Buddenkotte et al.): least-squares vote coefficients (Eq. 2), the heatmap (Eq. 3), inference.

The members' binary masks ``s_k`` (here: head/member ``k`` of a head-major output, ``sigmoid(z_k) >= 0.5``) are
combined as ``h = sum_k a_k s_k`` (Eq. 3), with ``a`` fitted once on out-of-fold (cross-validation) predictions of
the training set (Eq. 2, :func:`fit_ensemble_coefficients`), stored as JSON next to the weights
(:func:`save_coefficients`) and read by inference (:class:`CalibratedEnsembleInferer`).

Inference contract (the project's ``cat([prob, unc])``): ``prob = clip(h, 0, 1)`` and ``unc = prob (1 - prob)``,
the variance of a Bernoulli variable with that probability (:func:`heatmap_to_prob_unc`). The coefficients are
unconstrained, so ``h`` itself can leave [0, 1]; the Parzen calibration curve
(:func:`monai_lexu.metrics.parzen_calibration_curve`) is computed on the unclipped ``h`` (``output="heatmap"``).

The same fit applies to the heads of any multi-head network (LEXU, Layer Ensembles: heads thresholded at 0.5 are the
votes), which gives a calibrated heatmap from ONE forward pass.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.inferers import Inferer, SimpleInferer

from monai_lexu.contract import split_heads

__all__ = [
    "COEFFICIENTS_FORMAT",
    "VotePatternCounts",
    "fit_ensemble_coefficients",
    "calibrated_heatmap",
    "heatmap_to_prob_unc",
    "heads_to_votes",
    "save_coefficients",
    "load_coefficients",
    "equal_coefficients",
    "CalibratedEnsembleInferer",
]

COEFFICIENTS_FORMAT = "monai_lexu.calibrated_ensemble.v1"


def _as_numpy(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as e:  # pragma: no cover - defensive
        raise ValueError(f"`{name}` must be an array, got {type(x).__name__}: {e}") from e


class VotePatternCounts:
    """Pooled statistics of the vote patterns of ``K`` members (the two sides of Eq. 2), accumulated over images.

    For every pattern ``b`` in {0, 1}^K that occurs (code ``sum_k 2^k b_k``; member 0 is the lowest bit), it keeps
    ``n_b`` = the (weighted) number of voxels voting ``b`` and ``t_b`` = the (weighted) sum of the target over them
    (the number of foreground voxels for a binary target). Codes are stored sparsely, so any ``K <= 62`` works.

    Args:
        num_members: ``K``.
    """

    def __init__(self, num_members: int) -> None:
        if not 1 <= num_members <= 62:
            raise ValueError(f"num_members must be in [1, 62], got {num_members}.")
        self.num_members = int(num_members)
        self.counts: dict[int, float] = {}
        self.target_sums: dict[int, float] = {}

    def update(self, votes: Any, target: Any, weights: Any = None) -> VotePatternCounts:
        """Add the voxels of one image (or many).

        Args:
            votes: ``(K, *N)`` binary votes (non-zero = foreground).
            target: ``(*N)`` target in [0, 1] (binary reference or soft label).
            weights: optional ``(*N)`` non-negative voxel weights (e.g. a region-of-interest mask); default 1.

        Returns:
            self.
        """
        v = _as_numpy(votes, "votes")
        t = _as_numpy(target, "target").astype(np.float64).reshape(-1)
        if v.ndim < 1 or v.shape[0] != self.num_members:
            raise ValueError(f"votes must have shape (K={self.num_members}, *N), got {v.shape}.")
        v = (v.reshape(self.num_members, -1) != 0).astype(np.int64)
        if t.size != v.shape[1]:
            raise ValueError(f"target has {t.size} voxels, votes have {v.shape[1]}.")
        if not np.all(np.isfinite(t)) or t.min(initial=0.0) < 0 or t.max(initial=0.0) > 1:
            raise ValueError("target must hold finite values in [0, 1].")
        wt = np.ones_like(t) if weights is None else _as_numpy(weights, "weights").astype(np.float64).reshape(-1)
        if wt.size != t.size or not np.all(np.isfinite(wt)) or wt.min(initial=0.0) < 0:
            raise ValueError(f"weights must hold {t.size} finite non-negative values.")
        codes = (v << np.arange(self.num_members, dtype=np.int64)[:, None]).sum(0)
        uniq, inverse = np.unique(codes, return_inverse=True)
        n = np.bincount(inverse, weights=wt, minlength=uniq.size)
        s = np.bincount(inverse, weights=wt * t, minlength=uniq.size)
        for code, nc, sc in zip(uniq.tolist(), n.tolist(), s.tolist()):
            self.counts[code] = self.counts.get(code, 0.0) + nc
            self.target_sums[code] = self.target_sums.get(code, 0.0) + sc
        return self

    def patterns(self, include_empty: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The occurring patterns: ``(V (P, K) binary, n (P,), t (P,))`` in increasing code order.

        Args:
            include_empty: include the all-zero pattern (excluded from the fit).
        """
        codes = sorted(c for c, n in self.counts.items() if n > 0 and (include_empty or c != 0))
        bits = np.array([[(c >> k) & 1 for k in range(self.num_members)] for c in codes], dtype=np.float64)
        bits = bits.reshape(len(codes), self.num_members)
        n = np.array([self.counts[c] for c in codes], dtype=np.float64)
        t = np.array([self.target_sums[c] for c in codes], dtype=np.float64)
        return bits, n, t

    def solve(self) -> np.ndarray:
        """The coefficients ``a`` (K,) of Eq. 2; see :func:`fit_ensemble_coefficients`."""
        bits, n, t = self.patterns()
        if n.size == 0:
            raise ValueError("no voxel with a non-empty vote pattern: the coefficients are undefined.")
        a, *_ = np.linalg.lstsq(n[:, None] * bits, t, rcond=None)
        return a

    def pattern_table(self, a: Sequence[float] | None = None) -> list[dict[str, Any]]:
        """Rows ``{pattern, voxels, target_mean[, heatmap]}`` of every occurring pattern (for reports)."""
        bits, n, t = self.patterns(include_empty=True)
        rows = []
        for b, nb, tb in zip(bits, n, t):
            row: dict[str, Any] = {"pattern": "".join(str(int(x)) for x in b), "voxels": nb, "target_mean": tb / nb}
            if a is not None:
                row["heatmap"] = float(np.dot(b, np.asarray(a, dtype=np.float64)))
            rows.append(row)
        return rows


def fit_ensemble_coefficients(votes: Any, target: Any, weights: Any = None) -> np.ndarray:
    """Least-squares coefficients ``a`` of a calibrated ensemble (Buddenkotte et al., Eq. 2).

    Definition: let ``b`` range over the non-zero vote patterns in {0, 1}^K that OCCUR among the voxels, ``n_b`` the
    number of voxels voting ``b`` and ``t_b`` the sum of the target over them (for a binary target: the foreground
    voxels among them; ``weights`` multiply both). Eq. 2 asks ``sum_k a_k b_k n_b = t_b`` for every ``b``; as the
    reference (``compute_scaling_coeff_UQ_*_v3.py``), this solves the system of rows ``n_b * b`` (a K-vector) and
    right-hand sides ``t_b`` by ordinary, unconstrained least squares (``numpy.linalg.lstsq``: minimum-norm solution
    when the rows do not determine ``a``). Equivalently it minimises ``sum_b n_b^2 (b . a - t_b / n_b)^2``: the
    residual of each pattern's mean target is weighted by the SQUARED pattern count. The reference also divides both
    sides by the total foreground, which does not change the solution and is omitted. The all-zero pattern is
    excluded, so ``h = 0`` there by construction; ``a`` may be negative and ``h`` may exceed 1.

    Targets: the binary reference (the paper: majority of the raters) or the raters' soft label in [0, 1] (this
    project's extension, the paper's future work: Eq. 2 with soft targets, ``t_b`` = the summed soft label).

    Args:
        votes: ``(K, *N)`` binary out-of-fold predictions of the K members (non-zero = foreground).
        target: ``(*N)`` target in [0, 1].
        weights: optional ``(*N)`` voxel weights (e.g. a mask of the voxels to fit on).

    Returns:
        float64 array ``a`` of shape (K,).

    Raises:
        ValueError: on shape mismatch, a target outside [0, 1], or when every voxel has the all-zero pattern.
    """
    v = _as_numpy(votes, "votes")
    if v.ndim < 1:
        raise ValueError(f"votes must have shape (K, *N), got {v.shape}.")
    return VotePatternCounts(v.shape[0]).update(v, target, weights).solve()


def calibrated_heatmap(votes: Any, a: Any) -> torch.Tensor:
    """The heatmap ``h = sum_k a_k s_k`` (Eq. 3), unclipped.

    Args:
        votes: ``(K, *N)`` binary votes with ``a`` of shape (K,); or ``(B, K, L, *S)`` with ``a`` of shape (L, K)
            (one coefficient vector per structure).
        a: the coefficients.

    Returns:
        float tensor ``(*N)`` resp. ``(B, L, *S)`` (float64 for numpy inputs, else the votes' float dtype).
    """
    v = votes if isinstance(votes, torch.Tensor) else torch.as_tensor(np.asarray(votes), dtype=torch.float64)
    dtype = v.dtype if v.is_floating_point() else torch.float32
    v = (v != 0).to(dtype)
    at = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a, dtype=dtype, device=v.device)
    if at.ndim == 1:
        if v.shape[0] != at.shape[0]:
            raise ValueError(f"votes have {v.shape[0]} members, a has {at.shape[0]} coefficients.")
        return torch.tensordot(at, v, dims=([0], [0]))
    if at.ndim == 2:
        if v.ndim < 3 or v.shape[1] != at.shape[1] or v.shape[2] != at.shape[0]:
            raise ValueError(
                f"votes must be (B, K={at.shape[1]}, L={at.shape[0]}, *S) for a of shape (L, K), got {tuple(v.shape)}."
            )
        return torch.einsum("bkl...,lk->bl...", v, at)
    raise ValueError(f"a must have shape (K,) or (L, K), got {tuple(at.shape)}.")


def equal_coefficients(num_members: int, num_structures: int) -> list[list[float]]:
    """``L x K`` coefficients ``1 / K``: ``h`` = the mean of the members' masks (the paper's seed ensemble and dropout
    heatmaps)."""
    return [[1.0 / num_members] * num_members for _ in range(num_structures)]


def heatmap_to_prob_unc(h: torch.Tensor) -> torch.Tensor:
    """The inference contract of a calibrated heatmap: ``cat([clip(h, 0, 1), p (1 - p)], dim=1)``, ``(B, 2L, *S)``.

    Args:
        h: ``(B, L, *S)`` unclipped heatmap.
    """
    p = h.clamp(0.0, 1.0)
    return torch.cat([p, p * (1.0 - p)], dim=1)


def heads_to_votes(probs_or_logits: torch.Tensor, num_heads: int, logits: bool = True) -> torch.Tensor:
    """Binary votes ``(B, K, L, *S)`` of head-major outputs: ``sigmoid(z) >= 0.5`` (i.e. ``z >= 0``), or ``p >= 0.5``.

    Args:
        probs_or_logits: ``(B, K * L, *S)``.
        num_heads: ``K``.
        logits: whether the input holds logits (else probabilities).
    """
    x = split_heads(probs_or_logits, num_heads)
    return (x >= (0.0 if logits else 0.5)).to(torch.float32)


def save_coefficients(
    path: str | os.PathLike, coefficients: Sequence[Sequence[float]], structures: Sequence[str], **info: Any
) -> Path:
    """Write the coefficients as JSON (atomically): ``{"format", "structures", "coefficients" (L x K), **info}``.

    Args:
        path: output file (e.g. ``<bundle>/models/calibration.json``).
        coefficients: ``L x K`` (one vector per structure, member order of the network's heads).
        structures: the ``L`` structure names.
        info: further JSON-serialisable entries (``num_members``, ``target``, ``shifts``, pattern tables ...).
    """
    coef = [[float(x) for x in row] for row in coefficients]
    if len(coef) != len(structures) or len({len(r) for r in coef}) != 1:
        raise ValueError(f"coefficients must be L x K with L = {len(structures)} structures, got {coef}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"format": COEFFICIENTS_FORMAT, "structures": list(structures), "coefficients": coef, **info}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body, indent=4) + "\n")
    os.replace(tmp, path)
    return path


def load_coefficients(
    path: str | os.PathLike, num_heads: int | None = None, num_structures: int | None = None
) -> np.ndarray:
    """Read the ``L x K`` coefficients written by :func:`save_coefficients`, checking them against the network.

    Raises:
        FileNotFoundError: naming the file and the command that writes it.
        ValueError: naming the file, when it is not such a file or its shape does not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no calibration coefficients; fit them on out-of-fold predictions first (the bundle's "
            "configs/fit_calibration.json, see its docs/README.md)."
        )
    try:
        body = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not readable JSON ({e}).") from e
    if not isinstance(body, Mapping) or body.get("format") != COEFFICIENTS_FORMAT:
        raise ValueError(f"{path}: not a calibration-coefficient file (format {COEFFICIENTS_FORMAT!r} expected).")
    a = np.asarray(body.get("coefficients"), dtype=np.float64)
    if a.ndim != 2 or not np.all(np.isfinite(a)):
        raise ValueError(f"{path}: 'coefficients' must be a finite L x K table, got shape {a.shape}.")
    if num_structures is not None and a.shape[0] != num_structures:
        raise ValueError(f"{path}: coefficients for {a.shape[0]} structures, the network has {num_structures}.")
    if num_heads is not None and a.shape[1] != num_heads:
        raise ValueError(f"{path}: coefficients for {a.shape[1]} members, the network has {num_heads} heads.")
    return a


class _ProbPredictor:
    def __init__(self, network: Callable[..., torch.Tensor], num_samples: int = 1) -> None:
        self.network = network
        self.num_samples = num_samples

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        passes = [torch.sigmoid(self.network(x, *args, **kwargs).float()) for _ in range(self.num_samples)]
        return passes[0] if self.num_samples == 1 else torch.cat(passes, dim=1)


class CalibratedEnsembleInferer(Inferer):
    """Inference of a calibrated ensemble (or calibrated heads): votes of the heads -> heatmap -> prob/unc.

    Every call of ``base_inferer`` (every sliding window) returns the heads' sigmoids, which MONAI blends (e.g. with
    Gaussian weights, as the paper's nnU-Net-style sliding window blends softmax outputs); the blended probabilities
    are thresholded at 0.5 into votes and combined with ``a`` (Eq. 3).

    Args:
        coefficients: ``L x K`` array, or the path of a JSON file of :func:`save_coefficients` (read and checked at
            the first call, so a bundle workflow initialises before the coefficients are fitted).
        num_heads: ``K`` heads of the network output.
        base_inferer: MONAI inferer (``SimpleInferer`` if None; ``SlidingWindowInferer(overlap=0.5, mode="gaussian")``
            for 3D).
        output: ``"prob_unc"`` (the contract, ``(B, 2L, *S)``), ``"heatmap"`` (unclipped ``h``, ``(B, L, *S)``) or
            ``"votes"`` (``(B, K * L, *S)`` head-major binary votes, e.g. for the union/intersection metrics).
        mc_samples: ``T > 1``: Monte-Carlo dropout, ``T`` stochastic passes per call (dropout on, see
            :func:`monai_lexu.inferers.mc_dropout`) stacked as ``T * K_net`` heads (``num_heads`` counts them all);
            the paper's dropout baseline is ``T = 7`` with equal coefficients ``1 / 7`` (the mean of the masks).
    """

    OUTPUTS = ("prob_unc", "heatmap", "votes")

    def __init__(
        self,
        coefficients: Any,
        num_heads: int,
        base_inferer: Inferer | None = None,
        output: str = "prob_unc",
        mc_samples: int = 1,
    ) -> None:
        super().__init__()
        if mc_samples < 1:
            raise ValueError(f"mc_samples must be >= 1, got {mc_samples}.")
        self.mc_samples = int(mc_samples)
        if output not in self.OUTPUTS:
            raise ValueError(f"output must be one of {self.OUTPUTS}, got {output!r}.")
        self.coefficients_file: str | None = None
        self._coefficients: torch.Tensor | None = None
        if isinstance(coefficients, (str, os.PathLike)):
            self.coefficients_file = str(coefficients)  # read at the first call: a workflow initialises without it
        else:
            a = np.asarray(coefficients, dtype=np.float64)
            if a.ndim == 1:
                a = a[None]
            if a.ndim != 2 or a.shape[1] != num_heads:
                raise ValueError(f"coefficients must be L x K with K = {num_heads}, got shape {a.shape}.")
            self._coefficients = torch.as_tensor(a, dtype=torch.float32)
        self.num_heads = int(num_heads)
        self.base_inferer = SimpleInferer() if base_inferer is None else base_inferer
        self.output = output

    @property
    def coefficients(self) -> torch.Tensor:
        """The ``L x K`` coefficients (read from ``coefficients_file`` on first use)."""
        if self._coefficients is None:
            a = load_coefficients(self.coefficients_file, num_heads=self.num_heads)  # type: ignore[arg-type]
            self._coefficients = torch.as_tensor(a, dtype=torch.float32)
        return self._coefficients

    def __call__(
        self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        """Run the base inferer on ``inputs`` ``(B, C, *S)``; see ``output`` for the result."""
        coefficients = self.coefficients  # a missing or unfitting file fails before any prediction
        predictor = _ProbPredictor(network, self.mc_samples)
        if self.mc_samples > 1:
            from monai_lexu.inferers.multihead import mc_dropout

            with mc_dropout(network):  # type: ignore[arg-type]
                probs = self.base_inferer(inputs, predictor, *args, **kwargs)  # type: ignore[arg-type]
        else:
            probs = self.base_inferer(inputs, predictor, *args, **kwargs)  # type: ignore[arg-type]
        votes = heads_to_votes(torch.as_tensor(probs), self.num_heads, logits=False)
        if votes.shape[2] != coefficients.shape[0]:
            raise ValueError(
                f"the network has {votes.shape[2]} structures per head, the coefficients {coefficients.shape[0]}."
            )
        if self.output == "votes":
            return votes.flatten(1, 2)
        h = calibrated_heatmap(votes, coefficients.to(votes.device))
        return h if self.output == "heatmap" else heatmap_to_prob_unc(h)
