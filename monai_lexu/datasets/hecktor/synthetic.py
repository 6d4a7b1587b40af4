"""Seeded synthetic head-and-neck PET/CT set with 2-4 raters, in the HECKTOR 2022 NIfTI layout ("layout A").

Each case is a head-and-neck phantom defined in physical (RAS world, mm; +x right, +y anterior, +z superior)
coordinates, shifted by a random 3D offset (+-4 mm), and sampled on two different voxel grids, as real data. It is
compressed along z (vertex to oropharynx about 80 mm instead of about 120 mm) so that a 128 mm crop holds the brain,
the oropharynx and the upper neck.

- **CT** (default 72 x 72 x 48 voxels of 2 x 2 x 3 mm, affine ``diag(-2, -2, 3)`` like an LPS DICOM series written by
  ITK), stored as int16 HU with Gaussian noise (sd 12 HU):

  - air outside the body, -1000 HU. The body outline is the union of a head ellipsoid (semi-axes 60 x 70 x 40 mm,
    centre 34 mm above the FOV centre) and a face/neck column whose elliptical cross-section varies along z: neck
    (z < -30 mm) 50 x 46 mm, widening to 58 x 56 mm at the mandible with the face forward;
  - skin/muscle 40 HU, a 6 mm subcutaneous fat layer (-100 HU) under the skin of the neck;
  - bone: skull shell (900 HU) around the brain (35 HU); cervical vertebra: body (cancellous 350 HU, cortex 900 HU),
    neural arch (800 HU) around the spinal canal (15 HU) and a spinous process; the mandible (U-shaped arc with two
    rami, 1000 HU);
  - an airway (-1000 HU): nasopharynx and oropharynx behind the tongue, narrowing into the larynx/trachea, and two
    maxillary sinuses;
  - per side a carotid sheath fat pad (-90 HU) with the carotid artery and the jugular vein (40 HU), the
    sternocleidomastoid muscle (45 HU), the parotid (5 HU) and the submandibular gland (35 HU).

- **PET** (4 mm isotropic voxels, its own shape and origin: it covers the CT's x/y field of view with a margin and is
  shifted along z) in SUV: air 0, fat 0.35, soft tissue 0.8, bone 0.6, blood pool 1.5, brain 8 (the hot top of the
  PET lets the neck crop find the head), parotid and submandibular glands 1.8-2.2 (physiological uptake), a primary
  tumour of SUV 6-15 and nodes of SUV 3-8. The activity is drawn on a 2 mm grid, blurred with the scanner's point
  spread function (Gaussian, FWHM 6.5 mm: partial-volume blur, small nodes lose part of their peak), averaged into the
  4 mm voxels, then given multiplicative noise (sd 7 %).

- **Structures**: one primary tumour (GTVp, label 1) in the oropharynx (tonsillar fossa next to the airway, or base of
  tongue in front of it) and 1-2 lymph nodes (GTVn, label 2) in the carotid sheath fat: the first on the side of the
  primary at level II (at most 14 mm below the primary's centre, so an axial slice usually cuts both), the second
  (half of the cases) contralateral at level II or ipsilateral at level III. Each structure is a lobulated ellipsoid:
  ``d = rho / f(n)`` with ``rho = |diag(1/axes) (x - centre)|`` in mm (``axes`` with geometric mean 1),
  ``n = (x - centre) / |x - centre|`` and ``f(n) = 1 + sum_j a_j exp(3 (n . u_j - 1))`` (2-4 random bumps ``u_j``,
  ``a_j`` in [-0.12, 0.25]); see :func:`structure_distance`. It has a sharp **core** (``d <= r_core``: PET at the
  core SUV, CT tumour 50 HU / node 38 HU) and a faint **rim** (``r_core < d <= r_outer``) where the PET falls linearly
  from 45 % of the core SUV to 1.3 x the local background and the CT blends into the surrounding tissue. Sizes:
  GTVp core radius 6-10 mm, rim 3-8 mm; GTVn core radius 5-8 mm, rim 3-6 mm.

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
``recipe=SYNTHETIC_RECIPE`` (:mod:`~monai_lexu.datasets.hecktor.recipe`; 64 x 64 x 64 voxels of 2 mm after the crop)
for a quick CPU run. Nine cases take about a second per case to write.
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
    "structure_distance",
    "write_synthetic_hecktor",
]

SYNTHETIC_HECKTOR_RATERS: tuple[str, ...] = ("rater1", "rater2", "rater3", "rater4")
"""Rater folder names of the synthetic set."""

# tissue classes: (CT HU, PET SUV); painted in this order, later ones win
_TISSUES: dict[str, tuple[float, float]] = {
    "air": (-1000.0, 0.0),
    "soft": (40.0, 0.8),
    "fat": (-100.0, 0.35),
    "carotid_fat": (-90.0, 0.35),
    "muscle": (45.0, 0.8),
    "parotid": (5.0, 2.2),
    "submandibular": (35.0, 1.8),
    "vessel": (40.0, 1.5),
    "brain": (35.0, 8.0),
    "csf": (15.0, 0.2),
    "skull": (900.0, 0.6),
    "cancellous": (350.0, 0.6),
    "cortical": (900.0, 0.6),
    "arch": (800.0, 0.6),
    "mandible": (1000.0, 0.6),
    "airway": (-1000.0, 0.0),
}
_STRUCTURE_HU = {"GTVp": 50.0, "GTVn": 38.0}
_HEAD_CENTRE = np.array([0.0, 0.0, 34.0])
_HEAD_RADII = np.array([60.0, 70.0, 40.0])
_COLUMN_TOP = 14.0  # the face/neck column ends here; the head ellipsoid covers what is above
_PET_FWHM_MM = 6.5
_CT_NOISE_HU = 12.0
_PET_NOISE = 0.07
_MIN_FOV_MM = 100.0


def _world_grid(shape: Sequence[int], affine: np.ndarray) -> np.ndarray:
    """World (RAS mm) coordinates of the voxel centres: ``(3, *shape)``."""
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"))
    return np.einsum("ab,b...->a...", affine[:3, :3], ijk) + affine[:3, 3].reshape(3, 1, 1, 1)


def _smoothstep(z: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((z - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _ellipse(x: np.ndarray, y: np.ndarray, cx: Any, cy: Any, ax: Any, ay: Any) -> np.ndarray:
    """Normalised elliptical radius ``sqrt(((x - cx) / ax)^2 + ((y - cy) / ay)^2)`` (broadcasting)."""
    return np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)


def _anatomy(xyz: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Tissue class (index into ``_TISSUES``) of every point of a world grid ``(3, *S)``; phantom moved by ``shift``."""
    names = list(_TISSUES)
    x, y, z = (xyz[i] - shift[i] for i in range(3))
    lab = np.zeros(x.shape, dtype=np.int8)

    def paint(name: str, mask: np.ndarray) -> None:
        lab[mask] = names.index(name)

    # head ellipsoid and the face/neck column below it (cross-section widening from the neck to the mandible)
    q_head = np.sqrt(sum(((c - m) / r) ** 2 for c, m, r in zip((x, y, z), _HEAD_CENTRE, _HEAD_RADII)))
    w = _smoothstep(z, -32.0, -8.0)  # 0: neck, 1: mandible / face
    col_cy, col_ax, col_ay = 2.0 + 4.0 * w, 50.0 + 8.0 * w, 46.0 + 10.0 * w
    e_col = _ellipse(x, y, 0.0, col_cy, col_ax, col_ay)
    column = (e_col <= 1.0) & (z <= _COLUMN_TOP)
    head = q_head <= 1.0
    paint("soft", head | column)
    # subcutaneous fat of the neck (6 mm under the skin), fading out at the face
    paint("fat", column & ~head & (e_col > 1.0 - 6.0 / col_ax) & (e_col <= 1.0 - 1.5 / col_ax) & (z < -4.0))
    # brain, skull, CSF-free scalp
    q_brain = np.sqrt((x / 52.0) ** 2 + ((y + 2.0) / 62.0) ** 2 + ((z - 38.0) / 33.0) ** 2)
    paint("skull", (q_brain > 1.0) & (q_brain <= 1.12) & (z > 8.0) & head)
    paint("brain", (q_brain <= 1.0) & (z > 8.0))
    neck = column & (z < 6.0)
    # carotid sheath fat pads, sternocleidomastoid, glands (per side)
    for side in (-1.0, 1.0):
        paint("carotid_fat", neck & (_ellipse(x, y, side * 31.0, 3.0, 12.0, 11.0) <= 1.0) & (z < -2.0))
        paint("muscle", neck & (_ellipse(x, y, side * 43.0, -6.0, 6.5, 13.0) <= 1.0) & (z < -6.0))
        paint("vessel", neck & (np.hypot(x - side * 25.0, y - 6.0) <= 3.5) & (z < -2.0))
        paint("vessel", neck & (np.hypot(x - side * 33.0, y - 0.0) <= 4.5) & (z < -2.0))
        paint("parotid", (_ellipse(x, y, side * 45.0, -2.0, 8.0, 13.0) <= 1.0) & (z > -14.0) & (z < 12.0) & column)
        paint("submandibular", neck & (_ellipse(x, y, side * 27.0, 27.0, 9.0, 8.0) <= 1.0) & (z > -34.0) & (z < -18.0))
        # maxillary sinus
        sinus = np.sqrt(((x - side * 16.0) / 10.0) ** 2 + ((y - 34.0) / 11.0) ** 2 + ((z - 2.0) / 9.0) ** 2) <= 1.0
        paint("airway", sinus & (head | column))
    # cervical vertebra: body (cortex + cancellous), spinal canal and neural arch, spinous process
    spine = neck & (z < 0.0)
    r_body = np.hypot(x, y + 14.0)
    r_canal = np.hypot(x, y + 29.0)
    paint("cortical", spine & (r_body <= 10.0))
    paint("cancellous", spine & (r_body <= 8.0))
    paint("arch", spine & (r_canal <= 10.5) & (r_canal > 6.0))
    paint("csf", spine & (r_canal <= 6.0))
    paint("arch", spine & (np.abs(x) <= 3.0) & (y < -38.0) & (y > -50.0))
    # mandible: the anterior U-shaped arc (lower anteriorly) and the two ascending rami
    e_man = _ellipse(x, y, 0.0, 8.0, 44.0, 44.0)
    arc_z = -26.0 + 6.0 * np.clip((8.0 - y) / 40.0, 0.0, 1.0)
    paint("mandible", column & (np.abs(e_man - 1.0) <= 4.0 / 44.0) & (y > 8.0) & (z >= arc_z) & (z <= arc_z + 14.0))
    paint("mandible", column & (np.abs(np.abs(x) - 44.0) <= 3.0) & (y > -8.0) & (y <= 8.0) & (z > -22.0) & (z < 10.0))
    # airway: naso-/oropharynx behind the tongue, narrowing into the larynx and trachea further down (and forward)
    v = _smoothstep(z, -48.0, -24.0)  # 0: larynx / trachea, 1: oropharynx
    air_cy, air_ax, air_ay = 20.0 - 8.0 * v, 7.5 + 3.5 * v, 7.0 - 1.0 * v
    paint("airway", column & (_ellipse(x, y, 0.0, air_cy, air_ax, air_ay) <= 1.0) & (z < 12.0))
    return lab


