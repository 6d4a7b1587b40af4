"""Workflow steps of the calibrated-ensemble bundles: cross-validation folds and vote prediction."""

from __future__ import annotations

import pytest
import torch

from monai_lexu.engines.calibrated_ensemble import fold_cases, predict_votes


def test_fold_cases_by_key_or_index():
    cases = [{"id": str(i)} for i in range(7)]
    assert [c["id"] for c in fold_cases(cases, 1, 3)] == ["0", "2", "3", "5", "6"]
    assert [c["id"] for c in fold_cases(cases, 1, 3, held_out=True)] == ["1", "4"]
    assert fold_cases(cases, -1, 3) == cases and fold_cases(cases, -1, 3, held_out=True) == []
    keyed = [{"id": "a", "fold": 2}, {"id": "b", "fold": 0}]
    assert fold_cases(keyed, 2, 3, held_out=True) == [keyed[0]]
    with pytest.raises(ValueError, match=r"fold must be in \[0, num_folds=3\) or -1"):
        fold_cases(cases, 3, 3)


def test_predict_votes_thresholds_the_sigmoid_of_each_head():
    class Heads(torch.nn.Module):
        def forward(self, x):
            return torch.cat([x, -x], dim=1)

    x = torch.tensor([[[[-1.0, 0.0, 2.0]]]])
    votes = predict_votes(Heads(), x, num_heads=2)
    assert votes.shape == (1, 2, 1, 1, 3)
    assert votes[0, :, 0, 0].tolist() == [[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]


def test_evaluate_heatmaps_union_intersection_of_the_members_masks(tmp_path):
    """Table 1 uses the members' masks (weights 1/K) for every method: the calibrated h (sum a = 0.9 < 0.99 here)
    would have no intersection voxel; the members' intersection (every member votes) does."""
    from monai_lexu.engines.calibrated_ensemble import evaluate_heatmaps

    class Heads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return self.scale * x

    net = Heads()
    ckpt = tmp_path / "model.pt"
    torch.save(net.state_dict(), ckpt)
    # 3 members, 1 structure, 4 pixels: votes [[1,1,1,0],[1,1,0,0],[1,0,0,0]]
    logits = torch.tensor([[1.0, 1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0], [1.0, -1.0, -1.0, -1.0]])
    raters = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])  # majority [1,1,0,0]
    case = {
        "id": "c0",
        "image": logits.reshape(3, 1, 4),
        "raters": raters.reshape(3, 1, 1, 4),
        "rater_valid": torch.ones(3, dtype=torch.bool),
        "soft_label": raters.mean(0).reshape(1, 1, 4),
    }
    methods = [
        {
            "name": "calibrated",
            "network": net,
            "checkpoint": str(ckpt),
            "num_heads": 3,
            "coefficients": [[0.3, 0.3, 0.3]],
        }
    ]
    summary = evaluate_heatmaps(methods, [case], lambda d: d, ["s"], tmp_path / "out")
    row = summary["methods"]["calibrated"]["structures"]["s"]
    assert row["union_sensitivity"] == pytest.approx(1.0)  # union [1,1,1,0] covers the majority [1,1,0,0]
    assert row["intersection_precision"] == pytest.approx(1.0)  # intersection [1,0,0,0]: one pixel, foreground
    assert (tmp_path / "out" / "union_intersection.csv").is_file()
