"""The interaction loop and the three-stage training step on a tiny network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_lexu.interactive import (
    ABLATIONS,
    clicks_to_tensors,
    meduhip_train_step,
    rater_subset_target,
    run_interaction,
)
from monai_lexu.networks import MedUHIPNet


def _net() -> MedUHIPNet:
    torch.manual_seed(0)
    return MedUHIPNet(features=(8, 16), embed_dim=16, num_samples=6, num_components=3, sample_dim=4, decoder_depth=1)


def _case():
    raters = np.zeros((3, 16, 16), dtype=np.float32)
    raters[0, 4:10, 4:10] = 1
    raters[1, 4:12, 4:12] = 1
    raters[2, 5:11, 5:11] = 1
    image = torch.rand(3, 16, 16)
    return image, raters


def test_rater_subset_target_is_a_majority_of_the_chosen_raters():
    _, raters = _case()
    t, idx = rater_subset_target(raters, 2, np.random.default_rng(0))
    assert len(idx) == 2
    assert np.array_equal(t, raters[idx].min(0))  # two raters: strictly more than half = both
    t, idx = rater_subset_target(raters, 3, np.random.default_rng(0))
    assert np.array_equal(t, (raters.sum(0) >= 2).astype(np.float32))
    sizes = {len(rater_subset_target(raters, None, np.random.default_rng(s))[1]) for s in range(30)}
    assert sizes == {1, 2, 3}
    with pytest.raises(ValueError, match="no valid rater"):
        rater_subset_target(raters, 1, np.random.default_rng(0), valid=np.zeros(3, bool))


def test_clicks_to_tensors_pads():
    pts, lab = clicks_to_tensors([[(1, 2, 1)], [(3, 4, 0), (5, 6, 1)]])
    assert pts.tolist() == [[[1.0, 2.0], [0.0, 0.0]], [[3.0, 4.0], [5.0, 6.0]]]
    assert lab.tolist() == [[1.0, -1.0], [0.0, 1.0]]
    assert clicks_to_tensors([[], []]) == (None, None)


@pytest.mark.parametrize("strategy", ["meduhip", "random", "disagreement", "last_wrong"])
def test_run_interaction_records_every_step(strategy):
    image, raters = _case()
    target = raters[1]
    net = _net()
    rec = run_interaction(net, image, target, raters, strategy, num_interactions=3, rng=0, keep_maps=True)
    assert len(rec.dice) == 4 and len(rec.masks) == 4 and len(rec.candidates) == 3 and len(rec.weights) == 4
    assert all(0.0 <= d <= 1.0 for d in rec.dice)
    assert len(rec.clicks) == 3 and len({(r, c) for r, c, _ in rec.clicks}) == 3  # never the same pixel twice
    assert all(lab == target[r, c] for r, c, lab in rec.clicks)  # labelled by the target
    # Dice of the recorded P_soft to the target is what the record says
    from monai_lexu.metrics.heatmap import binary_dice

    assert np.isclose(binary_dice(rec.masks[2][None], target[None])[0], rec.dice[2])
    if strategy == "meduhip":
        assert all(s is not None for s in rec.selected)
        assert rec.weights[1] != rec.weights[0]  # the Weight Network moved pi
        assert np.isclose(sum(rec.weights[3]), 1.0, atol=1e-5)
    else:
        assert rec.selected == [None] * 3 and rec.weights[3] == rec.weights[0]
    again = run_interaction(net, image, target, raters, strategy, num_interactions=3, rng=0)
    assert again.dice == rec.dice and again.clicks == rec.clicks  # reproducible


def test_ablation_switches():
    image, raters = _case()
    net = _net()
    sampling = run_interaction(net, image, raters[0], raters, "meduhip", 2, use_mean_variance=False, use_weights=False)
    assert sampling.weights[2] == sampling.weights[0]
    assert set(ABLATIONS) == {"sampling", "mean_variance", "weight", "full"}


def test_train_step_updates_each_group_and_learns():
    image, raters = _case()
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    before = {k: [p.detach().clone() for p in g] for k, g in net.parameter_groups().items()}
    rng = np.random.default_rng(0)
    batch_img, batch_rat = image[None].repeat(2, 1, 1, 1), torch.as_tensor(raters)[None].repeat(2, 1, 1, 1)
    first = meduhip_train_step(net, opt, batch_img, batch_rat, rounds=2, rng=rng)
    for name, params in net.parameter_groups().items():
        assert any(not torch.equal(a, b) for a, b in zip(params, before[name])), name
    assert set(first) == {"loss", "loss_seg", "loss_mvp", "loss_weight"} and np.isfinite(first["loss"])
    for _ in range(15):
        last = meduhip_train_step(net, opt, batch_img, batch_rat, rounds=2, rng=rng)
    assert last["loss_seg"] < first["loss_seg"]
    assert all(p.requires_grad for p in net.parameters())  # the stages unfreeze what they froze


def test_sampling_diagnostics_sees_whether_the_samples_matter():
    from monai_lexu.interactive import sampling_diagnostics

    image, _ = _case()
    net = _net()
    d = sampling_diagnostics(net, [image, image])
    assert d["mean"] == sorted(d["mean"]) and len(d["var"]) == 3 and min(d["var"]) > 0
    assert 0 <= d["disagreement_fraction"] <= 1 and 0 <= d["pairwise_dice"] <= 1 and 1 <= d["num_candidates"] <= 4
    # a Segmentation Net that ignores the samples: the Eq. 1 convolution sees zero sample channels
    with torch.no_grad():
        net.combine.conv.weight[:, net.embed_dim :] = 0
    d = sampling_diagnostics(net, [image])
    assert d["extreme_components_dice"] == 1.0 and d["area_ratio"] == 1.0 and d["num_candidates"] == 1
    assert d["disagreement_fraction"] == 0.0 and d["pairwise_dice"] == 1.0
