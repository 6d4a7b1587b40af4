"""The MONAI Label app's plain-Python parts (run in every environment): name checks, HECKTOR pairing, rater tags,
the per-structure summary, the stand-in for torchvision and the serve command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_lexu.label.conventions import (
    UnsafeName,
    check_name,
    image_id_of,
    is_companion_pet,
    map_tag,
    pet_path_for,
    rater_tags,
)
from monai_lexu.label.summary import total_uncertainty, uncertainty_summary
from monai_lexu.metrics import estimated_dice

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "bad", ["../x", "..", "a/../../b", "/etc/passwd", "a\\b", ".hidden", "-rf", "", "x\x00y", "~root", "a/b"]
)
def test_check_name_refuses_paths(bad: str) -> None:
    with pytest.raises(UnsafeName, match="refused"):
        check_name(bad, "image id")


@pytest.mark.parametrize("good", ["HN-001__CT", "BinRushed_001", "rater1", "final", "uncertainty_GTVp", "a b.c+d"])
def test_check_name_accepts_plain_names(good: str) -> None:
    assert check_name(good, "tag") == good


def test_pet_beside_ct_and_pet_never_an_image() -> None:
    assert pet_path_for("/s/HN-001__CT.nii.gz") == Path("/s/HN-001__PT.nii.gz")
    assert pet_path_for("/s/A__CT.nii") == Path("/s/A__PT.nii")
    with pytest.raises(ValueError, match="<Case>__CT"):
        pet_path_for("/s/HN-001__PT.nii.gz")
    with pytest.raises(ValueError, match="__CT"):
        pet_path_for("/s/__CT.nii.gz")
    assert is_companion_pet("HN-001__PT") and not is_companion_pet("HN-001__CT")
    assert image_id_of("/s/HN-001__CT.nii.gz") == "HN-001__CT" and image_id_of("x/BinRushed_001.png") == "BinRushed_001"


def test_rater_tags_order_and_final_alone() -> None:
    assert rater_tags({"rater10": 1, "rater2": 1, "final": 1, "original": 1, "rater1": 1}) == [
        "rater1",
        "rater2",
        "rater10",
    ]
    assert rater_tags(["final", "original", "uncertainty_GTVp"]) == ["final"]
    assert rater_tags(["original", "rater0", "raterx"]) == []
    assert map_tag("uncertainty", "GTVp") == "uncertainty_GTVp"
    with pytest.raises(ValueError):
        map_tag("entropy", "GTVp")


def test_uncertainty_summary_known_values() -> None:
    prob = torch.tensor([[[0.9, 0.6], [0.2, 0.0]], [[0.0, 0.0], [0.0, 0.1]]])
    unc = torch.tensor([[[0.1, 0.2], [0.3, 0.0]], [[0.0, 0.0], [0.0, 0.05]]])
    s = uncertainty_summary(prob, unc, ["disc", "cup"], voxel_volume_mm3=2.0)
    assert s["disc"]["uncertainty_sum"] == pytest.approx(0.6) and s["disc"]["uncertainty_mean"] == pytest.approx(0.15)
    assert s["disc"]["uncertainty_mean_in_structure"] == pytest.approx(0.15)  # voxels 0.9 and 0.6
    assert s["disc"]["volume_voxels"] == 2 and s["disc"]["volume_mm3"] == 4.0
    assert s["disc"]["estimated_dice"] == pytest.approx(2 * 1.5 / (2 + 1.7))
    expected = estimated_dice(prob[None], (prob >= 0.5)[None])[0]
    assert [s[k]["estimated_dice"] for k in ("disc", "cup")] == pytest.approx(expected.tolist())
    assert s["cup"]["volume_voxels"] == 0 and s["cup"]["uncertainty_mean_in_structure"] == 0.0
    assert s["cup"]["estimated_dice"] == 0.0  # nothing predicted where the map expects 0.1 of a voxel
    assert total_uncertainty(s) == pytest.approx(0.65)
    assert uncertainty_summary(np.asarray(prob), np.asarray(unc), ["disc", "cup"])["disc"]["volume_mm3"] is None
    with pytest.raises(ValueError, match="2 channels but 1 structures"):
        uncertainty_summary(prob, unc, ["disc"])


def test_torchvision_stand_in_only_when_absent() -> None:
    code = (
        "import importlib.util, sys\n"
        "from monai_lexu.label._compat import ensure_torchvision_utils\n"
        "absent = importlib.util.find_spec('torchvision') is None\n"
        "assert ensure_torchvision_utils() == absent\n"
        "if absent:\n"
        "    from torchvision.utils import make_grid\n"
        "    try:\n"
        "        make_grid(None)\n"
        "    except ImportError as e:\n"
        "        assert 'torchvision is not installed' in str(e)\n"
        "    else:\n"
        "        raise AssertionError('no error')\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_serve_dry_run_safe_defaults_and_refusals(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "monai_lexu.label", "serve", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)

    proc = run(
        "--studies", str(tmp_path / "s"), "--bundles", "lexu_hecktor,lexu_riga", "--config", "cpu_small", "--dry-run"
    )
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert "-m monailabel.main start_server" in line and "--host 127.0.0.1" in line and "--port 8000" in line
    assert "--conf models lexu_hecktor,lexu_riga" in line and "--conf config cpu_small" in line
    assert "--conf zoo_source local" in line and "--conf sam2 false" in line
    assert f"--conf bundle_dir {REPO / 'bundles'}" in line
    assert not (tmp_path / "s").exists()  # a dry run writes nothing
    proc = run("--studies", str(tmp_path / "s"), "--bundles", "no_such_bundle", "--dry-run")
    assert proc.returncode == 1 and "no bundle no_such_bundle" in proc.stderr
    (tmp_path / "file").write_text("x")
    proc = run("--studies", str(tmp_path / "file"), "--bundles", "lexu_riga", "--dry-run")
    assert proc.returncode == 1 and "is not a folder" in proc.stderr
    assert run("--bundles", "lexu_riga").returncode == 2
    proc = run("--studies", str(tmp_path / "s"), "--bundles", "lexu_riga", "--host", "0.0.0.0", "--dry-run")
    assert proc.returncode == 0 and "MONAI_LABEL_AUTH_ENABLE" in proc.stderr
