"""The 2D axial-slice protocol of Layer Ensembles and Deep Ensembles on HECKTOR (LEXU Table 2's HECKTOR half).

``lexu_hecktor``, ``layer_ensemble_hecktor`` and ``deep_ensemble_hecktor`` take ``configs/train_slices.json`` /
``evaluate_slices.json`` from the HECKTOR base's optional files (``bundles/_base/hecktor/optional/``, each delta's
``"optional"`` list and ``"train_slices.json"`` section; ``python -m monai_lexu.families write``). The written files
must equal ``lexu_hecktor``'s except for the method, and the method must be the one of the bundle's own 3D
``train.json`` (the delta's 2D section repeats it). Each trains and evaluates fold 0 for one epoch on a tiny synthetic
set.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"
SIBLINGS = ("layer_ensemble_hecktor", "deep_ensemble_hecktor")
# train_slices.json keys where a method may differ from LEXU's (everything else is the shared protocol)
METHOD_KEYS = {"bundle_root", "heads", "num_kept_heads", "skip_first", "num_members", "beta", "aux_weight",
               "rater_sampling", "network_def", "loss", "validate", "initialize"}  # fmt: skip


def _load(bundle: str, name: str) -> dict:
    return json.loads((BUNDLES / bundle / "configs" / name).read_text())


def _renamed(config: dict, bundle: str) -> dict:
    return json.loads(json.dumps(config).replace("lexu_hecktor", bundle))


@pytest.mark.parametrize("bundle", SIBLINGS)
def test_slice_configs_differ_from_lexu_only_by_the_method(bundle: str) -> None:
    lexu, own = _renamed(_load("lexu_hecktor", "train_slices.json"), bundle), _load(bundle, "train_slices.json")
    assert {k for k in lexu.keys() | own.keys() if lexu.get(k) != own.get(k)} <= METHOD_KEYS
    assert own["initialize"] == lexu["initialize"] and own["bundle_root"] == lexu["bundle_root"]
    assert {k for k in lexu["validate"] if lexu["validate"][k] != own["validate"][k]} <= {"inferer"}
    assert _load(bundle, "evaluate_slices.json") == _renamed(_load("lexu_hecktor", "evaluate_slices.json"), bundle)
    # the method is the bundle's own 3D one (family-written train.json), in 2D
    volume = _load(bundle, "train.json")
    for key in ("beta", "aux_weight", "rater_sampling", "heads", "num_kept_heads", "skip_first", "num_members"):
        assert own.get(key) == volume.get(key), key
    assert own["loss"]["_target_"] == volume["loss"]["_target_"]
    assert own["validate"]["inferer"]["skip_first"] == volume["validate"]["inferer"]["skip_first"] == "@skip_first"
    net2d, net3d = json.dumps(own["network_def"]), json.dumps(volume["network_def"])
    assert net2d.replace('"spatial_dims": 2', '"spatial_dims": 3') == net3d


@pytest.fixture(scope="module")
def slices_data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hecktor_slices") / "data"


@pytest.mark.parametrize("bundle", SIBLINGS)
def test_slice_protocol_trains_and_evaluates(bundle: str, slices_data: Path, tmp_path: Path) -> None:
    from monai.bundle import run

    configs = BUNDLES / bundle / "configs"
    args = {
        "dataset_dir": str(slices_data),
        "make_synthetic": True,  # the first test builds the tiny set, the second reads it
        "synthetic_data": {"num_cases": 6, "seed": 1},
        "ckpt_dir": str(tmp_path / "models"),
        "output_dir": str(tmp_path / "eval"),
        "epochs": 1,
        "val_interval": 1,
        "backbone": "plain",
        "features": [8, 16, 32, 64],
        "image_size": [64, 64],
        "batch_size": 8,
        "num_workers": 0,
        "num_members": 2,
    }
    run(config_file=[str(configs / "train_slices.json")], **args)
    assert (tmp_path / "models" / "model_fold0.pt").is_file()
    run(config_file=[str(configs / "train_slices.json"), str(configs / "evaluate_slices.json")], **args)
    result = json.loads((tmp_path / "eval" / "metrics_slices_fold0.json").read_text())
    assert set(result["mean"]) == {"GTVp", "GTVn"} and result["num_images"] > 0
    assert (tmp_path / "eval" / "metrics_slices_folds_summary.md").is_file()
    # keep_head_maps: every held-out slice's maps, with each member's / head's probabilities
    run(config_file=[str(configs / "train_slices.json"), str(configs / "evaluate_slices.json")], **args,
        keep_head_maps=True)  # fmt: skip
    maps = sorted((tmp_path / "eval" / "metrics_slices_fold0_maps").glob("*.npz"))
    assert len(maps) == result["num_images"] > 4
    with np.load(maps[0]) as z:
        heads, prob, index = z["heads"], z["prob"], int(z["slice"])
    assert heads.shape[1:] == prob.shape == (2, 64, 64) and heads.shape[0] >= 2 and index == -1
    np.testing.assert_allclose(heads.mean(0), prob, atol=1e-6)  # the probability is the mean over them
