"""The datastore convention of the MONAI Label app, in plain Python (no MONAI Label, no torch).

A studies folder served by ``python -m monai_lexu.label serve`` holds:

- **images**: one file per image id, e.g. ``HN-001__CT.nii.gz`` (HECKTOR) or ``BinRushed_001.png`` (RIGA). A HECKTOR
  image id is the CT (``<Case>__CT``); its PET ``<Case>__PT`` (same extension) lies beside it and is found by that
  name (:func:`pet_path_for`). PET files are never listed as images to annotate (:func:`is_companion_pet`).
- **labels** as MONAI Label label tags (``labels/<tag>/<image id>.<ext>``): ``rater1`` ... ``raterN``, one mask per
  rater with the bundle's mask values (HECKTOR: 1 GTVp, 2 GTVn; RIGA: disc non-zero, cup 255), and ``final`` (MONAI
  Label's tag for a finished label). Training builds ``raters`` from every ``rater<k>`` tag of an image, in the order
  of ``k``; an image with no rater tag but a ``final`` label counts as one rater (:func:`rater_tags`).
- **outputs of inference** stored by the server: ``original`` (the label map, when the client asks to save it) and
  one float map per structure and kind, tags ``probability_<structure>`` and ``uncertainty_<structure>``
  (:func:`map_tag`), each on the input image's grid.

Ids, tags and uploaded names are plain file names: :func:`check_name` refuses anything that could resolve outside
the studies folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "CT_SUFFIX",
    "FINAL_TAG",
    "MAP_KINDS",
    "PET_SUFFIX",
    "RATER_TAG",
    "UnsafeName",
    "check_name",
    "image_id_of",
    "is_companion_pet",
    "map_tag",
    "pet_path_for",
    "rater_tags",
    "split_ext",
]

CT_SUFFIX = "__CT"
"""HECKTOR naming: the CT of case ``<Case>`` is ``<Case>__CT.nii.gz``; it is the image id the client sees."""
PET_SUFFIX = "__PT"
"""HECKTOR naming: the PET of case ``<Case>`` is ``<Case>__PT.nii.gz``, beside the CT."""
FINAL_TAG = "final"
"""MONAI Label's tag of a finished label; alone it counts as one rater."""
RATER_TAG = re.compile(r"^rater([1-9][0-9]*)$")
"""Label tags of the raters' masks: ``rater1``, ``rater2``, ..."""
MAP_KINDS = ("probability", "uncertainty")
"""The float maps stored per structure as label tags ``<kind>_<structure>``."""

_EXTS = (".nii.gz", ".nii", ".nrrd", ".seg.nrrd", ".png", ".jpg", ".jpeg")
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+ -]*$")


class UnsafeName(ValueError):
    """An image id, label tag or file name that is not a plain name inside the studies folder."""


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is a plain file name; else raise :class:`UnsafeName` naming ``what``.

    Refused: empty, longer than 200 characters, a path separator (``/`` or ``\\``), ``..``, a leading dot, dash or
    space, anything but letters, digits, spaces and ``._+-`` (so no NUL, no drive letter, no ``~``).

    Args:
        value: the id, tag or name sent by a client.
        what: what it is, for the message (e.g. ``"image id"``).

    Raises:
        UnsafeName: the value could resolve outside the studies folder or is not a plain name.
    """
    text = value if isinstance(value, str) else ""
    if not text or len(text) > 200 or ".." in text or not _NAME_OK.match(text):
        raise UnsafeName(
            f"{what} {value!r} refused: use a plain name (letters, digits, spaces and ._+-, no '/', '\\\\' or '..', "
            "not starting with '.', '-' or a space), which stays inside the studies folder"
        )
    return text


def split_ext(name: str) -> tuple[str, str]:
    """``("HN-001__CT", ".nii.gz")`` for ``"HN-001__CT.nii.gz"`` (known medical extensions first, else the last
    suffix)."""
    lower = name.lower()
    for ext in _EXTS:
        if lower.endswith(ext):
            return name[: -len(ext)], name[-len(ext) :]
    stem, ext = os.path.splitext(name)
    return stem, ext


def image_id_of(path: str | os.PathLike) -> str:
    """The datastore image id of an image file (its name without the extension)."""
    return split_ext(Path(path).name)[0]


def is_companion_pet(image_id: str) -> bool:
    """Whether ``image_id`` is a HECKTOR PET (``<Case>__PT``), which is input beside its CT, never an image to
    annotate."""
    return image_id.endswith(PET_SUFFIX)


def pet_path_for(ct_path: str | os.PathLike) -> Path:
    """The PET file expected beside a HECKTOR CT: ``<dir>/<Case>__PT<ext>`` for ``<dir>/<Case>__CT<ext>``.

    Raises:
        ValueError: the file name does not end with ``__CT`` + an extension (the message names it).
    """
    path = Path(ct_path)
    stem, ext = split_ext(path.name)
    if not stem.endswith(CT_SUFFIX) or len(stem) == len(CT_SUFFIX):
        raise ValueError(
            f"{path.name}: a HECKTOR image id is the CT, named <Case>{CT_SUFFIX} (e.g. HN-001{CT_SUFFIX}.nii.gz, "
            f"with HN-001{PET_SUFFIX}.nii.gz beside it)"
        )
    return path.with_name(stem[: -len(CT_SUFFIX)] + PET_SUFFIX + ext)


def rater_tags(tags: Mapping[str, object] | list[str]) -> list[str]:
    """The label tags that are raters, in training order: ``rater<k>`` sorted by ``k``; ``[final]`` if there is no
    rater tag but a ``final`` label; ``[]`` otherwise (the image is not labeled)."""
    names = list(tags)
    raters = sorted((t for t in names if RATER_TAG.match(t)), key=lambda t: int(RATER_TAG.match(t).group(1)))
    if raters:
        return raters
    return [FINAL_TAG] if FINAL_TAG in names else []


def map_tag(kind: str, structure: str) -> str:
    """The label tag of a stored float map: ``uncertainty_GTVp``, ``probability_disc``, ...

    Raises:
        ValueError: unknown ``kind``.
    """
    if kind not in MAP_KINDS:
        raise ValueError(f"map kind must be one of {MAP_KINDS}, got {kind!r}")
    return check_name(f"{kind}_{structure}", "map tag")
