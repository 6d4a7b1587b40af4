"""The 2D axial-slice protocol of Layer Ensembles and Deep Ensembles on HECKTOR (LEXU Table 2's HECKTOR half).

``layer_ensemble_hecktor`` and ``deep_ensemble_hecktor`` own ``configs/train_slices.json`` / ``evaluate_slices.json``
(files the family base does not have, so ``python -m monai_lexu.families write`` leaves them alone, like
``lexu_hecktor``'s). They must equal ``lexu_hecktor``'s slice configs except for the method, and the method must be
the one of the bundle's own (family-written) 3D ``train.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

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
