"""Array transforms for multi-rater labels.

Shapes: ``R`` raters, ``L`` structure channels (independent sigmoid channels, no background), ``*S`` spatial (2D/3D).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import DtypeLike, NdarrayOrTensor, PathLike
from monai.data import MetaTensor
from monai.transforms import LoadImage, Randomizable, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor, look_up_option
from monai.utils.enums import StrEnum

from monai_lexu.contract import split_prob_unc, validate_structures
from monai_lexu.transforms.utils import map_structures, rater_statistics

__all__ = [
    "affine_offset",
    "FusionMode",
    "SplitProbUnc",
    "ProbToLabelMap",
    "MapStructures",
    "LoadRaters",
    "RaterStats",
    "FuseRaters",
    "RandFuseRaters",
    "FlattenRaters",
    "UnflattenRaters",
]


class FusionMode(StrEnum):
    """Label fusion modes of :class:`FuseRaters`."""

    MEAN = "mean"
    MAJORITY = "majority"
    UNION = "union"
    INTERSECTION = "intersection"
    RANDOM = "random"
    STAPLE = "staple"


def _split_channel(img: NdarrayOrTensor, spatial_dims: int | None, what: str) -> NdarrayOrTensor:
    """Drop the singleton channel of a ``(1, *S)`` mask; ``(*S)`` passes through."""
    shape = tuple(img.shape)
    if spatial_dims is None:
        return img[0] if len(shape) >= 3 and shape[0] == 1 else img
    if len(shape) == spatial_dims:
        return img
    if len(shape) == spatial_dims + 1 and shape[0] == 1:
        return img[0]
    raise ValueError(f"{what} must have shape (*S) or (1, *S) with {spatial_dims} spatial dims, got {shape}.")


_NO_GEOMETRY_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")


def _check_label_values(mask: torch.Tensor, where: str) -> None:
    """Refuse non-finite and non-integer values of a loaded label mask (see :class:`LoadRaters`)."""
    m = convert_to_tensor(mask, track_meta=False)
    if not m.is_floating_point():
        return
    finite = torch.isfinite(m)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(f"{where} holds {bad} non-finite value(s) (NaN or Inf); a rater mask holds label values.")
    fractional = m != torch.round(m)
    if bool(fractional.any()):
        values = torch.unique(m[fractional]).double().tolist()
        shown = ", ".join(f"{v:g}" for v in values[:8]) + (", ..." if len(values) > 8 else "")
        raise ValueError(
            f"{where} holds non-integer values [{shown}]; a "
            "rater mask holds integer label values (soft / probabilistic masks are refused, not binarised: binarise "
            "them explicitly when writing the data set)."
        )


def affine_offset(affine: NdarrayOrTensor, reference: NdarrayOrTensor) -> tuple[float, float]:
    """Largest absolute entry difference of two affines and the distance of their origins (mm).

    Args:
        affine: ``(D+1, D+1)`` affine.
        reference: affine of the same size.

    Returns:
        ``(max |affine - reference|, ||origin - reference origin||)``; ``(inf, inf)`` if the sizes differ.
    """
    a = np.asarray(convert_to_tensor(affine, track_meta=False).detach().cpu().numpy(), dtype=np.float64)
    b = np.asarray(convert_to_tensor(reference, track_meta=False).detach().cpu().numpy(), dtype=np.float64)
    if a.shape != b.shape:
        return math.inf, math.inf
    return float(np.abs(a - b).max()), float(np.linalg.norm(a[:-1, -1] - b[:-1, -1]))


def _check_affine(
    mask: Any, reference: NdarrayOrTensor, tol: float, where: str, filename: Any, reference_name: str | None
) -> None:
    if not isinstance(mask, MetaTensor) or str(filename).lower().endswith(_NO_GEOMETRY_SUFFIXES):
        return
    diff, origin = affine_offset(mask.affine, reference)
    if not diff <= tol:
        image = f" ({reference_name})" if reference_name else ""
        raise ValueError(
            f"{where} is not on the image's grid{image}: its affine differs by up to {diff:.4g} (tolerance {tol:g}; "
            f"origins {origin:.4g} mm apart); rater masks must share the image's voxel grid."
        )


class MapStructures(Transform):
    """Map an integer label mask to binary structure channels, ``(*S)`` or ``(1, *S)`` -> ``(L, *S)``.

    Channel ``l`` is ``1[mask value in the values of structure l]``, or ``mask != 0`` for ``"nonzero"``. Mask values
    outside ``{0} U all listed values`` raise ``ValueError`` (anything is allowed if one structure is ``"nonzero"``).

    Example::

        MapStructures({"disc": "nonzero", "cup": [255]})(mask)  # RIGA: {0, 150, 255} -> disc, cup
        MapStructures({"GTVp": [1], "GTVn": [2]})(mask)  # HECKTOR: {0, 1, 2} -> GTVp, GTVn

    Args:
        structures: ordered mapping ``name -> "nonzero" | list of mask values``; its order is the channel order.
        spatial_dims: number of spatial dims, to tell ``(1, *S)`` from ``(*S)``. ``None``: a leading dimension of
            size 1 is taken as the channel when the input has at least 3 dims (so a 3D volume of depth 1 is read
            as a 2D ``(1, H, W)`` mask; pass ``spatial_dims=3`` to avoid that).
        dtype: output dtype.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        structures: Mapping[str, str | float | Sequence[float]],
        spatial_dims: int | None = None,
        dtype: DtypeLike | torch.dtype = np.float32,
    ) -> None:
        self.structures = validate_structures(structures)
        self.spatial_dims = spatial_dims
        self.dtype = dtype

    def __call__(self, img: NdarrayOrTensor, source: str | None = None) -> NdarrayOrTensor:
        """
        Args:
            img: integer-valued mask ``(*S)`` or ``(1, *S)``.
            source: name used in error messages; defaults to the MetaTensor's ``filename_or_obj``.

        Returns:
            ``(L, *S)`` binary array, same type as ``img`` (a MetaTensor keeps its meta).
        """
        if source is None and isinstance(img, MetaTensor):
            source = img.meta.get("filename_or_obj")
            source = str(source) if source else None
        mask = _split_channel(img, self.spatial_dims, "mask")
        out = map_structures(mask, self.structures, source=source)
        return convert_to_dst_type(out, img, dtype=self.dtype)[0]


