"""``python -m monai_lexu.datasets.hecktor``: the HECKTOR converter command line (see :mod:`.cli`)."""

from __future__ import annotations

from monai_lexu.datasets.hecktor.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