def structure_distance(xyz: np.ndarray, s: dict[str, Any]) -> np.ndarray:
    """Lobulated ellipsoidal distance (mm) of a structure of ``synthetic_info.json`` over a world grid ``(3, *S)``.

    ``d = rho / f(n)``: ``rho = |diag(1/axes) (x - centre)|``, ``n = (x - centre) / |x - centre|`` and
    ``f(n) = 1 + sum_j a_j exp(3 (n . u_j - 1))`` with the structure's ``bumps`` ``[(a_j, u_j), ...]``. Rater ``r``'s
    mask is ``d <= rater_radius_mm[r]``, the core ``d <= r_core_mm``, the rim ``r_core_mm < d <= r_outer_mm``.

    Args:
        xyz: world coordinates ``(3, *S)`` in mm.
        s: one entry of ``info["structures"]`` (``centre_mm``, ``axes``, ``bumps``).

    Returns:
        float64 ``(*S)``.
    """
    rel = xyz - np.asarray(s["centre_mm"], dtype=np.float64).reshape(3, 1, 1, 1)
    rho = np.sqrt(((rel / np.asarray(s["axes"], dtype=np.float64).reshape(3, 1, 1, 1)) ** 2).sum(0))
    norm = np.sqrt((rel**2).sum(0))
    n = rel / np.maximum(norm, 1e-9)
    f = np.ones_like(rho)
    for amp, u in s.get("bumps", []):
        f += amp * np.exp(3.0 * (np.einsum("a...,a->...", n, np.asarray(u, dtype=np.float64)) - 1.0))
    return rho / f


