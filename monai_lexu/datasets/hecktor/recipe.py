"""The ONE HECKTOR preprocessing recipe: voxel spacing, head-and-neck crop and CT / PET normalisation.

Every HECKTOR setting that must be the same at conversion, training and inference lives in :class:`HecktorRecipe`;
its defaults are :data:`DEFAULT_RECIPE` (MONAI's HECKTOR 2022 solution, real data) and :data:`SYNTHETIC_RECIPE`
(the small synthetic stand-in). Nothing else in the package or the bundle configs repeats these numbers.

How the recipe travels with the data:

1. :func:`~monai_lexu.datasets.hecktor.convert.convert_hecktor` resamples and crops with a recipe and writes it to
   ``<dataset_dir>/preprocessing.json`` (:data:`RECIPE_FILE`, :func:`write_recipe`) next to ``datalist.json``.
2. Training normalises the converted images with the recipe READ from that file (:func:`load_recipe`) and records
   it next to the weights (``<ckpt_dir>/preprocessing.json``); inference preprocesses raw CT/PET with the recipe
   the MODEL was trained with (:func:`load_model_recipe`: the file next to the weights, which ``share pack`` ships
   with them), through the same transforms
   (:class:`~monai_lexu.datasets.hecktor.transforms.HecktorNormalized`,
   :func:`~monai_lexu.datasets.hecktor.transforms.hecktor_preprocessing`).
3. Asking for a setting that differs from the recorded one (e.g. an inference ``spacing`` override, or converting
   into a folder that holds another recipe's output) raises :class:`RecipeMismatchError` naming the file; it never
   silently runs with a different preprocessing than the data were converted with.

This module imports only the standard library, so reading a recipe is cheap.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_RECIPE",
    "PET_MODES",
    "RECIPE_FILE",
    "SYNTHETIC_RECIPE",
    "HecktorRecipe",
    "RecipeMismatchError",
    "default_recipe",
    "load_model_recipe",
    "load_recipe",
    "recipe_path",
    "write_recipe",
]

RECIPE_FILE = "preprocessing.json"
"""Name of the file, in a converted data-set folder, that records the recipe the data were converted with."""

PET_MODES: tuple[str, ...] = ("sigmoid", "suv")
"""PET normalisation modes (see :class:`~monai_lexu.datasets.hecktor.transforms.PETNormalize`)."""

_FORMAT = "monai_lexu.datasets.hecktor.recipe/1"
_TOLERANCE = 1e-6


def _floats(value: Any, n: int, name: str) -> tuple[float, ...]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * n
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != n:
        raise ValueError(f"HecktorRecipe: {name} needs {n} numbers, got {value!r}.")
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"HecktorRecipe: {name} needs {n} numbers, got {value!r}.") from None
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"HecktorRecipe: {name} must be finite, got {value!r}.")
    return out


@dataclass(frozen=True)
class HecktorRecipe:
    """Spacing, crop and intensity settings of the HECKTOR PET/CT preprocessing (immutable).

    The spatial part (``spacing``, ``box_mm``, ``ct_pad_value``) is applied once at conversion and again, identically,
    to raw CT/PET at inference; the intensity part (``ct_window``, ``pet_mode``, ``suv_max``) is applied to the
    converted images at training time and to the preprocessed ones at inference. Orientation is always RAS (the
    neck crop needs the head at high z).

    Attributes:
        spacing: output voxel spacing (x, y, z) in mm of the CT grid (CT bilinear, masks nearest, PET onto it).
        box_mm: head-and-neck crop box (x, y, z) in mm, found on the PET (MONAI's HECKTOR 2022 crop).
        ct_window: CT window ``(lo, hi)`` in HU mapped to [0, 1] (soft tissue: level 40, width 400).
        pet_mode: PET normalisation, ``"sigmoid"`` (MONAI's Auto3DSeg recipe) or ``"suv"``.
        suv_max: upper clip of the ``"suv"`` mode (SUV units).
        ct_pad_value: CT value (HU) where the crop box leaves the CT (air); PET and masks are padded with 0.

    Raises:
        ValueError: on a non-positive spacing or box, ``lo >= hi``, an unknown ``pet_mode`` or ``suv_max <= 0``.
    """

    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    box_mm: tuple[float, float, float] = (200.0, 200.0, 310.0)
    ct_window: tuple[float, float] = (-160.0, 240.0)
    pet_mode: str = "sigmoid"
    suv_max: float = 10.0
    ct_pad_value: float = -1000.0

    def __post_init__(self) -> None:
        spacing = _floats(self.spacing, 3, "spacing")
        box_mm = _floats(self.box_mm, 3, "box_mm")
        ct_window = _floats(self.ct_window, 2, "ct_window")
        if min(spacing) <= 0 or min(box_mm) <= 0:
            raise ValueError(f"HecktorRecipe: spacing and box_mm must be positive, got {spacing} and {box_mm}.")
        if not ct_window[1] > ct_window[0]:
            raise ValueError(f"HecktorRecipe: ct_window must satisfy lo < hi, got {ct_window}.")
        pet_mode = str(self.pet_mode).lower()
        if pet_mode not in PET_MODES:
            raise ValueError(f"HecktorRecipe: pet_mode must be one of {PET_MODES}, got {self.pet_mode!r}.")
        suv_max = float(self.suv_max)
        if not suv_max > 0:
            raise ValueError(f"HecktorRecipe: suv_max must be positive, got {self.suv_max!r}.")
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "box_mm", box_mm)
        object.__setattr__(self, "ct_window", ct_window)
        object.__setattr__(self, "pet_mode", pet_mode)
        object.__setattr__(self, "suv_max", suv_max)
        object.__setattr__(self, "ct_pad_value", float(self.ct_pad_value))

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """Names of the settings, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{setting: value}`` (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "recipe") -> HecktorRecipe:
        """Build a recipe from ``{setting: value}``; every setting must be given.

        Args:
            data: the settings (e.g. the ``"recipe"`` of ``preprocessing.json``).
            source: what to name in error messages (e.g. the file).

        Raises:
            ValueError: on a missing or unknown setting, or an invalid value.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: the recipe must be a JSON object, got {type(data).__name__}.")
        names = cls.fields()
        missing = [k for k in names if k not in data]
        unknown = sorted(set(data) - set(names))
        if missing or unknown:
            raise ValueError(f"{source}: recipe settings missing {missing}, unknown {unknown}; expected {list(names)}.")
        try:
            return cls(**{k: data[k] for k in names})
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None

    def replace(self, **changes: Any) -> HecktorRecipe:
        """A copy with some settings changed; ``None`` values leave a setting unchanged."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def differences(self, other: HecktorRecipe) -> dict[str, tuple[Any, Any]]:
        """``{setting: (self's value, other's value)}`` of the settings that differ (floats within 1e-6)."""
        out = {}
        for name in self.fields():
            a, b = getattr(self, name), getattr(other, name)
            if isinstance(a, tuple):
                same = len(a) == len(b) and all(math.isclose(x, y, abs_tol=_TOLERANCE) for x, y in zip(a, b))
            elif isinstance(a, float):
                same = math.isclose(a, b, abs_tol=_TOLERANCE)
            else:
                same = a == b
            if not same:
                out[name] = (a, b)
        return out


DEFAULT_RECIPE = HecktorRecipe()
"""MONAI's HECKTOR 2022 recipe: 1 mm isotropic, 200 x 200 x 310 mm box, CT window [-160, 240] HU, PET sigmoid."""

SYNTHETIC_RECIPE = DEFAULT_RECIPE.replace(spacing=(2.0, 2.0, 2.0), box_mm=(128.0, 128.0, 128.0))
"""The synthetic stand-in's recipe (quick CPU runs): 2 mm isotropic, 128 x 128 x 128 mm box (64 x 64 x 64 voxels:
the whole neck outline with air around it, the oropharynx and every synthetic structure); intensities as
:data:`DEFAULT_RECIPE`."""


class RecipeMismatchError(ValueError):
    """The recipe asked for differs from the one recorded with the converted data (the message names the file)."""


def default_recipe(synthetic: bool = False) -> HecktorRecipe:
    """The current default recipe: :data:`SYNTHETIC_RECIPE` for the synthetic set, else :data:`DEFAULT_RECIPE`.

    Looked up when called (not bound at import), so the converter, the command line and the bundles all follow the
    single definition in this module.
    """
    return SYNTHETIC_RECIPE if synthetic else DEFAULT_RECIPE


def recipe_path(path: str | os.PathLike) -> Path:
    """``<dir>/preprocessing.json`` for a data-set folder, or for a file in it (e.g. its ``datalist.json``)."""
    path = Path(path)
    if path.name == RECIPE_FILE:
        return path
    if path.is_file() or (not path.is_dir() and path.suffix.lower() == ".json"):
        return path.parent / RECIPE_FILE
    return path / RECIPE_FILE


def write_recipe(dataset_dir: str | os.PathLike, recipe: HecktorRecipe) -> Path:
    """Record ``recipe`` in ``<dataset_dir>/preprocessing.json`` (written atomically); returns the file."""
    path = recipe_path(dataset_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": _FORMAT,
        "dataset": "hecktor",
        "description": (
            "HECKTOR preprocessing recipe the images and masks of this folder were converted with (RAS, CT and masks "
            "resampled to 'spacing' mm, PET onto the CT grid, head-and-neck crop 'box_mm'; intensities stored raw). "
            "Training and inference read it (monai_lexu.datasets.hecktor.load_recipe): 'ct_window', 'pet_mode' and "
            "'suv_max' normalise the CT and PET channels of both."
        ),
        "recipe": recipe.to_dict(),
    }
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")  # one per process: DDP ranks may write at once
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _format(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(f"{v:g}" for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else repr(value)


def load_recipe(
    path: str | os.PathLike,
    expected: HecktorRecipe | Mapping[str, Any] | None = None,
    **asked: Any,
) -> HecktorRecipe:
    """Read the recipe recorded with a converted HECKTOR data set, checking it against what the caller asks for.

    Args:
        path: the data-set folder, its ``datalist.json`` (any file of the folder) or ``preprocessing.json`` itself.
        expected: a whole recipe (or ``{setting: value}``) the caller intends to use; every setting must match.
        asked: single settings the caller intends to use, e.g. ``spacing=(1, 1, 1)``; ``None`` means "not asked"
            (so a bundle config can pass ``spacing=@spacing`` with ``"spacing": null`` by default).

    Returns:
        the recorded recipe.

    Raises:
        FileNotFoundError: if the folder has no ``preprocessing.json`` (the message names the expected file).
        ValueError: if the file is not a valid recipe, or an ``asked`` name is not a setting.
        RecipeMismatchError: if ``expected`` or an ``asked`` setting differs from the recorded one; the message
            names the file, each setting with the recorded and the asked value, and how to resolve it.
    """
    file = recipe_path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"{file}: no HECKTOR preprocessing recipe. It is written by the conversion (python -m data_prep.hecktor, "
            "or the bundle's train.json on first use); point to the converted data-set folder, or re-convert data "
            "converted before recipes were recorded."
        )
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{file}: not valid JSON ({e}).") from e
    if not isinstance(data, Mapping) or "recipe" not in data:
        raise ValueError(f"{file}: expected a JSON object with a 'recipe' entry.")
    recorded = HecktorRecipe.from_dict(data["recipe"], source=str(file))
    unknown = sorted(set(asked) - set(HecktorRecipe.fields()))
    if unknown:
        raise ValueError(f"load_recipe: unknown setting(s) {unknown}; expected some of {list(HecktorRecipe.fields())}.")
    wanted = recorded
    if expected is not None:
        wanted = expected if isinstance(expected, HecktorRecipe) else HecktorRecipe.from_dict(expected, "expected")
    try:
        wanted = wanted.replace(**asked)
    except ValueError as e:
        raise ValueError(f"load_recipe: {e}") from None
    diff = recorded.differences(wanted)
    if diff:
        lines = "; ".join(f"{k}: recorded {_format(a)}, asked {_format(b)}" for k, (a, b) in diff.items())
        raise RecipeMismatchError(
            f"{file}: the data were converted with another preprocessing recipe than the one asked for ({lines}). "
            "Use the recorded settings (leave them unset to read them from the file), or re-convert the data with the "
            "new recipe into another folder."
        )
    return recorded


def load_model_recipe(
    ckpt_dir: str | os.PathLike, dataset_dir: str | os.PathLike | None = None, **asked: Any
) -> HecktorRecipe:
    """The recipe a model was trained with, for inference on raw CT/PET.

    Training writes the recipe of its data next to the weights (``<ckpt_dir>/preprocessing.json``), so a model and
    the preprocessing it expects travel together (``python -m monai_lexu.share pack`` ships the file with
    ``models/model.pt``). Weights trained before recipes were recorded have no such file: then the recipe of the
    converted data set in ``dataset_dir`` is used, as the bundle's training would have read it.

    Args:
        ckpt_dir: the folder of the weights (the bundle's ``models/``).
        dataset_dir: a converted data-set folder to fall back on (optional).
        asked: settings the caller intends to use (see :func:`load_recipe`); a difference is an error.

    Raises:
        FileNotFoundError: neither folder has a ``preprocessing.json`` (both files are named).
        RecipeMismatchError: an ``asked`` setting differs from the recorded one.
    """
    candidates = [recipe_path(ckpt_dir)] + ([recipe_path(dataset_dir)] if dataset_dir is not None else [])
    for file in candidates:
        if file.is_file():
            return load_recipe(file, **asked)
    raise FileNotFoundError(
        f"no HECKTOR preprocessing recipe for the model: neither {' nor '.join(map(str, candidates))} exists. Training "
        "writes it next to the weights; for weights from elsewhere convert the data with python -m data_prep.hecktor "
        "and pass --dataset_dir <converted folder>."
    )
