"""Seeded synthetic multi-observer set of Jungo et al. 2018 (§3.2): generator, files and datalists.

The **Jungo 2018 synthetic multi-observer set** (:func:`make_jungo_sample`, :func:`write_jungo_dataset`), following
§3.2 of Jungo et al., "On the effect of inter-observer variability for a reliable estimation of uncertainty of
medical image segmentation" (MICCAI 2018). The paper gives no code; where it is silent this module decides:

- Image size: not given; default 128 x 128 (``size``). Circle centre: the image centre ``((W-1)/2, (H-1)/2)``.
  Circle radius: ``0.2 * size`` (not given). Chosen so that the largest perturbed point (1.5 r) moved by an
  observer (+0.4 d) stays inside the image (2.1 r = 0.42 size).
- Ground truth: 8 points at angles ``2 pi k / 8`` (k = 0 points to the right, +x), each angle moved by
  U(-15, 15) degrees and its distance set to ``r * U(0.75, 1.5)``; interpolated with a closed cubic B-spline
  (``scipy.interpolate.splprep(s=0, per=1)`` on the points with the first appended, chord-length parameters),
  sampled densely and rasterised by pixel centres (``skimage.draw.polygon``).
- "Three rightmost perimeter points": the three ground-truth points with the largest x (column) coordinate.
- Observer perturbation of each of those points: angle + U(-10, 10) degrees, distance ``d + U(-0.4 d, 0.4 d)``
  with ``d`` the point's distance to the centre (so "+-0.4 d" moves the point radially by up to 40 % of ``d``).
  Each of the 5 observers perturbs independently.
- An interpolating spline is global: re-fitting it through the perturbed points would also move the left side of
  the contour by up to ~7 % of the perturbation (about 1 px). So that disagreement stays on the right as the paper
  intends, an observer contour uses its own spline only on the spline segments that touch a perturbed point and
  the ground-truth spline on all other segments. Both splines pass through the unperturbed points, so the
  contour is closed and continuous.
- Low-entropy (unperturbed) image: ``gt * U(30, 255)``, Gaussian blur with sigma U(2, 8), then additive
  zero-mean Gaussian noise with std ``0.15 * (max(I) - min(I))`` of the blurred image.
- High-entropy (perturbed) image: ``gt * a_0 + sum_i obs_i * a_i`` with every ``a`` ~ U(50, 255), divided by its
  maximum, times U(30, 255), times the gradient ``exp(-lambda * x / (W - 1))`` with lambda ~ U(0.5, 6.5)
  (darker towards the right), Gaussian blur sigma U(2, 8), noise as above.
- Files (:func:`write_jungo_dataset`): images are 8-bit PNGs (float values rounded and clipped to [0, 255];
  the in-memory sample keeps the float32 values), masks are PNGs with values {0, 255}. Default split: the first
  80 % of the samples are ``"training"``, the rest ``"test"`` (samples are i.i.d., so a contiguous split is
  random).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from monai_lexu.data.checks import check_may_generate
from monai_lexu.data.datalist import write_multirater_datalist
from monai_lexu.datasets._draw import as_rng, polar_points, rasterise_polygon
from monai_lexu.datasets.jungo.format import JUNGO_NUM_OBSERVERS, JUNGO_STRUCTURES, JUNGO_VARIANTS

__all__ = ["ensure_jungo_dataset", "make_jungo_sample", "write_jungo_dataset"]

logger = logging.getLogger("monai_lexu")

_NUM_JUNGO_POINTS = 8
_SEGMENT_SAMPLES = 64


def _fit_closed_spline(points: np.ndarray) -> tuple[Any, np.ndarray]:
    """Closed cubic interpolating B-spline through ``points`` (N, 2) as (x, y); returns (tck, knot params (N+1,))."""
    from scipy.interpolate import splprep

    x = np.append(points[:, 0], points[0, 0])
    y = np.append(points[:, 1], points[0, 1])
    tck, u = splprep([x, y], s=0, per=1, k=3)
    return tck, u


def _sample_segment(tck: Any, u: np.ndarray, j: int, num: int) -> np.ndarray:
    """Sample spline segment ``j`` (from knot j to knot j+1), excluding its end; returns (num, 2) as (x, y)."""
    from scipy.interpolate import splev

    t = np.linspace(u[j], u[j + 1], num, endpoint=False)
    x, y = splev(t, tck)
    return np.stack([np.asarray(x), np.asarray(y)], axis=1)


def _blur_and_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur with sigma U(2, 8), then zero-mean Gaussian noise with std 0.15 * (max - min)."""
    from scipy.ndimage import gaussian_filter

    image = gaussian_filter(image, sigma=rng.uniform(2.0, 8.0))
    std = 0.15 * float(image.max() - image.min())
    return (image + rng.normal(0.0, std, size=image.shape)).astype(np.float32)


