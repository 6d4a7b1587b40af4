"""Seeded synthetic multi-rater data sets: Jungo et al. 2018 (§3.2) and a RIGA-like fundus disc/cup set.

**Jungo 2018 synthetic multi-observer set** (:func:`make_jungo_sample`, :func:`write_jungo_dataset`), following
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

**RIGA-like set** (:func:`make_riga_like_sample`, :func:`write_riga_like`): RGB fundus-like crops (dark orange
background, brighter optic disc, brighter cup inside it, vessels and noise) with 6 raters. A latent difficulty
``d`` ~ U(0, 1) per image controls both how visible the boundaries are (cup contrast falls to 15 % and its edge
blur grows to ~6 % of the image size as ``d`` goes to 1; the disc edge is affected less) and how far the raters'
contours spread (relative radius spread 0.035 + 0.26 d for the cup, 0.012 + 0.045 d for the disc; each rater
draws its own scale offset, low-order shape harmonics and centre shift). Disagreement is thus predictable from the
image and varies strongly between images; the cup is always inside the disc (the cup mask is clipped to the disc
eroded by 1 px). :func:`write_riga_like` also draws one systematic size offset per rater (N(0, 0.5) in spread
units) for the whole set and tints each source slightly (a mild domain shift for the Magrabia test set). The
defaults give inter-rater Dice of about 0.95 (disc) and 0.8 (cup), as in the real RIGA
(LEXU Table 1: 0.954 and 0.789). Written in the layout of the preprocessed RIGA release read by the official
LEXU code (see :func:`write_riga_like`), so :func:`monai_lexu.data.riga.convert_riga` reads it like the real one.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_lexu.data.datalist import write_multirater_datalist

__all__ = [
    "RIGA_CSV_HEADER",
    "RIGA_MASK_VALUES",
    "JUNGO_VARIANTS",
    "ensure_jungo_dataset",
    "make_jungo_sample",
    "make_riga_like_sample",
    "write_jungo_dataset",
    "write_riga_like",
]

RIGA_MASK_VALUES: dict[str, int] = {"background": 0, "rim": 150, "cup": 255}
"""Raw mask values of the RIGA release: background 0, disc outside the cup 150, cup 255 (disc = non-zero)."""

RIGA_CSV_HEADER: tuple[str, ...] = (
    "",
    "imgName",
    "maskName",
    "label",
    "center",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "width",
    "height",
    "discFlag",
    "rater",
)
"""Header of ``Glaucoma_multirater_<source>.csv`` (a pandas ``to_csv`` with its unnamed index column)."""

_RIGA_SUBFOLDERS: dict[str, tuple[str, ...]] = {
    "BinRushed": ("BinRushed1", "BinRushed2", "BinRushed3", "BinRushed4"),
    "MESSIDOR": ("",),
    "Magrabia": ("MagrabiaMale", "MagrabiFemale"),
}
_RIGA_TINT: dict[str, tuple[float, float, float]] = {
    "BinRushed": (1.0, 1.0, 1.0),
    "MESSIDOR": (1.06, 0.95, 0.9),
    "Magrabia": (0.92, 1.02, 1.12),
}
_NUM_JUNGO_POINTS = 8
_NUM_JUNGO_OBSERVERS = 5
_SEGMENT_SAMPLES = 64


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


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


def _rasterise(polygon_xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Fill a closed polygon (M, 2) given as (x=column, y=row) by pixel centres; returns a bool (H, W) mask."""
    from skimage.draw import polygon

    mask = np.zeros(shape, dtype=bool)
    rr, cc = polygon(polygon_xy[:, 1], polygon_xy[:, 0], shape=shape)
    mask[rr, cc] = True
    return mask


