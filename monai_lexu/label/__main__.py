"""``python -m monai_lexu.label``: see :mod:`monai_lexu.label.cli`."""

import sys

from monai_lexu.label.cli import main

sys.exit(main())
