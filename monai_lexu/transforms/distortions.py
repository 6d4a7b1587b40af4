"""Deterministic, seeded image distortions for the example-difficulty / OOD analysis (LEXU Fig. 2c, EDUE's OOD figure).

Fundus photographs get the reference notebook's corruptions, in its order: Gaussian noise (variance drawn from
50-60 on the 0-255 scale), a box blur of kernel 21, then a hue/saturation/value shift (hue +20..30 in OpenCV's
0-179 hue units, i.e. 40-60 degrees; saturation -30..30 and value -20..20 on 0-255: albumentations' defaults the
notebook kept). PET/CT volumes get Gaussian noise (a fraction of each channel's standard deviation), a Gaussian blur
and an intensity scale and shift per channel.

Determinism: what happens to an image depends only on ``seed`` and its case id (the generator is seeded with
``[seed, crc32(id)]``), never on the order of the images or on other random state. Which images are distorted is
chosen by :func:`choose_distorted` (an exact fraction, seeded) or, without a list, per image with probability
``fraction`` from a second per-case generator (``[seed, crc32(id), 1]``).
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from scipy import ndimage

__all__ = [
    "FundusDistortion",
    "VolumeDistortion",
    "Distortd",
    "DistortD",
    "DistortDict",
    "case_rng",
    "choose_distorted",
]


def case_rng(seed: int, case_id: str) -> np.random.Generator:
    """The generator of one case: ``np.random.default_rng([seed, crc32(case_id)])`` (order-independent)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(str(case_id).encode())])


def choose_distorted(ids: Sequence[str], fraction: float, seed: int) -> list[str]:
    """The ``round(fraction * N)`` case ids to distort, drawn without replacement with ``seed`` (sorted ids first).

    Args:
        ids: every case id of the set.
        fraction: in [0, 1] (0 %, 50 %, 100 % in the paper).
        seed: the draw's seed.

    Returns:
        The chosen ids, sorted.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}.")
    pool = sorted(str(i) for i in ids)
    k = int(round(fraction * len(pool)))
    picked = np.random.default_rng(int(seed)).choice(len(pool), size=k, replace=False) if k else []
    return sorted(pool[i] for i in picked)


def _as_numpy(img: Any) -> tuple[np.ndarray, Any]:
    if isinstance(img, torch.Tensor):
        return img.detach().cpu().numpy().astype(np.float64), img
    return np.asarray(img, dtype=np.float64), img


def _like(out: np.ndarray, ref: Any) -> Any:
    """``out`` as float32 of the input's kind: MetaTensor (meta kept), tensor (same device) or numpy array."""
    if isinstance(ref, MetaTensor):
        return MetaTensor(torch.as_tensor(out, dtype=torch.float32), meta=ref.meta)
    if isinstance(ref, torch.Tensor):
        return torch.as_tensor(out, dtype=torch.float32, device=ref.device)
    return out.astype(np.float32)


class FundusDistortion(Transform):
    """Noise, box blur and HSV shift of a channel-first RGB image ``(3, H, W)`` on the 0-255 scale.

    Args:
        noise_var: range of the Gaussian noise variance (0-255 scale); one value per image, independent noise per
            pixel and channel.
        blur_kernel: side of the box (mean) filter, in pixels.
        hue_shift: range of the hue shift in OpenCV units (0-179 per turn).
        sat_shift: range of the saturation shift (0-255 scale).
        val_shift: range of the value shift (0-255 scale).
    """

    def __init__(
        self,
        noise_var: tuple[float, float] = (50.0, 60.0),
        blur_kernel: int = 21,
        hue_shift: tuple[float, float] = (20.0, 30.0),
        sat_shift: tuple[float, float] = (-30.0, 30.0),
        val_shift: tuple[float, float] = (-20.0, 20.0),
    ) -> None:
        self.noise_var, self.blur_kernel = noise_var, int(blur_kernel)
        self.hue_shift, self.sat_shift, self.val_shift = hue_shift, sat_shift, val_shift

    def __call__(self, img: Any, rng: np.random.Generator) -> Any:  # type: ignore[override]
        """Distort ``img`` ``(3, H, W)`` with the generator ``rng``; returns the same type, clipped to 0-255."""
        from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

        x, ref = _as_numpy(img)
        if x.ndim != 3 or x.shape[0] != 3:
            raise ValueError(f"FundusDistortion needs a channel-first RGB image (3, H, W), got {x.shape}.")
        var = rng.uniform(*self.noise_var)
        x = np.clip(x + rng.normal(0.0, np.sqrt(var), size=x.shape), 0, 255)
        if self.blur_kernel > 1:
            x = ndimage.uniform_filter(x, size=(1, self.blur_kernel, self.blur_kernel), mode="reflect")
        hsv = rgb_to_hsv(np.moveaxis(x / 255.0, 0, -1))
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(*self.hue_shift) / 180.0) % 1.0
        hsv[..., 1] = np.clip(hsv[..., 1] + rng.uniform(*self.sat_shift) / 255.0, 0, 1)
        hsv[..., 2] = np.clip(hsv[..., 2] + rng.uniform(*self.val_shift) / 255.0, 0, 1)
        x = np.moveaxis(hsv_to_rgb(hsv), -1, 0) * 255.0
        return _like(np.clip(x, 0, 255), ref)