def _polar_points(centre: np.ndarray, angles: np.ndarray, dists: np.ndarray) -> np.ndarray:
    """Points (N, 2) as (x, y) in image coordinates; angle 0 points to +x, positive angles go up (-y)."""
    return np.stack([centre[0] + dists * np.cos(angles), centre[1] - dists * np.sin(angles)], axis=1)


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
    rng = _as_rng(rng)
    shape = (size, size)
    centre = np.array([(size - 1) / 2.0, (size - 1) / 2.0])
    radius = 0.2 * size

    n = _NUM_JUNGO_POINTS
    angles = 2.0 * np.pi * np.arange(n) / n + np.deg2rad(rng.uniform(-15.0, 15.0, n))
    dists = radius * rng.uniform(0.75, 1.5, n)
    points = _polar_points(centre, angles, dists)
    tck, u = _fit_closed_spline(points)
    gt_segments = [_sample_segment(tck, u, j, _SEGMENT_SAMPLES) for j in range(n)]
    gt = _rasterise(np.concatenate(gt_segments), shape)

    rightmost = np.sort(np.argsort(points[:, 0])[-3:])
    observers = np.zeros((_NUM_JUNGO_OBSERVERS, *shape), dtype=np.uint8)
    observer_points = np.repeat(points[None], _NUM_JUNGO_OBSERVERS, axis=0)
    for o in range(_NUM_JUNGO_OBSERVERS):
        obs_angles = angles.copy()
        obs_dists = dists.copy()
        obs_angles[rightmost] += np.deg2rad(rng.uniform(-10.0, 10.0, 3))
        obs_dists[rightmost] += rng.uniform(-0.4, 0.4, 3) * dists[rightmost]
        pts = _polar_points(centre, obs_angles, obs_dists)
        observer_points[o] = pts
        o_tck, o_u = _fit_closed_spline(pts)
        segments = []
        for j in range(n):
            touches = j in rightmost or (j + 1) % n in rightmost
            segments.append(_sample_segment(o_tck, o_u, j, _SEGMENT_SAMPLES) if touches else gt_segments[j])
        observers[o] = _rasterise(np.concatenate(segments), shape)

    gt_f = gt.astype(np.float64)
    unperturbed = _blur_and_noise(gt_f * rng.uniform(30.0, 255.0), rng)

    summed = gt_f * rng.uniform(50.0, 255.0)
    for o in range(_NUM_JUNGO_OBSERVERS):
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
    ``datalist_unperturbed.json`` and ``datalist_perturbed.json`` (structures ``{"object": "nonzero"}``; each case
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
            structures={"object": "nonzero"},
            name=f"jungo2018_synthetic_{variant}",
            description=(
                f"Synthetic multi-observer set of Jungo et al. 2018 (sec. 3.2), {variant} "
                f"({'high' if variant == 'perturbed' else 'low'}-entropy) images, 5 observers, "
                f"{num_samples} samples of {size}x{size}, seed {seed}. Generated by monai_lexu.data.synthetic."
            ),
            seed=seed,
            size=size,
        )
    return out


JUNGO_VARIANTS = ("unperturbed", "perturbed")
"""Image variants of the Jungo set: low-entropy (crisp edges) and high-entropy (observer-summed, graded) images."""


def ensure_jungo_dataset(
    dataset_dir: str | os.PathLike, variant: str = "unperturbed", synthetic_kwargs: Mapping[str, Any] | None = None
) -> Path:
    """Return the datalist of one image variant of the Jungo set in ``dataset_dir``, writing the set if needed.

    If ``dataset_dir/datalist_<variant>.json`` exists it is returned as is; else, if ``dataset_dir`` is missing or
    empty, :func:`write_jungo_dataset` writes the set there (``synthetic_kwargs``: its ``num_samples``, ``size``,
    ``seed``, ``splits``) and an INFO message is logged. Both variants share the masks, so they are written together.

    Args:
        dataset_dir: the data set directory.
        variant: ``"unperturbed"`` or ``"perturbed"``.
        synthetic_kwargs: keyword arguments of :func:`write_jungo_dataset`.

    Returns:
        the path of ``dataset_dir/datalist_<variant>.json``.

    Raises:
        ValueError: on an unknown variant.
        FileNotFoundError: if ``dataset_dir`` holds other files but not the datalist.
    """
    import logging

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
    kwargs = dict(synthetic_kwargs or {})
    logging.getLogger("monai_lexu").info(
        "writing the Jungo et al. 2018 synthetic multi-observer set to %s (%s)", dataset_dir, kwargs or "defaults"
    )
    write_jungo_dataset(dataset_dir, **kwargs)
    return datalist


