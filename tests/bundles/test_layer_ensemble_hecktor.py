"""End-to-end test of the layer_ensemble_hecktor bundle with its real configs on a tiny synthetic PET/CT set.

train.json (+ cpu_small.json, a 3-level U-Net so there are 3 encoder + 2 decoder heads) on an empty dataset_dir builds
the synthetic set; evaluate.json writes the fold table and the maps, whose uncertainty is recomputed here from the
checkpoint with only the kept (last 4) heads; inference.json writes the maps in the original CT space;
multi_gpu_train.json is run in-process with a one-process gloo group (lexu_hecktor's test already runs torchrun);
model-zoo checks (metadata, network in/out, TorchScript export equal to the eager network). The mechanics of these
checks (evaluation and inference runs, map checks, the one-rank DDP run, the model-zoo checks) come from the
``bundle_checks`` fixture of tests/bundles/conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "layer_ensemble_hecktor"
CONFIGS = BUNDLE / "configs"
# CPU default is 1 window per forward; with these tiny 3D U-Nets PyTorch then falls back to its slow 3D convolution
# (about 5x slower than 4 windows per forward), so the tests batch 4 windows (same windows, same blending)
SW_BATCH = 4
CPU = str(CONFIGS / "cpu_small.json")
FEATURES = [4, 8, 16]  # 3 encoder heads (full res, /2, /4) + 2 decoder heads (/2, full res) = 5 heads
NUM_HEADS = 5


def _overrides(tmp: Path, **extra) -> dict:
    return {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(tmp / "data"),
        "make_synthetic": True,  # a synthetic set in this fresh folder
        "ckpt_dir": str(tmp / "models"),
        "output_dir": str(tmp / "eval"),
        "synthetic_data": {"num_cases": 3, "seed": 1},
        "features": FEATURES,
        "num_samples": 2,
        "epochs": 2,
        "val_interval": 2,
        "sw_batch_size": SW_BATCH,
        **extra,
    }


def _eager_network() -> torch.nn.Module:
    from monai_lexu.networks import MultiHeadUNet

    return MultiHeadUNet(3, 2, 2, backbone="plain", heads="encoder_decoder", features=FEATURES).eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bundle_checks):
    return bundle_checks.train_small(BUNDLE, tmp_path_factory, _overrides)


def test_train_saves_fold_models_with_encoder_and_decoder_heads(trained):
    datalist = json.loads((trained / "data" / "datalist.json").read_text())
    assert sorted(c["fold"] for c in datalist["training"]) == [0, 1, 2]
    fold_model = torch.load(trained / "models" / "model_fold0.pt", map_location="cpu", weights_only=True)
    last = torch.load(trained / "models" / "model.pt", map_location="cpu", weights_only=True)
    # one 1x1 head per encoder level (4, 8, 16 channels) then per decoder stage (8, 4 channels), 2 structures each
    head_inputs = [fold_model[f"heads.{k}.weight"].shape[1] for k in range(NUM_HEADS)]
    assert head_inputs == [4, 8, 16, 8, 4] and f"heads.{NUM_HEADS}.weight" not in fold_model
    assert all(fold_model[f"heads.{k}.weight"].shape[0] == 2 for k in range(NUM_HEADS))
    assert fold_model.keys() == last.keys() and all(torch.equal(fold_model[k], last[k]) for k in last)


def test_evaluation_uncertainty_uses_only_the_kept_heads(trained, bundle_checks):
    parser, volumes, maps = bundle_checks.run_hecktor_evaluation(BUNDLE, _overrides(trained))
    assert parser.get_parsed_content("num_heads") == NUM_HEADS
    inferer = parser.get_parsed_content("validate#inferer")
    assert inferer.skip_first == NUM_HEADS - 4  # uncertainty from the 4 heads nearest the output

    net = _eager_network()
    net.load_state_dict(torch.load(trained / "models" / "model_fold0.pt", map_location="cpu", weights_only=True))
    patch = json.loads(Path(CPU).read_text())["patch_size"]

    def window_stats(x: torch.Tensor) -> torch.Tensor:  # per window: sigmoid of every head -> (all, kept) mean/var
        p = torch.sigmoid(net(x)).reshape(x.shape[0], NUM_HEADS, 2, *x.shape[2:])
        kept = p[:, NUM_HEADS - 4 :]
        return torch.cat([kept.mean(1), kept.var(1, unbiased=True), p.var(1, unbiased=True)], dim=1)

    # saved prob/unc equal the kept heads' mean/variance (checked by recompute_saved_slices)
    for saved, stats in bundle_checks.recompute_saved_slices(maps, volumes, window_stats, patch, SW_BATCH):
        # dropping the shallowest head changes the map: the evaluation did not use all heads
        assert np.abs(stats[4:6] - stats[2:4]).max() > 1e-4
        assert saved["image"].shape[0] == 2 and saved["raters"].shape[1:] == saved["prob"].shape


def test_inference_in_the_original_ct_space(trained, bundle_checks):
    held_out = bundle_checks.run_hecktor_inference(BUNDLE, trained, features=FEATURES, sw_batch_size=SW_BATCH)
    for cid in held_out:
        # in the CT space, label = structure with the highest probability >= 0.5, unc not zero everywhere and
        # at most 1/3 (unbiased variance of 4 values in [0, 1])
        bundle_checks.check_ct_space_maps(trained, cid, unc_max=1.0 / 3.0)


def test_multi_gpu_train_wraps_the_network_in_ddp(trained, tmp_path, monkeypatch, bundle_checks):
    """multi_gpu_train.json in-process with a one-process gloo group: DDP-wrapped network, sampler, unwrapped ckpt."""
    from monai_lexu.networks import MultiHeadUNet

    args = _overrides(trained, epochs=1, val_interval=2)  # one epoch, no validation pass
    network, state = bundle_checks.train_in_one_process_gloo_group(BUNDLE, args, tmp_path, monkeypatch)
    assert isinstance(network, MultiHeadUNet) and network.num_heads == NUM_HEADS
    assert state.keys() == _eager_network().state_dict().keys()  # saved unwrapped from DistributedDataParallel


def test_verify_metadata_net_in_out_and_ckpt_export(trained, bundle_checks):
    meta = bundle_checks.verify_metadata(BUNDLE)
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 9 * 2  # 5 encoder + 4 decoder heads
    bundle_checks.verify_net_in_out(BUNDLE, n=2)
    bundle_checks.assert_export_equals_eager(
        BUNDLE,
        trained / "models" / "model.pt",
        trained / "model.ts",
        _eager_network(),
        input_shape=(1, 2, 32, 32, 32),
        configs=("inference.json", "cpu_small.json"),
        output_shape=(1, NUM_HEADS * 2, 32, 32, 32),
        features=FEATURES,
    )


@pytest.mark.docs
def test_docs_commands_run_in_order(tmp_path, doc_commands, doc_raw_data):
    """Every command block of this bundle's docs/README.md, in order, CPU-sized (see tests/doc_commands.py)."""
    skipped = doc_commands.run_bundle_doc("layer_ensemble_hecktor", tmp_path, doc_raw_data)
    assert all("MONAI Label" in reason for _, reason in skipped)  # run by tests/label against a real server
