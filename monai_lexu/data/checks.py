"""Checks of the data options a bundle run is given: where synthetic data may be made, flags, the fold.

A bundle makes a synthetic data set only where the user asked for it (:func:`synthetic_wanted`,
:func:`check_may_generate`), never into a mistyped ``--dataset_dir``; ``--fold`` must name one of the data set's folds
(:func:`check_fold`). Standard library only: data-set converters and configs call these before any work.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["synthetic_wanted", "as_flag", "check_may_generate", "check_fold"]


def synthetic_wanted(
    make_synthetic: bool | str, dataset_dir: str | os.PathLike, default_dir: str | os.PathLike
) -> bool:
    """Decide whether a bundle may generate a synthetic data set in ``dataset_dir`` (the ``make_synthetic`` key).

    Args:
        make_synthetic: ``True``/``"true"`` (always allowed), ``False``/``"false"`` (never) or ``"auto"`` (only when
            ``dataset_dir`` is the bundle's default folder ``default_dir``, so a mistyped ``--dataset_dir`` is an
            error rather than a new synthetic set).
        dataset_dir: the data set folder the run uses.
        default_dir: the bundle's default data set folder, the configs' ``default_dataset_dir``
            (``<bundle_root>/data/<dataset>``; an override such as ``cpu_small.json`` may name another, e.g. the Jungo
            bundle's 64-pixel set).

    Returns:
        whether generating is allowed.

    Raises:
        ValueError: on any other ``make_synthetic`` value.
    """
    if isinstance(make_synthetic, str) and make_synthetic.strip().lower() == "auto":
        return Path(dataset_dir).expanduser().resolve() == Path(default_dir).expanduser().resolve()
    return as_flag(make_synthetic, "make_synthetic", "true, false or 'auto'")


def as_flag(value: Any, name: str, allowed: str = "true or false") -> bool:
    """A boolean config value, also when given on the command line (``--flag true`` arrives as the string ``"true"``).

    Args:
        value: ``True``/``False`` or one of the strings ``true/false/yes/no/1/0`` (any case).
        name: the config key, for the message.
        allowed: the accepted values, for the message.

    Raises:
        ValueError: naming the key on any other value.
    """
    text = value.strip().lower() if isinstance(value, str) else value
    if text is True or text in ("true", "yes", "1"):
        return True
    if text is False or text in ("false", "no", "0"):
        return False
    raise ValueError(f"{name} must be {allowed}, got {value!r}.")


def check_may_generate(dataset_dir: str | os.PathLike, make_synthetic: bool, expected: str) -> None:
    """Raise unless a synthetic set may be generated in ``dataset_dir`` (called before anything is created).

    Args:
        dataset_dir: the (missing or empty) data set folder.
        make_synthetic: the decision of :func:`synthetic_wanted` (or a caller's explicit flag).
        expected: what a real data set folder holds (for the message).

    Raises:
        FileNotFoundError: if ``make_synthetic`` is false; the message names ``dataset_dir``.
    """
    if make_synthetic:
        return
    state = "is empty" if Path(dataset_dir).is_dir() else "does not exist"
    raise FileNotFoundError(
        f"dataset_dir {dataset_dir} {state} and holds no data ({expected}). Check the path; a synthetic set is "
        "generated only in the bundle's default folder or with --make_synthetic true. Nothing was created."
    )


def check_fold(fold: int, num_folds: int) -> int:
    """Return ``fold`` if it is one of the ``num_folds`` cross-validation folds.

    Raises:
        ValueError: naming the fold and the number of folds if ``fold`` is not in ``[0, num_folds)``.
    """
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < int(num_folds):
        raise ValueError(
            f"--fold {fold!r} is out of range: the data set has {num_folds} folds, so fold must be one of "
            f"0..{int(num_folds) - 1}."
        )
    return fold