class LoadRaters(Transform):
    """Load the rater masks of one case and map them to structures: list of R files -> ``(R, L, *S)``.

    Every file is read with MONAI's :class:`~monai.transforms.LoadImage` (``ensure_channel_first=True``, float32),
    so any format MONAI reads works and the axis order is the one ``LoadImage(d)`` gives the image with the same
    ``reader``. A multi-channel mask file (e.g. a grey mask saved as RGB) is accepted only when all its channels
    are identical; the first is used. All checks run before anything is returned; every error names the case and the
    file.

    Checks, per rater file:

    - **readable**: a truncated / corrupt file raises ``ValueError`` naming it (MONAI's readers do not).
    - **finite**: a NaN or Inf voxel is refused.
    - **integer label values, any dtype**: a mask is a map of label values. The file's dtype does not matter (uint8,
      int16 and float32 masks of one case may be mixed: the values are compared, not the dtypes), but a
      non-integer value (e.g. a soft / probabilistic float mask holding 0.5) is REFUSED, not binarised: what 0.5
      means (a fused soft label? a resampling artefact?) cannot be known here, and thresholding it would silently
      change the rater's annotation. Binarise such masks explicitly before writing the data set.
    - values inside the structure mapping (see :class:`MapStructures`).
    - **geometry**: with ``reference_affine`` (the image's affine), the rater's affine must equal it within
      ``affine_tol`` on every entry (mm for the translation); 2D formats without geometry (PNG, JPEG, BMP, TIFF read
      by PIL) are skipped.

    Args:
        structures: structure mapping, see :class:`MapStructures`.
        reader: passed to ``LoadImage`` (reader name, class or instance); ``None`` chooses by file extension.
        dtype: output dtype.
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        structures: Mapping[str, str | float | Sequence[float]],
        reader: Any = None,
        dtype: DtypeLike | torch.dtype = np.float32,
    ) -> None:
        self.structures = validate_structures(structures)
        self.dtype = dtype
        self.loader = LoadImage(reader=reader, image_only=True, ensure_channel_first=True, dtype=np.float32)

    def __call__(
        self,
        filenames: Sequence[PathLike] | PathLike,
        spatial_shape: Sequence[int] | None = None,
        case_id: str | None = None,
        reference_affine: NdarrayOrTensor | None = None,
        reference_name: str | None = None,
        affine_tol: float = 1e-3,
    ) -> MetaTensor:
        """
        Args:
            filenames: one path per rater (a single path means one rater).
            spatial_shape: expected spatial shape ``S`` (e.g. ``image.shape[1:]``); ``None`` requires only that all
                raters agree with the first.
            case_id: case identifier quoted in error messages.
            reference_affine: the image's affine (``(4, 4)`` for 3D); ``None`` skips the geometry check.
            reference_name: the image file named in a geometry error.
            affine_tol: largest allowed absolute difference of any affine entry (mm for the translation).

        Returns:
            ``(R, L, *S)`` MetaTensor carrying the first rater's meta (affine, filename).

        Raises:
            FileNotFoundError: a rater file does not exist.
            ValueError: no rater, an unreadable file, non-finite or non-integer values, spatial shape or affine
                mismatch, multi-channel mask with differing channels, or mask values outside the structure mapping.
                Messages name the case and the file.
        """
        case = f"case {case_id!r}: " if case_id is not None else ""
        if isinstance(filenames, (str, os.PathLike)):
            filenames = [filenames]
        files = list(filenames) if filenames is not None else []
        if len(files) == 0:
            raise ValueError(f"{case}no rater files given (zero raters).")
        for f in files:
            if not isinstance(f, (str, os.PathLike)):
                raise ValueError(f"{case}rater entries must be file paths, got {type(f).__name__}: {f!r}.")
            if not os.path.isfile(f):
                raise FileNotFoundError(f"{case}rater file not found: {f}")
        expected = None if spatial_shape is None else tuple(int(s) for s in spatial_shape)
        mapped = []
        for f in files:
            try:
                mask = self.loader(f)  # (C, *S)
            except Exception as e:  # truncated gzip, EOF, unknown format: MONAI's messages do not name the file
                raise ValueError(
                    f"{case}cannot read rater file {f}: truncated or not a valid image ({type(e).__name__}: {e})."
                ) from e
            _check_label_values(mask, f"{case}rater file {f}")
            if reference_affine is not None:
                _check_affine(mask, reference_affine, affine_tol, f"{case}rater file {f}", f, reference_name)
            shape = tuple(mask.shape[1:])
            if expected is None:
                expected = shape
            if shape != expected:
                raise ValueError(
                    f"{case}rater file {f} has spatial shape {shape}, expected {expected} "
                    f"({'image' if spatial_shape is not None else 'first rater'} spatial shape)."
                )
            if mask.shape[0] > 1:
                if not bool((mask == mask[:1]).all()):
                    raise ValueError(
                        f"{case}rater file {f} has {mask.shape[0]} differing channels; a rater mask must have one "
                        "channel of label values."
                    )
            label = map_structures(mask[0], self.structures, source=f"{case}rater file {f}")
            mapped.append(convert_to_dst_type(label, mask, dtype=self.dtype)[0])
        return torch.stack(mapped, dim=0)


class RaterStats(Transform):
    """Soft label and inter-rater variance of the valid raters, see :func:`rater_statistics`.

    Args:
        unbiased: ddof=1 variance (0 where a single rater is valid) when True, ddof=0 otherwise.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, unbiased: bool = True) -> None:
        self.unbiased = unbiased

    def __call__(
        self, raters: NdarrayOrTensor, rater_valid: NdarrayOrTensor | None = None
    ) -> tuple[NdarrayOrTensor, NdarrayOrTensor]:
        """
        Args:
            raters: ``(R, L, *S)`` (or batched ``(B, R, L, *S)`` with a ``(B, R)`` ``rater_valid``).
            rater_valid: ``(R,)`` / ``(B, R)`` booleans, ``None``: all valid.

        Returns:
            ``(soft_label, rater_var)``, each ``(L, *S)`` / ``(B, L, *S)``.
        """
        return rater_statistics(raters, rater_valid, unbiased=self.unbiased)


