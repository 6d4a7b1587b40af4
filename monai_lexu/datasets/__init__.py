"""Data-set homes: one sub-package per data set, holding everything specific to it.

- :mod:`monai_lexu.datasets.hecktor`: HECKTOR 2022 PET/CT, 2-4 raters (GTVp, GTVn), with its DICOM importer,
  synthetic stand-in, preprocessing recipe, transforms and 2D slice protocol.
- :mod:`monai_lexu.datasets.riga`: RIGA fundus disc / cup, 6 raters, with its RIGA-like synthetic stand-in.
- :mod:`monai_lexu.datasets.jungo`: the synthetic multi-observer set of Jungo et al. 2018 (seed 003).

Each holds its format constants (e.g. ``HECKTOR_STRUCTURES``), converter, synthetic generator, data-set transforms
and command line (``python -m monai_lexu.datasets.<name>``; ``data_prep/<name>.py`` are thin entry points over
them). The generic layers (:mod:`monai_lexu.data`, :mod:`monai_lexu.transforms`, ...) never import this package.
Importing it imports none of the sub-packages.
"""

from __future__ import annotations

__all__ = ["DATASETS"]

DATASETS: tuple[str, ...] = ("hecktor", "jungo", "riga")
"""Names of the data-set sub-packages."""
