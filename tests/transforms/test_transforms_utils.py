from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_lexu.contract import validate_structures
from monai_lexu.transforms import map_structures, rater_statistics


def test_validate_structures_normalises_and_rejects():
    assert validate_structures({"disc": "nonzero", "cup": [255]}) == {"disc": "nonzero", "cup": [255]}
    assert validate_structures({"GTVp": 1, "GTVn": [2]}) == {"GTVp": [1], "GTVn": [2]}
    with pytest.raises(ValueError, match="non-empty mapping"):
        validate_structures({})
    with pytest.raises(ValueError, match="'cup'"):
        validate_structures({"cup": "all"})
    with pytest.raises(ValueError, match="non-empty list"):
        validate_structures({"cup": []})
    with pytest.raises(ValueError, match="non-integer"):
        validate_structures({"cup": [1.5]})


def test_map_structures_error_names_source_values_and_mapping():
    mask = np.array([[0, 1], [7, 9]])
    with pytest.raises(ValueError) as err:
        map_structures(mask, {"GTVp": [1], "GTVn": [2]}, source="/data/r1.nii.gz")
    msg = str(err.value)
    assert "/data/r1.nii.gz" in msg and "7, 9" in msg and "GTVp" in msg


def test_map_structures_nan_rejected_without_nonzero():
    with pytest.raises(ValueError, match="nan"):
        map_structures(np.array([[0.0, np.nan]]), {"a": [1]})


# three raters, one structure, two pixels: pixel 0 votes (1, 0, 1), pixel 1 votes (0, 0, 0)
R3 = np.array([[[[1.0, 0.0]]], [[[0.0, 0.0]]], [[[1.0, 0.0]]]], dtype=np.float32)  # (R=3, L=1, 1, 2)


def test_rater_statistics_known_answer_unbatched():
    soft, var = rater_statistics(R3)
    assert isinstance(soft, np.ndarray) and soft.dtype == np.float32 and soft.shape == (1, 1, 2)
    np.testing.assert_allclose(soft[0, 0], [2 / 3, 0.0], rtol=1e-6)
    # deviations 1/3, -2/3, 1/3 -> sum of squares 6/9, ddof=1 -> 1/3
    np.testing.assert_allclose(var[0, 0], [1 / 3, 0.0], rtol=1e-6)
    _, var_b = rater_statistics(R3, unbiased=False)
    np.testing.assert_allclose(var_b[0, 0], [2 / 9, 0.0], rtol=1e-6)


def test_rater_statistics_ignores_invalid_raters_and_one_rater_gives_zero_var():
    raters = torch.from_numpy(np.concatenate([R3, np.ones_like(R3[:1])]))  # 4th rater: padding full of ones
    soft, var = rater_statistics(raters, torch.tensor([True, True, True, False]))
    np.testing.assert_allclose(soft[0, 0].numpy(), [2 / 3, 0.0], rtol=1e-6)
    np.testing.assert_allclose(var[0, 0].numpy(), [1 / 3, 0.0], rtol=1e-6)
    soft1, var1 = rater_statistics(raters, [False, False, False, True])
    np.testing.assert_array_equal(soft1[0, 0].numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(var1[0, 0].numpy(), [0.0, 0.0])


def test_rater_statistics_batched_with_padding():
    padded = np.concatenate([R3[:1], np.ones_like(R3[:2])])  # sample 2: one real rater + 2 padded (garbage ones)
    batch = torch.from_numpy(np.stack([R3, padded]))  # (B=2, R=3, L=1, 1, 2)
    valid = torch.tensor([[True, True, True], [True, False, False]])
    soft, var = rater_statistics(batch, valid)
    assert soft.shape == (2, 1, 1, 2)
    np.testing.assert_allclose(soft[:, 0, 0].numpy(), [[2 / 3, 0.0], [1.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(var[:, 0, 0].numpy(), [[1 / 3, 0.0], [0.0, 0.0]], rtol=1e-6)


def test_rater_statistics_matches_torch_var_on_random_masks():
    g = torch.Generator().manual_seed(0)
    raters = (torch.rand(5, 2, 6, 7, 3, generator=g) > 0.5).float()
    soft, var = rater_statistics(raters)
    torch.testing.assert_close(soft, raters.mean(0))
    torch.testing.assert_close(var, raters.var(0, unbiased=True))
    _, var_b = rater_statistics(raters, unbiased=False)
    torch.testing.assert_close(var_b, raters.var(0, unbiased=False))


def test_rater_statistics_keeps_metatensor_meta():
    mt = MetaTensor(torch.from_numpy(R3), affine=torch.diag(torch.tensor([2.0, 3.0, 1.0, 1.0])))
    soft, var = rater_statistics(mt)
    assert isinstance(soft, MetaTensor) and isinstance(var, MetaTensor)
    assert float(soft.affine[0, 0]) == 2.0 and float(var.affine[1, 1]) == 3.0


def test_rater_statistics_errors():
    with pytest.raises(ValueError, match=r"\(4,\)"):
        rater_statistics(R3, np.ones(4, dtype=bool))
    with pytest.raises(ValueError, match="no valid rater"):
        rater_statistics(R3, [False, False, False])
    with pytest.raises(ValueError, match=r"batch items \[1\]"):
        rater_statistics(np.stack([R3, R3]), np.array([[True, False, False], [False, False, False]]))
