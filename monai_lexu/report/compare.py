"""Compare methods from their evaluation outputs: Table 2 of LEXU and Table 1 of Jungo 2018 (Fig. 3 of LEXU is
:func:`monai_lexu.report.plot_method_comparison`, fed by :func:`load_case_maps`).

Every bundle's evaluation writes :class:`monai_lexu.handlers.UncertaintyReport` files: ``<prefix>.json`` (per
structure and metric the mean and std over images and the per-image values) and, with ``save_maps``,
``<prefix>_maps/<id>.npz``. The functions here only read those files (plus, for the cost columns, the bundle
configs), so one comparison serves every method of the shared inference contract.
"""

from __future__ import annotations

import glob
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_lexu.report.tables import finite_mean_std, markdown_table, mean_std, write_csv, write_markdown

__all__ = [
    "TABLE2_METRICS",
    "TABLE1_METRICS",
    "load_evaluation",
    "expand_runs",
    "uncertainty_table",
    "fusion_table",
    "measure_inference_cost",
    "bundle_inference_cost",
    "write_table",
    "load_case_maps",
]

TABLE2_METRICS = ("SR", "DC", "NCC", "soft_dice", "NLL")
"""Columns of LEXU's Table 2 (per structure)."""
TABLE1_METRICS = ("WME", "ME", "Dice_gt")
"""Rows of Jungo et al.'s Table 1 (Dice against the known true mask)."""


def load_evaluation(path: str | Path) -> dict[str, Any]:
    """Read one ``UncertaintyReport`` JSON (``{"num_images", "mean", "std", "per_image"}``).

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: if it is not an evaluation summary (no ``"mean"`` mapping of structure -> metric -> value).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"evaluation file not found: {path}")
    data = json.loads(path.read_text())
    mean = data.get("mean") if isinstance(data, Mapping) else None
    if not isinstance(mean, Mapping) or not mean or not all(isinstance(v, Mapping) for v in mean.values()):
        raise ValueError(f"{path} is not an UncertaintyReport summary (expected a 'mean' {{structure: {{metric}}}}).")
    data["path"] = str(path)
    return dict(data)


def expand_runs(patterns: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Load every evaluation JSON matched by the glob patterns (sorted, duplicates removed).

    Raises:
        FileNotFoundError: if a pattern matches nothing.
    """
    paths: list[str] = []
    for pattern in patterns:
        found = sorted(glob.glob(str(pattern)))
        if not found:
            raise FileNotFoundError(f"no evaluation file matches {pattern}")
        paths.extend(p for p in found if p not in paths)
    return [load_evaluation(p) for p in paths]


