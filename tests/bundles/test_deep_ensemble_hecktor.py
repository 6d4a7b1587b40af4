"""End-to-end test of the deep_ensemble_hecktor bundle with its real configs on a tiny synthetic PET/CT set.

train.json (+ cpu_small.json with a 3-level U-Net per member) on an empty dataset_dir builds the synthetic set and
trains the 5 members together; the checkpoint holds 5 different, all trained members; evaluate.json writes the fold
table and the maps, whose uncertainty is recomputed here as the variance over the members; inference.json writes the
maps in the original CT space; multi_gpu_train.json is run in-process with a one-process gloo group (lexu_hecktor's
test already runs torchrun); model-zoo checks (metadata, network in/out, TorchScript export equal to the eager
ensemble).
"""

from __future__ import annotations

import csv
import itertools
import json
import shutil
import socket
from functools import partial
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "deep_ensemble_hecktor"
CONFIGS = BUNDLE / "configs"
# CPU default is 1 window per forward; with these tiny 3D U-Nets PyTorch then falls back to its slow 3D convolution
# (about 5x slower than 4 windows per forward), so the tests batch 4 windows (same windows, same blending)
SW_BATCH = 4
SCHEMA = REPO / "monai_lexu" / "schemas" / "bundle_metadata_schema.json"
CPU = str(CONFIGS / "cpu_small.json")
FEATURES = [4, 8, 16]
NUM_MEMBERS = 5
SEED = 27  # train.json's seed: member m is initialised with seed 27 + m


