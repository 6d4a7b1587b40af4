"""End-to-end test of the layer_ensemble_hecktor bundle with its real configs on a tiny synthetic PET/CT set.

train.json (+ cpu_small.json, a 3-level U-Net so there are 3 encoder + 2 decoder heads) on an empty dataset_dir builds
the synthetic set; evaluate.json writes the fold table and the maps, whose uncertainty is recomputed here from the
checkpoint with only the kept (last 4) heads; inference.json writes the maps in the original CT space;
multi_gpu_train.json is run in-process with a one-process gloo group (lexu_hecktor's test already runs torchrun);
model-zoo checks (metadata, network in/out, TorchScript export equal to the eager network).
"""

from __future__ import annotations

import csv
import json
import shutil
import socket
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "layer_ensemble_hecktor"
CONFIGS = BUNDLE / "configs"
# CPU default is 1 window per forward; with these tiny 3D U-Nets PyTorch then falls back to its slow 3D convolution
# (about 5x slower than 4 windows per forward), so the tests batch 4 windows (same windows, same blending)
SW_BATCH = 4
SCHEMA = REPO / "monai_lexu" / "schemas" / "bundle_metadata_schema.json"
CPU = str(CONFIGS / "cpu_small.json")
FEATURES = [4, 8, 16]  # 3 encoder heads (full res, /2, /4) + 2 decoder heads (/2, full res) = 5 heads
NUM_HEADS = 5


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
        "val_interval": 2,
        "sw_batch_size": SW_BATCH,
        **extra,
    }


def _eager_network() -> torch.nn.Module:
    from monai_lexu.networks import MultiHeadUNet

    return MultiHeadUNet(3, 2, 2, backbone="plain", heads="encoder_decoder", features=FEATURES).eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from monai.bundle import run

    tmp = tmp_path_factory.mktemp("layer_ensemble_hecktor")
    run(config_file=[str(CONFIGS / "train.json"), CPU], **_overrides(tmp))
    return tmp


def test_train_saves_fold_models_with_encoder_and_decoder_heads(trained):
    datalist = json.loads((trained / "data" / "datalist.json").read_text())
    assert sorted(c["fold"] for c in datalist["training"]) == [0, 1, 2]
    fold_model = torch.load(trained / "models" / "model_fold0.pt", map_location="cpu")
    last = torch.load(trained / "models" / "model.pt", map_location="cpu")
    # one 1x1 head per encoder level (4, 8, 16 channels) then per decoder stage (8, 4 channels), 2 structures each
    head_inputs = [fold_model[f"heads.{k}.weight"].shape[1] for k in range(NUM_HEADS)]
    assert head_inputs == [4, 8, 16, 8, 4] and f"heads.{NUM_HEADS}.weight" not in fold_model
    assert all(fold_model[f"heads.{k}.weight"].shape[0] == 2 for k in range(NUM_HEADS))
    assert fold_model.keys() == last.keys() and all(torch.equal(fold_model[k], last[k]) for k in last)


def test_evaluation_uncertainty_uses_only_the_kept_heads(trained):
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
    assert parser.get_parsed_content("num_heads") == NUM_HEADS
    inferer = parser.get_parsed_content("validate#inferer")
    assert inferer.skip_first == NUM_HEADS - 4  # uncertainty from the 4 heads nearest the output
    volumes = {d["id"]: d for d in parser.get_parsed_content("validate#dataset")}
    maps = sorted((out / "metrics_fold0_maps").glob("*.npz"))
    assert maps and {m.stem for m in maps} == set(volumes)

    net = _eager_network()
    net.load_state_dict(torch.load(trained / "models" / "model_fold0.pt", map_location="cpu"))
    patch = json.loads(Path(CPU).read_text())["patch_size"]

    def window_stats(x: torch.Tensor) -> torch.Tensor:  # per window: sigmoid of every head -> (all, kept) mean/var
        p = torch.sigmoid(net(x)).reshape(x.shape[0], NUM_HEADS, 2, *x.shape[2:])
        kept = p[:, NUM_HEADS - 4 :]
        return torch.cat([kept.mean(1), kept.var(1, unbiased=True), p.var(1, unbiased=True)], dim=1)

    sliding = SlidingWindowInferer(patch, sw_batch_size=SW_BATCH, overlap=0.5, mode="gaussian")
    for path in maps:
        saved = np.load(path)
        image = torch.as_tensor(volumes[path.stem]["image"])[None].float()
        with torch.no_grad():
            stats = sliding(image, window_stats)[0, ..., int(saved["slice"])].numpy()
        np.testing.assert_allclose(saved["prob"], stats[0:2], atol=1e-5)
        np.testing.assert_allclose(saved["unc"], stats[2:4], atol=1e-6)
        # dropping the shallowest head changes the map: the evaluation did not use all heads
        assert np.abs(stats[4:6] - stats[2:4]).max() > 1e-4
        assert saved["image"].shape[0] == 2 and saved["raters"].shape[1:] == saved["prob"].shape


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
        assert u.max() <= 1.0 / 3.0 + 1e-6  # unbiased variance of 4 values in [0, 1] is at most 1/3
        label_values = np.asarray(label.dataobj)
        assert set(np.unique(label_values)) <= {0, 1, 2}
        # the label map is the structure with the highest probability >= 0.5
        np.testing.assert_array_equal(label_values > 0, p.max(-1) >= 0.5)


def test_multi_gpu_train_wraps_the_network_in_ddp(trained, tmp_path, monkeypatch):
    """multi_gpu_train.json in-process with a one-process gloo group: DDP-wrapped network, sampler, unwrapped ckpt."""
    import torch.distributed as dist
    from monai.bundle import ConfigWorkflow
    from monai.data import DistributedSampler
    from torch.nn.parallel import DistributedDataParallel

    from monai_lexu.networks import MultiHeadUNet

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
        assert isinstance(trainer.network.module, MultiHeadUNet) and trainer.network.module.num_heads == NUM_HEADS
        assert isinstance(trainer.data_loader.sampler, DistributedSampler)
        workflow.run()
    finally:
        workflow.finalize()
        if dist.is_initialized():
            dist.destroy_process_group()
    state = torch.load(tmp_path / "models" / "model.pt", map_location="cpu")
    assert state.keys() == _eager_network().state_dict().keys()  # saved unwrapped from DistributedDataParallel


def test_verify_metadata_net_in_out_and_ckpt_export(trained):
    from monai.bundle import ckpt_export, verify_metadata, verify_net_in_out

    meta = json.loads((CONFIGS / "metadata.json").read_text())
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 9 * 2  # 5 encoder + 4 decoder heads
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
    eager = _eager_network()
    eager.load_state_dict(torch.load(trained / "models" / "model.pt", map_location="cpu"))
    with torch.no_grad():
        exported = torch.jit.load(str(ts)).eval()(x)
        assert exported.shape == (1, NUM_HEADS * 2, 32, 32, 32)
        assert torch.allclose(exported, eager(x), atol=1e-5)