# ----------------------------------------------------------------------------------------------------------------
# RIGA-like fundus disc / cup set
# ----------------------------------------------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _shape_radius(theta: np.ndarray, base: float, harmonics: Sequence[tuple[int, float, float]]) -> np.ndarray:
    """Radius ``base * (1 + sum_k a_k cos(k (theta - phi_k)))`` for harmonics given as (k, a_k, phi_k)."""
    r = np.ones_like(theta)
    for k, a, phi in harmonics:
        r = r + a * np.cos(k * (theta - phi))
    return base * r


def _contour(centre: np.ndarray, radius_fn: Any, num: int = 256) -> np.ndarray:
    theta = np.linspace(0.0, 2.0 * np.pi, num, endpoint=False)
    return _polar_points(centre, theta, radius_fn(theta))


def _soft_region(shape: tuple[int, int], centre: np.ndarray, radius_fn: Any, width: float) -> np.ndarray:
    """Soft membership in [0, 1] of a star-shaped region: sigmoid of (radius(theta) - rho) / width."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    dx = xx - centre[0]
    dy = centre[1] - yy
    rho = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx)
    return _sigmoid((radius_fn(theta) - rho) / max(width, 1e-3))


def _rater_radius_fn(rng: np.random.Generator, base_fn: Any, spread: float, bias: float) -> tuple[Any, np.ndarray]:
    """A rater's version of a contour: relative radius change ``spread * (bias + noise + harmonics)``."""
    offset = bias + rng.normal(0.0, 1.0)
    harmonics = [(k, rng.normal(0.0, 0.5 / k), rng.uniform(0.0, 2.0 * np.pi)) for k in (1, 2, 3)]
    shift = rng.normal(0.0, 0.3, 2)

    def fn(theta: np.ndarray) -> np.ndarray:
        rel = offset + sum(a * np.cos(k * (theta - phi)) for k, a, phi in harmonics)
        return base_fn(theta) * np.clip(1.0 + spread * rel, 0.5, 1.6)

    return fn, shift


def _draw_vessels(rng: np.random.Generator, size: int, centre: np.ndarray, scale: float) -> np.ndarray:
    """A soft vessel map in [0, 1]: a few smooth random walks leaving the disc centre."""
    from PIL import Image, ImageDraw
    from scipy.ndimage import gaussian_filter

    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(4, 8))):
        direction = rng.uniform(0.0, 2.0 * np.pi)
        pos = centre + rng.normal(0.0, 0.03 * size, 2)
        width = max(1, int(round(rng.uniform(1.5, 4.0) * scale)))
        pts = [tuple(pos)]
        for _ in range(24):
            direction += rng.normal(0.0, 0.15)
            pos = pos + 0.04 * size * np.array([np.cos(direction), -np.sin(direction)])
            pts.append(tuple(pos))
        draw.line(pts, fill=255, width=width)
    return gaussian_filter(np.asarray(canvas, dtype=np.float64) / 255.0, sigma=0.8 * scale)


