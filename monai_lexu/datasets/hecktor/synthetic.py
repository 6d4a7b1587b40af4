"""Seeded synthetic head-and-neck PET/CT set with 2-4 raters, in the HECKTOR 2022 NIfTI layout ("layout A").

Each case is a small head-and-neck phantom, defined in physical (RAS world, mm) coordinates and sampled on two
different voxel grids, as real data:

- **CT** (default 64 x 64 x 48 voxels of 2 x 2 x 3 mm, affine ``diag(-2, -2, 3)`` like an LPS DICOM series written by
  ITK): air -1000 HU; a head ellipsoid (radii 52 x 60 x 34 mm, centred 38 mm above the FOV centre) with scalp
  (40 HU), a skull shell (700 HU) and brain (35 HU); a neck cylinder (radius 48 mm, 40 HU) with a cervical spine
  (700 HU); Gaussian noise (sd 15 HU); stored as int16 HU.
- **PET** (4 mm isotropic voxels, its own shape and origin: it covers the CT's x/y field of view with a margin and is
  shifted along z) in SUV-like units: 0 in air, 0.8 in soft tissue, 7 in the brain (the hot top of the PET lets the
  neck crop find the head), blurred with a Gaussian PSF (sigma 0.6 PET voxel) and multiplicative noise (5 %).
- **Structures**: one primary tumour (GTVp, label 1) in the oropharynx and 1-2 lymph nodes (GTVn, label 2) lateral
  and below it, all within 120 mm below the top of the brain (so the crop box of
  :data:`~monai_lexu.datasets.hecktor.recipe.SYNTHETIC_RECIPE` keeps them). Each structure is an ellipsoid with a
  sharp **core** (``d <= r_core``, SUV 8-14, CT +25 HU) and a faint **rim** (``r_core < d <= r_outer``) where the
  uptake falls linearly from 45 % of the core uptake to 1.3 x background; ``d`` is the ellipsoidal distance
  ``|diag(1/axes) (x - centre)|`` in mm (``axes`` with mean ~1). Rim width varies per structure (GTVp 3-9 mm,
  GTVn 2.5-5.5 mm), so the amount of disagreement varies between cases.
- **Raters** (2, 3 or 4 per case, cycling with the case index; a random subset of ``rater1..rater4`` as the real
  multi-rater release where each case was contoured by a subset of the experts): rater ``r`` contours every
  structure at its own threshold radius ``t_r`` inside the rim (``d <= t_r``, thresholds stratified over 10-95 %
  of the rim so that they differ). All raters thus agree on the core and outside the rim, and disagree only on the
  low-contrast rim: the **disagreement band** (union minus intersection of the raters, see
  :func:`disagreement_band`) lies inside the rim. Masks are on the CT grid (values 0/1/2).

Files (:func:`write_synthetic_hecktor`)::

    root/imagesTr/SYN-001__CT.nii.gz, root/imagesTr/SYN-001__PT.nii.gz, ...
    root/labelsTr/rater{1..4}/SYN-001.nii.gz, ...      (only the raters of each case)
    root/synthetic_info.json                             (per case: geometry, structures, rater thresholds)
    root/SYNTHETIC_DATA.txt                              (a note that the data are fake)

Convert with :func:`~monai_lexu.datasets.hecktor.convert.convert_hecktor` using
``recipe=SYNTHETIC_RECIPE`` (:mod:`~monai_lexu.datasets.hecktor.recipe`; 48 x 48 x 64 voxels after the crop) for a
quick CPU run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_lexu.datasets._draw import as_rng
from monai_lexu.datasets.hecktor.format import HECKTOR_LABELS

__all__ = [
    "SYNTHETIC_HECKTOR_RATERS",
    "disagreement_band",
    "make_synthetic_petct_case",
    "write_synthetic_hecktor",
]

SYNTHETIC_HECKTOR_RATERS: tuple[str, ...] = ("rater1", "rater2", "rater3", "rater4")
"""Rater folder names of the synthetic set."""

_AIR_HU, _TISSUE_HU, _BRAIN_HU, _BONE_HU = -1000.0, 40.0, 35.0, 700.0
_TISSUE_SUV, _BRAIN_SUV = 0.8, 7.0
_HEAD_CENTRE = np.array([0.0, 0.0, 38.0])
_HEAD_RADII = np.array([52.0, 60.0, 34.0])
_NECK_CENTRE_XY = np.array([0.0, 5.0])
_NECK_RADIUS = 48.0
_SPINE_CENTRE_XY = np.array([0.0, -22.0])
_SPINE_RADIUS = 9.0
_MIN_FOV_MM = 100.0


def _world_grid(shape: Sequence[int], affine: np.ndarray) -> np.ndarray:
    """World (RAS mm) coordinates of the voxel centres: ``(3, *shape)``."""
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"))
    return np.einsum("ab,b...->a...", affine[:3, :3], ijk) + affine[:3, 3].reshape(3, 1, 1, 1)


def _ellipsoid_distance(xyz: np.ndarray, centre: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """``|diag(1/axes) (x - centre)|`` over a ``(3, *S)`` grid."""
    rel = (xyz - centre.reshape(3, 1, 1, 1)) / axes.reshape(3, 1, 1, 1)
    return np.sqrt((rel**2).sum(0))


def _anatomy(xyz: np.ndarray, shift: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean tissue masks of the phantom on a world grid ``(3, *S)``."""
    q = _ellipsoid_distance(xyz, _HEAD_CENTRE + shift, _HEAD_RADII)
    x, y, z = xyz
    neck_r = np.hypot(x - (_NECK_CENTRE_XY[0] + shift[0]), y - (_NECK_CENTRE_XY[1] + shift[1]))
    spine_r = np.hypot(x - (_SPINE_CENTRE_XY[0] + shift[0]), y - (_SPINE_CENTRE_XY[1] + shift[1]))
    neck = (neck_r <= _NECK_RADIUS) & (z <= _HEAD_CENTRE[2] + shift[2] - 18.0)
    head = q <= 1.0
    return {
        "body": head | neck,
        "brain": q <= 0.86,
        "skull": (q > 0.86) & (q <= 0.96),
        "spine": neck & ~head & (spine_r <= _SPINE_RADIUS),
    }