def _draw_structures(rng: np.random.Generator, shift: np.ndarray, raters: Sequence[str]) -> list[dict[str, Any]]:
    """Random GTVp + 1-2 GTVn, each with core / rim radii, lobulation and one threshold radius per rater."""
    side = 1.0 if rng.random() < 0.5 else -1.0
    z_p = rng.uniform(-20.0, -8.0)
    if rng.random() < 0.6:  # tonsillar fossa, lateral wall of the oropharynx
        centre_p = np.array([side * rng.uniform(11.0, 15.0), rng.uniform(10.0, 15.0), z_p])
    else:  # base of tongue, in front of the airway
        centre_p = np.array([side * rng.uniform(0.0, 5.0), rng.uniform(22.0, 26.0), z_p])
    specs = [("GTVp", centre_p, rng.uniform(6.0, 10.0), rng.uniform(3.0, 8.0), rng.uniform(6.0, 15.0))]
    nodes = [(side, z_p - rng.uniform(0.0, 14.0))]
    if rng.random() < 0.5:
        nodes.append((-side, rng.uniform(-26.0, -12.0)) if rng.random() < 0.5 else (side, rng.uniform(-40.0, -32.0)))
    for node_side, z_n in nodes:
        centre = np.array([node_side * rng.uniform(29.0, 34.0), rng.uniform(2.0, 8.0), z_n])
        # a contoured metastatic node: core radius 5-8 mm, rim 3-6 mm, so the raters' contours span 11-27 mm in
        # diameter (pathological nodes are >= 10 mm in short axis). The earlier 3.5-6.5 / 2-4.5 mm nodes were partly
        # normal-sized, and their disagreement band (median 1.9 mm) was thinner than one 2 mm voxel of the CPU recipe.
        specs.append(("GTVn", centre, rng.uniform(5.0, 8.0), rng.uniform(3.0, 6.0), rng.uniform(3.0, 8.0)))
    structures: list[dict[str, Any]] = []
    for name, centre, r_core, rim, suv in specs:
        axes = rng.uniform(0.8, 1.2, 3)
        axes = axes / np.cbrt(np.prod(axes))
        bumps = []
        for _ in range(int(rng.integers(2, 5))):
            u = rng.normal(size=3)
            bumps.append([round(float(rng.uniform(-0.12, 0.25)), 3), (u / np.linalg.norm(u)).round(4).tolist()])
        # stratified thresholds over 10 %-95 % of the rim: raters always differ
        frac = 0.1 + 0.85 * (rng.permutation(len(raters)) + rng.uniform(0.1, 0.9, len(raters))) / len(raters)
        structures.append(
            {
                "name": name,
                "label": HECKTOR_LABELS[name],
                "centre_mm": (centre + shift).round(3).tolist(),
                "axes": axes.round(4).tolist(),
                "bumps": bumps,
                "r_core_mm": round(float(r_core), 3),
                "r_outer_mm": round(float(r_core + rim), 3),
                "core_suv": round(float(suv), 3),
                "rater_radius_mm": {r: round(float(r_core + f * rim), 3) for r, f in zip(raters, frac)},
            }
        )
    return structures