def make_riga_like_sample(
    rng: np.random.Generator | int | None,
    size: int = 256,
    difficulty: float | None = None,
    num_raters: int = 6,
    rater_bias: Sequence[float] | None = None,
    tint: Sequence[float] = (1.0, 1.0, 1.0),
) -> dict[str, Any]:
    """One RIGA-like fundus crop with nested disc / cup and ``num_raters`` disagreeing raters.

    Args:
        rng: a numpy Generator (advanced in place) or a seed.
        size: image height and width.
        difficulty: latent difficulty ``d`` in [0, 1]; drawn U(0, 1) if None. Higher ``d``: fainter, blurrier cup
            (and, less so, disc) boundary in the image and a larger spread of the raters' contours.
        num_raters: number of raters.
        rater_bias: per-rater systematic relative size offset (in units of the spread), length ``num_raters``;
            zeros if None.
        tint: RGB multiplier of the background colour (used to give each source a slightly different look).

    Returns:
        dict with ``"image"`` (H, W, 3) uint8 RGB; ``"disc"`` and ``"cup"`` (R, H, W) bool rater masks (cup inside
        disc); ``"true_disc"`` and ``"true_cup"`` (H, W) bool, the contours the raters perturb; ``"difficulty"``
        float.

    Raises:
        ValueError: if ``difficulty`` is outside [0, 1], ``size`` < 32, ``num_raters`` < 1 or ``rater_bias`` has the
            wrong length.
    """
    from scipy.ndimage import binary_erosion, gaussian_filter

    if size < 32:
        raise ValueError(f"make_riga_like_sample: size must be >= 32, got {size}.")
    if num_raters < 1:
        raise ValueError(f"make_riga_like_sample: num_raters must be >= 1, got {num_raters}.")
    rng = _as_rng(rng)
    d = float(rng.uniform(0.0, 1.0)) if difficulty is None else float(difficulty)
    if not 0.0 <= d <= 1.0:
        raise ValueError(f"make_riga_like_sample: difficulty must be in [0, 1], got {difficulty}.")
    bias = np.zeros(num_raters) if rater_bias is None else np.asarray(rater_bias, dtype=np.float64)
    if bias.shape != (num_raters,):
        raise ValueError(f"make_riga_like_sample: rater_bias must have length {num_raters}, got shape {bias.shape}.")
    shape = (size, size)
    scale = size / 256.0

    # geometry of the true disc and cup
    disc_centre = np.full(2, (size - 1) / 2.0) + rng.normal(0.0, 0.03 * size, 2)
    disc_r = rng.uniform(0.22, 0.30) * size
    disc_h = [(2, rng.uniform(0.0, 0.08), np.pi / 2 + rng.normal(0.0, 0.3))]
    disc_h += [(k, rng.normal(0.0, 0.015), rng.uniform(0.0, 2.0 * np.pi)) for k in (3, 4)]
    cup_centre = disc_centre + np.array([rng.uniform(-0.1, 0.1), rng.uniform(-0.05, 0.05)]) * disc_r
    cup_ratio = rng.uniform(0.35, 0.65)
    cup_h = [(2, rng.uniform(0.0, 0.08), np.pi / 2 + rng.normal(0.0, 0.3))]
    cup_h += [(k, rng.normal(0.0, 0.02), rng.uniform(0.0, 2.0 * np.pi)) for k in (3, 4)]

    def disc_fn(theta: np.ndarray) -> np.ndarray:
        return _shape_radius(theta, disc_r, disc_h)

    def cup_fn(theta: np.ndarray) -> np.ndarray:
        return _shape_radius(theta, cup_ratio * disc_r, cup_h)

    true_disc = _rasterise(_contour(disc_centre, disc_fn), shape)
    true_cup = _rasterise(_contour(cup_centre, cup_fn), shape) & binary_erosion(true_disc, iterations=2)

    # raters: spread grows with the difficulty, much more for the cup
    disc_spread = 0.012 + 0.045 * d
    cup_spread = 0.035 + 0.26 * d
    discs = np.zeros((num_raters, *shape), dtype=bool)
    cups = np.zeros((num_raters, *shape), dtype=bool)
    for r in range(num_raters):
        fn_d, shift_d = _rater_radius_fn(rng, disc_fn, disc_spread, bias[r])
        fn_c, shift_c = _rater_radius_fn(rng, cup_fn, cup_spread, bias[r])
        discs[r] = _rasterise(_contour(disc_centre + shift_d * disc_spread * disc_r, fn_d), shape)
        cup = _rasterise(_contour(cup_centre + shift_c * cup_spread * cup_ratio * disc_r, fn_c), shape)
        cups[r] = cup & binary_erosion(discs[r], iterations=1)

    # appearance: boundary contrast falls and boundary blur grows with the difficulty
    disc_soft = _soft_region(shape, disc_centre, disc_fn, (0.7 + 3.0 * d) * scale)
    cup_soft = _soft_region(shape, cup_centre, cup_fn, (0.7 + 15.0 * d) * scale)
    brightness = rng.uniform(0.85, 1.15)
    background = np.array([150.0, 58.0, 22.0]) * np.asarray(tint, dtype=np.float64) * brightness
    field = gaussian_filter(rng.normal(0.0, 1.0, shape), sigma=size / 8.0)
    field = field / (np.abs(field).max() + 1e-8)
    yy, xx = np.mgrid[0:size, 0:size]
    vignette = 1.0 - 0.25 * (np.hypot(xx - disc_centre[0], yy - disc_centre[1]) / size) ** 2
    image = background[None, None, :] * (vignette * (1.0 + 0.1 * field))[..., None]
    disc_colour = np.array([75.0, 80.0, 45.0]) * (1.0 - 0.35 * d)
    cup_colour = np.array([30.0, 60.0, 65.0]) * (1.0 - 0.85 * d)
    image = image + disc_soft[..., None] * disc_colour + cup_soft[..., None] * cup_colour
    vessels = _draw_vessels(rng, size, disc_centre, scale)
    image = image * (1.0 - 0.45 * vessels[..., None])
    image = gaussian_filter(image, sigma=(0.6 * scale, 0.6 * scale, 0.0))
    image = image + rng.normal(0.0, 2.0 + 5.0 * d, image.shape)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)

    return {
        "image": image,
        "disc": discs,
        "cup": cups,
        "true_disc": true_disc,
        "true_cup": true_cup,
        "difficulty": d,
    }


