"""End-to-end test of the deep_ensemble_riga bundle: its real configs, a few iterations on small synthetic data.

Runs train.json (+ the CPU override) on an empty dataset_dir (synthetic RIGA-like fallback), then evaluate.json and
inference.json, and the model-zoo checks verify_metadata (offline, shipped schema), verify_net_in_out and ckpt_export.
The Deep-Ensembles specifics are checked on values: five differently seeded members in one checkpoint, each member
receiving exactly the gradient of its own BCE, and the evaluator's uncertainty being the variance over the members.
"""

from __future__ import annotations

import csv
import json
import math
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "deep_ensemble_riga"
CONFIGS = BUNDLE / "configs"
SCHEMA = REPO / "monai_lexu" / "schemas" / "bundle_metadata_schema.json"
FEATURES = [8, 16, 32, 64]
SIZE = 32  # network input size (the synthetic images are 64x64): five members train 5x slower than one network


def _overrides(tmp: Path) -> dict:
    return {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(tmp / "data"),
        "ckpt_dir": str(tmp / "models"),
        "output_dir": str(tmp / "eval"),
        "synthetic_data": {"num_per_source": {"BinRushed": 5, "MESSIDOR": 5, "Magrabia": 4}, "size": 64, "seed": 3},
        "image_size": [SIZE, SIZE],
        "features": FEATURES,
        "epochs": 2,
        "batch_size": 4,
        "val_interval": 1,
    }


def _parser(files: list[str], **overrides):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / f) for f in files])
    parser.update({"bundle_root": str(BUNDLE), **overrides})
    return parser


def _member():
    from monai_lexu.networks import MultiHeadUNet

    return partial(MultiHeadUNet, 2, 3, 2, backbone="plain", heads="last", features=FEATURES)


def _eager(state_path: Path):
    from monai_lexu.networks import DeepEnsemble

    net = DeepEnsemble(_member(), num_members=5, seed=None)
    net.load_state_dict(torch.load(state_path, map_location="cpu"))
    return net.eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from monai.bundle import run

    tmp = tmp_path_factory.mktemp("deep_ensemble_riga")
    run(config_file=[str(CONFIGS / "train.json"), str(CONFIGS / "cpu_small.json")], **_overrides(tmp))
    return tmp


def test_checkpoint_holds_five_different_members(trained):
    datalist = json.loads((trained / "data" / "datalist.json").read_text())
    assert [len(datalist[s]) for s in ("training", "validation", "test")] == [8, 2, 4]
    state = torch.load(trained / "models" / "model.pt", map_location="cpu")
    assert sorted({k.split(".")[1] for k in state}) == ["0", "1", "2", "3", "4"]
    # every member is a complete single-head U-Net (same keys), and no two members have the same weights
    keys = [sorted(k.split(".", 2)[2] for k in state if k.startswith(f"members.{m}.")) for m in range(5)]
    assert all(k == keys[0] for k in keys) and "heads.0.weight" in keys[0] and "heads.1.weight" not in keys[0]
    heads = [state[f"members.{m}.heads.0.weight"] for m in range(5)]
    encoders = [state[f"members.{m}.encoder.levels.0.conv_0.conv.weight"] for m in range(5)]
    for i in range(5):
        for j in range(i + 1, 5):
            assert not torch.allclose(heads[i], heads[j]) and not torch.allclose(encoders[i], encoders[j])


def test_members_are_seeded_and_trained_independently():
    import torch.nn.functional as F

    from monai_lexu.networks import MultiHeadUNet

    parser = _parser(["train.json", "cpu_small.json"], features=FEATURES, num_members=3)
    net = parser.get_parsed_content("network_def")
    loss = parser.get_parsed_content("loss")
    assert net.num_heads == 3 and loss.num_heads == 3
    # member m is the single-head U-Net initialised with torch seed `seed + m` (27 + m)
    for m in range(3):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(27 + m)
            ref = MultiHeadUNet(2, 3, 2, backbone="plain", heads="last", features=FEATURES)
        assert all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), net.members[m].state_dict().values()))

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 16, 16, generator=g)
    raters = (torch.rand(2, 6, 2, 16, 16, generator=g) > 0.5).float()
    target = {"raters": raters, "rater_valid": torch.ones(2, 6, dtype=torch.bool)}
    soft = raters.mean(dim=1)
    out = net(x)
    loss(out, target).backward()
    total = sum(F.binary_cross_entropy_with_logits(out[:, 2 * m : 2 * m + 2], soft) for m in range(3))
    assert torch.allclose(loss.last_terms["loss"], total.detach(), atol=1e-6)  # plain sum of the members' BCEs
    for m in range(3):  # the ensemble loss gives member m exactly the gradient of its own BCE
        member = net.members[m]
        own = F.binary_cross_entropy_with_logits(member(x), soft)
        grads = torch.autograd.grad(own, list(member.parameters()))
        for p, expected in zip(member.parameters(), grads):
            assert torch.allclose(p.grad, expected, atol=1e-6)


