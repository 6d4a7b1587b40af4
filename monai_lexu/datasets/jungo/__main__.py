"""``python -m monai_lexu.datasets.jungo``: write the Jungo et al. 2018 synthetic set (see :mod:`.cli`)."""

from __future__ import annotations

from monai_lexu.datasets.jungo.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
