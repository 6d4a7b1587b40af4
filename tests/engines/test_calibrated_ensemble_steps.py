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
