"""Dictionary transforms for multi-rater samples.

Sample contract: ``"image"`` ``(C, *S)``; ``"raters"`` ``(R, L, *S)`` binary float32; ``"rater_valid"`` ``(R,)`` bool;
``"soft_label"`` ``(L, *S)``; ``"rater_var"`` ``(L, *S)``. A typical pre-processing chain::

    Compose([
        LoadImaged(keys="image", ensure_channel_first=True),
        LoadRatersd(keys="raters", structures={"disc": "nonzero", "cup": [255]}),
        ScaleIntensityd(keys="image"),
        FlattenRatersd(keys="raters"),  # (R, L, *S) -> (R*L, *S): channel-first for MONAI spatial transforms
        Resized(keys=["image", "raters"], spatial_size=(128, 128), mode=["bilinear", "nearest"]),
        RandFlipd(keys=["image", "raters"], prob=0.5, spatial_axis=0),
        UnflattenRatersd(keys="raters", valid_key="rater_valid"),  # back to (R, L, *S)
        RaterStatsd(keys="raters"),  # soft_label, rater_var
    ])
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import DtypeLike, KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, LoadImage, LoadImaged, MapTransform, Randomizable
from monai.transforms.inverse import TraceKeys
from monai.utils import ensure_tuple_rep

from monai_lexu.transforms.array import (
    FlattenRaters,
    FuseRaters,
    FusionMode,
    LoadRaters,
    MapStructures,
    ProbToLabelMap,
    RandFuseRaters,
    RaterStats,
    SplitProbUnc,
    UnflattenRaters,
)

__all__ = [
    "CheckFinited",
    "CheckedLoadImaged",
    "MapStructuresd",
    "LoadRatersd",
    "RaterStatsd",
    "FuseRatersd",
    "RandFuseRatersd",
    "FlattenRatersd",
    "UnflattenRatersd",
    "SplitProbUncd",
    "SplitProbUncD",
    "SplitProbUncDict",
    "ProbToLabelMapd",
]


def _case_prefix(d: Mapping, id_key: str | None) -> str | None:
    if id_key is None or id_key not in d:
        return None
    return str(d[id_key])


def _source_name(img: Any, d: Mapping, key: Hashable) -> str | None:
    """The file a loaded value came from: the MetaTensor's ``filename_or_obj``, else ``<key>_meta_dict``'s."""
    name = None
    if isinstance(img, MetaTensor):
        name = img.meta.get("filename_or_obj")
    meta = d.get(f"{key}_meta_dict")
    if not name and isinstance(meta, Mapping):
        name = meta.get("filename_or_obj")
    return str(name) if name else None


def _non_finite_message(img: Any, files: Sequence[str] | None) -> str | None:
    """``None`` if ``img`` is finite, else a description naming the channels / files with NaN or Inf voxels."""
    t = img if isinstance(img, torch.Tensor) else torch.as_tensor(np.asarray(img))
    if not t.is_floating_point():
        return None
    finite = torch.isfinite(t)
    if bool(finite.all()):
        return None
    nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
    counts = f"{nan} NaN and {inf} Inf voxel(s)"
    if t.ndim >= 2:
        bad_channels = [c for c in range(t.shape[0]) if not bool(finite[c].all())]
        if files is not None and len(files) == t.shape[0]:
            return f"{', '.join(str(files[c]) for c in bad_channels)}: {counts}"
        return f"channel(s) {bad_channels}: {counts}"
    return counts


class CheckFinited(MapTransform):
    """Refuse loaded images with NaN or Inf voxels, naming the case and the file.

    Runs right after a loader (e.g. ``LoadImaged``): one NaN voxel spreads through resampling and normalisation
    and turns a whole loss NaN, so a non-finite input is an error, never passed on. The file is the MetaTensor's
    ``filename_or_obj`` (else the ``<key>_meta_dict``'s); the non-finite channels are named too. Integer tensors
    pass unchecked (always finite).

    Args:
        keys: keys of the loaded images ``(C, *S)``.
        id_key: key of the case id quoted in the error.
        allow_missing_keys: don't raise if a key is missing.

    Raises:
        ValueError: naming the case, the key, the file and the channels holding NaN / Inf.
    """

    def __init__(self, keys: KeysCollection, id_key: str | None = "id", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.id_key = id_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        case_id = _case_prefix(d, self.id_key)
        case = f"case {case_id!r}: " if case_id is not None else ""
        for key in self.key_iterator(d):
            problem = _non_finite_message(d[key], None)
            if problem is not None:
                source = _source_name(d[key], d, key)
                raise ValueError(
                    f"{case}{key!r} loaded from {source or 'an unnamed source'} is not finite ({problem}); fix or "
                    "remove the file."
                )
        return d


class CheckedLoadImaged(LoadImaged):
    """MONAI's ``LoadImaged`` whose failures name the case and the file, plus a finiteness check.

    Same arguments as :class:`monai.transforms.LoadImaged` (the bundles use ``ensure_channel_first=True,
    image_only=True``), and:

    - a read error (truncated ``.nii.gz``, unknown format) is re-raised as ``ValueError`` naming the case and the
      file; when a key lists several files (one per channel, e.g. ``[CT, PET]``) that cannot be stacked (a 4D CT
      next to a 3D PET), each file is read alone to name the one that fails or the files' shapes;
    - with ``check_finite`` (default) a loaded float image holding NaN or Inf is refused; with one file per channel
      the file is named (else the channels), see :class:`CheckFinited`;
    - with ``spatial_dims`` the loaded ``(C, *S)`` image must have exactly that many spatial dimensions.

    Args:
        keys: keys of the image paths.
        args: positional arguments of ``LoadImaged`` after ``keys``.
        check_finite: refuse NaN / Inf voxels.
        spatial_dims: required number of spatial dimensions (``None``: not checked).
        id_key: key of the case id quoted in errors.
        kwargs: keyword arguments of ``LoadImaged``.

    Raises:
        FileNotFoundError: a file does not exist (MONAI's message, which names it).
        ValueError: naming the case and the file, for unreadable, unstackable, non-finite or wrongly shaped images.
    """

    def __init__(
        self,
        keys: KeysCollection,
        *args: Any,
        check_finite: bool = True,
        spatial_dims: int | None = None,
        id_key: str | None = "id",
        **kwargs: Any,
    ) -> None:
        super().__init__(keys, *args, **kwargs)
        self.check_finite = check_finite
        self.spatial_dims = spatial_dims
        self.id_key = id_key

    def _diagnose(self, files: Any, error: Exception, case: str) -> str:
        listed = [files] if isinstance(files, (str, os.PathLike)) else list(files)
        if len(listed) == 1:
            return f"{case}cannot read {listed[0]}: truncated or not a valid image ({type(error).__name__}: {error})"
        single = LoadImage(image_only=True)
        shapes = []
        for f in listed:
            try:
                shapes.append((f, tuple(single(f).shape)))
            except Exception as e:
                return f"{case}cannot read {f}: truncated or not a valid image ({type(e).__name__}: {e})"
        shown = ", ".join(f"{f} {shape}" for f, shape in shapes)
        return (
            f"{case}cannot stack the image files {shown} into one channel-first image ({type(error).__name__}: "
            f"{error}); each file must be one volume on the same grid."
        )

    def __call__(self, data: Mapping[Hashable, Any], reader: Any = None) -> dict[Hashable, Any]:
        d = dict(data)
        case_id = _case_prefix(d, self.id_key)
        case = f"case {case_id!r}: " if case_id is not None else ""
        sources = {key: d[key] for key in self.key_iterator(d)}
        try:
            out = super().__call__(d, reader)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{case}{e}") from e
        except Exception as e:
            for files in sources.values():
                if not isinstance(files, (str, os.PathLike, Sequence)):
                    continue
                try:
                    self._loader(files, reader)
                except FileNotFoundError as inner:
                    raise FileNotFoundError(f"{case}{inner}") from e
                except Exception as inner:
                    raise ValueError(self._diagnose(files, inner, case)) from e
            raise
        for key, files in sources.items():
            img = out[key]
            listed = [str(files)] if isinstance(files, (str, os.PathLike)) else [str(f) for f in files]
            if self.spatial_dims is not None and len(img.shape) != self.spatial_dims + 1:
                raise ValueError(
                    f"{case}{key!r} loaded from {', '.join(listed)} has shape {tuple(img.shape)}; expected a "
                    f"channel-first image with {self.spatial_dims} spatial dimensions (a 4D file?)."
                )
            if self.check_finite:
                problem = _non_finite_message(img, listed if len(listed) > 1 else None)
                if problem is not None:
                    named = len(listed) > 1 and img.shape[0] == len(listed)
                    where = problem if named else f"{', '.join(listed)}: {problem}"
                    raise ValueError(f"{case}{key!r} is not finite: {where}; fix or remove the file.")
        return out


class MapStructuresd(MapTransform):
    """Dictionary-based wrapper of :class:`monai_lexu.transforms.MapStructures`.

    Args:
        keys: keys of the integer masks ``(*S)`` / ``(1, *S)`` to map to ``(L, *S)``.
        structures: ordered mapping ``name -> "nonzero" | list of mask values``.
        spatial_dims: see :class:`MapStructures`.
        dtype: output dtype.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = MapStructures.backend

    def __init__(
        self,
        keys: KeysCollection,
        structures: Mapping[str, str | float | Sequence[float]],
        spatial_dims: int | None = None,
        dtype: DtypeLike | torch.dtype = np.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mapper = MapStructures(structures, spatial_dims=spatial_dims, dtype=dtype)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        out = {key: self.mapper(d[key]) for key in self.key_iterator(d)}  # all keys checked before writing
        d.update(out)
        return d


class LoadRatersd(MapTransform):
    """Load the rater masks listed under ``keys`` into ``(R, L, *S)`` and write ``rater_valid`` (all True).

    Runs after ``LoadImaged(keys="image", ensure_channel_first=True)``: every rater file is read with MONAI's
    ``LoadImage`` (same readers, same axis order as the image), mapped with the structure mapping, checked against
    the image's spatial shape ``image.shape[1:]`` and stacked. The output is a MetaTensor with the first rater's
    meta (affine, ``filename_or_obj``); the image key is left as MONAI wrote it. Errors name the case id (from
    ``id_key``) and the file; nothing is written to the output dict when any rater fails.

    Per rater file (see :class:`~monai_lexu.transforms.LoadRaters`): readable, finite, integer label values of any
    dtype (a float mask holding 0.5 is refused, not binarised), values in the mapping, the image's spatial shape,
    and, for files with geometry (NIfTI, ...), the image's affine within ``affine_tol`` (max absolute entry
    difference; mm for the translation): a mask shifted by 10 mm is an error naming the mask, the image and the
    offset. 2D PNG / JPEG masks carry no geometry and skip the affine check.

    Args:
        keys: keys holding the list of rater file paths (datalist ``"raters"``).
        structures: ordered mapping ``name -> "nonzero" | list of mask values``, e.g. ``{"disc": "nonzero",
            "cup": [255]}`` (RIGA) or ``{"GTVp": [1], "GTVn": [2]}`` (HECKTOR).
        image_key: loaded image whose spatial shape the raters must match; ``None`` skips that check (raters must
            still agree with each other).
        valid_key: output key of the ``(R,)`` bool validity mask; one per key if several keys.
        reader: passed to ``LoadImage``; use the image's reader when it was not the default.
        dtype: output dtype of the rater masks.
        id_key: key of the case id quoted in error messages.
        affine_tol: tolerance of the rater / image affine comparison; ``None`` skips it.
        allow_missing_keys: don't raise if a key is missing.

    Raises:
        FileNotFoundError: a rater file does not exist.
        ValueError: zero raters, an unreadable file, NaN / Inf or non-integer values, a spatial shape or affine
            mismatch, mask values outside the mapping, image not loaded yet.
    """

    def __init__(
        self,
        keys: KeysCollection = "raters",
        structures: Mapping[str, str | float | Sequence[float]] | None = None,
        image_key: str | None = "image",
        valid_key: str | Sequence[str] = "rater_valid",
        reader: Any = None,
        dtype: DtypeLike | torch.dtype = np.float32,
        id_key: str | None = "id",
        affine_tol: float | None = 1e-3,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if structures is None:
            raise ValueError("LoadRatersd needs a structure mapping, e.g. {'disc': 'nonzero', 'cup': [255]}.")
        self.loader = LoadRaters(structures, reader=reader, dtype=dtype)
        self.image_key = image_key
        self.valid_key = ensure_tuple_rep(valid_key, len(self.keys))
        self.id_key = id_key
        self.affine_tol = affine_tol

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        case_id = _case_prefix(d, self.id_key)
        case = f"case {case_id!r}: " if case_id is not None else ""
        spatial_shape = None
        reference = None
        reference_name = None
        if self.image_key is not None:
            if self.image_key not in d:
                raise ValueError(f"{case}image key {self.image_key!r} not found; run LoadImaged before LoadRatersd.")
            img = d[self.image_key]
            if not hasattr(img, "shape") or len(img.shape) < 2:
                raise ValueError(
                    f"{case}{self.image_key!r} must be a loaded channel-first image (C, *S), got "
                    f"{type(img).__name__}; run LoadImaged(keys={self.image_key!r}, ensure_channel_first=True) first."
                )
            spatial_shape = tuple(img.shape[1:])
            if self.affine_tol is not None and isinstance(img, MetaTensor):
                reference = img.affine
                reference_name = _source_name(img, d, self.image_key)
        out: dict[Hashable, Any] = {}
        for key, valid_key in self.key_iterator(d, self.valid_key):
            raters = self.loader(
                d[key],
                spatial_shape=spatial_shape,
                case_id=case_id,
                reference_affine=reference,
                reference_name=reference_name,
                affine_tol=1e-3 if self.affine_tol is None else self.affine_tol,
            )
            out[key] = raters
            out[valid_key] = torch.ones(raters.shape[0], dtype=torch.bool)
        d.update(out)
        return d


class RaterStatsd(MapTransform):
    """Write ``soft_label`` (mean) and ``rater_var`` (ddof=1 variance) of the valid raters.

    See :func:`monai_lexu.transforms.rater_statistics`. A missing ``valid_key`` means all raters are valid; a
    ``(B, R)`` validity mask (after collation) is handled too.

    Args:
        keys: rater keys ``(R, L, *S)``.
        valid_key: ``(R,)`` validity key(s).
        soft_label_key: output key(s) of the ``(L, *S)`` mean.
        var_key: output key(s) of the ``(L, *S)`` variance.
        unbiased: ddof=1 (default; 0 where one rater is valid) or ddof=0.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = RaterStats.backend

    def __init__(
        self,
        keys: KeysCollection = "raters",
        valid_key: str | Sequence[str] = "rater_valid",
        soft_label_key: str | Sequence[str] = "soft_label",
        var_key: str | Sequence[str] = "rater_var",
        unbiased: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.stats = RaterStats(unbiased=unbiased)
        self.valid_key = ensure_tuple_rep(valid_key, len(self.keys))
        self.soft_label_key = ensure_tuple_rep(soft_label_key, len(self.keys))
        self.var_key = ensure_tuple_rep(var_key, len(self.keys))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        out: dict[Hashable, Any] = {}
        for key, valid_key, soft_key, var_key in self.key_iterator(
            d, self.valid_key, self.soft_label_key, self.var_key
        ):
            out[soft_key], out[var_key] = self.stats(d[key], d.get(valid_key))
        d.update(out)
        return d


class FuseRatersd(MapTransform):
    """Dictionary-based wrapper of :class:`monai_lexu.transforms.FuseRaters`: ``(R, L, *S)`` -> ``(L, *S)``.

    Modes ``"mean"``, ``"majority"`` (strictly more than half of the valid raters; ties -> 0), ``"union"``,
    ``"intersection"``, ``"staple"`` (STAPLE probability >= 0.5 -> 1) and ``"random"``. ``FuseRatersd(mode="random")``
    returns a :class:`RandFuseRatersd` (MONAI ``Randomizable``), the other modes stay cacheable.

    Args:
        keys: rater keys.
        valid_key: ``(R,)`` validity key(s); missing -> all raters valid.
        mode: fusion mode, see :class:`FuseRaters`.
        output_key: output key(s); ``None`` overwrites ``keys``.
        staple_threshold: STAPLE probability threshold (``>=``).
        staple_max_iterations: ITK STAPLE ``MaximumIterations`` (``None``: ITK default).
        dtype: output dtype.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = FuseRaters.backend

    def __new__(
        cls,
        keys: KeysCollection = "raters",
        valid_key: Any = "rater_valid",
        mode: str = "majority",
        *args: Any,
        **kwargs: Any,
    ) -> FuseRatersd:
        if cls is FuseRatersd and str(mode).lower() == FusionMode.RANDOM:
            cls = RandFuseRatersd
        return super().__new__(cls)

    def __init__(
        self,
        keys: KeysCollection = "raters",
        valid_key: str | Sequence[str] = "rater_valid",
        mode: str = FusionMode.MAJORITY,
        output_key: str | Sequence[str] | None = "label",
        staple_threshold: float = 0.5,
        staple_max_iterations: int | None = None,
        dtype: DtypeLike | torch.dtype = np.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.fuser = FuseRaters(
            mode, staple_threshold=staple_threshold, staple_max_iterations=staple_max_iterations, dtype=dtype
        )
        self.valid_key = ensure_tuple_rep(valid_key, len(self.keys))
        self.output_key = self.keys if output_key is None else ensure_tuple_rep(output_key, len(self.keys))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        out: dict[Hashable, Any] = {}
        for key, valid_key, out_key in self.key_iterator(d, self.valid_key, self.output_key):
            out[out_key] = self.fuser(d[key], d.get(valid_key))
        d.update(out)
        return d


class RandFuseRatersd(FuseRatersd, Randomizable):
    """:class:`FuseRatersd` in ``"random"`` mode: one valid rater drawn uniformly per call.

    One draw per call, shared by all ``keys`` (drawn from the first present key's validity mask), so e.g. a rater
    key and its low-resolution copy pick the same rater. Built by ``FuseRatersd(mode="random")``.

    Args:
        keys: rater keys.
        valid_key: ``(R,)`` validity key(s); missing -> all raters valid.
        mode: must be ``"random"``.
        output_key: output key(s); ``None`` overwrites ``keys``.
        staple_threshold: unused.
        staple_max_iterations: unused.
        dtype: output dtype.
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection = "raters",
        valid_key: str | Sequence[str] = "rater_valid",
        mode: str = FusionMode.RANDOM,
        output_key: str | Sequence[str] | None = "label",
        staple_threshold: float = 0.5,
        staple_max_iterations: int | None = None,
        dtype: DtypeLike | torch.dtype = np.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        if str(mode).lower() != FusionMode.RANDOM:
            raise ValueError(f"RandFuseRatersd only supports mode 'random', got {mode!r}.")
        super().__init__(
            keys, valid_key, mode, output_key, staple_threshold, staple_max_iterations, dtype, allow_missing_keys
        )
        self.fuser: RandFuseRaters

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RandFuseRatersd:
        super().set_random_state(seed, state)
        self.fuser.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        """Draw the rater index from ``data``, a ``(R,)`` validity mask or a rater count."""
        self.fuser.randomize(data)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        out: dict[Hashable, Any] = {}
        first = True
        for key, valid_key, out_key in self.key_iterator(d, self.valid_key, self.output_key):
            valid = d.get(valid_key)
            if first:
                self.randomize(valid if valid is not None else d[key].shape[0])
                first = False
            out[out_key] = self.fuser(d[key], valid, randomize=False)
        d.update(out)
        return d


class FlattenRatersd(MapTransform, InvertibleTransform):
    """Dictionary-based wrapper of :class:`monai_lexu.transforms.FlattenRaters`: ``(R, L, *S)`` -> ``(R*L, *S)``.

    MONAI's spatial/crop/flip transforms expect channel-first arrays, so wrap them between this transform and
    :class:`UnflattenRatersd`::

        FlattenRatersd(keys="raters"),
        Resized(keys=["image", "raters"], spatial_size=(128, 128), mode=["bilinear", "nearest"]),
        RandFlipd(keys=["image", "raters"], prob=0.5, spatial_axis=0),
        UnflattenRatersd(keys="raters", valid_key="rater_valid"),

    MetaTensor meta and the applied-operations stack are kept, and the reshape is recorded, so ``Compose.inverse``
    / ``Invertd`` undo the whole chain.

    Args:
        keys: rater keys.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = FlattenRaters.backend

    def __init__(self, keys: KeysCollection = "raters", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.flatten = FlattenRaters()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            num_raters = int(d[key].shape[0])
            d[key] = self.flatten(d[key])
            self.push_transform(d, key, extra_info={"num_raters": num_raters})
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            xform = self.pop_transform(d, key)
            d[key] = UnflattenRaters()(d[key], num_raters=xform[TraceKeys.EXTRA_INFO]["num_raters"])
        return d


class UnflattenRatersd(MapTransform, InvertibleTransform):
    """Dictionary-based wrapper of :class:`monai_lexu.transforms.UnflattenRaters`: ``(R*L, *S)`` -> ``(R, L, *S)``.

    ``R`` is ``len(d[valid_key])``; see :class:`FlattenRatersd` for the intended use. Invertible.

    Args:
        keys: flattened rater keys.
        valid_key: ``(R,)`` validity key(s) giving ``R``.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = UnflattenRaters.backend

    def __init__(
        self,
        keys: KeysCollection = "raters",
        valid_key: str | Sequence[str] = "rater_valid",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.valid_key = ensure_tuple_rep(valid_key, len(self.keys))
        self.unflatten = UnflattenRaters()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, valid_key in self.key_iterator(d, self.valid_key):
            if valid_key not in d:
                raise ValueError(f"UnflattenRatersd: validity key {valid_key!r} (gives the rater count) not found.")
            num_raters = len(d[valid_key])
            try:
                d[key] = self.unflatten(d[key], num_raters=num_raters)
            except ValueError as e:
                raise ValueError(f"key {key!r}: {e}") from e
            self.push_transform(d, key, extra_info={"num_raters": num_raters})
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            self.pop_transform(d, key)
            d[key] = FlattenRaters()(d[key])
        return d


class SplitProbUncd(MapTransform):
    """Dictionary-based wrapper of :class:`monai_lexu.transforms.SplitProbUnc` (post-processing after decollation).

    Args:
        keys: key(s) of the ``(2L, *S)`` prob/unc tensors.
        prob_key: output key(s) for ``prob (L, *S)``, one per key.
        unc_key: output key(s) for ``unc (L, *S)``, one per key.
        allow_missing_keys: do not raise if a key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection = "pred",
        prob_key: str | Sequence[str] = "prob",
        unc_key: str | Sequence[str] = "unc",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.prob_key = ensure_tuple_rep(prob_key, len(self.keys))
        self.unc_key = ensure_tuple_rep(unc_key, len(self.keys))
        self.splitter = SplitProbUnc()

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key, prob_key, unc_key in self.key_iterator(d, self.prob_key, self.unc_key):
            try:
                d[prob_key], d[unc_key] = self.splitter(d[key])
            except ValueError as e:
                raise ValueError(f"SplitProbUncd key {key!r}: {e}") from e
        return d


class ProbToLabelMapd(MapTransform):
    """Dictionary-based wrapper of :class:`monai_lexu.transforms.ProbToLabelMap`.

    Args:
        keys: probability keys ``(L, *S)``.
        label_values: value of each structure channel.
        threshold: probability threshold.
        output_key: output key(s); default ``"label_map"``.
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection,
        label_values: Sequence[int],
        threshold: float = 0.5,
        output_key: str | Sequence[str] = "label_map",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.converter = ProbToLabelMap(label_values, threshold)
        self.output_key = [output_key] * len(self.keys) if isinstance(output_key, str) else list(output_key)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, out_key in self.key_iterator(d, self.output_key):
            d[out_key] = self.converter(d[key])
        return d


SplitProbUncD = SplitProbUncDict = SplitProbUncd
