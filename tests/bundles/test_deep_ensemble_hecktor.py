"""End-to-end test of the deep_ensemble_hecktor bundle with its real configs on a tiny synthetic PET/CT set.

train.json (+ cpu_small.json with a 3-level U-Net per member) on an empty dataset_dir builds the synthetic set and
trains the 5 members together; the checkpoint holds 5 different, all trained members; evaluate.json writes the fold
table and the maps, whose uncertainty is recomputed here as the variance over the members; inference.json writes the
maps in the original CT space; multi_gpu_train.json is run in-process with a one-process gloo group (lexu_hecktor's
test already runs torchrun); model-zoo checks (metadata, network in/out, TorchScript export equal to the eager
ensemble). The mechanics of these checks (evaluation and inference runs, map checks, the one-rank DDP run, the
model-zoo checks) come from the ``bundle_checks`` fixture of tests/bundles/conftest.py.
"""

from __future__ import annotations

import itertools
import json
from functools import partial
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "deep_ensemble_hecktor"
CONFIGS = BUNDLE / "configs"
# CPU default is 1 window per forward; with these tiny 3D U-Nets PyTorch then falls back to its slow 3D convolution
# (about 5x slower than 4 windows per forward), so the tests batch 4 windows (same windows, same blending)
SW_BATCH = 4
CPU = str(CONFIGS / "cpu_small.json")
FEATURES = [4, 8, 16]
NUM_MEMBERS = 5
SEED = 27  # train.json's seed: member m is initialised with seed 27 + m


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
        "val_interval": 3,  # no validation pass while training: evaluate.json runs the same evaluator
        "sw_batch_size": SW_BATCH,
        **extra,
    }


def _eager_ensemble() -> torch.nn.Module:
    from monai_lexu.networks import DeepEnsemble, MultiHeadUNet

    member = partial(MultiHeadUNet, 3, 2, 2, backbone="plain", heads="last", features=FEATURES)
    return DeepEnsemble(member, num_members=NUM_MEMBERS, seed=SEED).eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bundle_checks):
    return bundle_checks.train_small(BUNDLE, tmp_path_factory, _overrides)


def test_checkpoint_holds_five_different_trained_members(trained):
    fold_model = torch.load(trained / "models" / "model_fold0.pt", map_location="cpu", weights_only=True)
    last = torch.load(trained / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert fold_model.keys() == last.keys() and all(torch.equal(fold_model[k], last[k]) for k in last)
    assert {k.split(".")[1] for k in fold_model} == {str(m) for m in range(NUM_MEMBERS)}
    per_member = [
        {k.split(".", 2)[2]: v for k, v in fold_model.items() if k.startswith(f"members.{m}.")}
        for m in range(NUM_MEMBERS)
    ]
    assert all(p.keys() == per_member[0].keys() for p in per_member)
    assert {k for k in per_member[0] if k.startswith("heads.")} == {"heads.0.weight", "heads.0.bias"}  # single head
    for a, b in itertools.combinations(range(NUM_MEMBERS), 2):  # members differ (different initialisation)
        assert not torch.allclose(per_member[a]["heads.0.weight"], per_member[b]["heads.0.weight"])
        first_conv = "encoder.levels.0.conv_0.conv.weight"
        assert not torch.allclose(per_member[a][first_conv], per_member[b][first_conv])
    initial = _eager_ensemble().state_dict()  # the same seeds give the configuration's initial members
    for m in range(NUM_MEMBERS):  # every member got gradients from the summed loss
        assert not torch.equal(initial[f"members.{m}.heads.0.weight"], fold_model[f"members.{m}.heads.0.weight"])


def test_evaluation_uncertainty_is_the_variance_over_members(trained, bundle_checks):
    parser, volumes, maps = bundle_checks.run_hecktor_evaluation(BUNDLE, _overrides(trained))
    assert parser.get_parsed_content("num_heads") == NUM_MEMBERS

    ensemble = _eager_ensemble()
    ensemble.load_state_dict(torch.load(trained / "models" / "model_fold0.pt", map_location="cpu", weights_only=True))
    members = ensemble.members
    patch = json.loads(Path(CPU).read_text())["patch_size"]

    def window_stats(x: torch.Tensor) -> torch.Tensor:  # per window: each member separately -> mean / variance
        p = torch.stack([torch.sigmoid(member(x)) for member in members], dim=1)  # (B, N, L, *S)
        return torch.cat([p.mean(1), p.var(1, unbiased=True)], dim=1)

    # saved prob/unc equal the members' mean/variance (checked by recompute_saved_slices)
    for saved, _ in bundle_checks.recompute_saved_slices(maps, volumes, window_stats, patch, SW_BATCH):
        assert saved["unc"].max() > 0.0


def test_inference_in_the_original_ct_space(trained, bundle_checks):
    held_out = bundle_checks.run_hecktor_inference(BUNDLE, trained, features=FEATURES, sw_batch_size=SW_BATCH)
    for cid in held_out:
        # in the CT space, label = structure with the highest probability >= 0.5, unc not zero everywhere and
        # at most 0.3 (unbiased variance of 5 values in [0, 1])
        bundle_checks.check_ct_space_maps(trained, cid, unc_max=0.3)


def test_multi_gpu_train_wraps_the_ensemble_in_ddp(trained, tmp_path, monkeypatch, bundle_checks):
    """multi_gpu_train.json in-process with a one-process gloo group: DDP-wrapped ensemble, sampler, unwrapped ckpt."""
    from monai_lexu.networks import DeepEnsemble

    args = _overrides(trained, epochs=1, val_interval=2)  # one epoch, no validation pass
    network, state = bundle_checks.train_in_one_process_gloo_group(BUNDLE, args, tmp_path, monkeypatch)
    assert isinstance(network, DeepEnsemble) and network.num_members == NUM_MEMBERS
    assert state.keys() == _eager_ensemble().state_dict().keys()  # saved unwrapped from DistributedDataParallel


def test_verify_metadata_net_in_out_and_ckpt_export(trained, bundle_checks):
    meta = bundle_checks.verify_metadata(BUNDLE)
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == NUM_MEMBERS * 2
    bundle_checks.verify_net_in_out(BUNDLE, n=2)
    bundle_checks.assert_export_equals_eager(
        BUNDLE,
        trained / "models" / "model.pt",
        trained / "model.ts",
        _eager_ensemble(),
        input_shape=(1, 2, 32, 32, 32),
        configs=("inference.json", "cpu_small.json"),
        output_shape=(1, NUM_MEMBERS * 2, 32, 32, 32),
        features=FEATURES,
    )


@pytest.mark.docs
def test_docs_commands_run_in_order(tmp_path, doc_commands, doc_raw_data):
    """Every command block of this bundle's docs/README.md, in order, CPU-sized (see tests/doc_commands.py)."""
    skipped = doc_commands.run_bundle_doc("deep_ensemble_hecktor", tmp_path, doc_raw_data)
    assert all("MONAI Label" in reason for _, reason in skipped)  # run by tests/label against a real server