def make_jungo_sample(rng: np.random.Generator | int | None, size: int = 128) -> dict[str, np.ndarray]:
    """One sample of the Jungo et al. 2018 synthetic multi-observer set (§3.2; interpretations in the module doc).

    Args:
        rng: a numpy Generator (advanced in place) or a seed.
        size: image height and width in pixels.

    Returns:
        dict with
        ``"gt"`` (H, W) uint8 in {0, 1};
        ``"observers"`` (5, H, W) uint8 in {0, 1};
        ``"image_unperturbed"`` (H, W) float32, the low-entropy image;
        ``"image_perturbed"`` (H, W) float32, the high-entropy image;
        ``"points"`` (8, 2) float64, the ground-truth perimeter points as (x, y);
        ``"observer_points"`` (5, 8, 2) float64;
        ``"perturbed_indices"`` (3,) int64, indices of the three rightmost points;
        ``"centre"`` (2,) float64, the circle centre as (x, y).

    Raises:
        ValueError: if ``size`` < 16.
    """
    if size < 16:
        raise ValueError(f"make_jungo_sample: size must be >= 16, got {size}.")
    rng = as_rng(rng)
    shape = (size, size)
    centre = np.array([(size - 1) / 2.0, (size - 1) / 2.0])
    radius = 0.2 * size

    n = _NUM_JUNGO_POINTS
    angles = 2.0 * np.pi * np.arange(n) / n + np.deg2rad(rng.uniform(-15.0, 15.0, n))
    dists = radius * rng.uniform(0.75, 1.5, n)
    points = polar_points(centre, angles, dists)
    tck, u = _fit_closed_spline(points)
    gt_segments = [_sample_segment(tck, u, j, _SEGMENT_SAMPLES) for j in range(n)]
    gt = rasterise_polygon(np.concatenate(gt_segments), shape)

    rightmost = np.sort(np.argsort(points[:, 0])[-3:])
    observers = np.zeros((JUNGO_NUM_OBSERVERS, *shape), dtype=np.uint8)
    observer_points = np.repeat(points[None], JUNGO_NUM_OBSERVERS, axis=0)
    for o in range(JUNGO_NUM_OBSERVERS):
        obs_angles = angles.copy()
        obs_dists = dists.copy()
        obs_angles[rightmost] += np.deg2rad(rng.uniform(-10.0, 10.0, 3))
        obs_dists[rightmost] += rng.uniform(-0.4, 0.4, 3) * dists[rightmost]
        pts = polar_points(centre, obs_angles, obs_dists)
        observer_points[o] = pts
        o_tck, o_u = _fit_closed_spline(pts)
        segments = []
        for j in range(n):
            touches = j in rightmost or (j + 1) % n in rightmost
            segments.append(_sample_segment(o_tck, o_u, j, _SEGMENT_SAMPLES) if touches else gt_segments[j])
        observers[o] = rasterise_polygon(np.concatenate(segments), shape)

    gt_f = gt.astype(np.float64)
    unperturbed = _blur_and_noise(gt_f * rng.uniform(30.0, 255.0), rng)

    summed = gt_f * rng.uniform(50.0, 255.0)
    for o in range(JUNGO_NUM_OBSERVERS):
        summed = summed + observers[o].astype(np.float64) * rng.uniform(50.0, 255.0)
    summed = summed / summed.max() * rng.uniform(30.0, 255.0)
    decay = rng.uniform(0.5, 6.5)
    summed = summed * np.exp(-decay * np.arange(size) / (size - 1))[None, :]
    perturbed = _blur_and_noise(summed, rng)

    return {
        "gt": gt.astype(np.uint8),
        "observers": observers,
        "image_unperturbed": unperturbed,
        "image_perturbed": perturbed,
        "points": points,
        "observer_points": observer_points,
        "perturbed_indices": rightmost.astype(np.int64),
        "centre": centre,
    }


def _split_counts(num: int, splits: Mapping[str, float]) -> dict[str, int]:
    fractions = np.array([float(v) for v in splits.values()])
    if len(fractions) == 0 or np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"splits must be non-negative fractions that sum to 1, got {dict(splits)}.")
    bounds = np.rint(np.cumsum(fractions) * num).astype(int)
    bounds[-1] = num
    counts = np.diff(np.concatenate([[0], bounds]))
    return dict(zip(splits.keys(), counts.tolist()))


def _save_gray_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8)).save(path)