def test_evaluate_uncertainty_is_the_variance_over_members(trained):
    from monai.bundle import run

    run(
        config_file=[str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json"), str(CONFIGS / "cpu_small.json")],
        **_overrides(trained),
    )
    out = trained / "eval"
    summary = {r["metric"]: r for r in csv.DictReader((out / "metrics_test_summary.csv").open())}
    assert set(summary) == {"SR", "DC", "NCC", "soft_dice", "NLL", "WME", "ME", "ECE"}
    for structure in ("disc", "cup"):
        assert 0.0 <= float(summary["soft_dice"][structure]) <= 1.0
        assert float(summary["NLL"][structure]) > 0.0
        sr = float(summary["SR"][structure])
        assert math.isnan(sr) or -1.0 <= sr <= 1.0
    rows = list(csv.DictReader((out / "metrics_test_per_image.csv").open()))
    assert len(rows) == 4 and rows[0]["id"].startswith("Magrabia_")
    maps = sorted((out / "metrics_test_maps").glob("*.npz"))
    assert len(maps) == 4  # save_maps: 4

    # recompute one image's maps member by member: mean and unbiased variance of the 5 members' sigmoids
    case = np.load(maps[0])
    net = _eager(trained / "models" / "model.pt")
    x = torch.from_numpy(case["image"])[None]
    assert x.shape == (1, 3, SIZE, SIZE)
    with torch.no_grad():
        logits = [member(x) for member in net.members]
        assert torch.equal(net(x), torch.cat(logits, dim=1))  # the ensemble's output: members side by side
    probs = torch.sigmoid(torch.cat(logits))  # (5, 2, SIZE, SIZE): one row per member
    np.testing.assert_allclose(case["prob"], probs.mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(case["unc"], probs.var(0, unbiased=True).numpy(), atol=1e-5)
    assert float(probs.var(0).max()) > 1e-4  # the members disagree somewhere


def test_inference_writes_probability_and_uncertainty_in_the_input_geometry(trained):
    import nibabel as nib
    from monai.bundle import run
    from PIL import Image

    images = sorted((trained / "data" / "images").glob("Magrabia_*.png"))
    assert len(images) == 4
    out = trained / "inference"
    overrides = {
        k: v for k, v in _overrides(trained).items() if k in ("bundle_root", "ckpt_dir", "image_size", "features")
    }
    run(
        config_file=[str(CONFIGS / "inference.json"), str(CONFIGS / "cpu_small.json")],
        input_glob=str(trained / "data" / "images" / "Magrabia_*.png"),
        output_dir=str(out),
        **overrides,
    )
    width, height = Image.open(images[0]).size
    for image in images:
        prob = nib.load(out / f"{image.stem}_prob.nii.gz").get_fdata()
        unc = nib.load(out / f"{image.stem}_unc.nii.gz").get_fdata()
        assert prob.shape[:2] == (width, height) and prob.shape[-1] == 2
        assert unc.shape == prob.shape
        assert prob.min() >= 0.0 and prob.max() <= 1.0
        # variance of 5 members' probabilities in [0, 1]: at most K/(4(K-1)) = 5/16
        assert unc.min() >= 0.0 and unc.max() <= 5.0 / 16.0 + 1e-6


def test_verify_metadata_offline():
    from monai.bundle import verify_metadata

    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(SCHEMA))
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 10  # 5 members x 2 structures


def test_verify_net_in_out_default_network():
    from monai.bundle import verify_net_in_out

    # the paper network: 5 ResNet50 U-Nets (n=1: 32x32 input to keep the test fast)
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=str(CONFIGS / "inference.json"),
        n=1,
        bundle_root=str(BUNDLE),
    )


def test_ckpt_export_of_the_trained_model(trained):
    from monai.bundle import ckpt_export

    ts = trained / "model.ts"
    ckpt_export(
        net_id="network_def",
        filepath=str(ts),
        ckpt_file=str(trained / "models" / "model.pt"),
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=[str(CONFIGS / "inference.json"), str(CONFIGS / "cpu_small.json")],
        bundle_root=str(BUNDLE),
        features=FEATURES,
    )
    scripted = torch.jit.load(str(ts)).eval()
    eager = _eager(trained / "models" / "model.pt")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out = scripted(x)
        assert out.shape == (1, 10, 64, 64)
        assert torch.allclose(out, eager(x), atol=1e-5)
