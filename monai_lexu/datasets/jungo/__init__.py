"""The synthetic multi-observer set of Jungo et al. 2018 (§3.2, seed 003): everything specific to this data set.

Modules:

- :mod:`~monai_lexu.datasets.jungo.format`: the structure (:data:`JUNGO_STRUCTURES`), observers and image variants.
- :mod:`~monai_lexu.datasets.jungo.synthetic`: the generator, its files and datalists (:func:`make_jungo_sample`,
  :func:`write_jungo_dataset`, :func:`ensure_jungo_dataset`).
- :mod:`~monai_lexu.datasets.jungo.cli`: the command line (``python -m monai_lexu.datasets.jungo``, also
  ``python -m data_prep.synthetic jungo``).

Every name below is importable from this package; the modules are imported on first use.
"""

from __future__ import annotations

from monai_lexu.datasets._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "JUNGO_NUM_OBSERVERS": "format",
    "JUNGO_STRUCTURES": "format",
    "JUNGO_VARIANTS": "format",
    "ensure_jungo_dataset": "synthetic",
    "make_jungo_sample": "synthetic",
    "write_jungo_dataset": "synthetic",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