def uncertainty_table(
    methods: Mapping[str, Sequence[Mapping[str, Any]]],
    structures: Sequence[str] | None = None,
    metrics: Sequence[str] = TABLE2_METRICS,
    costs: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """LEXU Table 2: per method and structure SR, DC, NCC, soft Dice and NLL as mean ± std over runs (or folds).

    Definition: each run (one evaluation JSON, e.g. one seed or one fold) contributes its per-structure summary
    value (SR/DC computed across that run's images, NCC/soft Dice/NLL averaged over its images); the table shows the
    mean ± population std (ddof 0) of those values over the runs, NaN runs left out and counted. The paper reports
    three runs for LEXU and LE, one for DE (std then shown as 0), and 3-fold CV for HECKTOR. With ``costs``, the
    columns ``params (M)`` and ``s / image`` (see :func:`measure_inference_cost`) are added.

    Args:
        methods: method name -> its runs (dicts from :func:`load_evaluation`), in the table's row order. A method
            with no run but a ``costs`` entry gets a row with its cost only (metric cells "not run").
        structures: structure names; default: those of the first run.
        metrics: metric names (JSON keys).
        costs: method name -> ``{"parameters": int, "seconds_per_image": float}``.

    Returns:
        ``(rows, records)``: Markdown rows (formatted cells) and long-form numeric records
        (method, structure, metric, mean, std, runs).

    Raises:
        ValueError: if a method has no run or a run lacks a structure or metric.
    """
    if not methods:
        raise ValueError("uncertainty_table needs at least one method.")
    evaluated = [runs for runs in methods.values() if runs]
    if not evaluated:
        raise ValueError(f"no method has an evaluation run: {list(methods)}.")
    structures = list(structures or evaluated[0][0]["mean"])
    rows: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    for name, runs in methods.items():
        if not runs and (costs is None or name not in costs):
            raise ValueError(f"method {name!r} has no evaluation run.")
        row: dict[str, Any] = {"method": name, "runs": len(runs)}
        for metric in metrics if runs else ():
            for s in structures:
                values = []
                for run in runs:
                    try:
                        value = run["mean"][s][metric]
                        values.append(float("nan") if value is None else float(value))  # null: n too small
                    except KeyError as e:
                        raise ValueError(f"{run.get('path', name)} has no {metric!r} for structure {s!r}") from e
                m, sd, _ = finite_mean_std(values)
                row[f"{metric} {s}"] = mean_std(values)
                records.append(
                    {"method": name, "structure": s, "metric": metric, "mean": m, "std": sd, "runs": len(runs)}
                )
        if not runs:
            row.update({f"{metric} {s}": "not run" for metric in metrics for s in structures})
        if costs is not None and name in costs:
            row["params (M)"] = f"{costs[name]['parameters'] / 1e6:.3f}"
            row["s / image"] = f"{costs[name]['seconds_per_image']:.4f}"
            for key in ("parameters", "seconds_per_image"):
                records.append(
                    {
                        "method": name,
                        "structure": "",
                        "metric": key,
                        "mean": float(costs[name][key]),
                        "std": 0.0,
                        "runs": 1,
                    }
                )
        rows.append(row)
    return rows, records


def fusion_table(
    runs: Mapping[tuple[str, str], Mapping[str, Any]],
    structure: str | None = None,
    metrics: Sequence[str] = TABLE1_METRICS,
    variant_labels: Mapping[str, str] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Jungo et al. Table 1: WME, ME and Dice per fusion mode (columns) and image variant (rows).

    Definition: cell = mean ± std (ddof 0) over the test images of the run's per-image values (the paper's
    "mean±std" over its synthetic test images); images whose value is NaN (e.g. WME of an image without any rater
    disagreement) are left out and counted. WME/ME are in bits (see :func:`monai_lexu.metrics.weighted_mean_entropy`),
    Dice is ``Dice_gt`` (``prob >= 0.5`` against the true mask).

    Args:
        runs: ``(fusion, variant)`` -> evaluation dict (from :func:`load_evaluation`, with ``per_image``); column and
            row order follow first appearance.
        structure: the structure to tabulate (default: the first).
        metrics: metric names.
        variant_labels: row labels per variant (default: ``U`` for ``unperturbed``, ``P`` for ``perturbed``).

    Returns:
        ``(rows, records)``: Markdown rows (``metric``, ``images``, one column per fusion) and numeric records.
    """
    if not runs:
        raise ValueError("fusion_table needs at least one run.")
    labels = {"unperturbed": "U", "perturbed": "P", **(variant_labels or {})}
    fusions = list(dict.fromkeys(f for f, _ in runs))
    variants = list(dict.fromkeys(v for _, v in runs))
    rows: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    for metric in metrics:
        for variant in variants:
            row: dict[str, Any] = {"metric": metric, "images": labels.get(variant, variant)}
            for fusion in fusions:
                run = runs.get((fusion, variant))
                if run is None:
                    row[fusion] = ""
                    continue
                s = structure or next(iter(run["mean"]))
                per_image = run.get("per_image", {}).get(s, {}).get(metric)
                if per_image is None:
                    raise ValueError(
                        f"{run.get('path', fusion)} has no per-image {metric!r} for {s!r}: evaluate with an "
                        "UncertaintyReport that has ground_truth_key set (for Dice_gt) and a current monai_lexu."
                    )
                m, sd, _ = finite_mean_std(per_image)
                row[fusion] = mean_std(per_image, digits=2)
                records.append(
                    {
                        "fusion": fusion,
                        "variant": variant,
                        "metric": metric,
                        "mean": m,
                        "std": sd,
                        "images": len(per_image),
                    }
                )
            rows.append(row)
    return rows, records


def write_table(
    rows: Sequence[Mapping[str, Any]],
    records: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    name: str,
    title: str,
    caption: str = "",
) -> dict[str, Path]:
    """Write ``<name>.md`` (the formatted table), ``<name>.csv`` and ``<name>.json`` (numeric records)."""
    out_dir = Path(out_dir)
    text = f"# {title}\n\n" + (f"{caption}\n\n" if caption else "") + markdown_table(rows)
    paths = {
        "md": write_markdown(out_dir / f"{name}.md", text),
        "csv": write_csv(out_dir / f"{name}.csv", list(records)),
    }
    paths["json"] = out_dir / f"{name}.json"
    paths["json"].write_text(json.dumps(list(records), indent=2))
    return paths


def measure_inference_cost(
    networks: Mapping[str, Any],
    inferers: Mapping[str, Any],
    input_shape: Sequence[int],
    device: str | None = None,
    repeats: int = 5,
    warmup: int = 1,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Parameters and inference time per image of several methods, measured side by side in one process.

    Every method runs its own inferer (e.g. ``MultiHeadInferer`` or ``MCDropoutInferer``) on the SAME random input
    ``(1, *input_shape)`` in eval mode under ``torch.no_grad``; after ``warmup`` calls per method the ``repeats``
    timed calls are interleaved across methods (round robin), so that machine load affects all methods alike, and
    the median is reported (CUDA is synchronised around every call).

    Args:
        networks: method -> ``torch.nn.Module``.
        inferers: method -> inferer ``inferer(x, network)``.
        input_shape: ``(C, *S)`` of one image.
        device: ``"cuda"``/``"cpu"``; default CUDA when available.
        repeats: timed calls per method.
        warmup: untimed calls per method first.
        seed: seed of the random input.

    Returns:
        method -> ``{"parameters": total parameter count, "seconds_per_image": median seconds, "repeats": n}``.
    """
    import torch

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((1, *[int(s) for s in input_shape]), generator=gen).to(dev)

    def _sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for name, net in networks.items():
        net.to(dev).eval()
        if name not in inferers:
            raise ValueError(f"no inferer for method {name!r}")
    times: dict[str, list[float]] = {name: [] for name in networks}
    with torch.no_grad():
        for name, net in networks.items():
            for _ in range(warmup):
                inferers[name](x, net)
        for _ in range(repeats):
            for name, net in networks.items():
                _sync()
                start = time.perf_counter()
                inferers[name](x, net)
                _sync()
                times[name].append(time.perf_counter() - start)
    return {
        name: {
            "parameters": float(sum(p.numel() for p in net.parameters())),
            "seconds_per_image": float(np.median(times[name])),
            "repeats": float(repeats),
        }
        for name, net in networks.items()
    }


def bundle_inference_cost(
    bundles: Mapping[str, Sequence[str | Path]],
    input_shape: Sequence[int],
    device: str | None = None,
    repeats: int = 5,
    warmup: int = 1,
    inferer_ids: Sequence[str] = ("validate#inferer", "inferer"),
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, float]]:
    """:func:`measure_inference_cost` for bundles: builds each bundle's ``network_def`` and evaluation inferer.

    Only the two config items (and what they reference) are instantiated, so no data set is built or read. Weights
    are random: time and parameter counts do not depend on them. Neither do the coefficients of a calibrated
    ensemble or of calibrated heads (:class:`monai_lexu.inferers.CalibratedEnsembleInferer`, e.g.
    ``calibrated_ensemble_riga``'s ``evaluate.json`` or its ``evaluate_calibrated_heads.json`` after a LEXU bundle's
    configs): when their JSON file is not there (yet), equal coefficients ``1 / K`` stand in, and the cost entry says
    ``"coefficients": "placeholder"``.

    Args:
        bundles: method -> config files of its bundle (e.g. ``[train.json, cpu_small.json]``, merged in order).
        input_shape: ``(C, *S)``.
        device, repeats, warmup: see :func:`measure_inference_cost`.
        inferer_ids: config ids tried in order for the inferer (train.json: ``validate#inferer``; inference.json:
            ``inferer``).
        overrides: method -> config overrides (e.g. ``{"image_size": [128, 128]}``).
    """
    from monai.bundle import ConfigParser

    from monai_lexu.inferers.calibrated import CalibratedEnsembleInferer, equal_coefficients

    networks, inferers, placeholders = {}, {}, set()
    for name, files in bundles.items():
        parser = ConfigParser()
        parser.read_config([str(f) for f in files])
        for key, value in (overrides or {}).get(name, {}).items():
            parser[key] = value
        networks[name] = parser.get_parsed_content("network_def")
        for inferer_id in inferer_ids:
            if inferer_id.split("#")[0] in parser.config and parser.get(inferer_id) is not None:
                inf = parser.get_parsed_content(inferer_id)
                if (
                    isinstance(inf, CalibratedEnsembleInferer)
                    and inf.coefficients_file is not None
                    and not Path(inf.coefficients_file).is_file()
                ):
                    coef = equal_coefficients(inf.num_heads, int(parser.get_parsed_content("num_structures")))
                    inf = CalibratedEnsembleInferer(coef, inf.num_heads, inf.base_inferer, inf.output, inf.mc_samples)
                    placeholders.add(name)
                inferers[name] = inf
                break
        else:
            raise ValueError(f"{name}: none of the inferer ids {list(inferer_ids)} is in {[str(f) for f in files]}")
    costs = measure_inference_cost(networks, inferers, input_shape, device=device, repeats=repeats, warmup=warmup)
    for name in placeholders:
        costs[name]["coefficients"] = "placeholder"  # type: ignore[assignment]
    return costs


def load_case_maps(path: str | Path) -> dict[str, Any]:
    """Read one ``<prefix>_maps/<id>.npz`` written by ``UncertaintyReport(save_maps=...)`` into a dict of arrays."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"case maps not found: {path}")
    with np.load(path) as data:
        maps = {k: data[k] for k in data.files}
    missing = {"prob", "unc", "soft_label", "rater_var"} - set(maps)
    if missing:
        raise ValueError(f"{path} lacks {sorted(missing)}")
    return maps
