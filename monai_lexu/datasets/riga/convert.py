"""RIGA (retinal disc / cup, 6 raters) converter to a multi-rater datalist, with a synthetic fallback.

Input: the preprocessed RIGA release (layout and CSV format in :mod:`~monai_lexu.datasets.riga.format`), or the
RIGA-like synthetic set of :mod:`~monai_lexu.datasets.riga.synthetic` in the same layout.

Output of :func:`convert_riga` (``out_dir``): ``images/<id>.png`` (RGB), ``masks/<id>_r{1..6}.png`` (raw values
kept) and ``datalist.json`` with ``structures = RIGA_STRUCTURES``; case ids are
``<source>_<k:03d>`` (k = 1-based position in the source CSV).

Choices (the lead may quote these):

- Split as in the reference: the training pool is BinRushed then MESSIDOR in CSV order;
  ``torch.utils.data.random_split`` with ``torch.Generator().manual_seed(27)`` and lengths
  ``[int(n * 0.8), n - int(n * 0.8)]`` gives training / validation (real data: 524 / 131, in the order
  ``random_split`` returns). Magrabia is the test set (95 images).
- Resizing: images bilinear, masks NEAREST, to ``size x size``. The reference resizes both with PIL's default
  filter (bicubic for RGB and 'L' images in Pillow >= 7): on masks that creates intermediate values, so its disc
  (``m != 0``) gains a halo and its cup (``m == 255`` after /255) loses edge pixels. NEAREST keeps the raw values.
- No intensity normalisation is stored; the ImageNet mean/std standardisation of the reference belongs in the
  transforms.
- **Bad images** (like the HECKTOR converter): the output folder is checked writable before any work; an image or
  mask that cannot be read (truncated, not an image) fails its case only: the error names the case and the file, is
  logged and listed in ``errors.json`` (``{case id: message}``), and the other images are converted. Each case's PNG
  set is written under temporary names and renamed when the whole set is written, so a failed case leaves no PNG
  (outputs of an earlier run of that case are removed). The split is drawn over ALL cases, failed ones included (so
  fixing one later moves no other case); the failed cases are left out of the datalist, which is written last and
  atomically. No datalist is written when no case could be converted.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai_lexu.data.checks import check_may_generate
from monai_lexu.data.datalist import write_multirater_datalist
from monai_lexu.datasets._io import atomic_write_text, check_writable_dir
from monai_lexu.datasets.riga.format import (
    RIGA_NUM_RATERS,
    RIGA_SOURCES,
    RIGA_STRUCTURES,
    RIGA_TEST_SOURCES,
    RIGA_TRAIN_SOURCES,
    read_riga_csv,
    riga_csv_path,
)

__all__ = ["convert_riga", "ensure_riga_dataset"]

logger = logging.getLogger("monai_lexu")

_TMP_PREFIX = ".tmp-"


def _convert_case(
    cid: str, inputs: list[Path], out_images: Path, out_masks: Path, size: int
) -> tuple[Path, list[Path]]:
    """Resize one image and its masks into temporary PNGs, then rename them all (nothing is left on error)."""
    from PIL import Image

    img_in, *mask_in = inputs
    img_out = out_images / f"{cid}.png"
    mask_out = [out_masks / f"{cid}_r{r}.png" for r in range(1, len(mask_in) + 1)]
    targets = [img_out, *mask_out]
    tmps = [t.with_name(_TMP_PREFIX + t.name) for t in targets]
    try:
        for src, tmp, mode, resample in zip(
            inputs,
            tmps,
            ["RGB"] + ["L"] * len(mask_in),
            [Image.Resampling.BILINEAR] + [Image.Resampling.NEAREST] * len(mask_in),
        ):
            try:
                with Image.open(src) as im:
                    im.convert(mode).resize((size, size), resample).save(tmp, format="PNG")
            except Exception as e:  # PIL's messages rarely name the file
                what = "image" if src == img_in else f"mask of rater {mask_in.index(src) + 1}"
                raise ValueError(
                    f"case {cid!r}: cannot read the {what} {src}: truncated or not a valid image "
                    f"({type(e).__name__}: {e})"
                ) from e
        for tmp, target in zip(tmps, targets):
            os.replace(tmp, target)
    except BaseException:
        for path in tmps + targets:  # a failed case leaves no PNG, not even one of an earlier run
            path.unlink(missing_ok=True)
        raise
    return img_out, mask_out


def _train_val_indices(n: int, seed: int, val_fraction: float) -> tuple[list[int], list[int]]:
    """The reference split: ``random_split`` of ``range(n)`` into ``int(n * (1 - val_fraction))`` and the rest."""
    import torch
    from torch.utils.data import random_split

    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}.")
    n_train = int(n * round(1.0 - val_fraction, 12))
    train, val = random_split(range(n), [n_train, n - n_train], generator=torch.Generator().manual_seed(seed))
    return list(train.indices), list(val.indices)


def convert_riga(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    size: int = 256,
    seed: int = 27,
    val_fraction: float = 0.2,
) -> Path:
    """Convert the preprocessed RIGA release (or :func:`~monai_lexu.datasets.riga.synthetic.write_riga_like` output).

    Reads the three CSVs, resizes images (bilinear) and masks (NEAREST) to ``size x size``, writes PNGs under
    ``out_dir`` and ``out_dir/datalist.json`` (sections ``training`` / ``validation`` from BinRushed + MESSIDOR,
    ``test`` = Magrabia). The input is never modified; ``out_dir`` may equal ``root``. Re-running overwrites the
    outputs with identical files. An unreadable image or mask fails its case only (see the module docstring):
    the others are converted, ``out_dir/errors.json`` lists the failures, and the datalist leaves them out.

    Args:
        root: directory with ``Glaucoma_multirater_{BinRushed,MESSIDOR,Magrabia}.csv``.
        out_dir: output directory (created).
        size: output height and width.
        seed: seed of the train / validation ``random_split`` (reference: 27).
        val_fraction: validation fraction of the training pool (reference: 0.2).

    Returns:
        the path of the written ``datalist.json``.

    Raises:
        PermissionError: if ``out_dir`` cannot be created or written to (checked before any work).
        FileNotFoundError: if a CSV or a file it lists is missing (the message names the file, CSV and line).
        ValueError: on a malformed CSV, an invalid ``size`` / ``val_fraction``, if an input file lies inside
            ``out_dir/images`` or ``out_dir/masks`` (it could be overwritten), or if no case could be converted
            (the errors are in ``errors.json``).
    """
    from tqdm import tqdm

    if size < 1:
        raise ValueError(f"convert_riga: size must be >= 1, got {size}.")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}.")
    root = Path(root).resolve()
    out_dir = Path(out_dir).resolve()
    check_writable_dir(out_dir, "convert_riga: output folder")
    per_source: dict[str, list[tuple[str, list[str]]]] = {}
    for source in RIGA_SOURCES:
        per_source[source] = read_riga_csv(riga_csv_path(root, source))

    out_images, out_masks = out_dir / "images", out_dir / "masks"
    cases: dict[str, dict[str, Any]] = {}
    order: dict[str, list[str]] = {s: [] for s in RIGA_SOURCES}
    for source, entries in per_source.items():
        csv_file = riga_csv_path(root, source)
        for k, (image, masks) in enumerate(entries, start=1):
            cid = f"{source}_{k:03d}"
            line = 2 + (k - 1) * (1 + RIGA_NUM_RATERS)
            inputs = [root / image] + [root / m for m in masks]
            for p in inputs:
                if not p.is_file():
                    raise FileNotFoundError(f"{csv_file} (block at line {line}, case {cid}): file not found: {p}")
                for out_sub in (out_images, out_masks):
                    # compared case-insensitively: "Images" and "images" are one folder on macOS / Windows
                    if any(str(out_sub).lower() == str(q).lower() for q in p.parents):
                        raise ValueError(
                            f"convert_riga: input file {p} lies inside the output folder {out_sub}; "
                            "choose another out_dir so the input is never overwritten."
                        )
            cases[cid] = {"source": source, "source_image": image, "inputs": inputs}
            order[source].append(cid)

    out_images.mkdir(parents=True, exist_ok=True)
    out_masks.mkdir(parents=True, exist_ok=True)
    for folder in (out_images, out_masks):
        for stale in folder.glob(_TMP_PREFIX + "*"):
            stale.unlink()
    entries_out: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for cid, info in tqdm(cases.items(), desc="RIGA -> PNG", unit="img"):
        try:
            img_out, mask_out = _convert_case(cid, info["inputs"], out_images, out_masks, size)
        except Exception as e:  # one bad image must not stop the others
            errors[cid] = str(e) if f"{cid!r}" in str(e) else f"case {cid!r}: {type(e).__name__}: {e}"
            logger.error("RIGA conversion: %s", errors[cid])
            continue
        entries_out[cid] = {
            "id": cid,
            "image": str(img_out),
            "raters": [str(m) for m in mask_out],
            "source": info["source"],
            "source_image": info["source_image"],
        }
    atomic_write_text(out_dir / "errors.json", json.dumps(errors, indent=2) + "\n")
    if errors:
        logger.error(
            "RIGA conversion: %d of %d images failed: %s (details in %s).",
            len(errors),
            len(cases),
            ", ".join(errors),
            out_dir / "errors.json",
        )
    if not entries_out:
        raise ValueError(
            f"convert_riga: no case of {root} could be converted; see {out_dir / 'errors.json'}: "
            + "; ".join(errors.values())[:2000]
        )

    # the split over ALL cases (failed ones included), then the failed ones left out: no other case moves
    pool = [cid for s in RIGA_TRAIN_SOURCES for cid in order[s]]
    train_idx, val_idx = _train_val_indices(len(pool), seed, val_fraction)
    sections = {
        "training": [entries_out[pool[i]] for i in train_idx if pool[i] in entries_out],
        "validation": [entries_out[pool[i]] for i in val_idx if pool[i] in entries_out],
        "test": [entries_out[cid] for s in RIGA_TEST_SOURCES for cid in order[s] if cid in entries_out],
    }
    return write_multirater_datalist(
        out_dir / "datalist.json",
        sections,
        structures=RIGA_STRUCTURES,
        name="riga",
        description=(
            f"RIGA optic disc / cup, {RIGA_NUM_RATERS} raters, converted from {root.name}/ by monai_lexu.datasets.riga."
            f"convert_riga: images bilinear and masks nearest to {size}x{size}; training/validation = random_split "
            f"of BinRushed+MESSIDOR ({1 - val_fraction:.2f}/{val_fraction:.2f}, seed {seed}); test = Magrabia."
        ),
        num_raters=RIGA_NUM_RATERS,
        size=size,
        split_seed=seed,
        val_fraction=val_fraction,
    )


def _has_riga_csvs(directory: Path) -> bool:
    return directory.is_dir() and any(riga_csv_path(directory, s).is_file() for s in RIGA_SOURCES)


def ensure_riga_dataset(
    dataset_dir: str | os.PathLike,
    synthetic_kwargs: Mapping[str, Any] | None = None,
    size: int = 256,
    seed: int = 27,
    val_fraction: float = 0.2,
    make_synthetic: bool = True,
) -> Path:
    """Return a RIGA datalist, converting the real data or generating a synthetic stand-in if needed.

    In order: if ``dataset_dir/datalist.json`` exists it is returned as is; else if ``dataset_dir`` (or
    ``dataset_dir/raw``) holds the RIGA CSVs they are converted into ``dataset_dir``; else, if ``dataset_dir`` is
    missing or empty (or holds only a ``raw`` folder without CSVs), a RIGA-like synthetic set is written to
    ``dataset_dir/raw`` (:func:`~monai_lexu.datasets.riga.synthetic.write_riga_like`), converted into
    ``dataset_dir``, and a WARNING is logged on the ``"monai_lexu"`` logger. Idempotent: later calls find
    ``datalist.json``.

    Args:
        dataset_dir: the data set directory.
        synthetic_kwargs: keyword arguments of ``write_riga_like`` (e.g. ``{"num_per_source": {...}, "size": 64}``).
        size: conversion size (see :func:`convert_riga`).
        seed: split seed (see :func:`convert_riga`).
        val_fraction: validation fraction (see :func:`convert_riga`).
        make_synthetic: whether a missing or empty ``dataset_dir`` may receive a synthetic set (the bundles pass
            :func:`~monai_lexu.data.synthetic_wanted`); if not, it is an error and nothing is created.

    Returns:
        the path of ``dataset_dir/datalist.json``.

    Raises:
        FileNotFoundError: if ``dataset_dir`` holds other files but neither a datalist nor the RIGA CSVs, or if it is
            missing or empty and ``make_synthetic`` is false.
    """
    dataset_dir = Path(dataset_dir)
    datalist = dataset_dir / "datalist.json"
    if datalist.is_file():
        return datalist
    if _has_riga_csvs(dataset_dir):
        return convert_riga(dataset_dir, dataset_dir, size=size, seed=seed, val_fraction=val_fraction)
    raw = dataset_dir / "raw"
    if _has_riga_csvs(raw):
        return convert_riga(raw, dataset_dir, size=size, seed=seed, val_fraction=val_fraction)
    entries = [p.name for p in dataset_dir.iterdir()] if dataset_dir.is_dir() else []
    if any(name != "raw" for name in entries):
        raise FileNotFoundError(
            f"{dataset_dir}: no datalist.json and no Glaucoma_multirater_*.csv (in it or in its 'raw' folder), but the "
            f"folder is not empty ({sorted(entries)[:5]}...). Point to the RIGA release or to an empty folder."
        )
    check_may_generate(dataset_dir, make_synthetic, "Glaucoma_multirater_*.csv or a datalist.json")
    from monai_lexu.datasets.riga.synthetic import write_riga_like

    write_riga_like(raw, **dict(synthetic_kwargs or {}))
    out = convert_riga(raw, dataset_dir, size=size, seed=seed, val_fraction=val_fraction)
    logger.warning(
        "No RIGA data found in %s: generated a SYNTHETIC RIGA-like data set in %s and converted it to %s. "
        "Results on it say nothing about real fundus images; to use real data, point to the folder of the RIGA "
        "release (the one holding Glaucoma_multirater_*.csv) instead.",
        dataset_dir,
        raw,
        out,
    )
    return out