def _overrides(tmp: Path, **extra) -> dict:
    return {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(tmp / "data"),
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
def trained(tmp_path_factory):
    from monai.bundle import run

    tmp = tmp_path_factory.mktemp("deep_ensemble_hecktor")
    run(config_file=[str(CONFIGS / "train.json"), CPU], **_overrides(tmp))
    return tmp


def test_checkpoint_holds_five_different_trained_members(trained):
    fold_model = torch.load(trained / "models" / "model_fold0.pt", map_location="cpu")
    last = torch.load(trained / "models" / "model.pt", map_location="cpu")
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


def test_evaluation_uncertainty_is_the_variance_over_members(trained):
    from monai.bundle import ConfigParser, run
    from monai.inferers import SlidingWindowInferer

    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json"), CPU]
    run(config_file=configs, **_overrides(trained))
    out = trained / "eval"
    summary = {r["metric"]: r for r in csv.DictReader((out / "metrics_fold0_summary.csv").open())}
    assert set(summary) == {"SR", "DC", "NCC", "soft_dice", "NLL", "WME", "ME", "ECE"}
    assert (out / "metrics_folds_summary.md").is_file()

    parser = ConfigParser()
    parser.read_config(configs)
    parser.update(_overrides(trained))
    assert parser.get_parsed_content("num_heads") == NUM_MEMBERS
    volumes = {d["id"]: d for d in parser.get_parsed_content("validate#dataset")}
    maps = sorted((out / "metrics_fold0_maps").glob("*.npz"))
    assert maps and {m.stem for m in maps} == set(volumes)

    ensemble = _eager_ensemble()
    ensemble.load_state_dict(torch.load(trained / "models" / "model_fold0.pt", map_location="cpu"))
    members = ensemble.members
    patch = json.loads(Path(CPU).read_text())["patch_size"]

    def window_stats(x: torch.Tensor) -> torch.Tensor:  # per window: each member separately -> mean / variance
        p = torch.stack([torch.sigmoid(member(x)) for member in members], dim=1)  # (B, N, L, *S)
        return torch.cat([p.mean(1), p.var(1, unbiased=True)], dim=1)

    sliding = SlidingWindowInferer(patch, sw_batch_size=SW_BATCH, overlap=0.5, mode="gaussian")
    for path in maps:
        saved = np.load(path)
        image = torch.as_tensor(volumes[path.stem]["image"])[None].float()
        with torch.no_grad():
            stats = sliding(image, window_stats)[0, ..., int(saved["slice"])].numpy()
        np.testing.assert_allclose(saved["prob"], stats[0:2], atol=1e-5)
        np.testing.assert_allclose(saved["unc"], stats[2:4], atol=1e-6)
        assert saved["unc"].max() > 0.0


def test_inference_in_the_original_ct_space(trained):
    from monai.bundle import run

    datalist = json.loads((trained / "data" / "datalist.json").read_text())
    held_out = sorted(c["id"] for c in datalist["training"] if c["fold"] == 0)
    raw = trained / "data" / "raw"
    inputs = trained / "inputs"
    inputs.mkdir()
    for cid in held_out:
        for modality in ("CT", "PT"):
            shutil.copy(raw / "imagesTr" / f"{cid}__{modality}.nii.gz", inputs)
    out = trained / "inference"
    run(
        config_file=[str(CONFIGS / "inference.json"), CPU],
        bundle_root=str(BUNDLE),
        ckpt_dir=str(trained / "models"),
        input_dir=str(inputs),
        output_dir=str(out),
        features=FEATURES,
        sw_batch_size=SW_BATCH,
    )
    for cid in held_out:
        ct = nib.load(raw / "imagesTr" / f"{cid}__CT.nii.gz")
        label, prob, unc = (nib.load(out / f"{cid}__CT_{kind}.nii.gz") for kind in ("label", "prob", "unc"))
        for img in (label, prob, unc):
            assert img.shape[:3] == ct.shape
            np.testing.assert_allclose(img.affine, ct.affine, atol=1e-4)
        assert prob.shape[3:] == unc.shape[3:] == (2,)
        p, u = prob.get_fdata(), unc.get_fdata()
        assert 0.0 <= p.min() and p.max() <= 1.0 and 0.0 <= u.min() and u.max() > 0.0
        assert u.max() <= 0.3 + 1e-6  # unbiased variance of 5 values in [0, 1] is at most 0.3
        label_values = np.asarray(label.dataobj)
        assert set(np.unique(label_values)) <= {0, 1, 2}
        np.testing.assert_array_equal(label_values > 0, p.max(-1) >= 0.5)


def test_multi_gpu_train_wraps_the_ensemble_in_ddp(trained, tmp_path, monkeypatch):
    """multi_gpu_train.json in-process with a one-process gloo group: DDP-wrapped ensemble, sampler, unwrapped ckpt."""
    import torch.distributed as dist
    from monai.bundle import ConfigWorkflow
    from monai.data import DistributedSampler
    from torch.nn.parallel import DistributedDataParallel

    from monai_lexu.networks import DeepEnsemble

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = _overrides(trained, epochs=1, val_interval=2)  # one epoch, no validation pass
    args.update(ckpt_dir=str(tmp_path / "models"), output_dir=str(tmp_path / "eval"))
    workflow = ConfigWorkflow(
        config_file=[str(CONFIGS / "train.json"), str(CONFIGS / "multi_gpu_train.json"), CPU],
        workflow_type="train",
        **args,
    )
    try:
        workflow.initialize()
        assert dist.is_initialized() and dist.get_backend() == "gloo"
        trainer = workflow.parser.get_parsed_content("train#trainer")
        assert isinstance(trainer.network, DistributedDataParallel)
        assert isinstance(trainer.network.module, DeepEnsemble) and trainer.network.module.num_members == NUM_MEMBERS
        assert isinstance(trainer.data_loader.sampler, DistributedSampler)
        workflow.run()
    finally:
        workflow.finalize()
        if dist.is_initialized():
            dist.destroy_process_group()
    state = torch.load(tmp_path / "models" / "model.pt", map_location="cpu")
    assert state.keys() == _eager_ensemble().state_dict().keys()  # saved unwrapped from DistributedDataParallel


def test_verify_metadata_net_in_out_and_ckpt_export(trained):
    from monai.bundle import ckpt_export, verify_metadata, verify_net_in_out

    meta = json.loads((CONFIGS / "metadata.json").read_text())
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == NUM_MEMBERS * 2
    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(SCHEMA))
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=str(CONFIGS / "inference.json"),
        n=2,
        bundle_root=str(BUNDLE),
    )
    ts = trained / "model.ts"
    ckpt_export(
        net_id="network_def",
        filepath=str(ts),
        ckpt_file=str(trained / "models" / "model.pt"),
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=[str(CONFIGS / "inference.json"), CPU],
        bundle_root=str(BUNDLE),
        features=FEATURES,
    )
    x = torch.rand(1, 2, 32, 32, 32)
    eager = _eager_ensemble()
    eager.load_state_dict(torch.load(trained / "models" / "model.pt", map_location="cpu"))
    with torch.no_grad():
        exported = torch.jit.load(str(ts)).eval()(x)
        assert exported.shape == (1, NUM_MEMBERS * 2, 32, 32, 32)
        assert torch.allclose(exported, eager(x), atol=1e-5)
