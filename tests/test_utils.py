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


def _zoo_copy(tmp_path: Path) -> Path:
    """lexu_riga's configs installed in the model-zoo layout ``<dir>/lexu_riga/`` (as ``monai.bundle download``)."""
    import shutil

    bundle = tmp_path / "zoo" / "lexu_riga"
    shutil.copytree(REPO / "bundles" / "lexu_riga" / "configs", bundle / "configs")
    return bundle


def test_find_bundle_root_from_a_zoo_layout_run_from_elsewhere(tmp_path, monkeypatch):
    from monai.bundle import ConfigWorkflow

    bundle = _zoo_copy(tmp_path)
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    workflow = ConfigWorkflow(config_file=str(bundle / "configs" / "inference.json"), workflow_type="infer")
    workflow.initialize()
    assert workflow.bundle_root == str(bundle)  # resolved inside the workflow: its configs folder decides


def test_find_bundle_root_from_the_config_file_argument(tmp_path, monkeypatch):
    bundle = _zoo_copy(tmp_path)
    monkeypatch.chdir(tmp_path)
    config = str(bundle / "configs" / "inference.json")
    for argv in (["--config_file", f"['{config}']"], [f"--config_file={config},other.json"]):
        monkeypatch.setattr("sys.argv", ["monai.bundle", "verify_net_in_out", *argv])
        assert find_bundle_root("lexu_riga") == str(bundle)
    monkeypatch.setattr("sys.argv", ["monai.bundle"])
    with pytest.raises(FileNotFoundError, match="--bundle_root"):
        find_bundle_root("lexu_riga")
    monkeypatch.chdir(tmp_path / "zoo")  # downloaded with --bundle_dir . : <cwd>/<name>
    assert find_bundle_root("lexu_riga") == str(bundle)
