"""Seeded RIGA-like synthetic fundus disc / cup set with 6 disagreeing raters, in the layout of the RIGA release.

The **RIGA-like set** (:func:`make_riga_like_sample`, :func:`write_riga_like`): RGB fundus-like crops (dark orange
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
LEXU code (see :func:`write_riga_like`), so :func:`~monai_lexu.datasets.riga.convert.convert_riga` reads it like
the real one.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_lexu.datasets._draw import as_rng, polar_points, rasterise_polygon
from monai_lexu.datasets.riga.format import RIGA_CSV_HEADER, RIGA_MASK_VALUES, RIGA_NUM_RATERS, riga_csv_path

__all__ = ["make_riga_like_sample", "write_riga_like"]

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
    return polar_points(centre, theta, radius_fn(theta))


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
    num_raters: int = RIGA_NUM_RATERS,
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
    rng = as_rng(rng)
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

    true_disc = rasterise_polygon(_contour(disc_centre, disc_fn), shape)
    true_cup = rasterise_polygon(_contour(cup_centre, cup_fn), shape) & binary_erosion(true_disc, iterations=2)

    # raters: spread grows with the difficulty, much more for the cup
    disc_spread = 0.012 + 0.045 * d
    cup_spread = 0.035 + 0.26 * d
    discs = np.zeros((num_raters, *shape), dtype=bool)
    cups = np.zeros((num_raters, *shape), dtype=bool)
    for r in range(num_raters):
        fn_d, shift_d = _rater_radius_fn(rng, disc_fn, disc_spread, bias[r])
        fn_c, shift_c = _rater_radius_fn(rng, cup_fn, cup_spread, bias[r])
        discs[r] = rasterise_polygon(_contour(disc_centre + shift_d * disc_spread * disc_r, fn_d), shape)
        cup = rasterise_polygon(_contour(cup_centre + shift_c * cup_spread * cup_ratio * disc_r, fn_c), shape)
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
    num_raters = RIGA_NUM_RATERS
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
        with open(riga_csv_path(root, source), "w", newline="", encoding="utf-8") as f:
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
        "SYNTHETIC RIGA-like data generated by monai_lexu.datasets.riga.synthetic.write_riga_like "
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