def _draw_structures(rng: np.random.Generator, shift: np.ndarray, raters: Sequence[str]) -> list[dict[str, Any]]:
    """Random GTVp + 1-2 GTVn ellipsoids, each with core / rim radii and one threshold radius per rater."""
    structures: list[dict[str, Any]] = []
    gtvp_centre = np.array([rng.uniform(-4, 4), rng.uniform(8, 14), rng.uniform(-20, -12)])
    specs = [("GTVp", gtvp_centre, rng.uniform(6.0, 8.5), rng.uniform(3.0, 9.0))]
    sides = [1.0, -1.0] if rng.random() < 0.5 else [-1.0, 1.0]
    num_nodes = 1 + int(rng.random() < 0.5)
    for side in sides[:num_nodes]:
        centre = np.array([side * rng.uniform(30, 34), rng.uniform(-4, 4), rng.uniform(-38, -30)])
        specs.append(("GTVn", centre, rng.uniform(3.5, 5.0), rng.uniform(2.5, 5.5)))
    for name, centre, r_core, rim in specs:
        axes = rng.uniform(0.85, 1.15, 3)
        axes = axes / np.cbrt(np.prod(axes))
        # stratified thresholds over 10 %-95 % of the rim: raters always differ
        frac = 0.1 + 0.85 * (rng.permutation(len(raters)) + rng.uniform(0.1, 0.9, len(raters))) / len(raters)
        structures.append(
            {
                "name": name,
                "label": HECKTOR_LABELS[name],
                "centre_mm": (centre + shift).round(3).tolist(),
                "axes": axes.round(4).tolist(),
                "r_core_mm": round(float(r_core), 3),
                "r_outer_mm": round(float(r_core + rim), 3),
                "core_suv": round(float(rng.uniform(8.0, 14.0)), 3),
                "rater_radius_mm": {r: round(float(r_core + f * rim), 3) for r, f in zip(raters, frac)},
            }
        )
    return structures


