"""Importing MONAI Label 0.8.5's bundle tasks without torchvision.

``monailabel.tasks.infer.bundle`` imports ``monailabel.transform.post``, which imports
``torchvision.utils.make_grid``/``save_image`` at module level for 2D "dump" helpers that this app never runs.
torchvision from PyPI is a CUDA build that does not import beside the CPU torch 2.13.0
(``operator torchvision::nms does not exist``), and a CPU build is not on PyPI. So, when torchvision cannot be
found at all, :func:`ensure_torchvision_utils` registers a stand-in module ``torchvision.utils`` in ``sys.modules``
(nothing on disk is changed) whose two functions raise an ``ImportError`` naming torchvision if anything ever calls
them. An installed torchvision is always used as it is.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

__all__ = ["STAND_IN", "ensure_torchvision_utils"]

STAND_IN = "monai_lexu.label stand-in"
"""Marker attribute value of the stand-in modules (``module.__lexu_stand_in__``)."""


def _missing(name: str):
    def fn(*args, **kwargs):
        raise ImportError(
            f"torchvision.utils.{name} was called, but torchvision is not installed in this MONAI Label environment "
            "(monai_lexu.label registered a stand-in so that monailabel's bundle tasks import); install a torchvision "
            "that imports beside your torch to use it"
        )

    fn.__name__ = name
    return fn


def ensure_torchvision_utils() -> bool:
    """Register the stand-in ``torchvision``/``torchvision.utils`` when torchvision is absent.

    Returns:
        True if the stand-in is (now) in place, False if a real torchvision is importable.
    """
    existing = sys.modules.get("torchvision")
    if existing is not None:
        return getattr(existing, "__lexu_stand_in__", None) == STAND_IN
    if importlib.util.find_spec("torchvision") is not None:
        return False
    package = types.ModuleType("torchvision")
    package.__spec__ = importlib.machinery.ModuleSpec("torchvision", None, is_package=True)
    package.__path__ = []
    package.__lexu_stand_in__ = STAND_IN
    utils = types.ModuleType("torchvision.utils")
    utils.__spec__ = importlib.machinery.ModuleSpec("torchvision.utils", None)
    utils.__lexu_stand_in__ = STAND_IN
    utils.make_grid = _missing("make_grid")
    utils.save_image = _missing("save_image")
    package.utils = utils
    sys.modules["torchvision"] = package
    sys.modules["torchvision.utils"] = utils
    return True
