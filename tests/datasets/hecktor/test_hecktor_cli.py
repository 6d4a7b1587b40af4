"""Tests for monai_lexu.datasets.hecktor.cli (``python -m monai_lexu.datasets.hecktor``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from monai_lexu.datasets.hecktor import cli
from monai_lexu.datasets.hecktor.recipe import DEFAULT_RECIPE, SYNTHETIC_RECIPE

REPO = Path(__file__).resolve().parents[3]


def test_help_runs_as_module_and_shows_the_recipe_defaults():
    result = subprocess.run(
        [sys.executable, "-m", "monai_lexu.datasets.hecktor", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert text.startswith("usage: python -m monai_lexu.datasets.hecktor")
    assert "label 1 = GTVp, label 2 = GTVn" in text and "preprocessing.json" in text
    assert "(default: 1 1 1; with --synthetic: 2 2 2)" in text  # spacing help, from the recipe
    assert "(default: 200 200 310; with --synthetic: 128 128 128)" in text


def test_help_follows_the_single_recipe_source(monkeypatch):
    from monai_lexu.datasets.hecktor import recipe

    monkeypatch.setattr(recipe, "DEFAULT_RECIPE", DEFAULT_RECIPE.replace(spacing=(0.8, 0.8, 3.0)))
    monkeypatch.setattr(recipe, "SYNTHETIC_RECIPE", SYNTHETIC_RECIPE.replace(box_mm=(90.0, 90.0, 120.0)))
    text = " ".join(cli.build_parser("prog").format_help().split())
    assert "(default: 0.8 0.8 3; with --synthetic: 2 2 2)" in text
    assert "(default: 200 200 310; with --synthetic: 90 90 120)" in text