class VolumeDistortion(Transform):
    """Noise, Gaussian blur and intensity shift of a channel-first image ``(C, *S)`` (PET/CT), per channel.

    Each channel ``c`` with standard deviation ``s_c`` (over the image) becomes
    ``a_c * blur(x_c + n_c) + b_c s_c`` with ``n_c ~ N(0, (noise_std * s_c)^2)`` per voxel, ``blur`` a Gaussian of
    ``blur_sigma`` voxels, ``a_c`` uniform in ``scale`` and ``b_c`` uniform in ``shift``.

    Args:
        noise_std: noise standard deviation as a fraction of the channel's standard deviation.
        blur_sigma: Gaussian sigma in voxels (0: no blur).
        scale: range of the multiplicative factor.
        shift: range of the additive shift in units of the channel's standard deviation.
    """

    def __init__(
        self,
        noise_std: float = 0.2,
        blur_sigma: float = 1.5,
        scale: tuple[float, float] = (0.8, 1.2),
        shift: tuple[float, float] = (-0.2, 0.2),
    ) -> None:
        self.noise_std, self.blur_sigma, self.scale, self.shift = noise_std, blur_sigma, scale, shift

    def __call__(self, img: Any, rng: np.random.Generator) -> Any:  # type: ignore[override]
        """Distort ``img`` ``(C, *S)`` with the generator ``rng``; returns the same type."""
        x, ref = _as_numpy(img)
        if x.ndim < 3:
            raise ValueError(f"VolumeDistortion needs a channel-first image (C, *S), got {x.shape}.")
        out = np.empty_like(x)
        for c in range(x.shape[0]):
            s = float(x[c].std()) or 1.0
            y = x[c] + rng.normal(0.0, self.noise_std * s, size=x[c].shape)
            if self.blur_sigma > 0:
                y = ndimage.gaussian_filter(y, self.blur_sigma, mode="nearest")
            out[c] = rng.uniform(*self.scale) * y + rng.uniform(*self.shift) * s
        return _like(out, ref)


_KINDS = {"fundus": FundusDistortion, "volume": VolumeDistortion}


class Distortd(MapTransform):
    """Dictionary transform: distort ``keys`` of the selected cases, deterministically under ``seed``.

    Args:
        keys: image key(s), channel-first.
        distortion: ``"fundus"``, ``"volume"`` or a :class:`FundusDistortion` / :class:`VolumeDistortion`.
        seed: seed of the per-case generators (:func:`case_rng`).
        selected: ids of the cases to distort (e.g. :func:`choose_distorted`); ``None``: each case with
            probability ``fraction``, drawn from its own generator.
        fraction: used only when ``selected`` is None.
        id_key: key of the case id.
        flag_key: key set to True/False (whether the case was distorted); ``None``: not set.
        allow_missing_keys: do not raise if a key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection,
        distortion: str | Transform = "fundus",
        seed: int = 0,
        selected: Collection[str] | None = None,
        fraction: float = 1.0,
        id_key: str = "id",
        flag_key: str | None = "distorted",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if isinstance(distortion, str):
            if distortion not in _KINDS:
                raise ValueError(f"unknown distortion {distortion!r}; known: {sorted(_KINDS)}")
            distortion = _KINDS[distortion]()
        self.distortion = distortion
        self.seed, self.fraction = int(seed), float(fraction)
        self.selected = None if selected is None else {str(s) for s in selected}
        self.id_key, self.flag_key = id_key, flag_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.id_key not in d:
            raise KeyError(f"Distortd needs the case id under {self.id_key!r} (its seed depends on it).")
        case = str(d[self.id_key])
        if self.selected is not None:
            chosen = case in self.selected
        else:  # a generator of its own, so the distortion itself is the same as with ``selected``
            chosen = bool(
                np.random.default_rng([self.seed & 0xFFFFFFFF, zlib.crc32(case.encode()), 1]).uniform() < self.fraction
            )
        if chosen:
            rng = case_rng(self.seed, case)
            for key in self.key_iterator(d):  # keys in order, from one generator
                d[key] = self.distortion(d[key], rng)  # type: ignore[call-arg]
        if self.flag_key:
            d[self.flag_key] = chosen
        return d


DistortD = DistortDict = Distortd