def _valid_indices(raters: torch.Tensor, rater_valid: NdarrayOrTensor | Sequence[bool] | None) -> np.ndarray:
    """Indices of the valid raters, after shape checks."""
    if raters.ndim < 3:
        raise ValueError(f"raters must have shape (R, L, *S), got {tuple(raters.shape)}.")
    if rater_valid is None:
        return np.arange(raters.shape[0])
    valid = np.asarray(convert_to_tensor(rater_valid, track_meta=False, wrap_sequence=True).cpu(), dtype=bool)
    if valid.shape != (raters.shape[0],):
        raise ValueError(f"rater_valid shape {valid.shape} does not match raters shape {tuple(raters.shape)}.")
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        raise ValueError(f"no valid rater to fuse (rater_valid={valid.tolist()}).")
    return idx


def _staple(masks: np.ndarray, threshold: float, max_iterations: int | None) -> np.ndarray:
    """Binary STAPLE of ``(R, *S)`` {0,1} masks of one structure -> ``(*S)`` {0,1} float32."""
    if masks.shape[0] == 1 or bool((masks == masks[:1]).all()):
        # unanimous raters (incl. all-empty / all-full masks, where ITK's STAPLE returns NaN): nothing to estimate
        return masks[0].astype(np.float32)
    import itk  # lazy: importing/initialising itk's STAPLE takes seconds

    ndim = masks.ndim - 1
    if ndim not in (2, 3):
        raise ValueError(f"STAPLE fusion supports 2 or 3 spatial dims, got masks of shape {masks.shape}.")
    image_type = itk.Image[itk.F, ndim]
    staple = itk.STAPLEImageFilter[image_type, image_type].New()
    for i, m in enumerate(masks):
        staple.SetInput(i, itk.image_from_array(np.ascontiguousarray(m, dtype=np.float32)))
    staple.SetForegroundValue(1.0)
    if max_iterations is not None:
        staple.SetMaximumIterations(int(max_iterations))
    staple.Update()
    prob = np.nan_to_num(itk.array_from_image(staple.GetOutput()), nan=0.0)
    return (prob >= threshold).astype(np.float32)


