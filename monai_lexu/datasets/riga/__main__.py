"""``python -m monai_lexu.datasets.riga``: convert RIGA or write the RIGA-like set (see :mod:`.cli`)."""

from __future__ import annotations

from monai_lexu.datasets.riga.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
