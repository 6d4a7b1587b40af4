"""Calibrated ensembles: the least-squares fit (Eq. 2) with exact known solutions, the heatmap (Eq. 3), inference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from monai_lexu.inferers.calibrated import (
    CalibratedEnsembleInferer,
    VotePatternCounts,
    calibrated_heatmap,
    fit_ensemble_coefficients,
    heads_to_votes,
    heatmap_to_prob_unc,
    load_coefficients,
    save_coefficients,
)


def _nested_votes(counts: dict[str, int]) -> np.ndarray:
    """Votes (K, N) with ``counts[pattern]`` voxels of every pattern string (member 0 first)."""
    cols = [np.array([int(c) for c in p]) for p, n in counts.items() for _ in range(n)]
    return np.stack(cols, axis=1)


def test_fit_binary_target_exact_solution():
    # nested shells of 3 members: 100: 10 voxels, 4 fg; 110: 10 voxels, 7 fg; 111: 20 voxels, 19 fg; 000: 50, 1 fg
    votes = _nested_votes({"100": 10, "110": 10, "111": 20, "000": 50})
    target = np.zeros(votes.shape[1])
    starts = {"100": 0, "110": 10, "111": 20, "000": 40}
    for p, k in {"100": 4, "110": 7, "111": 19, "000": 1}.items():
        target[starts[p] : starts[p] + k] = 1
    a = fit_ensemble_coefficients(votes, target)
    # three patterns, three unknowns: a0 = 0.4, a0 + a1 = 0.7, a0 + a1 + a2 = 0.95 (exact, whatever the row weights)
    np.testing.assert_allclose(a, [0.4, 0.3, 0.25], atol=1e-12)
    h = calibrated_heatmap(votes, a).numpy()
    np.testing.assert_allclose(h[:10], 0.4)
    np.testing.assert_allclose(h[40:], 0.0)  # the all-zero pattern is excluded: h = 0 there by construction


def test_fit_soft_target_and_count_weighting():
    # two members, patterns 10 (n=2), 01 (n=1), 11 (n=1) with soft targets: overdetermined, rows weighted by n_b
    votes = _nested_votes({"10": 2, "01": 1, "11": 1})
    target = np.array([0.2, 0.4, 0.5, 0.9])  # pattern means 0.3, 0.5, 0.9
    a = fit_ensemble_coefficients(votes, target)
    # minimise sum_b n_b^2 (b.a - mean_b)^2: rows (2*[1,0] | 0.6), (1*[0,1] | 0.5), (1*[1,1] | 0.9)
    rows = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    rhs = np.array([0.6, 0.5, 0.9])
    expected = np.linalg.solve(rows.T @ rows, rows.T @ rhs)
    np.testing.assert_allclose(a, expected, atol=1e-12)
    # by hand: normal equations [[5, 1], [1, 2]] a = [2.1, 1.4] -> a = (0.311..., 0.544...)
    np.testing.assert_allclose(a, [2.8 / 9, 4.9 / 9], atol=1e-12)
    # a weight of 2 on every voxel scales rows and targets alike: same a
    np.testing.assert_allclose(fit_ensemble_coefficients(votes, target, weights=np.full(4, 2.0)), a, atol=1e-12)


def test_pattern_counts_pool_over_images():
    g = np.random.default_rng(0)
    votes = g.random((4, 500)) > 0.5
    target = g.random(500)
    pooled = VotePatternCounts(4).update(votes[:, :200], target[:200]).update(votes[:, 200:], target[200:]).solve()
    np.testing.assert_allclose(pooled, fit_ensemble_coefficients(votes, target), atol=1e-12)
    rows = VotePatternCounts(4).update(votes, target).pattern_table(pooled)
    assert sum(r["voxels"] for r in rows) == 500 and "heatmap" in rows[0]


def test_fit_errors():
    with pytest.raises(ValueError, match="all-zero|non-empty vote pattern"):
        fit_ensemble_coefficients(np.zeros((3, 10)), np.zeros(10))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_ensemble_coefficients(np.ones((2, 3)), np.array([0.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match="target has 4 voxels"):
        fit_ensemble_coefficients(np.ones((2, 3)), np.zeros(4))


def test_heatmap_structures_and_contract():
    votes = torch.zeros(1, 2, 2, 3)  # (B, K, L, S)
    votes[0, 0, :, :2] = 1
    votes[0, 1, :, :1] = 1
    a = np.array([[0.5, 0.7], [0.2, 0.2]])  # (L, K)
    h = calibrated_heatmap(votes, a)
    np.testing.assert_allclose(h[0, 0].numpy(), [1.2, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(h[0, 1].numpy(), [0.4, 0.2, 0.0], atol=1e-6)
    pu = heatmap_to_prob_unc(h)
    np.testing.assert_allclose(pu[0, 0].numpy(), [1.0, 0.5, 0.0], atol=1e-6)  # clipped
    np.testing.assert_allclose(pu[0, 2].numpy(), [0.0, 0.25, 0.0], atol=1e-6)  # p (1 - p)


def test_inferer_and_json_round_trip(tmp_path):
    class TwoHeads(torch.nn.Module):
        def forward(self, x):
            return torch.cat([x, x - 1.0], dim=1)  # head 0 votes where x >= 0, head 1 where x >= 1

    x = torch.tensor([[[-1.0, 0.5, 2.0]]])
    path = save_coefficients(tmp_path / "calibration.json", [[0.3, 0.6]], ["s"], target="soft")
    assert json.loads(path.read_text())["structures"] == ["s"]
    inferer = CalibratedEnsembleInferer(path, num_heads=2)
    out = inferer(x, TwoHeads())
    np.testing.assert_allclose(out[0, 0].numpy(), [0.0, 0.3, 0.9], atol=1e-6)
    np.testing.assert_allclose(out[0, 1].numpy(), [0.0, 0.21, 0.09], atol=1e-6)
    votes = CalibratedEnsembleInferer([[0.3, 0.6]], 2, output="votes")(x, TwoHeads())
    np.testing.assert_array_equal(votes[0].numpy(), [[0, 1, 1], [0, 0, 1]])
    np.testing.assert_array_equal(heads_to_votes(torch.cat([x, x - 1], 1), 2)[0, :, 0].numpy(), votes[0].numpy())
    with pytest.raises(ValueError, match="coefficients for 2 members, the network has 3 heads"):
        load_coefficients(path, num_heads=3)
    with pytest.raises(FileNotFoundError, match="no calibration coefficients"):
        load_coefficients(tmp_path / "missing.json")


def test_mc_dropout_passes_as_members():
    from monai_lexu.inferers import equal_coefficients

    net = torch.nn.Sequential(torch.nn.Dropout(0.5)).eval()
    x = torch.ones(1, 1, 200)
    torch.manual_seed(0)
    out = CalibratedEnsembleInferer(equal_coefficients(7, 1), 7, output="heatmap", mc_samples=7)(x, net)
    # each pass keeps an element (logit 2 >= 0: vote) with probability 1/2 and zeroes it (logit 0: also a vote)
    assert out.shape == (1, 1, 200) and torch.allclose(out, torch.ones_like(out))
    out = CalibratedEnsembleInferer(equal_coefficients(7, 1), 7, output="heatmap", mc_samples=7)(x - 2.0, net)
    values = set(torch.round(out * 7).flatten().tolist())  # votes where dropout zeroed the -1 logit: k / 7
    assert len(values) > 3 and not net.training
