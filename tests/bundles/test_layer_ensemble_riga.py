"""End-to-end test of the layer_ensemble_riga bundle: its real configs, a few iterations on small synthetic data.

Runs train.json (+ the CPU override) on an empty dataset_dir (synthetic RIGA-like fallback), then evaluate.json and
inference.json, and the model-zoo checks verify_metadata (offline, shipped schema), verify_net_in_out and ckpt_export.
The Layer-Ensembles specifics are checked on values: the loss is the 0.3/1.0-weighted BCE of every head against the
soft label, and the evaluator's probability/uncertainty come from the last ``num_kept_heads`` heads only. The mechanics
of the model-zoo, metric-table and inference-map checks come from the ``bundle_checks`` fixture of
tests/bundles/conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "layer_ensemble_riga"
CONFIGS = BUNDLE / "configs"
FEATURES = [8, 16, 32, 64]  # plain backbone with 4 levels: 4 encoder + 3 decoder heads = 7 heads, 4 kept


def _overrides(tmp: Path) -> dict:
    return {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(tmp / "data"),
        "make_synthetic": True,  # a synthetic set in this fresh folder
        "ckpt_dir": str(tmp / "models"),
        "output_dir": str(tmp / "eval"),
        "synthetic_data": {"num_per_source": {"BinRushed": 5, "MESSIDOR": 5, "Magrabia": 4}, "size": 64, "seed": 3},
        "image_size": [64, 64],
        "features": FEATURES,
        "epochs": 2,
        "batch_size": 4,
        "val_interval": 1,
    }


def _parser(bundle_checks, files: list[str], **overrides):
    return bundle_checks.parser([CONFIGS / f for f in files], bundle_root=str(BUNDLE), **overrides)


def _network() -> torch.nn.Module:
    from monai_lexu.networks import MultiHeadUNet

    return MultiHeadUNet(2, 3, 2, backbone="plain", heads="encoder_decoder", features=FEATURES).eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bundle_checks):
    return bundle_checks.train_small(BUNDLE, tmp_path_factory, _overrides)


def test_train_builds_synthetic_data_and_saves_all_encoder_and_decoder_heads(trained):
    datalist = json.loads((trained / "data" / "datalist.json").read_text())
    assert [len(datalist[s]) for s in ("training", "validation", "test")] == [8, 2, 4]
    state = torch.load(trained / "models" / "model.pt", map_location="cpu", weights_only=True)
    heads = sorted({k.split(".")[1] for k in state if k.startswith("heads.")}, key=int)
    assert heads == [str(k) for k in range(7)]
    # encoder heads see the encoder levels (8, 16, 32, 64 channels), decoder heads the decoder stages (32, 16, 8)
    assert [state[f"heads.{k}.weight"].shape[1] for k in range(7)] == [8, 16, 32, 64, 32, 16, 8]


@pytest.mark.parametrize(
    "extra, overrides, num_heads, skip_first",
    [
        ([], {}, 10, 6),  # paper network (ResNet50): 5 encoder + 5 decoder heads, keep the 4 deepest-decoder-side
        (["cpu_small.json"], {}, 9, 5),  # plain 5 levels: 5 + 4 heads, keep the 4 decoder heads
        ([], {"num_kept_heads": 5}, 10, 5),  # the paper's text: "skip the first five"
    ],
)
def test_skip_first_follows_num_kept_heads(extra, overrides, num_heads, skip_first, bundle_checks):
    inference = _parser(bundle_checks, ["inference.json"] + extra, **overrides)
    assert inference.get_parsed_content("num_heads") == num_heads
    assert inference.get_parsed_content("inferer").skip_first == skip_first
    train = _parser(bundle_checks, ["train.json"] + extra, **overrides)
    assert train.get_parsed_content("num_heads") == num_heads
    assert train.get_parsed_content("validate#inferer").skip_first == skip_first


def test_loss_is_weighted_bce_of_every_head_against_the_soft_label(bundle_checks):
    import torch.nn.functional as F

    loss = _parser(bundle_checks, ["train.json"], num_heads=3).get_parsed_content("loss")
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3 * 2, 4, 4, generator=g)
    raters = (torch.rand(2, 3, 2, 4, 4, generator=g) > 0.5).float()
    target = {"raters": raters, "rater_valid": torch.ones(2, 3, dtype=torch.bool)}
    soft = raters.mean(dim=1)
    heads = logits.reshape(2, 3, 2, 4, 4)
    expected = sum(w * F.binary_cross_entropy_with_logits(heads[:, k], soft) for k, w in enumerate([0.3, 0.3, 1.0]))
    # no MRO (every head gets the soft label, so the loss is deterministic) and no DGM
    assert torch.allclose(loss(logits, target), expected, atol=1e-6)
    assert loss.last_terms["dgm"] > 0.0  # the head variance is still logged, but not part of the loss


def test_evaluate_uses_only_the_kept_heads(trained, bundle_checks):
    from monai_lexu.contract import heads_to_prob_unc

    out = bundle_checks.run_riga_evaluation(BUNDLE, _overrides(trained))
    maps = sorted((out / "metrics_test_maps").glob("*.npz"))
    assert len(maps) == 4  # save_maps: 4

    # recompute one image's maps from the checkpoint: mean/variance of the sigmoids of the last 4 of 7 heads
    case = np.load(maps[0])
    net = _network()
    net.load_state_dict(torch.load(trained / "models" / "model.pt", map_location="cpu", weights_only=True))
    with torch.no_grad():
        logits = net(torch.from_numpy(case["image"])[None])
    kept = heads_to_prob_unc(logits, 7, skip_first=3)[0]
    probs = torch.sigmoid(logits.reshape(7, 2, 64, 64)[3:])
    assert torch.allclose(kept[:2], probs.mean(0), atol=1e-6) and torch.allclose(kept[2:], probs.var(0), atol=1e-6)
    np.testing.assert_allclose(case["prob"], kept[:2].numpy(), atol=1e-5)
    np.testing.assert_allclose(case["unc"], kept[2:].numpy(), atol=1e-5)
    every = heads_to_prob_unc(logits, 7)[0]  # all heads: a different map, so the check above is discriminative
    assert float((every[2:] - kept[2:]).abs().max()) > 1e-3


def test_inference_writes_probability_and_uncertainty_in_the_input_geometry(trained, bundle_checks):
    # variance of the 4 kept heads' probabilities in [0, 1]: at most K/(4(K-1)) = 1/3
    bundle_checks.check_riga_inference(BUNDLE, trained, _overrides(trained), unc_max=1.0 / 3.0)


def test_verify_metadata_offline(bundle_checks):
    meta = bundle_checks.verify_metadata(BUNDLE)
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 20  # 10 heads x 2 structures


def test_verify_net_in_out_default_network(bundle_checks):
    bundle_checks.verify_net_in_out(BUNDLE, n=2)


def test_ckpt_export_of_the_trained_model(trained, bundle_checks):
    bundle_checks.assert_export_equals_eager(
        BUNDLE,
        trained / "models" / "model.pt",
        trained / "model.ts",
        _network(),
        input_shape=(1, 3, 64, 64),
        configs=("inference.json", "cpu_small.json"),
        output_shape=(1, 14, 64, 64),
        features=FEATURES,
    )


@pytest.mark.docs
def test_docs_commands_run_in_order(tmp_path, doc_commands, doc_raw_data):
    """Every command block of this bundle's docs/README.md, in order, CPU-sized (see tests/doc_commands.py)."""
    skipped = doc_commands.run_bundle_doc("layer_ensemble_riga", tmp_path, doc_raw_data)
    assert all("MONAI Label" in reason for _, reason in skipped)  # run by tests/label against a real server
