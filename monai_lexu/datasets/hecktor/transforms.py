"""HECKTOR PET/CT transforms: the head-and-neck crop, CT / PET intensity normalisation, and the full pre-processing.

The crop follows MONAI's HECKTOR 2022 winning solution (Myronenko et al. 2022; ``HecktorCropNeckRegion`` of the
Auto3DSeg tutorial, box 200 x 200 x 310 mm after resampling to 1 mm): find the head in the upper part of the PET and
cut a fixed physical box around it. :func:`hecktor_preprocessing` builds the whole chain (load, RAS, resampling,
PET onto the CT grid, crop, 2-channel image, normalisation) from ONE
:class:`~monai_lexu.datasets.hecktor.recipe.HecktorRecipe` as one invertible ``Compose``, used both to convert a
data set (with the rater masks, without normalisation) and by a bundle's inference config (without masks), whose
predictions ``Invertd(transform=..., orig_keys="ct")`` maps back to the original CT voxel grid.

The CT / PET normalisation is wired one way: :class:`HecktorNormalized` on the 2-channel image (channel 0 CT,
channel 1 PET) with the recipe's settings, the last step of :func:`hecktor_preprocessing` at inference and the last
loading step of the training / evaluation configs (on the converted images).

Every transform works on torch tensors and keeps their device, so the chain runs on the GPU when the data is there
(``hecktor_preprocessing(device="cuda")`` moves the loaded volumes there).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import Compose, Cropd, CropForeground, MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor, ensure_tuple, ensure_tuple_rep

from monai_lexu.datasets.hecktor.recipe import DEFAULT_RECIPE, HecktorRecipe, default_recipe

__all__ = [
    "CTWindowNormalize",
    "CTWindowNormalized",
    "HecktorNeckCrop",
    "HecktorNeckCropd",
    "HecktorNormalize",
    "HecktorNormalized",
    "PETNormalize",
    "PETNormalized",
    "hecktor_box_preprocess",
    "hecktor_neck_box",
    "hecktor_preprocessing",
    "resample_region",
]

logger = logging.getLogger("monai_lexu")


def _pixdim(img: Any, spatial_dims: int) -> np.ndarray:
    """Voxel sizes in mm from a MetaTensor's affine (column norms of its linear part)."""
    if isinstance(img, MetaTensor):
        affine = np.asarray(img.affine.detach().cpu().numpy(), dtype=np.float64)
        return np.linalg.norm(affine[:spatial_dims, :spatial_dims], axis=0)
    raise ValueError(
        "HecktorNeckCrop: the source image has no affine (not a MetaTensor); pass `pixdim` (voxel size in mm) "
        "or load it with LoadImaged."
    )


