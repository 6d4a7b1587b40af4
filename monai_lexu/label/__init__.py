"""MONAI Label integration: every monai-lexu bundle served by MONAI Label 0.8.5 (``python -m monai_lexu.label serve``).

- :mod:`~monai_lexu.label.conventions`: the datastore convention (HECKTOR CT ids with the PET beside them, rater
  label tags ``rater1..raterN`` + ``final``, the stored map tags) and the name checks; plain Python.
- :mod:`~monai_lexu.label.summary`: the per-structure uncertainty summaries of the result JSON.
- :mod:`~monai_lexu.label.record`: the training handler that records the rater counts the loss received.
- :mod:`~monai_lexu.label.cli`: the ``serve`` command (safe defaults; the process becomes the server).
- :mod:`~monai_lexu.label.server`: the app and its tasks (imports ``monailabel``; only inside the MONAI Label
  environment, ``make label-env``). ``app/main.py`` is the app folder MONAI Label loads.

Importing this package imports neither MONAI Label nor torch.
"""

__all__ = ["cli", "conventions", "record", "summary"]