def _structure_distance(xyz: np.ndarray, s: dict[str, Any]) -> np.ndarray:
    return _ellipsoid_distance(xyz, np.asarray(s["centre_mm"]), np.asarray(s["axes"]))


def _pet_uptake(d: np.ndarray, s: dict[str, Any]) -> np.ndarray:
    """Uptake added by one structure: core_suv in the core, a linear ramp in the rim, 0 outside (NaN-free)."""
    r0, r1, core = s["r_core_mm"], s["r_outer_mm"], s["core_suv"]
    lo_val, hi_val = 1.3 * _TISSUE_SUV, 0.45 * core
    ramp = hi_val + (lo_val - hi_val) * np.clip((d - r0) / (r1 - r0), 0.0, 1.0)
    return np.where(d <= r0, core, np.where(d <= r1, ramp, 0.0))


def make_synthetic_petct_case(
    rng: np.random.Generator | int | None,
    ct_shape: Sequence[int] = (64, 64, 48),
    ct_spacing: Sequence[float] = (2.0, 2.0, 3.0),
    pet_spacing: Sequence[float] = (4.0, 4.0, 4.0),
    raters: Sequence[str] = SYNTHETIC_HECKTOR_RATERS[:3],
) -> dict[str, Any]:
    """Draw one synthetic head-and-neck PET/CT case (see the module docstring).

    Args:
        rng: numpy Generator or seed.
        ct_shape: CT voxel grid ``(X, Y, Z)``; its field of view (``ct_shape * ct_spacing``) must be >= 100 mm.
        ct_spacing: CT voxel size in mm.
        pet_spacing: PET voxel size in mm.
        raters: names of this case's raters (>= 1).

    Returns:
        dict with ``"ct"`` ``(X, Y, Z)`` int16 HU, ``"ct_affine"`` (4, 4), ``"pet"`` ``(X', Y', Z')`` float32,
        ``"pet_affine"`` (4, 4), ``"raters"`` ``{name: (X, Y, Z) uint8 label map}``, ``"core"`` and ``"rim"``
        ``(2, X, Y, Z)`` bool on the CT grid (channel 0 GTVp, 1 GTVn), and ``"info"`` (JSON-serialisable geometry).

    Raises:
        ValueError: on a field of view under 100 mm, non-positive spacings, or no rater.
    """
    rng = as_rng(rng)
    ct_shape = tuple(int(n) for n in ct_shape)
    ct_sp = np.asarray(ct_spacing, dtype=np.float64)
    pet_sp = np.asarray(pet_spacing, dtype=np.float64)
    if len(ct_shape) != 3 or len(ct_sp) != 3 or len(pet_sp) != 3:
        raise ValueError("ct_shape, ct_spacing and pet_spacing must have 3 entries each.")
    if np.any(ct_sp <= 0) or np.any(pet_sp <= 0):
        raise ValueError(f"spacings must be positive, got CT {tuple(ct_sp)} and PET {tuple(pet_sp)}.")
    fov = np.asarray(ct_shape) * ct_sp
    if np.any(fov < _MIN_FOV_MM):
        raise ValueError(f"the CT field of view {tuple(fov)} mm is too small: each side must be >= {_MIN_FOV_MM} mm.")
    if len(raters) < 1:
        raise ValueError("make_synthetic_petct_case needs at least one rater name.")

    # CT: LPS-like axes (x, y flipped), centred on the world origin
    ct_affine = np.diag([-ct_sp[0], -ct_sp[1], ct_sp[2], 1.0])
    ct_affine[:3, 3] = [
        ct_sp[0] * (ct_shape[0] - 1) / 2,
        ct_sp[1] * (ct_shape[1] - 1) / 2,
        -ct_sp[2] * (ct_shape[2] - 1) / 2,
    ]
    # PET: coarser, larger in x / y, shifted along z
    pet_shape = (
        int(np.ceil((fov[0] + 16.0) / pet_sp[0])),
        int(np.ceil((fov[1] + 16.0) / pet_sp[1])),
        int(np.ceil((fov[2] - 8.0) / pet_sp[2])),
    )
    pet_affine = np.diag([-pet_sp[0], -pet_sp[1], pet_sp[2], 1.0])
    z_shift = rng.uniform(-6.0, 2.0)
    pet_affine[:3, 3] = [
        pet_sp[0] * (pet_shape[0] - 1) / 2,
        pet_sp[1] * (pet_shape[1] - 1) / 2,
        -pet_sp[2] * (pet_shape[2] - 1) / 2 + z_shift,
    ]

    shift = rng.uniform(-4.0, 4.0, 3)
    structures = _draw_structures(rng, shift, raters)

    # CT
    xyz = _world_grid(ct_shape, ct_affine)
    tissue = _anatomy(xyz, shift)
    ct = np.full(ct_shape, _AIR_HU)
    ct[tissue["body"]] = _TISSUE_HU
    ct[tissue["brain"]] = _BRAIN_HU
    ct[tissue["skull"] | tissue["spine"]] = _BONE_HU
    core = np.zeros((len(HECKTOR_LABELS), *ct_shape), dtype=bool)
    rim = np.zeros((len(HECKTOR_LABELS), *ct_shape), dtype=bool)
    label_maps = {r: np.zeros(ct_shape, dtype=np.uint8) for r in raters}
    # nodes first, GTVp last (it wins where they would touch; they are placed apart)
    for s in sorted(structures, key=lambda s: -s["label"]):
        d = _structure_distance(xyz, s)
        ch = list(HECKTOR_LABELS).index(s["name"])  # structure channel
        core[ch] |= d <= s["r_core_mm"]
        rim[ch] |= (d > s["r_core_mm"]) & (d <= s["r_outer_mm"])
        frac = np.clip((d - s["r_core_mm"]) / (s["r_outer_mm"] - s["r_core_mm"]), 0.0, 1.0)
        ct += np.where(d <= s["r_outer_mm"], 25.0 * (1.0 - frac), 0.0)
        for r in raters:
            label_maps[r][d <= s["rater_radius_mm"][r]] = s["label"]
    ct += rng.normal(0.0, 15.0, ct_shape)
    ct = np.clip(np.round(ct), -1024, 3071).astype(np.int16)

    # PET
    from scipy.ndimage import gaussian_filter

    pxyz = _world_grid(pet_shape, pet_affine)
    ptissue = _anatomy(pxyz, shift)
    pet = np.zeros(pet_shape)
    pet[ptissue["body"]] = _TISSUE_SUV
    pet[ptissue["brain"]] = _BRAIN_SUV
    for s in structures:
        uptake = _pet_uptake(_structure_distance(pxyz, s), s)
        pet = np.maximum(pet, uptake)
    pet = gaussian_filter(pet, sigma=0.6)
    pet = np.clip(pet * rng.normal(1.0, 0.05, pet_shape), 0.0, None).astype(np.float32)

    info = {
        "ct_shape": list(ct_shape),
        "ct_affine": ct_affine.tolist(),
        "pet_shape": list(pet_shape),
        "pet_affine": pet_affine.tolist(),
        "anatomy_shift_mm": shift.round(3).tolist(),
        "raters": list(raters),
        "structures": structures,
    }
    return {
        "ct": ct,
        "ct_affine": ct_affine,
        "pet": pet,
        "pet_affine": pet_affine,
        "raters": label_maps,
        "core": core,
        "rim": rim,
        "info": info,
    }