class FuseRaters(Transform):
    """Fuse the valid raters into one label, ``(R, L, *S)`` -> ``(L, *S)`` float32.

    Modes (binary modes read a rater value >= 0.5 as foreground):

    - ``"mean"``: soft label, mean of the valid raters.
    - ``"majority"``: 1 where **strictly more than half** of the valid raters mark the voxel. Tie policy: an exact
      tie (even number of raters, half of them foreground) gives **0** (background).
    - ``"union"``: 1 where any valid rater marks the voxel.
    - ``"intersection"``: 1 where every valid rater marks the voxel.
    - ``"random"``: the mask of one valid rater drawn uniformly at random per call (the same rater for all
      structures). ``FuseRaters(mode="random")`` returns a :class:`RandFuseRaters` (a MONAI ``Randomizable``; seed
      it with ``set_random_state`` / ``Compose.set_random_state`` / MONAI's ``DataLoader``). The deterministic modes
      stay non-random, so ``CacheDataset`` can cache them.
    - ``"staple"``: binary STAPLE (Warfield 2004, ``itk.STAPLEImageFilter`` on float images with
      ``SetForegroundValue(1.0)``, ITK's default prior and confidence weight 1) **per structure**, then
      probability ``>= staple_threshold`` (default 0.5) -> 1. Unanimous raters (including all-empty masks, for
      which ITK returns NaN) are returned as they are; any remaining NaN probability counts as 0.

    Args:
        mode: one of :class:`FusionMode`.
        staple_threshold: threshold on the STAPLE foreground probability (``>=``).
        staple_max_iterations: ITK ``MaximumIterations``; ``None`` keeps ITK's default (run to convergence).
        dtype: output dtype.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __new__(cls, mode: str = FusionMode.MAJORITY, *args: Any, **kwargs: Any) -> FuseRaters:
        if cls is FuseRaters and str(mode).lower() == FusionMode.RANDOM:
            cls = RandFuseRaters
        return super().__new__(cls)

    def __init__(
        self,
        mode: str = FusionMode.MAJORITY,
        staple_threshold: float = 0.5,
        staple_max_iterations: int | None = None,
        dtype: DtypeLike | torch.dtype = np.float32,
    ) -> None:
        self.mode = FusionMode(look_up_option(str(mode).lower(), FusionMode))
        if self.mode == FusionMode.RANDOM and not isinstance(self, Randomizable):
            raise ValueError("mode 'random' needs the randomizable RandFuseRaters.")
        self.staple_threshold = float(staple_threshold)
        self.staple_max_iterations = staple_max_iterations
        self.dtype = dtype

    def _fuse(self, r: torch.Tensor, idx: np.ndarray, rater_index: int | None = None) -> torch.Tensor:
        """Fuse ``r`` (R, L, *S) over the raters ``idx``; returns (L, *S) float32."""
        sel = r[torch.as_tensor(idx, dtype=torch.long, device=r.device)].float()
        n = sel.shape[0]
        if self.mode == FusionMode.MEAN:
            return sel.mean(dim=0)
        if self.mode == FusionMode.RANDOM:
            if rater_index is None or rater_index not in idx:
                raise ValueError(f"random fusion: rater index {rater_index} is not a valid rater {idx.tolist()}.")
            return r[rater_index].float()
        fg = sel >= 0.5
        if self.mode == FusionMode.MAJORITY:
            return (2 * fg.sum(dim=0) > n).float()
        if self.mode == FusionMode.UNION:
            return fg.any(dim=0).float()
        if self.mode == FusionMode.INTERSECTION:
            return fg.all(dim=0).float()
        # STAPLE, one structure at a time
        fg_np = fg.cpu().numpy().astype(np.float32)
        fused = [_staple(fg_np[:, c], self.staple_threshold, self.staple_max_iterations) for c in range(fg_np.shape[1])]
        return torch.as_tensor(np.stack(fused, axis=0), device=r.device)

    def __call__(
        self, raters: NdarrayOrTensor, rater_valid: NdarrayOrTensor | Sequence[bool] | None = None
    ) -> NdarrayOrTensor:
        """
        Args:
            raters: ``(R, L, *S)`` rater masks.
            rater_valid: ``(R,)`` booleans, ``None``: all raters valid.

        Returns:
            ``(L, *S)`` fused label, same array type as ``raters`` (a MetaTensor keeps its meta).
        """
        r = convert_to_tensor(raters, track_meta=False)
        idx = _valid_indices(r, rater_valid)
        return convert_to_dst_type(self._fuse(r, idx), raters, dtype=self.dtype)[0]


class RandFuseRaters(FuseRaters, Randomizable):
    """:class:`FuseRaters` in ``"random"`` mode: the mask of one valid rater, drawn uniformly per call.

    ``FuseRaters(mode="random")`` constructs this class. The draw uses ``self.R``, so
    ``set_random_state(seed)`` (and MONAI's ``Compose``/``DataLoader`` seeding) makes it reproducible.

    Args:
        mode: must be ``"random"``.
        staple_threshold: unused, kept for a uniform signature.
        staple_max_iterations: unused, kept for a uniform signature.
        dtype: output dtype.
    """

    def __init__(
        self,
        mode: str = FusionMode.RANDOM,
        staple_threshold: float = 0.5,
        staple_max_iterations: int | None = None,
        dtype: DtypeLike | torch.dtype = np.float32,
    ) -> None:
        if str(mode).lower() != FusionMode.RANDOM:
            raise ValueError(f"RandFuseRaters only supports mode 'random', got {mode!r}.")
        super().__init__(mode, staple_threshold, staple_max_iterations, dtype)
        self._rater_index: int | None = None

    def randomize(self, data: NdarrayOrTensor | Sequence[bool] | int) -> None:
        """Draw the rater index.

        Args:
            data: ``rater_valid`` ``(R,)`` booleans, or the rater count ``R`` (all valid).
        """
        if isinstance(data, (int, np.integer)):
            idx = np.arange(int(data))
        else:
            valid = np.asarray(convert_to_tensor(data, track_meta=False, wrap_sequence=True).cpu(), dtype=bool).reshape(
                -1
            )
            idx = np.flatnonzero(valid)
        if idx.size == 0:
            raise ValueError("no valid rater to draw from.")
        self._rater_index = int(self.R.choice(idx))

    def __call__(
        self,
        raters: NdarrayOrTensor,
        rater_valid: NdarrayOrTensor | Sequence[bool] | None = None,
        randomize: bool = True,
    ) -> NdarrayOrTensor:
        """
        Args:
            raters: ``(R, L, *S)`` rater masks.
            rater_valid: ``(R,)`` booleans, ``None``: all raters valid.
            randomize: draw a new rater (default); False reuses the last draw.

        Returns:
            ``(L, *S)`` mask of the drawn rater.
        """
        r = convert_to_tensor(raters, track_meta=False)
        idx = _valid_indices(r, rater_valid)
        if randomize or self._rater_index is None:
            self.randomize(rater_valid if rater_valid is not None else r.shape[0])
        return convert_to_dst_type(self._fuse(r, idx, self._rater_index), raters, dtype=self.dtype)[0]


class FlattenRaters(Transform):
    """Merge the rater and structure dims, ``(R, L, *S)`` -> ``(R*L, *S)`` (channel ``r*L + l``).

    MONAI spatial, crop and flip transforms expect channel-first arrays; flatten before them and
    :class:`UnflattenRaters` after. MetaTensor meta is kept.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Args:
            img: ``(R, L, *S)``.

        Returns:
            ``(R*L, *S)``, same type.
        """
        if img.ndim < 3:
            raise ValueError(f"raters must have shape (R, L, *S), got {tuple(img.shape)}.")
        return img.reshape(img.shape[0] * img.shape[1], *img.shape[2:])


class UnflattenRaters(Transform):
    """Split the channel dim back into raters and structures, ``(R*L, *S)`` -> ``(R, L, *S)``.

    Args:
        num_raters: default ``R``; can be overridden per call.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, num_raters: int | None = None) -> None:
        self.num_raters = num_raters

    def __call__(self, img: NdarrayOrTensor, num_raters: int | None = None) -> NdarrayOrTensor:
        """
        Args:
            img: ``(R*L, *S)``.
            num_raters: ``R``; defaults to the constructor's value.

        Returns:
            ``(R, L, *S)``, same type.
        """
        n = num_raters if num_raters is not None else self.num_raters
        if n is None or int(n) <= 0:
            raise ValueError(f"num_raters must be a positive int, got {n!r}.")
        n = int(n)
        if img.ndim < 2 or img.shape[0] % n != 0:
            raise ValueError(f"cannot split channels of shape {tuple(img.shape)} into {n} raters.")
        return img.reshape(n, img.shape[0] // n, *img.shape[1:])


class SplitProbUnc(Transform):
    """Split an inference output ``(2L, *S)`` (channel-first, no batch) into ``prob (L, *S)`` and ``unc (L, *S)``.

    The transform form of :func:`monai_lexu.contract.split_prob_unc` (raises ValueError on an odd channel count).
    """

    def __call__(self, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(prob, unc)``."""
        return split_prob_unc(pred)


class ProbToLabelMap(Transform):
    """Probabilities of L independent (sigmoid) structures -> one label map.

    A voxel gets ``label_values[l]`` for the structure ``l`` with the highest probability among those at or above
    ``threshold``, and 0 where no structure reaches it. Ties go to the lower channel. MetaTensor meta is kept.

    Args:
        label_values: value written for each structure channel, e.g. ``(1, 2)`` for GTVp, GTVn.
        threshold: probability threshold.
        dtype: output dtype.
    """

    def __init__(self, label_values: Sequence[int], threshold: float = 0.5, dtype: torch.dtype = torch.uint8) -> None:
        self.label_values = [int(v) for v in label_values]
        self.threshold = float(threshold)
        self.dtype = dtype

    def __call__(self, prob: torch.Tensor) -> torch.Tensor:
        """Args: prob ``(L, *S)``. Returns: ``(1, *S)`` label map."""
        prob = torch.as_tensor(prob)
        if prob.shape[0] != len(self.label_values):
            raise ValueError(
                f"ProbToLabelMap: {prob.shape[0]} probability channels but {len(self.label_values)} label values"
            )
        best, index = prob.max(dim=0, keepdim=True)
        values = torch.tensor(self.label_values, device=prob.device)[index]
        out = torch.where(best >= self.threshold, values, torch.zeros_like(values)).to(self.dtype)
        return convert_to_dst_type(out, prob, dtype=self.dtype)[0]  # keeps MetaTensor meta
