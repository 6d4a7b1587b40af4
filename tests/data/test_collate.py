from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor

from monai_lexu.data.collate import pad_rater_collate
from monai_lexu.transforms import rater_statistics


def _sample(num_raters: int, idx: int) -> dict:
    g = torch.Generator().manual_seed(idx)
    raters = (torch.rand(num_raters, 2, 4, 4, generator=g) > 0.5).float()
    affine = torch.diag(torch.tensor([1.0 + idx, 1.0, 1.0, 1.0], dtype=torch.float64))
    return {
        "id": f"case{idx}",
        "image": MetaTensor(torch.rand(1, 4, 4, generator=g), affine=affine, meta={"filename_or_obj": f"i{idx}.png"}),
        "raters": MetaTensor(raters, affine=affine, meta={"filename_or_obj": f"r{idx}.png"}),
        "rater_valid": torch.ones(num_raters, dtype=torch.bool),
    }


def test_pad_rater_collate_2_3_1_raters():
    samples = [_sample(2, 0), _sample(3, 1), _sample(1, 2)]
    batch = pad_rater_collate(samples)
    raters, valid = batch["raters"], batch["rater_valid"]
    assert isinstance(raters, MetaTensor) and raters.shape == (3, 3, 2, 4, 4)
    assert valid.dtype == torch.bool
    assert valid.tolist() == [[True, True, False], [True, True, True], [True, False, False]]
    for b, s in enumerate(samples):
        n = s["raters"].shape[0]
        torch.testing.assert_close(raters[b, :n].as_tensor(), s["raters"].as_tensor())
        assert float(raters[b, n:].abs().sum()) == 0.0  # zero padding masks
        assert s["raters"].shape[0] == n and s["rater_valid"].shape == (n,)  # inputs not modified
    # meta and other keys collate as in MONAI
    assert batch["id"] == ["case0", "case1", "case2"]
    assert list(raters.meta["filename_or_obj"]) == ["r0.png", "r1.png", "r2.png"]
    assert raters.affine.shape == (3, 4, 4) and float(raters.affine[2, 0, 0]) == 3.0
    assert batch["image"].shape == (3, 1, 4, 4)
    # statistics on the padded batch equal the per-sample ones
    soft, var = rater_statistics(raters, valid)
    for b, s in enumerate(samples):
        s_soft, s_var = rater_statistics(s["raters"])
        torch.testing.assert_close(soft[b].as_tensor(), s_soft.as_tensor())
        torch.testing.assert_close(var[b].as_tensor(), s_var.as_tensor())


def test_pad_rater_collate_keeps_existing_invalid_flags_and_adds_missing_key():
    a = {"raters": np.ones((2, 1, 2, 2), np.float32), "rater_valid": np.array([True, False])}
    b = {"raters": np.ones((3, 1, 2, 2), np.float32)}  # no validity key: all valid
    batch = pad_rater_collate([a, b])
    assert batch["raters"].shape == (2, 3, 1, 2, 2)
    assert batch["rater_valid"].tolist() == [[True, False, False], [True, True, True]]
    assert float(batch["raters"][0, 2].sum()) == 0.0 and float(batch["raters"][0, 1].sum()) == 4.0
    assert "rater_valid" not in b


def test_pad_rater_collate_lists_of_dicts_like_num_samples():
    batch = pad_rater_collate([[_sample(2, 0), _sample(2, 1)], [_sample(1, 2), _sample(1, 3)]])
    assert batch["raters"].shape == (4, 2, 2, 4, 4)
    assert batch["rater_valid"].tolist() == [[True, True], [True, True], [True, False], [True, False]]


def test_pad_rater_collate_custom_keys_and_dataloader():
    data = [{"r": torch.ones(n, 1, 3, 3), "v": torch.ones(n, dtype=torch.bool)} for n in (1, 4)]

    def collate(batch):
        return pad_rater_collate(batch, raters_key="r", valid_key="v")

    (batch,) = list(DataLoader(Dataset(data), batch_size=2, collate_fn=collate))
    assert batch["r"].shape == (2, 4, 1, 3, 3)
    assert batch["v"].sum(dim=1).tolist() == [1, 4]


def test_pad_rater_collate_errors():
    bad = {"raters": torch.ones(2, 1, 2, 2), "rater_valid": torch.ones(3, dtype=torch.bool)}
    with pytest.raises(ValueError, match="batch item 1.*3 entries.*2 raters"):
        pad_rater_collate([_sample(1, 0), bad])
    with pytest.raises(RuntimeError, match="raters"):  # structures / spatial sizes must still agree
        pad_rater_collate([_sample(1, 0), {**_sample(1, 1), "raters": torch.ones(1, 3, 4, 4)}])


def test_rater_names_are_padded_with_the_raters():
    batch = [
        {"raters": torch.ones(2, 1, 2, 2), "rater_names": ["rater1", "rater3"]},
        {"raters": torch.ones(3, 1, 2, 2), "rater_names": ["rater1", "rater2", "rater4"]},
    ]
    out = pad_rater_collate(batch)
    assert out["raters"].shape == (2, 3, 1, 2, 2)
    # list_data_collate transposes lists of strings: one tuple per rater position
    assert [list(x) for x in out["rater_names"]] == [["rater1", "rater1"], ["rater3", "rater2"], ["", "rater4"]]
    assert batch[0]["rater_names"] == ["rater1", "rater3"]  # input untouched
