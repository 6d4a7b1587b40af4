"""MONAI Label app folder of monai-lexu (copied next to the studies by ``python -m monai_lexu.label serve``).

MONAI Label loads this file and instantiates the first class whose base is ``MONAILabelApp``; all code lives in
:mod:`monai_lexu.label.server`.
"""

from monai_lexu.label.server import LexuApp

__all__ = ["LexuApp"]