def _rim_fraction(d: np.ndarray, s: dict[str, Any]) -> np.ndarray:
    """0 in the core, rising linearly to 1 at the outer radius, 1 outside."""
    return np.clip((d - s["r_core_mm"]) / (s["r_outer_mm"] - s["r_core_mm"]), 0.0, 1.0)


def _pet_uptake(d: np.ndarray, s: dict[str, Any], background: np.ndarray) -> np.ndarray:
    """Activity of one structure: core SUV in the core, a linear ramp to 1.3 x background in the rim, NaN-free."""
    frac = _rim_fraction(d, s)
    core = float(s["core_suv"])
    ramp = 0.45 * core + (1.3 * background - 0.45 * core) * frac
    return np.where(d <= s["r_core_mm"], core, np.where(d <= s["r_outer_mm"], ramp, background))


def make_synthetic_petct_case(
    rng: np.random.Generator | int | None,
    ct_shape: Sequence[int] = (72, 72, 48),
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
        dict with ``"ct"`` ``(X, Y, Z)`` int16 HU, ``"ct_affine"`` (4, 4), ``"pet"`` ``(X', Y', Z')`` float32 SUV,
        ``"pet_affine"`` (4, 4), ``"raters"`` ``{name: (X, Y, Z) uint8 label map}``, ``"core"`` and ``"rim"``
        ``(2, X, Y, Z)`` bool on the CT grid (channel 0 GTVp, 1 GTVn), ``"tissue"`` ``(X, Y, Z)`` int8 tissue class
        on the CT grid (index into ``info["tissues"]``) and ``"info"`` (JSON-serialisable geometry).

    Raises:
        ValueError: on a field of view under 100 mm, non-positive spacings, or no rater.
    """
    from scipy.ndimage import gaussian_filter

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
    hu = np.array([v[0] for v in _TISSUES.values()])
    suv = np.array([v[1] for v in _TISSUES.values()])

    # CT: tissues, then every structure blended in over its rim (nodes first, GTVp last: it wins where they touch)
    xyz = _world_grid(ct_shape, ct_affine)
    tissue = _anatomy(xyz, shift)
    ct = hu[tissue]
    core = np.zeros((len(HECKTOR_LABELS), *ct_shape), dtype=bool)
    rim = np.zeros((len(HECKTOR_LABELS), *ct_shape), dtype=bool)
    label_maps = {r: np.zeros(ct_shape, dtype=np.uint8) for r in raters}
    for s in sorted(structures, key=lambda s: -s["label"]):
        d = structure_distance(xyz, s)
        ch = list(HECKTOR_LABELS).index(s["name"])  # structure channel
        core[ch] |= d <= s["r_core_mm"]
        rim[ch] |= (d > s["r_core_mm"]) & (d <= s["r_outer_mm"])
        w = 1.0 - _rim_fraction(d, s)  # 1 in the core, 0 from the outer radius on
        ct = np.where(d <= s["r_outer_mm"], w * _STRUCTURE_HU[s["name"]] + (1.0 - w) * ct, ct)
        for r in raters:
            label_maps[r][d <= s["rater_radius_mm"][r]] = s["label"]
    ct = ct + rng.normal(0.0, _CT_NOISE_HU, ct_shape)
    ct = np.clip(np.round(ct), -1024, 3071).astype(np.int16)

    # PET: activity on a grid of half the PET voxel, PSF blur (partial volume), average into PET voxels, noise
    fine_affine = pet_affine.copy()
    fine_affine[:3, :3] /= 2.0
    fine_affine[:3, 3] -= pet_affine[:3, :3] @ np.full(3, 0.25)
    fine_shape = tuple(2 * n for n in pet_shape)
    fxyz = _world_grid(fine_shape, fine_affine)
    activity = suv[_anatomy(fxyz, shift)]
    for s in structures:
        activity = np.maximum(activity, _pet_uptake(structure_distance(fxyz, s), s, activity))
    sigma_vox = _PET_FWHM_MM / (2.0 * np.sqrt(2.0 * np.log(2.0))) / (pet_sp / 2.0)
    activity = gaussian_filter(activity, sigma=sigma_vox, mode="constant")
    pet = activity.reshape(pet_shape[0], 2, pet_shape[1], 2, pet_shape[2], 2).mean(axis=(1, 3, 5))
    pet = np.clip(pet * rng.normal(1.0, _PET_NOISE, pet_shape), 0.0, None).astype(np.float32)

    info = {
        "ct_shape": list(ct_shape),
        "ct_affine": ct_affine.tolist(),
        "pet_shape": list(pet_shape),
        "pet_affine": pet_affine.tolist(),
        "anatomy_shift_mm": shift.round(3).tolist(),
        "tissues": {name: {"hu": v[0], "suv": v[1]} for name, v in _TISSUES.items()},
        "pet_fwhm_mm": _PET_FWHM_MM,
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
        "tissue": tissue,
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
    ct_shape: Sequence[int] = (72, 72, 48),
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
        "one threshold radius per rater, d as in monai_lexu.datasets.hecktor.synthetic.structure_distance); the "
        "disagreement band is the union minus the intersection of the raters.\n",
        encoding="utf-8",
    )
    return root