def write_jungo_dataset(
    out_dir: str | os.PathLike,
    num_samples: int = 100,
    size: int = 128,
    seed: int = 0,
    splits: Mapping[str, float] | None = None,
) -> Path:
    """Write the Jungo 2018 synthetic set as PNGs plus one datalist per image variant.

    Layout under ``out_dir``: ``images_unperturbed/jungo_XXX.png``, ``images_perturbed/jungo_XXX.png``,
    ``masks/jungo_XXX_gt.png``, ``masks/jungo_XXX_obs{1..5}.png``, and the datalists
    ``datalist_unperturbed.json`` and ``datalist_perturbed.json`` (structures :data:`JUNGO_STRUCTURES`; each case
    also has ``"ground_truth"``, the true mask).

    Args:
        out_dir: output directory (created).
        num_samples: number of samples (the paper used 100).
        size: image height and width.
        seed: seed of the numpy Generator; the same seed gives the same files.
        splits: ordered ``section -> fraction`` (fractions sum to 1); consecutive samples fill the sections in order.
            Default ``{"training": 0.8, "test": 0.2}``.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ValueError: if ``num_samples`` < 1 or ``splits`` is invalid.
    """
    if num_samples < 1:
        raise ValueError(f"write_jungo_dataset: num_samples must be >= 1, got {num_samples}.")
    splits = {"training": 0.8, "test": 0.2} if splits is None else dict(splits)
    counts = _split_counts(num_samples, splits)
    out = Path(out_dir).resolve()  # absolute: the datalist stores paths relative to itself
    for sub in ("images_unperturbed", "images_perturbed", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cases: dict[str, list[dict[str, Any]]] = {"unperturbed": [], "perturbed": []}
    for i in range(num_samples):
        sample = make_jungo_sample(rng, size=size)
        cid = f"jungo_{i:03d}"
        gt_path = out / "masks" / f"{cid}_gt.png"
        _save_gray_png(sample["gt"] * 255.0, gt_path)
        rater_paths = []
        for o in range(sample["observers"].shape[0]):
            p = out / "masks" / f"{cid}_obs{o + 1}.png"
            _save_gray_png(sample["observers"][o] * 255.0, p)
            rater_paths.append(str(p))
        for variant in ("unperturbed", "perturbed"):
            img_path = out / f"images_{variant}" / f"{cid}.png"
            _save_gray_png(sample[f"image_{variant}"], img_path)
            cases[variant].append(
                {"id": cid, "image": str(img_path), "raters": rater_paths, "ground_truth": str(gt_path)}
            )
    for variant, variant_cases in cases.items():
        sections: dict[str, list[dict[str, Any]]] = {}
        start = 0
        for section, count in counts.items():
            sections[section] = variant_cases[start : start + count]
            start += count
        write_multirater_datalist(
            out / f"datalist_{variant}.json",
            sections,
            structures=JUNGO_STRUCTURES,
            name=f"jungo2018_synthetic_{variant}",
            description=(
                f"Synthetic multi-observer set of Jungo et al. 2018 (sec. 3.2), {variant} "
                f"({'high' if variant == 'perturbed' else 'low'}-entropy) images, {JUNGO_NUM_OBSERVERS} observers, "
                f"{num_samples} samples of {size}x{size}, seed {seed}. Generated by monai_lexu.datasets.jungo."
            ),
            seed=seed,
            size=size,
        )
    return out


def ensure_jungo_dataset(
    dataset_dir: str | os.PathLike,
    variant: str = "unperturbed",
    synthetic_kwargs: Mapping[str, Any] | None = None,
    make_synthetic: bool = True,
) -> Path:
    """Return the datalist of one image variant of the Jungo set in ``dataset_dir``, writing the set if needed.

    If ``dataset_dir/datalist_<variant>.json`` exists it is returned as is; else, if ``dataset_dir`` is missing or
    empty, :func:`write_jungo_dataset` writes the set there (``synthetic_kwargs``: its ``num_samples``, ``size``,
    ``seed``, ``splits``) and an INFO message is logged. Both variants share the masks, so they are written together.

    Args:
        dataset_dir: the data set directory.
        variant: ``"unperturbed"`` or ``"perturbed"``.
        synthetic_kwargs: keyword arguments of :func:`write_jungo_dataset`.
        make_synthetic: whether a missing or empty ``dataset_dir`` may receive the set (the bundle passes
            :func:`~monai_lexu.data.synthetic_wanted`); if not, it is an error and nothing is created.

    Returns:
        the path of ``dataset_dir/datalist_<variant>.json``.

    Raises:
        ValueError: on an unknown variant.
        FileNotFoundError: if ``dataset_dir`` holds other files but not the datalist, or if it is missing or empty
            and ``make_synthetic`` is false.
    """
    if variant not in JUNGO_VARIANTS:
        raise ValueError(f"variant must be one of {JUNGO_VARIANTS}, got {variant!r}.")
    dataset_dir = Path(dataset_dir)
    datalist = dataset_dir / f"datalist_{variant}.json"
    if datalist.is_file():
        return datalist
    if dataset_dir.is_dir() and any(dataset_dir.iterdir()):
        raise FileNotFoundError(
            f"{dataset_dir} is not empty but has no {datalist.name}: point dataset_dir to an empty folder (the Jungo "
            "set is then generated) or to the output of `python -m data_prep.synthetic jungo --out DIR`."
        )
    check_may_generate(dataset_dir, make_synthetic, datalist.name)
    kwargs = dict(synthetic_kwargs or {})
    logger.info(
        "writing the Jungo et al. 2018 synthetic multi-observer set to %s (%s)", dataset_dir, kwargs or "defaults"
    )
    write_jungo_dataset(dataset_dir, **kwargs)
    return datalist
