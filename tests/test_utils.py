"""Tests for monai_lexu.utils."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_lexu.utils import default_device, find_bundle_root

REPO = Path(__file__).resolve().parents[1]


def test_find_bundle_root_from_repository_root():
    assert find_bundle_root("lexu_riga", REPO) == str(REPO / "bundles" / "lexu_riga")


def test_find_bundle_root_from_the_bundle_itself():
    bundle = REPO / "bundles" / "lexu_riga"
    assert find_bundle_root("lexu_riga", bundle) == str(bundle)


def test_find_bundle_root_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="--bundle_root"):
        find_bundle_root("lexu_riga", tmp_path)


def test_default_device_is_cpu_without_gpu():
    import torch

    assert default_device() == ("cuda" if torch.cuda.is_available() else "cpu")


def test_find_bundle_root_falls_back_to_the_monai_download_location(tmp_path):
    import torch

    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        installed = tmp_path / "hub" / "bundle" / "lexu_riga"
        (installed / "configs").mkdir(parents=True)
        (installed / "configs" / "metadata.json").write_text("{}")
        elsewhere = tmp_path / "work"
        elsewhere.mkdir()
        assert find_bundle_root("lexu_riga", elsewhere) == str(installed)
    finally:
        torch.hub.set_dir(old)
