"""Multi-rater datalist JSON: one file lists the images, the rater masks and the splits of a data set.

Format (one JSON object; paths are relative to the directory of the JSON file)::

    {
      "name": "riga",
      "description": "RIGA disc/cup, 6 raters, resized to 256x256",
      "structures": {"disc": "nonzero", "cup": [255]},
      "training": [
        {"id": "BinRushed_001", "image": "images/BinRushed_001.png",
         "raters": ["masks/BinRushed_001_r1.png", "...", "masks/BinRushed_001_r6.png"], "fold": 0},
        ...
      ],
      "validation": [...],
      "test": [...]
    }

Top-level keys:

- ``"structures"`` (required): the ordered mapping from structure name to the mask values that form it. Its
  order is the order of the L structure channels (``raters`` is ``(R, L, *S)``). A value is either the string
  ``"nonzero"`` (every non-zero mask value) or a list of mask values (RIGA: ``{"disc": "nonzero", "cup": [255]}``;
  HECKTOR: ``{"GTVp": [1], "GTVn": [2]}``). Structures may overlap (RIGA: the cup lies inside the disc).
- ``"name"``, ``"description"``: free text. Further top-level keys are kept as metadata.
- Every other key whose value is a list is a *section* (usually ``"training"``, ``"validation"``, ``"test"``).

Keys of a case (one dict in a section):

- ``"id"`` (str, required, unique within the file).
- ``"image"`` (required): one path, or a list of paths (one file per channel/modality, e.g. CT and PET).
- ``"raters"`` (required): a list of >= 1 mask paths, one per rater; rater counts may differ between cases.
- ``"fold"`` (optional int): cross-validation fold; :func:`load_multirater_datalist` selects cases by it.
- ``"ground_truth"`` (optional path): a known true mask (synthetic data only); resolved like the other paths.
- any other key is copied unchanged (e.g. ``"source"`` for the RIGA sub-set a case comes from).

Paths are written with ``/`` separators, relative to the directory of the JSON file, so that a data set directory
can be moved as a whole. :func:`load_multirater_datalist` returns absolute paths.

Rules checked by both the writer and the reader (errors name the file, the section and the case):

- ids are unique across ALL sections (the same id in training and validation would leak a case into its own
  validation); a duplicate names both entries (section and index).
- a relative path must stay inside the datalist's folder (``../`` that leaves it is refused: a datalist shared with
  a data set must not reach files outside it); absolute paths are allowed and the writer keeps files outside the
  folder absolute.
- the file is written atomically (a temporary file renamed over the old one).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_lexu.contract import validate_structures

__all__ = [
    "PATH_KEYS",
    "RESERVED_KEYS",
    "load_multirater_datalist",
    "load_structures",
    "write_multirater_datalist",
]

PATH_KEYS: tuple[str, ...] = ("image", "raters", "ground_truth")
"""Case keys whose values are file paths (stored relative to the JSON file, returned absolute)."""

RESERVED_KEYS: tuple[str, ...] = ("name", "description", "structures")
"""Top-level keys that are not sections."""

_REQUIRED_CASE_KEYS: tuple[str, ...] = ("id", "image", "raters")


def _case_label(case: Any, index: int) -> str:
    if isinstance(case, Mapping) and isinstance(case.get("id"), str):
        return f"case {case['id']!r}"
    return f"case #{index}"


def _validate_case(case: Any, index: int, section: str, source: str) -> None:
    """Raise ValueError if one case does not follow the format (no file-existence check)."""
    label = _case_label(case, index)
    if not isinstance(case, Mapping):
        raise ValueError(
            f"{source}: section {section!r}, case #{index} must be a JSON object, got {type(case).__name__}."
        )
    for key in _REQUIRED_CASE_KEYS:
        if key not in case:
            raise ValueError(f"{source}: section {section!r}, {label} is missing the required key {key!r}.")
    if not isinstance(case["id"], str) or not case["id"]:
        raise ValueError(f"{source}: section {section!r}, {label}: 'id' must be a non-empty string.")
    image = case["image"]
    if isinstance(image, (str, os.PathLike)):
        pass
    elif isinstance(image, Sequence) and len(image) > 0 and all(isinstance(p, (str, os.PathLike)) for p in image):
        pass
    else:
        raise ValueError(
            f"{source}: section {section!r}, {label}: 'image' must be a path or a non-empty list of paths."
        )
    raters = case["raters"]
    if isinstance(raters, (str, os.PathLike)) or not isinstance(raters, Sequence):
        raise ValueError(f"{source}: section {section!r}, {label}: 'raters' must be a list of mask paths.")
    if len(raters) == 0:
        raise ValueError(f"{source}: section {section!r}, {label} has zero raters; at least one mask is needed.")
    if not all(isinstance(p, (str, os.PathLike)) for p in raters):
        raise ValueError(f"{source}: section {section!r}, {label}: every entry of 'raters' must be a path.")
    if "fold" in case and (isinstance(case["fold"], bool) or not isinstance(case["fold"], int)):
        raise ValueError(f"{source}: section {section!r}, {label}: 'fold' must be an int, got {case['fold']!r}.")
    if "ground_truth" in case and not isinstance(case["ground_truth"], (str, os.PathLike)):
        raise ValueError(f"{source}: section {section!r}, {label}: 'ground_truth' must be a path.")


def _escapes(relative: str | os.PathLike) -> bool:
    """Whether a relative path leaves its base folder (``..`` components that climb above it)."""
    parts = Path(os.path.normpath(Path(relative))).parts
    return bool(parts) and parts[0] == ".."


def _check_inside(path: str | os.PathLike, source: str, section: str, label: str, what: str) -> None:
    if not Path(path).is_absolute() and _escapes(path):
        raise ValueError(
            f"{source}: section {section!r}, {label}: the {what} path {str(path)!r} leaves the datalist's folder "
            "(relative paths must stay inside it; use an absolute path for files elsewhere)."
        )


def _case_paths(case: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(what, path)`` of every path of a (validated) case."""
    image = case["image"]
    images = [image] if isinstance(image, (str, os.PathLike)) else list(image)
    out = [("image", p) for p in images] + [(f"rater {r + 1}", p) for r, p in enumerate(case["raters"])]
    if "ground_truth" in case:
        out.append(("ground_truth", case["ground_truth"]))
    return out