def disagreement_band(raters: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Voxels where the valid raters disagree: union minus intersection, per structure.

    Args:
        raters: ``(R, L, *S)`` binary masks.
        valid: ``(R,)`` bool; ``None``: all raters.

    Returns:
        ``(L, *S)`` bool.

    Raises:
        ValueError: if ``raters`` has fewer than 2 dims or no valid rater.
    """
    m = np.asarray(raters) > 0
    if m.ndim < 2:
        raise ValueError(f"raters must be (R, L, *S), got shape {m.shape}.")
    if valid is not None:
        m = m[np.asarray(valid, dtype=bool)]
    if m.shape[0] == 0:
        raise ValueError("disagreement_band: no valid rater.")
    return m.any(0) & ~m.all(0)


def write_synthetic_hecktor(
    root: str | os.PathLike,
    num_cases: int = 9,
    ct_shape: Sequence[int] = (64, 64, 48),
    ct_spacing: Sequence[float] = (2.0, 2.0, 3.0),
    pet_spacing: Sequence[float] = (4.0, 4.0, 4.0),
    seed: int = 0,
) -> Path:
    """Write the synthetic PET/CT multi-rater set in the HECKTOR 2022 NIfTI layout (layout A).

    Case ``k`` (1-based, id ``SYN-{k:03d}``) has ``2 + (k - 1) % 3`` raters (2, 3, 4, 2, ...), a random subset of
    ``rater1..rater4``. See the module docstring for the phantom, the grids and the files.

    Args:
        root: output directory (created).
        num_cases: number of cases (>= 1).
        ct_shape: CT voxel grid.
        ct_spacing: CT voxel size (mm).
        pet_spacing: PET voxel size (mm).
        seed: seed of the numpy Generator; the same seed gives the same files.

    Returns:
        ``root`` as a Path.

    Raises:
        ValueError: if ``num_cases < 1`` or the geometry is invalid (see :func:`make_synthetic_petct_case`).
    """
    import nibabel as nib

    if int(num_cases) < 1:
        raise ValueError(f"write_synthetic_hecktor: num_cases must be >= 1, got {num_cases}.")
    root = Path(root)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    all_info: dict[str, Any] = {}
    for k in range(1, int(num_cases) + 1):
        case_id = f"SYN-{k:03d}"
        n_raters = 2 + (k - 1) % 3
        chosen = sorted(rng.choice(len(SYNTHETIC_HECKTOR_RATERS), size=n_raters, replace=False).tolist())
        raters = [SYNTHETIC_HECKTOR_RATERS[i] for i in chosen]
        case = make_synthetic_petct_case(rng, ct_shape, ct_spacing, pet_spacing, raters)
        nib.save(nib.Nifti1Image(case["ct"], case["ct_affine"]), root / "imagesTr" / f"{case_id}__CT.nii.gz")
        nib.save(nib.Nifti1Image(case["pet"], case["pet_affine"]), root / "imagesTr" / f"{case_id}__PT.nii.gz")
        for r, label_map in case["raters"].items():
            (root / "labelsTr" / r).mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(label_map, case["ct_affine"]), root / "labelsTr" / r / f"{case_id}.nii.gz")
        all_info[case_id] = case["info"]
    with open(root / "synthetic_info.json", "w", encoding="utf-8") as f:
        json.dump(
            {"seed": seed, "structures": HECKTOR_LABELS, "cases": all_info},
            f,
            indent=1,
        )
        f.write("\n")
    (root / "SYNTHETIC_DATA.txt").write_text(
        "SYNTHETIC head-and-neck PET/CT data generated by "
        "monai_lexu.datasets.hecktor.synthetic.write_synthetic_hecktor "
        f"(num_cases={num_cases}, ct_shape={tuple(ct_shape)}, ct_spacing={tuple(ct_spacing)}, "
        f"pet_spacing={tuple(pet_spacing)}, seed={seed}). These are not real patient images.\n"
        "Raters disagree only on the faint rim of each structure (synthetic_info.json: r_core_mm < d <= r_outer_mm, "
        "one threshold radius per rater); the disagreement band is the union minus the intersection of the raters.\n",
        encoding="utf-8",
    )
    return root