def hecktor_neck_box(
    source: torch.Tensor,
    box_voxels: Sequence[int],
    top_fraction: float = 0.25,
    z_threshold: float = 1.0,
    channel: int = 0,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Compute the head-and-neck box (voxel start / end, end exclusive) from a PET volume in RAS orientation.

    Steps (the head must be at HIGH z index, i.e. RAS / LAS orientation as after ``Orientationd(axcodes="RAS")``):

    1. The PET field of view along z is the range of slices where the PET is not identically zero (after
       ``ResampleToMatchd`` with zero padding onto a larger CT grid, the slices outside the PET scan are zero; MONAI's
       solution uses all slices, which can land in an empty region when the CT reaches far above the PET).
    2. The top ``top_fraction`` of those slices (at least one slice) is kept.
    3. Voxels of that slab with z-score ``(x - mean) / std > z_threshold`` form the mask (mean / std over the slab);
       on a FDG-PET this is mainly the brain.
    4. x / y: the box of ``box_voxels[0:2]`` is centred on the mask centroid (rounded to the nearest voxel; start
       ``= centre - size // 2``).
    5. z: the box ends at the highest mask slice (inclusive) and extends ``box_voxels[2]`` slices downward.

    The box may extend beyond the image; :class:`HecktorNeckCrop` pads there. If the mask is empty (constant PET),
    the box is centred on the image in x / y and ends at the top of the field of view, and ``found`` is False.

    Args:
        source: PET ``(C, X, Y, Z)`` tensor (any device).
        box_voxels: box size in voxels ``(bx, by, bz)``.
        top_fraction: fraction of the field-of-view slices searched for the head (MONAI: 0.25).
        z_threshold: z-score threshold (MONAI: 1).
        channel: channel of ``source`` used.

    Returns:
        ``(box_start, box_end, found)``: int64 arrays of length 3 and whether the mask was non-empty.

    Raises:
        ValueError: if ``source`` is not ``(C, X, Y, Z)`` or ``top_fraction`` is not in (0, 1].
    """
    if source.ndim != 4:
        raise ValueError(
            f"HecktorNeckCrop needs a channel-first 3D volume (C, X, Y, Z), got shape {tuple(source.shape)}."
        )
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}.")
    pet = convert_to_tensor(source[channel], track_meta=False).float()
    size_z = pet.shape[2]
    nonzero_slices = torch.nonzero(pet.abs().amax(dim=(0, 1)) > 0).flatten()
    if nonzero_slices.numel() > 0:
        fov_lo, fov_hi = int(nonzero_slices.min()), int(nonzero_slices.max()) + 1
    else:
        fov_lo, fov_hi = 0, size_z
    z0 = _top_slab_start(fov_lo, fov_hi, top_fraction)
    return _box_from_slab(pet[:, :, z0:fov_hi], z0, box_voxels, z_threshold)


def _top_slab_start(fov_lo: int, fov_hi: int, top_fraction: float) -> int:
    """First slice of the top ``top_fraction`` of the field of view ``[fov_lo, fov_hi)`` (at least one slice)."""
    return fov_hi - max(1, int(round((fov_hi - fov_lo) * top_fraction)))


def _box_from_slab(
    slab: torch.Tensor, z0: int, box_voxels: Sequence[int], z_threshold: float
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Steps 3-5 of :func:`hecktor_neck_box` on the top slab ``(X, Y, n)`` of the PET, which starts at slice ``z0``."""
    box = np.asarray([int(b) for b in box_voxels], dtype=np.int64)
    fov_hi = z0 + slab.shape[2]
    std = slab.std()
    found = bool(std > 0)
    if found:
        idx = torch.nonzero((slab - slab.mean()) / std > z_threshold)
        found = idx.shape[0] > 0
    if found:
        centre_xy = idx[:, :2].double().mean(dim=0).round().long().cpu().numpy()
        z_top = int(idx[:, 2].max()) + z0
    else:
        centre_xy = np.asarray([slab.shape[0] // 2, slab.shape[1] // 2], dtype=np.int64)
        z_top = fov_hi - 1
    start = np.empty(3, dtype=np.int64)
    start[:2] = centre_xy - box[:2] // 2
    start[2] = z_top + 1 - box[2]
    return start, start + box, found


class HecktorNeckCrop(CropForeground):
    """Crop (and pad) a volume to the head-and-neck box found on a PET (MONAI's HECKTOR 2022 crop).

    The box is computed by :func:`hecktor_neck_box` on ``source`` (the PET, already on the same voxel grid as the
    image, e.g. after ``ResampleToMatchd``); ``box_mm`` is converted to voxels with the PET's voxel size (from its
    affine, or ``pixdim``): ``round(box_mm / pixdim)``. The output always has the box size: where the box leaves the
    image it is padded (``mode``, default constant 0; the affine is shifted accordingly). Built on MONAI's
    ``CropForeground.crop_pad`` so the crop and the pad are recorded as one invertible operation: ``inverse`` (and
    ``Invertd`` / ``Compose.inverse``) restore the original shape and affine.

    **Orientation:** assumes the head is at high z index (RAS orientation; run ``Orientationd(axcodes="RAS")``
    first).

    Args:
        box_mm: box size (x, y, z) in mm; default ``DEFAULT_RECIPE.box_mm`` (MONAI's HECKTOR 2022 solution).
        top_fraction: fraction of the PET's z field of view searched for the head.
        z_threshold: z-score threshold of the head mask.
        pixdim: voxel size in mm; ``None`` reads it from the source's affine.
        channel: channel of the source used.
        mode: padding mode (see ``monai.transforms.Pad``).
        pad_kwargs: further ``Pad`` arguments (e.g. ``value``).
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        box_mm: Sequence[float] = DEFAULT_RECIPE.box_mm,
        top_fraction: float = 0.25,
        z_threshold: float = 1.0,
        pixdim: Sequence[float] | None = None,
        channel: int = 0,
        mode: str = "constant",
        **pad_kwargs: Any,
    ) -> None:
        super().__init__(allow_smaller=False, mode=mode, **pad_kwargs)
        self.box_mm = np.asarray(ensure_tuple_rep(box_mm, 3), dtype=np.float64)
        if np.any(self.box_mm <= 0):
            raise ValueError(f"box_mm must be positive, got {tuple(self.box_mm)}.")
        self.top_fraction = top_fraction
        self.z_threshold = z_threshold
        self.pixdim = None if pixdim is None else np.asarray(ensure_tuple_rep(pixdim, 3), dtype=np.float64)
        self.channel = channel

    def box_voxels(self, source: torch.Tensor) -> np.ndarray:
        """Box size in voxels of ``source``'s grid: ``max(1, round(box_mm / pixdim))``."""
        pixdim = self.pixdim if self.pixdim is not None else _pixdim(source, 3)
        return np.maximum(1, np.round(self.box_mm / pixdim)).astype(np.int64)

    def compute_bounding_box(self, img: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Box ``(start, end)`` in voxels of the PET ``img``; may extend beyond the image (padded by ``crop_pad``)."""
        start, end, found = hecktor_neck_box(
            img,
            self.box_voxels(img),
            top_fraction=self.top_fraction,
            z_threshold=self.z_threshold,
            channel=self.channel,
        )
        if not found:
            name = img.meta.get("filename_or_obj", "") if isinstance(img, MetaTensor) else ""
            logger.warning(
                "HecktorNeckCrop: no PET voxel above z-score %s in the top %s of the field of view%s; the box is "
                "centred on the image and ends at its top slice.",
                self.z_threshold,
                self.top_fraction,
                f" ({name})" if name else "",
            )
        return start, end

    def __call__(  # type: ignore[override]
        self, img: torch.Tensor, source: torch.Tensor | None = None, mode: str | None = None, **pad_kwargs: Any
    ) -> torch.Tensor:
        """Crop ``img`` ``(C, X, Y, Z)`` to the box found on ``source`` (default: ``img`` itself).

        Args:
            img: channel-first volume on the same voxel grid as ``source``.
            source: the PET that defines the box.
            mode: padding mode override.
            pad_kwargs: further ``Pad`` arguments.

        Returns:
            the cropped / padded volume ``(C, bx, by, bz)``.
        """
        src = img if source is None else source
        if tuple(src.shape[1:]) != tuple(img.shape[1:]):
            raise ValueError(
                f"HecktorNeckCrop: image spatial shape {tuple(img.shape[1:])} differs from the source (PET) shape "
                f"{tuple(src.shape[1:])}; resample the PET onto the image grid first (ResampleToMatchd)."
            )
        box_start, box_end = self.compute_bounding_box(src)
        return self.crop_pad(img, box_start, box_end, mode, lazy=False, **pad_kwargs)


class HecktorNeckCropd(Cropd):
    """Dictionary-based wrapper of :class:`HecktorNeckCrop`: one box from ``source_key``, applied to every key.

    The box is computed once on ``d[source_key]`` (the PET on the common grid) and every key in ``keys`` (CT, PET,
    rater masks, all on that grid) is cropped / padded with it. Invertible (``inverse``, ``Invertd``). Keys in
    ``label_keys`` are checked: a warning is logged when non-zero voxels fall outside the box (MONAI's solution
    warns likewise).

    **Orientation:** assumes RAS (head at high z); run ``Orientationd(axcodes="RAS")`` first.

    Args:
        keys: keys to crop (must include ``source_key`` if the PET itself should be cropped).
        source_key: key of the PET that defines the box.
        box_mm: box size (x, y, z) in mm.
        top_fraction: fraction of the PET's z field of view searched for the head.
        z_threshold: z-score threshold of the head mask.
        pixdim: voxel size in mm; ``None`` reads it from the source's affine.
        mode: padding mode(s), one per key or one for all (see ``monai.transforms.Pad``).
        pad_value: constant padding value(s), one per key or one for all (e.g. -1000 HU, air, for a CT; 0 for the
            PET and the masks).
        label_keys: keys whose non-zero voxels must stay inside the box (a warning otherwise).
        start_coord_key: if set, the box start (voxels) is stored there.
        end_coord_key: if set, the box end (voxels, exclusive) is stored there.
        allow_missing_keys: don't raise if a key is missing.
        pad_kwargs: further ``Pad`` arguments.
    """

    backend = HecktorNeckCrop.backend

    def __init__(
        self,
        keys: KeysCollection,
        source_key: str = "pet",
        box_mm: Sequence[float] = DEFAULT_RECIPE.box_mm,
        top_fraction: float = 0.25,
        z_threshold: float = 1.0,
        pixdim: Sequence[float] | None = None,
        mode: str | Sequence[str] = "constant",
        pad_value: float | Sequence[float] = 0.0,
        label_keys: KeysCollection = (),
        start_coord_key: str | None = None,
        end_coord_key: str | None = None,
        allow_missing_keys: bool = False,
        **pad_kwargs: Any,
    ) -> None:
        cropper = HecktorNeckCrop(
            box_mm=box_mm, top_fraction=top_fraction, z_threshold=z_threshold, pixdim=pixdim, **pad_kwargs
        )
        super().__init__(keys, cropper=cropper, allow_missing_keys=allow_missing_keys)
        self.source_key = source_key
        self.mode = ensure_tuple_rep(mode, len(self.keys))
        self.pad_value = ensure_tuple_rep(pad_value, len(self.keys))
        self.label_keys = set(ensure_tuple(label_keys))
        self.start_coord_key = start_coord_key
        self.end_coord_key = end_coord_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor], lazy: bool | None = None) -> dict[Hashable, Any]:
        d = dict(data)
        if self.source_key not in d:
            raise ValueError(f"HecktorNeckCropd: source key {self.source_key!r} (the PET) not found in the data.")
        self.cropper: HecktorNeckCrop
        source = d[self.source_key]
        box_start, box_end = self.cropper.compute_bounding_box(source)
        if self.start_coord_key is not None:
            d[self.start_coord_key] = box_start
        if self.end_coord_key is not None:
            d[self.end_coord_key] = box_end
        for key, m, value in self.key_iterator(d, self.mode, self.pad_value):
            img = d[key]
            if tuple(img.shape[1:]) != tuple(source.shape[1:]):
                raise ValueError(
                    f"HecktorNeckCropd: {key!r} has spatial shape {tuple(img.shape[1:])} but the source "
                    f"{self.source_key!r} has {tuple(source.shape[1:])}; resample all keys onto one grid first."
                )
            before = int(torch.count_nonzero(img)) if key in self.label_keys else 0
            kwargs = {"value": float(value)} if m in ("constant", None) else {}
            d[key] = self.cropper.crop_pad(img=img, box_start=box_start, box_end=box_end, mode=m, lazy=False, **kwargs)
            if key in self.label_keys:
                lost = before - int(torch.count_nonzero(d[key]))
                if lost > 0:
                    logger.warning(
                        "HecktorNeckCropd: %d non-zero voxels of %r lie outside the head-and-neck box (%s mm).",
                        lost,
                        key,
                        tuple(float(b) for b in self.cropper.box_mm),
                    )
        return d


def _select_channels(img: torch.Tensor, channel: int | Sequence[int] | None) -> list[int] | None:
    if channel is None:
        return None
    channels = [int(c) for c in ensure_tuple(channel)]
    for c in channels:
        if not -img.shape[0] <= c < img.shape[0]:
            raise ValueError(f"channel {c} out of range for an image with {img.shape[0]} channels.")
    return channels


def _apply_to_channels(img: NdarrayOrTensor, channel: int | Sequence[int] | None, fn: Any) -> NdarrayOrTensor:
    """Apply ``fn`` to each selected channel ``(*S)`` of ``img`` separately; keep type, device and meta (float32)."""
    t = convert_to_tensor(img, track_meta=False, dtype=torch.float32)
    if t.ndim < 2:
        raise ValueError(f"expected a channel-first image (C, *S), got shape {tuple(t.shape)}.")
    channels = _select_channels(t, channel)
    out = t.clone()
    for c in range(t.shape[0]) if channels is None else channels:
        out[c] = fn(t[c])
    return convert_to_dst_type(out, dst=img, dtype=torch.float32 if isinstance(img, torch.Tensor) else np.float32)[0]


class CTWindowNormalize(Transform):
    """Clip a CT to an HU window and scale it linearly to ``out_range``.

    ``y = out_min + (clip(x, lo, hi) - lo) / (hi - lo) * (out_max - out_min)``, default window ``[-160, 240]`` HU
    (soft-tissue window, level 40 / width 400) to ``[0, 1]``.

    Why: GTVp and GTVn are soft-tissue structures (tumour / lymph node vs muscle, fat, vessels); a fixed soft-tissue
    window keeps their contrast and saturates air and bone, which carry little information for them. A fixed
    window depends only on the HU scale, not on data-set statistics, so a single case at inference is normalised
    exactly as in training. (MONAI's Auto3DSeg solution instead scales the 0.5-99.5 % foreground percentiles of the
    training set to [-1, 1] and applies a sigmoid; that needs data-set statistics.)

    Args:
        window: ``(lo, hi)`` in HU.
        out_range: output ``(min, max)``.
        clip: clip to the window (default); without clipping the mapping is just linear.
        channel: channel(s) to transform (e.g. 0 of a stacked CT/PET image); ``None``: all channels.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        window: Sequence[float] = DEFAULT_RECIPE.ct_window,
        out_range: Sequence[float] = (0.0, 1.0),
        clip: bool = True,
        channel: int | Sequence[int] | None = None,
    ) -> None:
        lo, hi = (float(v) for v in window)
        if not hi > lo:
            raise ValueError(f"CT window must satisfy lo < hi, got {tuple(window)}.")
        self.window = (lo, hi)
        self.out_range = tuple(float(v) for v in out_range)
        self.clip = clip
        self.channel = channel

    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.window
        if self.clip:
            x = x.clamp(lo, hi)
        o0, o1 = self.out_range
        return (x - lo) * ((o1 - o0) / (hi - lo)) + o0

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Normalise ``img`` ``(C, *S)``; returns float32 of the same type and device."""
        return _apply_to_channels(img, self.channel, self._fn)


class PETNormalize(Transform):
    """Normalise a PET volume.

    Modes:

    - ``"sigmoid"`` (default, MONAI's HECKTOR 2022 / Auto3DSeg recipe): ``y = sigmoid((x - min(x)) / std(x))`` with
      ``min`` and ``std`` over the selected channel of this image (so ``y`` is in ``[0.5, 1)``). It is invariant to
      the PET's unit and scale (SUV, Bq/ml, differently calibrated scanners) and compresses very high uptake while
      keeping the contrast of moderate uptake, where tumour borders lie. A constant image gives 0.5.
    - ``"suv"``: ``y = clip(x, 0, suv_max) / suv_max`` in ``[0, 1]``; only meaningful when the PET is in SUV
      (HECKTOR 2022 distributes SUV-normalised PET, to our knowledge; not verified).

    Args:
        mode: ``"sigmoid"`` or ``"suv"``.
        suv_max: upper clip in SUV units for ``"suv"``.
        channel: channel(s) to transform (e.g. 1 of a stacked CT/PET image); ``None``: all channels (each channel
            uses its own statistics).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        mode: str = DEFAULT_RECIPE.pet_mode,
        suv_max: float = DEFAULT_RECIPE.suv_max,
        channel: int | Sequence[int] | None = None,
    ) -> None:
        mode = str(mode).lower()
        if mode not in ("sigmoid", "suv"):
            raise ValueError(f"PETNormalize mode must be 'sigmoid' or 'suv', got {mode!r}.")
        if suv_max <= 0:
            raise ValueError(f"suv_max must be positive, got {suv_max}.")
        self.mode = mode
        self.suv_max = float(suv_max)
        self.channel = channel

    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "suv":
            return x.clamp(0.0, self.suv_max) / self.suv_max
        std = x.std() if x.numel() > 1 else x.new_zeros(())
        scale = torch.where(std > 0, std, torch.ones_like(std))
        return torch.sigmoid((x - x.min()) / scale)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Normalise ``img`` ``(C, *S)``; returns float32 of the same type and device."""
        return _apply_to_channels(img, self.channel, self._fn)


class CTWindowNormalized(MapTransform):
    """Dictionary-based wrapper of :class:`CTWindowNormalize`.

    Args:
        keys: keys to normalise.
        window: ``(lo, hi)`` HU window.
        out_range: output ``(min, max)``.
        clip: clip to the window.
        channel: channel(s) to transform; ``None``: all.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = CTWindowNormalize.backend

    def __init__(
        self,
        keys: KeysCollection,
        window: Sequence[float] = DEFAULT_RECIPE.ct_window,
        out_range: Sequence[float] = (0.0, 1.0),
        clip: bool = True,
        channel: int | Sequence[int] | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.normalizer = CTWindowNormalize(window=window, out_range=out_range, clip=clip, channel=channel)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalizer(d[key])
        return d


class PETNormalized(MapTransform):
    """Dictionary-based wrapper of :class:`PETNormalize`.

    Args:
        keys: keys to normalise.
        mode: ``"sigmoid"`` or ``"suv"``.
        suv_max: upper clip for ``"suv"``.
        channel: channel(s) to transform; ``None``: all.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = PETNormalize.backend

    def __init__(
        self,
        keys: KeysCollection,
        mode: str = DEFAULT_RECIPE.pet_mode,
        suv_max: float = DEFAULT_RECIPE.suv_max,
        channel: int | Sequence[int] | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.normalizer = PETNormalize(mode=mode, suv_max=suv_max, channel=channel)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalizer(d[key])
        return d


class HecktorNormalize(Transform):
    """The recipe's CT / PET normalisation of a 2-channel HECKTOR image (channel 0 CT in HU, channel 1 PET).

    :class:`CTWindowNormalize` with ``recipe.ct_window`` on the CT channel and :class:`PETNormalize` with
    ``recipe.pet_mode`` / ``recipe.suv_max`` on the PET channel; other channels are left unchanged. The one
    normalisation of the package: training applies it to the converted images, inference (as the last step of
    :func:`hecktor_preprocessing`) to the preprocessed raw ones.

    Args:
        recipe: the preprocessing recipe (e.g. :func:`~monai_lexu.datasets.hecktor.recipe.load_recipe` of the data
            set); ``None``: :data:`~monai_lexu.datasets.hecktor.recipe.DEFAULT_RECIPE`.
        ct_channel: channel of the CT.
        pet_channel: channel of the PET.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, recipe: HecktorRecipe | None = None, ct_channel: int = 0, pet_channel: int = 1) -> None:
        self.recipe = default_recipe() if recipe is None else recipe
        if not isinstance(self.recipe, HecktorRecipe):
            raise TypeError(f"HecktorNormalize: recipe must be a HecktorRecipe, got {type(self.recipe).__name__}.")
        if ct_channel == pet_channel:
            raise ValueError(f"HecktorNormalize: CT and PET need different channels, got {ct_channel} for both.")
        self.ct = CTWindowNormalize(window=self.recipe.ct_window, channel=ct_channel)
        self.pet = PETNormalize(mode=self.recipe.pet_mode, suv_max=self.recipe.suv_max, channel=pet_channel)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Normalise ``img`` ``(C >= 2, *S)``; returns float32 of the same type and device."""
        return self.pet(self.ct(img))


class HecktorNormalized(MapTransform):
    """Dictionary-based wrapper of :class:`HecktorNormalize` (the recipe's CT / PET normalisation).

    Args:
        keys: keys of 2-channel CT/PET images (usually ``"image"``).
        recipe: the preprocessing recipe; ``None``: :data:`~monai_lexu.datasets.hecktor.recipe.DEFAULT_RECIPE`.
        ct_channel: channel of the CT.
        pet_channel: channel of the PET.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = HecktorNormalize.backend

    def __init__(
        self,
        keys: KeysCollection,
        recipe: HecktorRecipe | None = None,
        ct_channel: int = 0,
        pet_channel: int = 1,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.normalizer = HecktorNormalize(recipe, ct_channel=ct_channel, pet_channel=pet_channel)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalizer(d[key])
        return d


def hecktor_preprocessing(
    recipe: HecktorRecipe | None = None,
    ct_key: str = "ct",
    pet_key: str = "pet",
    label_keys: KeysCollection = (),
    device: str | torch.device | None = None,
    normalize: bool = True,
    image_key: str | None = "image",
    load: bool = True,
) -> Compose:
    """The HECKTOR PET/CT pre-processing chain of a recipe as one invertible ``Compose``.

    Steps:

    1. :class:`~monai_lexu.transforms.CheckedLoadImaged` (MONAI's ``LoadImaged`` whose read errors name the file;
       CT, PET, the ``label_keys``; ``image_only``; a NaN / Inf voxel is an error naming the file) and
       ``EnsureChannelFirstd`` (skipped with ``load=False`` when the dict already holds channel-first MetaTensors).
    2. ``EnsureTyped`` to ``device`` (only if ``device`` is given) so that resampling runs there.
    3. ``Orientationd(axcodes="RAS")`` on all keys (the crop needs the head at high z).
    4. ``Spacingd`` of the CT (bilinear) and labels (nearest) to ``recipe.spacing`` mm.
    5. ``ResampleToMatchd`` of the PET onto the CT grid (bilinear, zeros outside the PET's field of view).
    6. :class:`HecktorNeckCropd` of all keys with the ``recipe.box_mm`` box found on the PET (padding: CT
       ``recipe.ct_pad_value`` = air, PET and masks 0).
    7. If ``image_key``: ``ConcatItemsd([ct_key, pet_key], image_key)``: ``(2, X, Y, Z)``, channel 0 CT, 1 PET.
       ``ct_key`` and ``pet_key`` stay in the dict, unnormalised (``Invertd(orig_keys=ct_key)`` uses the CT's
       trace).
    8. If ``normalize``: :class:`HecktorNormalized` on ``image_key`` (the recipe's CT window and PET
       normalisation, exactly as at training time).

    Rater masks (``label_keys``) must be on the CT's voxel grid (as in HECKTOR); they stay integer-valued.
    Conversion uses ``normalize=False, image_key=None`` (stores HU and PET units; steps 1-6); a bundle's inference
    uses the defaults with the recipe recorded with its training data
    (:func:`~monai_lexu.datasets.hecktor.recipe.load_recipe`).

    Args:
        recipe: the preprocessing recipe; ``None``: :data:`~monai_lexu.datasets.hecktor.recipe.DEFAULT_RECIPE`.
        ct_key: key of the CT file / volume.
        pet_key: key of the PET file / volume.
        label_keys: keys of the rater masks (``()`` at inference).
        device: device to run on (e.g. ``"cuda"``); ``None`` keeps the loaded tensors where they are (CPU).
        normalize: add the recipe's CT / PET normalisation (needs ``image_key``).
        image_key: output key of the 2-channel CT/PET image; ``None`` skips the concatenation.
        load: start with ``LoadImaged`` + ``EnsureChannelFirstd``.

    Returns:
        the ``Compose`` (invertible for the spatial steps: ``Invertd(keys="pred", transform=..., orig_keys=ct_key)``
        maps a prediction on the preprocessed grid back to the original CT grid).

    Raises:
        ValueError: on duplicate keys, or ``normalize`` without ``image_key``; when run, on an unreadable or
            non-finite file (named).
        TypeError: if ``recipe`` is not a :class:`~monai_lexu.datasets.hecktor.recipe.HecktorRecipe`.
    """
    from monai.transforms import (
        ConcatItemsd,
        EnsureChannelFirstd,
        EnsureTyped,
        Orientationd,
        ResampleToMatchd,
        Spacingd,
    )

    from monai_lexu.transforms import CheckedLoadImaged

    recipe = default_recipe() if recipe is None else recipe
    if not isinstance(recipe, HecktorRecipe):
        raise TypeError(f"hecktor_preprocessing: recipe must be a HecktorRecipe, got {type(recipe).__name__}.")
    labels = [str(k) for k in ensure_tuple(label_keys)]
    all_keys = [ct_key, pet_key, *labels]
    if len(set(all_keys)) != len(all_keys):
        raise ValueError(f"hecktor_preprocessing: keys must be distinct, got ct/pet/labels {all_keys}.")
    if normalize and image_key is None:
        raise ValueError("hecktor_preprocessing: normalize=True needs image_key (it normalises the CT/PET image).")
    xforms: list[Any] = []
    if load:
        xforms += [CheckedLoadImaged(keys=all_keys, image_only=True), EnsureChannelFirstd(keys=all_keys)]
    if device is not None:
        xforms.append(EnsureTyped(keys=all_keys, device=torch.device(device), track_meta=True))
    xforms += [
        Orientationd(keys=all_keys, axcodes="RAS", labels=None),
        Spacingd(
            keys=[ct_key, *labels],
            pixdim=recipe.spacing,
            mode=["bilinear"] + ["nearest"] * len(labels),
            padding_mode=["border"] + ["zeros"] * len(labels),
        ),
        ResampleToMatchd(keys=pet_key, key_dst=ct_key, mode="bilinear", padding_mode="zeros"),
        HecktorNeckCropd(
            keys=all_keys,
            source_key=pet_key,
            box_mm=recipe.box_mm,
            pad_value=[recipe.ct_pad_value] + [0.0] * (1 + len(labels)),
            label_keys=labels,
        ),
    ]
    if image_key is not None:
        xforms.append(ConcatItemsd(keys=[ct_key, pet_key], name=image_key, dim=0))
    if normalize:
        xforms.append(HecktorNormalized(keys=image_key, recipe=recipe))
    return Compose(xforms)


def _translation(shift: Sequence[int]) -> np.ndarray:
    t = np.eye(4)
    t[:3, 3] = np.asarray(shift, dtype=np.float64)
    return t


def resample_region(
    img: MetaTensor,
    dst_affine: NdarrayOrTensor,
    lo: Sequence[int],
    hi: Sequence[int],
    mode: str,
    padding_mode: str,
    max_voxels: int = 2**22,
) -> torch.Tensor:
    """Resample ``img`` onto the voxels ``[lo, hi)`` of the grid ``dst_affine`` only.

    The same sampling as MONAI's ``SpatialResample`` (hence ``Spacingd`` / ``ResampleToMatchd``) onto the whole grid
    followed by a crop to ``[lo, hi)``: ``torch.nn.functional.grid_sample`` in float64 with ``align_corners=False``
    at the source coordinates ``inv(img.affine) @ dst_affine @ (lo + index)``. It differs only in how those
    coordinates are computed (one broadcast sum per chunk instead of MONAI's whole-grid ``affine_grid``, which also
    costs 3x more CPU than the sampling itself), so values agree up to float64 rounding of the coordinates; a
    ``"nearest"`` sample lying exactly midway between two source voxels may round either way. The region is done in
    z-chunks of at most ``max_voxels`` output voxels (the grid holds 3 float64 numbers per voxel), each from the part
    of ``img`` its samples can touch (one voxel of margin, clipped to the image, so zero / border padding behave as
    on the whole image); ``img`` may be non-contiguous (e.g. a Fortran-ordered NIfTI array): only that part is copied.

    Args:
        img: channel-first 3D image ``(C, X, Y, Z)`` with its affine (any orientation).
        dst_affine: ``(4, 4)`` affine of the destination grid (voxel index -> world mm).
        lo: first voxel of the region on that grid (may be negative).
        hi: end (exclusive) of the region.
        mode: ``"bilinear"`` (trilinear) or ``"nearest"``.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"`` (outside ``img``).
        max_voxels: output voxels per chunk.

    Returns:
        float32 tensor ``(C, *max(hi - lo, 0))`` on ``img``'s device (no metadata).
    """
    import itertools

    import torch.nn.functional as F

    src_affine = np.asarray(torch.as_tensor(img.affine).detach().cpu().numpy(), dtype=np.float64)
    dst_affine = np.asarray(torch.as_tensor(dst_affine).detach().cpu().numpy(), dtype=np.float64)
    data = img.as_tensor() if isinstance(img, MetaTensor) else torch.as_tensor(img)
    n_src = np.asarray(data.shape[1:4], dtype=np.int64)
    lo_a = np.asarray(lo, dtype=np.int64)
    size = np.asarray(hi, dtype=np.int64) - lo_a
    out = torch.empty((data.shape[0], *np.maximum(size, 0).tolist()), dtype=torch.float32, device=data.device)
    if size.min() <= 0:
        return out
    to_src_0 = np.linalg.solve(src_affine, dst_affine @ _translation(lo_a))
    step = max(1, int(max_voxels) // int(size[0] * size[1]))
    f64 = {"dtype": torch.float64, "device": data.device}
    axes = [torch.arange(int(n), **f64) for n in size]
    for z in range(0, int(size[2]), step):
        nz = min(step, int(size[2]) - z)
        to_src = to_src_0 @ _translation((0, 0, z))  # chunk index -> source index
        corners = np.asarray(list(itertools.product(*[(0, n - 1) for n in (size[0], size[1], nz)])), dtype=np.float64)
        pts = corners @ to_src[:3, :3].T + to_src[:3, 3]
        s_lo = np.clip(np.floor(pts.min(0)).astype(np.int64) - 1, 0, n_src - 1)
        s_hi = np.maximum(np.minimum(np.ceil(pts.max(0)).astype(np.int64) + 2, n_src), s_lo + 1)
        part = data[:, s_lo[0] : s_hi[0], s_lo[1] : s_hi[1], s_lo[2] : s_hi[2]].to(torch.float64)
        n_part = (s_hi - s_lo).astype(np.float64)
        # grid_sample's normalised coordinates (align_corners=False): u = (2 * (i - s_lo) + 1) / n - 1, last axis
        # ordered (z, y, x) for an input (1, C, X, Y, Z) read as (N, C, D, H, W)
        lin = (2.0 * to_src[:3, :3] / n_part[:, None])[::-1].T.copy()  # (3 index axes, 3 coordinates z, y, x)
        off = ((2.0 * (to_src[:3, 3] - s_lo) + 1.0) / n_part - 1.0)[::-1].copy()
        lin_t, off_t = torch.as_tensor(lin, **f64), torch.as_tensor(off, **f64)
        gx = axes[0][:, None, None, None] * lin_t[0] + off_t
        gy = axes[1][None, :, None, None] * lin_t[1]
        gz = axes[2][None, None, :nz, None] * lin_t[2]
        grid = (gx + gy) + gz  # (X', Y', nz, 3)
        res = F.grid_sample(
            part[None], grid[None], mode=mode, padding_mode=padding_mode, align_corners=False
        )  # (1, C, X', Y', nz)
        out[..., z : z + nz] = res[0].to(torch.float32)
    return out


def _load_volume(path: Any, key: str) -> MetaTensor:
    """A NIfTI file as a channel-first MetaTensor ``(1, X, Y, Z)`` WITHOUT copying the voxels (nibabel's array as
    stored, usually Fortran-ordered; its own dtype); errors name the key and the file."""
    import nibabel as nib

    try:
        nii = nib.load(str(path))
        arr = np.asanyarray(nii.dataobj)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise ValueError(
            f"{key!r}: cannot read {path}: truncated or not a valid NIfTI file ({type(e).__name__}: {e})"
        ) from e
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise ValueError(f"{key!r}: {path} must be a 3D volume, got shape {arr.shape}.")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{key!r} is not finite: {path} holds NaN or Inf voxels; fix or remove the file.")
    if arr.dtype not in (np.uint8, np.int8, np.int16, np.int32, np.int64, np.float32, np.float64, np.bool_):
        arr = arr.astype(np.float32)
    out = MetaTensor(torch.from_numpy(arr)[None], affine=torch.as_tensor(np.asarray(nii.affine), dtype=torch.float64))
    out.meta["filename_or_obj"] = str(path)
    return out


def hecktor_box_preprocess(
    data: Mapping[Hashable, Any],
    recipe: HecktorRecipe | None = None,
    ct_key: str = "ct",
    pet_key: str = "pet",
    label_keys: KeysCollection = (),
    device: str | torch.device | None = None,
    top_fraction: float = 0.25,
    z_threshold: float = 1.0,
    max_chunk_voxels: int = 2**22,
) -> dict[Hashable, Any]:
    """The spatial part of :func:`hecktor_preprocessing` (steps 1-6) resampling only the head-and-neck box.

    :func:`hecktor_preprocessing` resamples the whole CT, PET and every mask onto the ``recipe.spacing`` grid and then
    keeps the box (about 11 % of a 512 x 512 x 150 CT at 1 mm); for a real-size case that is 5 volumes of
    500 x 500 x 448 float64 and 8.5 GiB. This function computes the same output grid (MONAI's ``Spacing`` of the
    RAS CT, evaluated lazily: affine and shape only) and finds the same box on the PET resampled onto that grid,
    resampling only what the box search reads: the slices at both ends of the grid until the PET's field of view is
    found, then the top ``top_fraction`` slab (:func:`hecktor_neck_box`'s steps). Then it resamples CT, PET and masks
    only inside the box (:func:`resample_region`; same modes, padding and float64 resampler as the whole-grid chain)
    and pads the box where it leaves the grid (CT ``recipe.ct_pad_value``, PET and masks 0), one volume at a time.

    The outputs equal :func:`hecktor_preprocessing` ``(normalize=False, image_key=None)`` up to floating-point
    rounding of the sampling coordinates (mask labels can differ where a sample lies within rounding of the
    midpoint between two source voxels); ``tests/datasets/hecktor/test_hecktor_transforms.py`` asserts it and
    ``benchmarks/bench_hecktor_convert.py`` measures it on a real-size case. Masks are resampled onto the CT's grid
    (the chain resamples each mask from its own affine, which
    :func:`~monai_lexu.datasets.hecktor.format.check_hecktor_case` requires to equal the CT's within 1e-3). Not
    invertible (no transform trace): inference, which maps predictions back with ``Invertd``, keeps
    :func:`hecktor_preprocessing`.

    Args:
        data: ``{ct_key: CT, pet_key: PET, label key: mask}``, each a NIfTI file or a channel-first MetaTensor
            with its affine (other entries are copied).
        recipe: the preprocessing recipe; ``None``: :data:`~monai_lexu.datasets.hecktor.recipe.DEFAULT_RECIPE`.
        ct_key: key of the CT file.
        pet_key: key of the PET file.
        label_keys: keys of the rater masks (on the CT grid).
        device: device to resample on (``None``: CPU).
        top_fraction: fraction of the PET's field of view searched for the head.
        z_threshold: z-score threshold of the head mask.
        max_chunk_voxels: output voxels resampled at once (memory cap).

    Returns:
        the dict with ``ct_key``, ``pet_key`` and the label keys replaced by float32 MetaTensors ``(1, bx, by, bz)``
        on the box grid (all with the same affine), and ``"box_start"`` / ``"box_end"`` (voxels of the
        ``recipe.spacing`` grid).

    Raises:
        ValueError: on duplicate keys, an unreadable / non-finite file (named), or a file that is not one 3D volume.
        TypeError: if ``recipe`` is not a :class:`~monai_lexu.datasets.hecktor.recipe.HecktorRecipe`.
    """
    from monai.transforms import Orientation, Spacing

    recipe = default_recipe() if recipe is None else recipe
    if not isinstance(recipe, HecktorRecipe):
        raise TypeError(f"hecktor_box_preprocess: recipe must be a HecktorRecipe, got {type(recipe).__name__}.")
    labels = [str(k) for k in ensure_tuple(label_keys)]
    if len({ct_key, pet_key, *labels}) != 2 + len(labels):
        raise ValueError(
            f"hecktor_box_preprocess: keys must be distinct, got ct/pet/labels {[ct_key, pet_key, *labels]}."
        )
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}.")
    d = dict(data)

    def load(key: str) -> MetaTensor:
        img = d[key] if isinstance(d[key], MetaTensor) else _load_volume(d[key], key)
        if img.ndim != 4:
            raise ValueError(f"hecktor_box_preprocess: {key!r} must be (C, X, Y, Z), got shape {tuple(img.shape)}.")
        return img if device is None else img.to(torch.device(device))

    ct = load(ct_key)
    # the chain's output grid: Orientationd RAS then Spacingd of the CT, evaluated lazily (affine and shape only; the
    # voxels are never flipped: resample_region reads any orientation through the source affine)
    probe = MetaTensor(ct.as_tensor()[:1], affine=ct.affine.clone())  # a view
    probe = Spacing(pixdim=recipe.spacing, lazy=True)(Orientation(axcodes="RAS", labels=None, lazy=True)(probe))
    out_affine = np.asarray(probe.peek_pending_affine().detach().cpu().numpy(), dtype=np.float64)
    shape = np.asarray([int(v) for v in probe.peek_pending_shape()], dtype=np.int64)
    del probe
    pet = load(pet_key)
    start, end = _neck_box_on_grid(pet, out_affine, shape, recipe, top_fraction, z_threshold, max_chunk_voxels)
    box_affine = torch.as_tensor(out_affine @ _translation(start), dtype=torch.float64)
    lo, hi = np.maximum(start, 0), np.minimum(end, shape)
    inner = tuple(slice(int(a - s), int(b - s)) for a, b, s in zip(lo, hi, start))

    def in_box(img: MetaTensor, mode: str, padding_mode: str, pad_value: float) -> MetaTensor:
        out = torch.full((img.shape[0], *(end - start).tolist()), float(pad_value), dtype=torch.float32)
        out = out.to(img.device)
        if np.all(hi > lo):
            out[(slice(None), *inner)] = resample_region(
                img, out_affine, lo, hi, mode, padding_mode, max_voxels=max_chunk_voxels
            )
        return MetaTensor(out, affine=box_affine.clone())

    d[pet_key] = in_box(pet, "bilinear", "zeros", 0.0)
    del pet
    d[ct_key] = in_box(ct, "bilinear", "border", recipe.ct_pad_value)
    del ct
    box_mm = tuple(float(b) for b in recipe.box_mm)
    for key in labels:
        mask = load(key)
        lost = _count_outside(mask, out_affine, start, end)
        if lost > 0:
            logger.warning(
                "hecktor_box_preprocess: %d non-zero voxels of %r (its own grid) lie outside the head-and-neck box "
                "(%s mm).",
                lost,
                key,
                box_mm,
            )
        d[key] = in_box(mask, "nearest", "zeros", 0.0)
        del mask
    d["box_start"], d["box_end"] = start, end
    return d


def _count_outside(mask: MetaTensor, grid_affine: np.ndarray, start: np.ndarray, end: np.ndarray) -> int:
    """Non-zero voxels of ``mask`` whose centres fall outside the voxels ``[start, end)`` of the grid."""
    arr = mask.as_tensor().detach().cpu().numpy()
    arr = arr[0] if arr.shape[0] == 1 else np.any(arr, axis=0)
    # np.nonzero walks C order: read a Fortran-ordered NIfTI array through its transpose (a view), then flip back
    idx = np.argwhere(arr.T)[:, ::-1] if arr.flags.f_contiguous and not arr.flags.c_contiguous else np.argwhere(arr)
    idx = idx.astype(np.float64)
    if idx.size == 0:
        return 0
    src = np.asarray(mask.affine.detach().cpu().numpy(), dtype=np.float64)
    to_grid = np.linalg.solve(grid_affine, src)
    pos = idx @ to_grid[:3, :3].T + to_grid[:3, 3]
    inside = np.all((pos >= start - 0.5) & (pos < end - 0.5), axis=1)
    return int((~inside).sum())


def _neck_box_on_grid(
    pet: MetaTensor,
    grid_affine: np.ndarray,
    shape: np.ndarray,
    recipe: HecktorRecipe,
    top_fraction: float,
    z_threshold: float,
    max_voxels: int,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`hecktor_neck_box` of the PET resampled onto the grid ``(grid_affine, shape)``, resampling only what it
    reads: z-chunks from the top and from the bottom until the first non-zero slice (the field of view), then the top
    slab. Returns ``(box_start, box_end)`` in voxels of the grid."""
    nx, ny, nz = (int(v) for v in shape)
    step = max(1, int(max_voxels) // (nx * ny))
    chunks: dict[int, torch.Tensor] = {}  # chunk k: slices [k * step, (k + 1) * step), channel 0

    def chunk(k: int) -> torch.Tensor:
        if k not in chunks:
            z0, z1 = k * step, min(nz, (k + 1) * step)
            chunks[k] = resample_region(pet, grid_affine, (0, 0, z0), (nx, ny, z1), "bilinear", "zeros", max_voxels)[0]
        return chunks[k]

    n_chunks = -(-nz // step)
    fov_hi = None
    for k in reversed(range(n_chunks)):
        nonzero = torch.nonzero(chunk(k).abs().amax(dim=(0, 1)) > 0).flatten()
        if nonzero.numel():
            fov_hi = k * step + int(nonzero.max()) + 1
            break
        chunks.pop(k)
    if fov_hi is None:
        fov_lo, fov_hi = 0, nz
    else:
        fov_lo = fov_hi - 1
        for k in range(n_chunks):
            if k * step >= fov_hi:
                break
            nonzero = torch.nonzero(chunk(k).abs().amax(dim=(0, 1)) > 0).flatten()
            if nonzero.numel():
                fov_lo = k * step + int(nonzero.min())
                break
    z0 = _top_slab_start(fov_lo, fov_hi, top_fraction)
    for k in [k for k in chunks if (k + 1) * step <= z0]:
        chunks.pop(k)
    ks = range(z0 // step, -(-fov_hi // step))
    parts = [chunk(k)[:, :, max(z0 - k * step, 0) : fov_hi - k * step] for k in ks]
    slab = torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]
    chunks.clear()
    pixdim = np.linalg.norm(grid_affine[:3, :3], axis=0)
    box_voxels = np.maximum(1, np.round(np.asarray(recipe.box_mm) / pixdim)).astype(np.int64)
    start, end, found = _box_from_slab(slab, z0, box_voxels, z_threshold)
    if not found:
        name = pet.meta.get("filename_or_obj", "") if isinstance(pet, MetaTensor) else ""
        logger.warning(
            "HecktorNeckCrop: no PET voxel above z-score %s in the top %s of the field of view%s; the box is "
            "centred on the image and ends at its top slice.",
            z_threshold,
            top_fraction,
            f" ({name})" if name else "",
        )
    return start, end
