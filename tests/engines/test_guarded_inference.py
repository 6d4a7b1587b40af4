"""Bundle inference goes on after a bad input: per-file errors named, the rest written atomically, a summary, exit != 0.

HECKTOR inference (lexu_hecktor's inference.json + cpu_small.json, as ``monai.bundle run`` runs it) on 4 synthetic
cases whose second PET is a truncated ``.nii.gz`` and whose third PET holds NaN voxels: the two good cases get
their label/probability/uncertainty maps, the two bad ones nothing (no partial file, no staging folder left), the
summary ``inference_summary.json`` lists both failures naming the PET file, and the run raises at the end naming
them. The same for the 2D path (lexu_riga, a truncated PNG among 3). The weights are an untrained network's (the
tests are about the inputs, not the maps).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_lexu.engines import GuardedDataset, describe_input_failure

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "lexu_hecktor"
KINDS = ("label", "prob", "unc")


@pytest.fixture(scope="module")
def hecktor(tmp_path_factory):
    from monai_lexu.datasets.hecktor import ensure_hecktor_dataset
    from monai_lexu.networks import MultiHeadUNet

    tmp = tmp_path_factory.mktemp("guarded_inference")
    ensure_hecktor_dataset(tmp / "data", {"num_cases": 4, "seed": 1}, folds=2)
    raw = tmp / "data" / "raw" / "imagesTr"
    ids = sorted(p.name[: -len("__CT.nii.gz")] for p in raw.glob("*__CT.nii.gz"))[:4]
    inputs = tmp / "inputs"
    inputs.mkdir()
    for cid in ids:
        for modality in ("CT", "PT"):
            shutil.copy(raw / f"{cid}__{modality}.nii.gz", inputs)
    truncated = inputs / f"{ids[1]}__PT.nii.gz"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    nan_pet = inputs / f"{ids[2]}__PT.nii.gz"
    img = nib.load(nan_pet)
    data = np.asarray(img.dataobj, dtype=np.float32).copy()
    data[tuple(s // 2 for s in data.shape)] = np.nan
    nib.save(nib.Nifti1Image(data, img.affine), nan_pet)
    models = tmp / "models"
    models.mkdir()
    torch.manual_seed(0)
    net = MultiHeadUNet(
        spatial_dims=3, in_channels=2, out_channels=2, backbone="plain", heads="decoder", features=[8, 16, 32, 64]
    )
    torch.save(net.state_dict(), models / "model.pt")
    return {"tmp": tmp, "ids": ids, "truncated": truncated, "nan_pet": nan_pet}


@pytest.fixture(scope="module")
def inference_run(hecktor):
    from monai.bundle import run

    tmp = hecktor["tmp"]
    out = tmp / "out"
    with pytest.raises(RuntimeError) as excinfo:
        run(
            config_file=[str(BUNDLE / "configs" / n) for n in ("inference.json", "cpu_small.json")],
            bundle_root=str(BUNDLE),
            ckpt_dir=str(tmp / "models"),
            dataset_dir=str(tmp / "data"),
            input_dir=str(tmp / "inputs"),
            output_dir=str(out),
        )
    error = excinfo.value
    while error.__cause__ is not None and "inputs failed" not in str(error):
        error = error.__cause__
    return out, str(error)


def test_good_cases_are_written_and_bad_ones_leave_nothing(hecktor, inference_run):
    out, _ = inference_run
    good = [hecktor["ids"][0], hecktor["ids"][3]]
    expected = {f"{cid}__CT_{kind}.nii.gz" for cid in good for kind in KINDS} | {"inference_summary.json"}
    assert {p.name for p in out.iterdir()} == expected  # no staging folder, no file of the bad cases
    for cid in good:
        prob = nib.load(out / f"{cid}__CT_prob.nii.gz").get_fdata()
        assert np.isfinite(prob).all() and 0.0 <= prob.min() and prob.max() <= 1.0


def test_the_error_and_the_summary_name_each_bad_file(hecktor, inference_run):
    out, message = inference_run
    truncated, nan_pet = hecktor["truncated"], hecktor["nan_pet"]
    assert "2 of 4 inputs failed" in message
    assert str(truncated) in message and str(nan_pet) in message
    summary = json.loads((out / "inference_summary.json").read_text())
    assert (summary["num_inputs"], summary["num_written"], summary["num_failed"]) == (4, 2, 2)
    failed = {f["input"]["pet"]: f["error"] for f in summary["failed"]}
    assert set(failed) == {str(truncated), str(nan_pet)}
    assert str(truncated) in failed[str(truncated)]
    assert str(nan_pet) in failed[str(nan_pet)] and (
        "non-finite" in failed[str(nan_pet)].lower() or "nan" in failed[str(nan_pet)].lower()
    )
    written = {w["input"]["ct"]: sorted(w["files"]) for w in summary["written"]}
    cid = hecktor["ids"][0]
    assert written[str(hecktor["tmp"] / "inputs" / f"{cid}__CT.nii.gz")] == sorted(
        f"{cid}__CT_{kind}.nii.gz" for kind in KINDS
    )


def test_guarded_dataset_turns_a_bad_input_into_a_named_failure(hecktor):
    from monai.transforms import LoadImaged

    item = {"pet": str(hecktor["truncated"])}
    failure = GuardedDataset([item], LoadImaged(keys="pet"))[0]
    assert failure["inference_failure"].startswith(f"pet file {hecktor['truncated']}")
    assert json.loads(failure["inference_source"]) == item
    missing = {"image": str(hecktor["tmp"] / "nope.nii.gz")}
    assert describe_input_failure(missing, OSError("x")) == f"image file {missing['image']} does not exist"


def test_riga_inference_skips_a_truncated_png_and_names_it(tmp_path):
    """The 2D path (lexu_riga's inference.json + cpu_small.json): 3 PNGs, the middle one truncated."""
    from monai.bundle import run
    from PIL import Image

    from monai_lexu.networks import MultiHeadUNet

    bundle = REPO / "bundles" / "lexu_riga"
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(images / f"{name}.png")
    bad = images / "b.png"
    bad.write_bytes(bad.read_bytes()[:200])
    (tmp_path / "models").mkdir()
    net = MultiHeadUNet(
        spatial_dims=2, in_channels=3, out_channels=2, backbone="plain", heads="decoder", features=[8, 16, 32, 64]
    )
    torch.save(net.state_dict(), tmp_path / "models" / "model.pt")
    out = tmp_path / "out"
    with pytest.raises(RuntimeError) as excinfo:
        run(
            config_file=[str(bundle / "configs" / n) for n in ("inference.json", "cpu_small.json")],
            bundle_root=str(bundle),
            ckpt_dir=str(tmp_path / "models"),
            input_glob=str(images / "*.png"),
            output_dir=str(out),
            image_size=[32, 32],
            features=[8, 16, 32, 64],
        )
    error = excinfo.value
    while error.__cause__ is not None and "inputs failed" not in str(error):
        error = error.__cause__
    assert "1 of 3 inputs failed" in str(error) and f"image file {bad}" in str(error)
    assert {p.name for p in out.iterdir()} == {
        "a_prob.nii.gz",
        "a_unc.nii.gz",
        "c_prob.nii.gz",
        "c_unc.nii.gz",
        "inference_summary.json",
    }
    summary = json.loads((out / "inference_summary.json").read_text())
    assert [f["input"]["image"] for f in summary["failed"]] == [str(bad)]