def _check_unique_ids(data: Mapping[str, Any], sections: Sequence[str], source: str) -> None:
    """Raise ValueError naming both entries if an id occurs twice anywhere in ``sections``."""
    seen: dict[str, tuple[str, int]] = {}
    for section in sections:
        for index, case in enumerate(data[section]):
            if not isinstance(case, Mapping) or not isinstance(case.get("id"), str):
                continue  # reported by _validate_case
            cid = case["id"]
            if cid in seen:
                first = seen[cid]
                raise ValueError(
                    f"{source}: case id {cid!r} appears twice: section {first[0]!r} index {first[1]} and section "
                    f"{section!r} index {index}; ids must be unique across all sections."
                )
            seen[cid] = (section, index)


def _to_relative(path: str | os.PathLike, base: Path) -> str:
    """Absolute paths inside ``base`` become relative to it (outside it they stay absolute); relative ones are taken
    as already relative to ``base``."""
    p = Path(path)
    if p.is_absolute():
        rel = Path(os.path.relpath(p, base))
        p = p if _escapes(rel) else rel
    return p.as_posix()


def write_multirater_datalist(
    path: str | os.PathLike,
    sections: Mapping[str, Sequence[Mapping[str, Any]]],
    structures: Mapping[str, Any],
    name: str = "",
    description: str = "",
    **extra: Any,
) -> Path:
    """Write a multi-rater datalist JSON file (format in the module docstring).

    Absolute paths in the cases are stored relative to the directory of ``path`` when they lie inside it (else they
    stay absolute); relative paths are taken as already relative to that directory and stored unchanged (one that
    leaves the directory with ``..`` is refused). File existence is not checked here (it is checked by
    :func:`load_multirater_datalist`). The file is written atomically.

    Args:
        path: the JSON file to write; parent directories are created.
        sections: ``section name -> list of cases``, e.g. ``{"training": [...], "test": [...]}``.
        structures: ordered ``structure name -> "nonzero" | list of mask values``.
        name: data set name.
        description: free text.
        extra: further top-level metadata (JSON-serialisable; must not be a list, which would read as a section).

    Returns:
        the path of the written file.

    Raises:
        ValueError: on an invalid case (missing key, zero raters, bad types), duplicate ids (naming both entries),
            a relative path that leaves the directory, an invalid ``structures`` mapping, or a section / metadata key
            that clashes with a reserved key.
    """
    path = Path(path)
    source = str(path)
    base = path.parent.resolve()
    data: dict[str, Any] = {"name": name, "description": description}
    data["structures"] = validate_structures(structures, source)
    for key, value in extra.items():
        if key in RESERVED_KEYS or key in sections:
            raise ValueError(f"{source}: metadata key {key!r} clashes with a reserved key or a section name.")
        if isinstance(value, list):
            raise ValueError(f"{source}: metadata key {key!r} must not be a list (lists are read as sections).")
        data[key] = value
    for section, cases in sections.items():
        if section in RESERVED_KEYS:
            raise ValueError(f"{source}: {section!r} is a reserved key and cannot be a section name.")
        if isinstance(cases, (str, bytes, Mapping)) or not isinstance(cases, Sequence):
            raise ValueError(f"{source}: section {section!r} must be a list of cases.")
    _check_unique_ids(sections, list(sections), source)
    for section, cases in sections.items():
        out_cases = []
        for index, case in enumerate(cases):
            _validate_case(case, index, section, source)
            for what, p in _case_paths(case):
                _check_inside(p, source, section, _case_label(case, index), what)
            out = dict(case)
            image = case["image"]
            if isinstance(image, (str, os.PathLike)):
                out["image"] = _to_relative(image, base)
            else:
                out["image"] = [_to_relative(p, base) for p in image]
            out["raters"] = [_to_relative(p, base) for p in case["raters"]]
            if "ground_truth" in case:
                out["ground_truth"] = _to_relative(case["ground_truth"], base)
            out_cases.append(out)
        data[section] = out_cases
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)  # a reader sees the old datalist or the new one, never half of one
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"Datalist file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}).") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level must be a JSON object.")
    return data


