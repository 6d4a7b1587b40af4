"""An ignite handler that evaluates probability/uncertainty maps against the raters and writes the paper's table."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from monai_lexu.report import markdown_table, mean_std, plot_reliability_diagram, write_csv, write_markdown

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["UncertaintyReport", "from_engine_output", "loss_terms_output"]

logger = logging.getLogger("monai_lexu")


def _lookup(key: str, output: Any, batch: Any = None) -> Any:
    """Find ``key`` in a decollated output item, its ``label`` dict (multi-rater targets), or the batch item."""
    for source in (output, output.get("label") if isinstance(output, Mapping) else None, batch):
        if isinstance(source, Mapping) and key in source:
            return source[key]
    raise KeyError(f"'{key}' is neither in the engine output, its 'label' targets nor the batch")


def from_engine_output(keys: Sequence[str]):
    """Like :func:`monai.handlers.from_engine` for multi-rater outputs: also looks inside ``output["label"]``.

    ``SupervisedEvaluator`` with :class:`monai_lexu.engines.PrepareMultiRaterBatch` stores the rater targets
    (``soft_label``, ``rater_var``, ...) as a dict under ``label``; this lets a metric handler take e.g.
    ``from_engine_output(["prob", "soft_label"])``.
    """

    def _transform(data: Any) -> tuple:
        items = data if isinstance(data, list) else [data]
        return tuple([_lookup(k, item) for item in items] for k in keys)

    return _transform


def loss_terms_output(loss_function: Any):
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


class UncertaintyReport:
    """Evaluate every image's probability and uncertainty maps and write the per-structure table of the LEXU paper.

    Per image and structure it records the uncertainty sum and the rater-variance sum (for SR and DC across images),
    the pixel-level NCC between the two maps, the soft Dice of the probability against the soft label, the
    binary NLL, Jungo's weighted mean entropy (WME, predictive entropy weighted by the raters' entropy; NaN and left
    out for an image without disagreement) and mean entropy (ME), and pooled calibration data (see
    :mod:`monai_lexu.metrics` for each exact definition). With ``ground_truth_key`` (data with a known true mask,
    e.g. the Jungo synthetic set) it also records ``Dice_gt``: the Dice of ``prob >= 0.5`` against that mask
    (MONAI ``compute_dice`` with ``ignore_empty=False``: two empty masks give 1), Jungo's Table 1 Dice.
    When the engine completes it writes ``<prefix>_summary.csv``/``.md``, ``<prefix>_per_image.csv`` and
    ``<prefix>.json`` (per structure and metric: ``mean``, ``std`` over images, and the per-image values) in
    ``output_dir``, logs the Markdown table, and puts the summary numbers into ``engine.state.metrics``
    (e.g. ``SR_cup``). With ``save_maps > 0`` the first ``save_maps`` images' maps are kept for figures (see
    :meth:`save_case_maps`).

    Args:
        structures: names of the L structure channels, e.g. ``["disc", "cup"]``.
        output_dir: where the tables go.
        prob_key: key of the probability maps (L, *S) in the (post-processed, decollated) output.
        unc_key: key of the uncertainty maps (L, *S).
        soft_label_key: key of the soft label (L, *S) (looked up in the output, its ``label`` dict, then the batch).
        var_key: key of the rater variance map (L, *S).
        id_key: key of the case id in the batch (the running index is used when absent).
        prefix: file name prefix.
        title: heading of the Markdown file.
        calibration_bins: equal-width bins of the pooled reliability diagram (``<prefix>_reliability.png``) and of
            the pooled ECE row (mean |confidence - observed frequency| weighted by pixel count, against the soft
            label; see :func:`monai_lexu.metrics.reliability_curve`).
        ground_truth_key: key of a true mask ``(L, *S)`` (output, its ``label`` dict, or batch); ``None``: no Dice_gt.
        save_maps: number of images (the first ones seen) whose maps are written to ``<prefix>_maps/<id>.npz``.
        image_key: key of the network input ``(C, *S)`` saved with the maps.
        raters_key: key of the rater masks ``(R, L, *S)`` saved with the maps (``rater_valid`` selects the valid).
    """

    METRICS = ("SR", "DC", "NCC", "soft_dice", "NLL", "WME", "ME", "ECE")
    PER_IMAGE = ("NCC", "soft_dice", "NLL", "WME", "ME")

    def __init__(
        self,
        structures: Sequence[str],
        output_dir: str | Path,
        prob_key: str = "prob",
        unc_key: str = "unc",
        soft_label_key: str = "soft_label",
        var_key: str = "rater_var",
        id_key: str = "id",
        prefix: str = "metrics",
        title: str = "Uncertainty and segmentation metrics",
        calibration_bins: int = 10,
        ground_truth_key: str | None = None,
        save_maps: int = 0,
        image_key: str = "image",
        raters_key: str = "raters",
    ) -> None:
        self.structures = list(structures)
        self.output_dir = Path(output_dir)
        self.prob_key, self.unc_key = prob_key, unc_key
        self.soft_label_key, self.var_key, self.id_key = soft_label_key, var_key, id_key
        self.prefix, self.title = prefix, title
        self.calibration_bins = calibration_bins
        self.ground_truth_key = ground_truth_key
        self.save_maps, self.image_key, self.raters_key = int(save_maps), image_key, raters_key
        extra = ("Dice_gt",) if ground_truth_key else ()
        self.metrics = self.METRICS + extra
        self.per_image = self.PER_IMAGE + extra
        self.reset()

    def reset(self) -> None:
        """Forget every recorded image."""
        self.records: list[dict[str, Any]] = []
        self.maps: list[dict[str, Any]] = []
        self._unc_sums: list[torch.Tensor] = []
        self._var_sums: list[torch.Tensor] = []
        # pooled reliability data: per structure and bin, sum of confidences, of soft labels, and pixel counts
        self._calib = torch.zeros((3, len(self.structures), self.calibration_bins), dtype=torch.float64)

    def attach(self, engine: Engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self.reset())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def __call__(self, engine: Engine) -> None:
        self.iteration_completed(engine)

    def add(
        self,
        prob: torch.Tensor,
        unc: torch.Tensor,
        soft_label: torch.Tensor,
        rater_var: torch.Tensor,
        case_id=None,
        ground_truth: torch.Tensor | None = None,
    ):
        """Record one image.

        Args:
            prob: probability maps (L, *S).
            unc: uncertainty maps (L, *S).
            soft_label: mean of the valid raters (L, *S).
            rater_var: variance of the valid raters (L, *S).
            case_id: identifier written to the per-image table.
            ground_truth: true mask (L, *S) for ``Dice_gt`` (required when ``ground_truth_key`` is set).
        """
        from monai_lexu.metrics import (
            mean_entropy,
            negative_log_likelihood,
            normalized_cross_correlation,
            reliability_curve,
            soft_dice,
            weighted_mean_entropy,
        )

        tensors = [torch.as_tensor(t).detach().float().cpu()[None] for t in (prob, unc, soft_label, rater_var)]
        p, u, s, v = tensors
        if not (p.shape == u.shape == s.shape == v.shape) or p.shape[1] != len(self.structures):
            raise ValueError(
                f"case {case_id}: prob {tuple(p.shape[1:])}, unc {tuple(u.shape[1:])}, soft label {tuple(s.shape[1:])} "
                f"and rater variance {tuple(v.shape[1:])} must all be (L={len(self.structures)}, *S)"
            )
        spatial = tuple(range(2, p.ndim))
        self._unc_sums.append(u.sum(dim=spatial)[0])
        self._var_sums.append(v.sum(dim=spatial)[0])
        ncc = normalized_cross_correlation(u, v)[0]
        dice = soft_dice(p, s)[0]
        nll = negative_log_likelihood(p, s)[0]
        wme = weighted_mean_entropy(p, s)[0]
        me = mean_entropy(p)[0]
        dice_gt = None
        if self.ground_truth_key:
            if ground_truth is None:
                raise ValueError(f"case {case_id}: no ground truth under {self.ground_truth_key!r} for Dice_gt")
            from monai.metrics import compute_dice

            g = torch.as_tensor(ground_truth).detach().float().cpu()[None]
            if g.shape != p.shape:
                raise ValueError(f"case {case_id}: ground truth {tuple(g.shape[1:])} != prob {tuple(p.shape[1:])}")
            dice_gt = compute_dice((p >= 0.5).float(), (g > 0.5).float(), ignore_empty=False)[0]
        curve = reliability_curve(p, s, num_bins=self.calibration_bins)
        counts = curve.counts.double()
        self._calib[0] += torch.nan_to_num(curve.confidence.double()) * counts
        self._calib[1] += torch.nan_to_num(curve.frequency.double()) * counts
        self._calib[2] += counts
        record: dict[str, Any] = {"id": len(self.records) if case_id is None else case_id}
        for i, name in enumerate(self.structures):
            record[f"unc_sum_{name}"] = float(self._unc_sums[-1][i])
            record[f"var_sum_{name}"] = float(self._var_sums[-1][i])
            record[f"NCC_{name}"] = float(ncc[i])
            record[f"soft_dice_{name}"] = float(dice[i])
            record[f"NLL_{name}"] = float(nll[i])
            record[f"WME_{name}"] = float(wme[i])
            record[f"ME_{name}"] = float(me[i])
            if dice_gt is not None:
                record[f"Dice_gt_{name}"] = float(dice_gt[i])
        self.records.append(record)

    def iteration_completed(self, engine: Engine) -> None:
        outputs = engine.state.output if isinstance(engine.state.output, list) else [engine.state.output]
        batches = engine.state.batch if isinstance(engine.state.batch, list) else [None] * len(outputs)
        for out, batch in zip(outputs, batches):
            try:
                case_id = _lookup(self.id_key, out, batch)
            except KeyError:
                case_id = None
            self.add(
                _lookup(self.prob_key, out, batch),
                _lookup(self.unc_key, out, batch),
                _lookup(self.soft_label_key, out, batch),
                _lookup(self.var_key, out, batch),
                case_id=case_id if isinstance(case_id, (str, int)) else None,
                ground_truth=_lookup(self.ground_truth_key, out, batch) if self.ground_truth_key else None,
            )
            if len(self.maps) < self.save_maps:
                self.keep_maps(out, batch, self.records[-1]["id"])

    def keep_maps(self, output: Any, batch: Any, case_id: Any) -> None:
        """Keep one image's maps for figures (2D as they are; 3D: the axial slice with the largest rater variance).

        Stored as float32 numpy arrays: ``image`` (C, H, W), ``raters`` (R_valid, L, H, W), ``prob``, ``unc``,
        ``soft_label``, ``rater_var`` (L, H, W), plus ``id`` and ``slice`` (the slice index along the last axis
        for 3D, -1 for 2D). Missing image/raters are simply not stored.
        """
        import numpy as np

        keys = {
            "prob": self.prob_key,
            "unc": self.unc_key,
            "soft_label": self.soft_label_key,
            "rater_var": self.var_key,
        }
        maps = {k: torch.as_tensor(_lookup(v, output, batch)).detach().float().cpu() for k, v in keys.items()}
        for name, key in (("image", self.image_key), ("raters", self.raters_key)):
            try:
                maps[name] = torch.as_tensor(_lookup(key, output, batch)).detach().float().cpu()
            except KeyError:
                pass
        if "raters" in maps:
            try:
                valid = torch.as_tensor(_lookup("rater_valid", output, batch)).bool().cpu()
                maps["raters"] = maps["raters"][valid]
            except KeyError:
                pass
        index = -1
        if maps["prob"].ndim == 4:  # (L, H, W, D): the axial slice where the raters disagree most
            index = int(maps["rater_var"].sum(dim=(0, 1, 2)).argmax())
            maps = {k: v[..., index] for k, v in maps.items()}
        record = {k: v.numpy().astype(np.float32) for k, v in maps.items()}
        record.update(id=str(case_id), slice=index)
        self.maps.append(record)

    def save_case_maps(self) -> list[Path]:
        """Write every kept image's maps to ``<output_dir>/<prefix>_maps/<id>.npz``; returns the paths."""
        import numpy as np

        folder = self.output_dir / f"{self.prefix}_maps"
        paths = []
        for record in self.maps:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{record['id']}.npz"
            np.savez_compressed(path, **record)
            paths.append(path)
        return paths

    def summary(self) -> dict[str, dict[str, float | list[float]]]:
        """Per metric and structure: SR/DC across images; per-image values (NCC, soft Dice, NLL) as lists."""
        from monai_lexu.metrics import distance_correlation, spearman_correlation

        if not self.records:
            raise RuntimeError("UncertaintyReport saw no image: is the evaluation data loader empty?")
        unc, var = torch.stack(self._unc_sums), torch.stack(self._var_sums)
        enough = len(self.records) >= 3
        sr = spearman_correlation(unc, var) if enough else torch.full((len(self.structures),), float("nan"))
        dc = distance_correlation(unc, var) if enough else torch.full((len(self.structures),), float("nan"))
        conf, freq, counts = self.reliability()
        ece = (torch.nan_to_num((conf - freq).abs()) * counts).sum(-1) / counts.sum(-1).clamp_min(1)
        out: dict[str, dict[str, float | list[float]]] = {}
        for i, name in enumerate(self.structures):
            out[name] = {
                "SR": float(sr[i]),
                "DC": float(dc[i]),
                "ECE": float(ece[i]),
                **{m: [r[f"{m}_{name}"] for r in self.records] for m in self.per_image},
            }
        return out

    def reliability(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pooled reliability data over every pixel seen: mean confidence, observed frequency, counts, each (L, M)."""
        sums_conf, sums_freq, counts = self._calib
        safe = counts.clamp_min(1)
        nan = torch.full_like(counts, float("nan"))
        return torch.where(counts > 0, sums_conf / safe, nan), torch.where(counts > 0, sums_freq / safe, nan), counts

    def completed(self, engine: Engine | None = None) -> dict[str, dict[str, float]]:
        """Compute the summary, write the files, log the table; returns ``{structure: {metric: mean}}``."""
        import numpy as np

        summary = self.summary()
        rows, means, stds = [], {}, {}
        for metric in self.metrics:
            row: dict[str, object] = {"metric": metric}
            for name, values in summary.items():
                v = values[metric]
                if isinstance(v, list):
                    row[name] = mean_std(v)
                    arr = np.asarray(v, dtype=float)
                    finite = arr[np.isfinite(arr)]
                    mean = float(finite.mean()) if finite.size else float("nan")
                    std = float(finite.std()) if finite.size else float("nan")
                else:
                    row[name] = f"{v:.3f}"
                    mean, std = v, float("nan")
                means.setdefault(name, {})[metric] = mean
                stds.setdefault(name, {})[metric] = std
            rows.append(row)
        table = markdown_table(rows, ["metric", *self.structures])
        n = len(self.records)
        text = (
            f"# {self.title}\n\n{n} images. SR/DC: correlation across images of the per-image sums of the "
            "uncertainty map and of the rater variance; NCC: per-image pixel correlation of the two maps; "
            "soft Dice, NLL, WME (predictive entropy weighted by the raters' entropy) and ME against the soft label "
            "(mean ± std over images); ECE pooled over all pixels against the soft label."
            + (" Dice_gt: Dice of prob >= 0.5 against the true mask." if self.ground_truth_key else "")
            + "\n\n"
            + table
        )
        self.output_dir.mkdir(parents=True, exist_ok=True)
        write_markdown(self.output_dir / f"{self.prefix}_summary.md", text)
        write_csv(
            self.output_dir / f"{self.prefix}_summary.csv",
            [{"metric": m, **{s: means[s][m] for s in self.structures}} for m in self.metrics],
        )
        write_csv(self.output_dir / f"{self.prefix}_per_image.csv", self.records)
        plot_reliability_diagram(
            *(t.numpy() for t in self.reliability()),
            self.structures,
            self.output_dir / f"{self.prefix}_reliability.png",
            title=f"{self.title}: reliability against the soft label",
        )
        per_image = {s: {m: v for m, v in values.items() if isinstance(v, list)} for s, values in summary.items()}
        result = {"num_images": n, "mean": means, "std": stds, "per_image": per_image}
        (self.output_dir / f"{self.prefix}.json").write_text(json.dumps(result, indent=2))
        self.save_case_maps()
        logger.info("\n%s", text)
        if engine is not None:
            for s in self.structures:
                for m in self.metrics:
                    engine.state.metrics[f"{m}_{s}"] = means[s][m]
        return means
