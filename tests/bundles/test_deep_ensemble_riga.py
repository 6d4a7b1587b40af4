"""End-to-end test of the deep_ensemble_riga bundle: its real configs, a few iterations on small synthetic data.

Runs train.json (+ the CPU override) on an empty dataset_dir (synthetic RIGA-like fallback), then evaluate.json and
inference.json, and the model-zoo checks verify_metadata (offline, shipped schema), verify_net_in_out and ckpt_export.
The Deep-Ensembles specifics are checked on values: five differently seeded members in one checkpoint, each member
receiving exactly the gradient of its own BCE, and the evaluator's uncertainty being the variance over the members.
The mechanics of the model-zoo, metric-table and inference-map checks come from the ``bundle_checks`` fixture of
tests/bundles/conftest.py.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "deep_ensemble_riga"
CONFIGS = BUNDLE / "configs"
FEATURES = [8, 16, 32, 64]
SIZE = 32  # network input size (the synthetic images are 64x64): five members train 5x slower than one network


def _overrides(tmp: Path) -> dict:
    return {
        "bundle_root": str(BUNDLE),
        "dataset_dir": str(tmp / "data"),
        "make_synthetic": True,  # a synthetic set in this fresh folder
        "ckpt_dir": str(tmp / "models"),
        "output_dir": str(tmp / "eval"),
        "synthetic_data": {"num_per_source": {"BinRushed": 5, "MESSIDOR": 5, "Magrabia": 4}, "size": 64, "seed": 3},
        "image_size": [SIZE, SIZE],
        "features": FEATURES,
        "epochs": 2,
        "batch_size": 4,
        "val_interval": 1,
    }


def _parser(bundle_checks, files: list[str], **overrides):
    return bundle_checks.parser([CONFIGS / f for f in files], bundle_root=str(BUNDLE), **overrides)


def _member():
    from monai_lexu.networks import MultiHeadUNet

    return partial(MultiHeadUNet, 2, 3, 2, backbone="plain", heads="last", features=FEATURES)


def _ensemble() -> torch.nn.Module:
    from monai_lexu.networks import DeepEnsemble

    return DeepEnsemble(_member(), num_members=5, seed=None).eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bundle_checks):
    return bundle_checks.train_small(BUNDLE, tmp_path_factory, _overrides)


def test_checkpoint_holds_five_different_members(trained):
    datalist = json.loads((trained / "data" / "datalist.json").read_text())
    assert [len(datalist[s]) for s in ("training", "validation", "test")] == [8, 2, 4]
    state = torch.load(trained / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert sorted({k.split(".")[1] for k in state}) == ["0", "1", "2", "3", "4"]
    # every member is a complete single-head U-Net (same keys), and no two members have the same weights
    keys = [sorted(k.split(".", 2)[2] for k in state if k.startswith(f"members.{m}.")) for m in range(5)]
    assert all(k == keys[0] for k in keys) and "heads.0.weight" in keys[0] and "heads.1.weight" not in keys[0]
    heads = [state[f"members.{m}.heads.0.weight"] for m in range(5)]
    encoders = [state[f"members.{m}.encoder.levels.0.conv_0.conv.weight"] for m in range(5)]
    for i in range(5):
        for j in range(i + 1, 5):
            assert not torch.allclose(heads[i], heads[j]) and not torch.allclose(encoders[i], encoders[j])


def test_members_are_seeded_and_trained_independently(bundle_checks):
    import torch.nn.functional as F

    from monai_lexu.networks import MultiHeadUNet

    parser = _parser(bundle_checks, ["train.json", "cpu_small.json"], features=FEATURES, num_members=3)
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


def test_evaluate_uncertainty_is_the_variance_over_members(trained, bundle_checks):
    out = bundle_checks.run_riga_evaluation(BUNDLE, _overrides(trained))
    maps = sorted((out / "metrics_test_maps").glob("*.npz"))
    assert len(maps) == 4  # save_maps: 4

    # recompute one image's maps member by member: mean and unbiased variance of the 5 members' sigmoids
    case = np.load(maps[0])
    net = _ensemble()
    net.load_state_dict(torch.load(trained / "models" / "model.pt", map_location="cpu", weights_only=True))
    x = torch.from_numpy(case["image"])[None]
    assert x.shape == (1, 3, SIZE, SIZE)
    with torch.no_grad():
        logits = [member(x) for member in net.members]
        assert torch.equal(net(x), torch.cat(logits, dim=1))  # the ensemble's output: members side by side
    probs = torch.sigmoid(torch.cat(logits))  # (5, 2, SIZE, SIZE): one row per member
    np.testing.assert_allclose(case["prob"], probs.mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(case["unc"], probs.var(0, unbiased=True).numpy(), atol=1e-5)
    assert float(probs.var(0).max()) > 1e-4  # the members disagree somewhere


def test_inference_writes_probability_and_uncertainty_in_the_input_geometry(trained, bundle_checks):
    # variance of 5 members' probabilities in [0, 1]: at most K/(4(K-1)) = 5/16
    bundle_checks.check_riga_inference(BUNDLE, trained, _overrides(trained), unc_max=5.0 / 16.0)


def test_verify_metadata_offline(bundle_checks):
    meta = bundle_checks.verify_metadata(BUNDLE)
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 10  # 5 members x 2 structures


def test_verify_net_in_out_default_network(bundle_checks):
    # the paper network: 5 ResNet50 U-Nets (n=1: 32x32 input to keep the test fast)
    bundle_checks.verify_net_in_out(BUNDLE, n=1)


def test_ckpt_export_of_the_trained_model(trained, bundle_checks):
    bundle_checks.assert_export_equals_eager(
        BUNDLE,
        trained / "models" / "model.pt",
        trained / "model.ts",
        _ensemble(),
        input_shape=(1, 3, 64, 64),
        configs=("inference.json", "cpu_small.json"),
        output_shape=(1, 10, 64, 64),
        features=FEATURES,
    )


@pytest.mark.docs
def test_docs_commands_run_in_order(tmp_path, doc_commands, doc_raw_data):
    """Every command block of this bundle's docs/README.md, in order, CPU-sized (see tests/doc_commands.py)."""
    skipped = doc_commands.run_bundle_doc("deep_ensemble_riga", tmp_path, doc_raw_data)
    assert all("MONAI Label" in reason for _, reason in skipped)  # run by tests/label against a real server