def load_structures(path: str | os.PathLike) -> dict[str, str | list[int]]:
    """Read the ordered ``structures`` mapping of a datalist.

    Args:
        path: the datalist JSON file.

    Returns:
        ordered ``structure name -> "nonzero" | list of mask values``; its order is the channel order.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file is not valid JSON or has no valid ``structures`` entry.
    """
    path = Path(path)
    data = _read_json(path)
    if "structures" not in data:
        raise ValueError(f"{path}: missing the required top-level key 'structures'.")
    return validate_structures(data["structures"], str(path))


def load_multirater_datalist(
    path: str | os.PathLike,
    section: str = "training",
    base_dir: str | os.PathLike | None = None,
    folds: int | Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Read one section of a multi-rater datalist, with absolute paths.

    Args:
        path: the datalist JSON file.
        section: the section to read (e.g. ``"training"``, ``"validation"``, ``"test"``).
        base_dir: directory that relative paths are resolved against; default the directory of ``path``.
        folds: keep only the cases whose ``"fold"`` is this int or in this list of ints; ``None`` keeps all.

    Returns:
        a list of case dicts (copies): ``"image"`` an absolute path string or a list of them, ``"raters"`` a list of
        absolute path strings, ``"ground_truth"`` (if present) absolute; other keys unchanged.

    Raises:
        FileNotFoundError: if the datalist, or an image / rater / ground-truth file of a case does not exist (the
            message names the file, the case id and the datalist).
        ValueError: on invalid JSON, an unknown section, a case with a missing key or zero raters, a case id that
            occurs twice in the file (any sections; both entries named), a relative path leaving the datalist's
            folder (``base_dir``), or (with ``folds``) a case without a ``"fold"``.
    """
    path = Path(path)
    data = _read_json(path)
    source = str(path)
    sections = [k for k, v in data.items() if isinstance(v, list) and k not in RESERVED_KEYS]
    if section not in sections:
        raise ValueError(f"{source}: unknown section {section!r}; the file has sections {sections}.")
    if "structures" in data:
        validate_structures(data["structures"], source)
    base = Path(base_dir) if base_dir is not None else path.parent
    base = base.resolve()
    if folds is not None:
        fold_set = {int(folds)} if isinstance(folds, int) else {int(f) for f in folds}

    _check_unique_ids(data, sections, source)

    def _resolve(p: str, what: str, case_id: str) -> str:
        if not Path(p).is_absolute() and _escapes(p):
            raise ValueError(
                f"{source}: section {section!r}, case {case_id!r}: the {what} path {p!r} leaves the datalist's "
                f"folder {base} (relative paths must stay inside it; use an absolute path for files elsewhere)."
            )
        full = Path(p) if Path(p).is_absolute() else base / p
        if not full.is_file():
            raise FileNotFoundError(
                f"{source}: {what} file of case {case_id!r} (section {section!r}) not found: {full}"
            )
        return str(full)

    out: list[dict[str, Any]] = []
    for index, case in enumerate(data[section]):
        _validate_case(case, index, section, source)
        case_id = case["id"]
        if folds is not None:
            if "fold" not in case:
                raise ValueError(f"{source}: section {section!r}, case {case_id!r} has no 'fold' but folds={folds!r}.")
            if case["fold"] not in fold_set:
                continue
        item = dict(case)
        image = case["image"]
        if isinstance(image, str):
            item["image"] = _resolve(image, "image", case_id)
        else:
            item["image"] = [_resolve(p, "image", case_id) for p in image]
        item["raters"] = [_resolve(p, f"rater {r + 1}", case_id) for r, p in enumerate(case["raters"])]
        if "ground_truth" in case:
            item["ground_truth"] = _resolve(case["ground_truth"], "ground_truth", case_id)
        out.append(item)
    return out