def _label_map(disc: np.ndarray, cup: np.ndarray) -> np.ndarray:
    """RIGA label image (H, W) uint8: 0 background, 150 disc outside the cup, 255 cup."""
    out = np.zeros(disc.shape, dtype=np.uint8)
    out[disc] = RIGA_MASK_VALUES["rim"]
    out[cup] = RIGA_MASK_VALUES["cup"]
    return out


def write_riga_like(
    root: str | os.PathLike,
    num_per_source: Mapping[str, int] | None = None,
    size: int = 256,
    seed: int = 0,
) -> Path:
    """Write a RIGA-like synthetic set in the layout of the preprocessed RIGA release read by the LEXU code.

    Layout (inferred from the readers in ``Katalip/grader_soup`` ``dataset/DiscRegion.py`` and the MRNet-family
    loaders; paths in the CSVs use Windows ``\\`` separators, which every reader replaces by ``/``)::

        root/Glaucoma_multirater_{BinRushed,MESSIDOR,Magrabia}.csv
        root/DiscCrop/BinRushed/BinRushed1/image1.tif          (RGB image)
        root/FinalLabel/BinRushed/BinRushed1/image1.tif        (majority vote of the 6 raters)
        root/Rater{1..6}/BinRushed/BinRushed1/image1.tif       (one mask per rater, values {0, 150, 255})
        root/synthetic_latents.csv, root/SYNTHETIC_DATA.txt   (difficulty per image; a note that data are fake)

    Sub-folders as in the raw RIGA: BinRushed1..4, MESSIDOR flat, MagrabiaMale / MagrabiFemale. Each CSV has the
    header ``,imgName,maskName,label,center,xmin,ymin,xmax,ymax,width,height,discFlag,rater`` (a pandas index column
    first) and 7 rows per image: rater 0 (``FinalLabel`` mask) then raters 1..6; ``imgName`` repeats on all 7 rows.
    The official reader takes the image from column 1 of the first row of each block and the masks from column 2
    of the next 6. ``label`` (glaucoma label, unknown here) is 0, ``center`` the source, ``xmin..ymax`` the bounding
    box of the final-label disc, ``width/height`` the image size, ``discFlag`` 0 (already a disc crop). The name of
    the image folder (``DiscCrop``) and the ``.tif`` image type are assumptions: the real values are not visible in any
    public code.

    Args:
        root: output directory (created).
        num_per_source: images per source; default ``{"BinRushed": 40, "MESSIDOR": 60, "Magrabia": 30}``.
            Other source names are accepted (flat layout, no tint).
        size: image height and width.
        seed: seed of the numpy Generator; the same seed gives the same files.

    Returns:
        ``root`` as a Path.

    Raises:
        ValueError: if a count is negative.
    """
    from PIL import Image

    counts = {"BinRushed": 40, "MESSIDOR": 60, "Magrabia": 30} if num_per_source is None else dict(num_per_source)
    for source, count in counts.items():
        if int(count) < 0:
            raise ValueError(f"write_riga_like: the number of images for {source!r} must be >= 0, got {count}.")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    num_raters = 6
    rater_bias = rng.normal(0.0, 0.5, num_raters)
    latents: list[tuple[str, str, float]] = []
    for source, count in counts.items():
        subfolders = _RIGA_SUBFOLDERS.get(source, ("",))
        per_folder = np.array_split(np.arange(int(count)), len(subfolders))
        rows: list[list[Any]] = []
        for sub, indices in zip(subfolders, per_folder):
            for k in range(len(indices)):
                rel_dir = [source] + ([sub] if sub else [])
                name = f"image{k + 1}.tif"
                sample = make_riga_like_sample(
                    rng, size=size, rater_bias=rater_bias, tint=_RIGA_TINT.get(source, (1.0, 1.0, 1.0))
                )
                img_rel = ["DiscCrop", *rel_dir, name]
                _write_tif(Image.fromarray(sample["image"]), root.joinpath(*img_rel))
                votes_disc = sample["disc"].sum(0) * 2 > num_raters
                votes_cup = (sample["cup"].sum(0) * 2 > num_raters) & votes_disc
                masks = [_label_map(votes_disc, votes_cup)]
                masks += [_label_map(sample["disc"][r], sample["cup"][r]) for r in range(num_raters)]
                ys, xs = np.nonzero(votes_disc)
                bbox = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())] if xs.size else [0, 0, 0, 0]
                for r, mask in enumerate(masks):
                    mask_rel = ["FinalLabel" if r == 0 else f"Rater{r}", *rel_dir, name]
                    _write_tif(Image.fromarray(mask), root.joinpath(*mask_rel))
                    rows.append(["\\".join(img_rel), "\\".join(mask_rel), 0, source, *bbox, size, size, 0, r])
                latents.append((source, "\\".join(img_rel), sample["difficulty"]))
        with open(root / f"Glaucoma_multirater_{source}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(RIGA_CSV_HEADER)
            for index, row in enumerate(rows):
                writer.writerow([index, *row])
    with open(root / "synthetic_latents.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["center", "imgName", "difficulty"])
        for source, img, d in latents:
            writer.writerow([source, img, f"{d:.6f}"])
    (root / "SYNTHETIC_DATA.txt").write_text(
        "SYNTHETIC RIGA-like data generated by monai_lexu.data.synthetic.write_riga_like "
        f"(size={size}, seed={seed}, counts={counts}). These are not real fundus images.\n"
        "synthetic_latents.csv lists the latent difficulty d of every image: higher d means a fainter cup boundary "
        "and a larger spread of the 6 raters' contours.\n",
        encoding="utf-8",
    )
    return root


def _write_tif(image: Any, path: Path) -> None:
    """Save a PIL image as a lossless, deflate-compressed TIFF (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="TIFF", compression="tiff_adobe_deflate")
