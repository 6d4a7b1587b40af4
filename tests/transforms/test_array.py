from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_lexu.transforms import (
    FlattenRaters,
    FuseRaters,
    MapStructures,
    RandFuseRaters,
    RaterStats,
    UnflattenRaters,
)

RIGA = {"disc": "nonzero", "cup": [255]}
HECKTOR = {"GTVp": [1], "GTVn": [2]}


def test_map_structures_riga_hand_made():
    mask = np.array([[0, 150, 255], [150, 255, 0]], dtype=np.uint8)
    out = MapStructures(RIGA)(mask[None])
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[0], [[0, 1, 1], [1, 1, 0]])  # disc = any non-zero
    np.testing.assert_array_equal(out[1], [[0, 0, 1], [0, 1, 0]])  # cup = 255


def test_map_structures_hecktor_hand_made_3d_and_meta():
    mask = torch.tensor([[[0, 1], [2, 1]], [[2, 2], [0, 0]]])  # (2, 2, 2) volume, no channel
    mt = MetaTensor(mask, affine=torch.diag(torch.tensor([2.0, 2.0, 3.0, 1.0])))
    out = MapStructures(HECKTOR, spatial_dims=3)(mt)
    assert isinstance(out, MetaTensor) and out.shape == (2, 2, 2, 2) and out.dtype == torch.float32
    np.testing.assert_array_equal(out[0].numpy(), (mask == 1).numpy())
    np.testing.assert_array_equal(out[1].numpy(), (mask == 2).numpy())
    assert float(out.affine[2, 2]) == 3.0


def test_map_structures_rejects_unknown_values_naming_file():
    mt = MetaTensor(torch.tensor([[[0, 1, 3]]]), meta={"filename_or_obj": "/x/rater2.nii.gz"})
    with pytest.raises(ValueError, match=r"\[3\] in /x/rater2.nii.gz.*GTVp"):
        MapStructures(HECKTOR)(mt)
    # with a "nonzero" structure every value is allowed
    out = MapStructures({"any": "nonzero", "two": [2]})(np.array([[[0, 3, 2]]]))
    np.testing.assert_array_equal(out, [[[0, 1, 1]], [[0, 0, 1]]])


def test_map_structures_spatial_dims_disambiguates_depth_one():
    vol = np.zeros((1, 3, 4), dtype=np.int64)
    vol[0, 1, 2] = 1
    assert MapStructures(HECKTOR)(vol).shape == (2, 3, 4)  # leading 1 read as channel
    assert MapStructures(HECKTOR, spatial_dims=3)(vol).shape == (2, 1, 3, 4)
    with pytest.raises(ValueError, match="2 spatial dims"):
        MapStructures(HECKTOR, spatial_dims=2)(np.zeros((2, 3, 4)))


def _vote_raters() -> np.ndarray:
    """5 raters, 2 structures, 1x6 pixels; structure 0 pixel p has p votes, structure 1 has 5 - p votes."""
    counts = np.arange(6)
    r = np.zeros((5, 2, 1, 6), dtype=np.float32)
    for k in range(5):
        r[k, 0, 0] = k < counts
        r[k, 1, 0] = k < counts[::-1]
    return r


@pytest.mark.parametrize(
    "mode, expected0",
    [
        ("mean", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        ("majority", [0, 0, 0, 1, 1, 1]),  # > 2.5 of 5 votes
        ("union", [0, 1, 1, 1, 1, 1]),
        ("intersection", [0, 0, 0, 0, 0, 1]),
    ],
)
def test_fuse_raters_known_answers(mode, expected0):
    raters = _vote_raters()
    out = FuseRaters(mode)(raters)
    assert out.shape == (2, 1, 6) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], expected0, rtol=1e-6)
    np.testing.assert_allclose(out[1, 0], expected0[::-1], rtol=1e-6)


@pytest.mark.parametrize(
    "mode, expected0",
    [
        ("mean", [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]),
        ("majority", [0, 0, 0, 1, 1, 1]),  # 2 of 4 is a tie -> 0
        ("union", [0, 1, 1, 1, 1, 1]),
        ("intersection", [0, 0, 0, 0, 1, 1]),
    ],
)
def test_fuse_raters_ignores_invalid_rater_and_ties_go_to_background(mode, expected0):
    raters = torch.from_numpy(_vote_raters())
    raters[4] = 1.0  # the invalid (padded) rater holds garbage
    out = FuseRaters(mode)(raters, torch.tensor([True, True, True, True, False]))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out[0, 0].numpy(), expected0, rtol=1e-6)


def test_fuse_raters_errors():
    with pytest.raises(ValueError, match="no valid rater"):
        FuseRaters("union")(_vote_raters(), [False] * 5)
    with pytest.raises(ValueError, match="does not match"):
        FuseRaters("union")(_vote_raters(), [True] * 4)
    with pytest.raises(ValueError):
        FuseRaters("vote")


def test_random_fusion_reproducible_and_valid_only():
    raters = np.stack([np.full((2, 3, 3), k, dtype=np.float32) for k in range(5)])  # rater k is constant k
    valid = np.array([True, False, True, True, False])
    fuser = FuseRaters(mode="random")
    assert isinstance(fuser, RandFuseRaters)

    def draws(seed: int) -> list[int]:
        fuser.set_random_state(seed)
        out = []
        for _ in range(60):
            fused = fuser(raters, valid)
            assert fused.shape == (2, 3, 3) and np.all(fused == fused.flat[0])  # one rater for all structures
            out.append(int(fused.flat[0]))
        return out

    first = draws(7)
    assert draws(7) == first
    assert set(first) == {0, 2, 3}  # only valid raters, each of them drawn
    assert draws(8) != first
    # pickling keeps the class (DataLoader workers)
    assert isinstance(pickle.loads(pickle.dumps(fuser)), RandFuseRaters)
    assert not isinstance(FuseRaters("majority"), RandFuseRaters)


def test_staple_outlier_rejected():
    raters = np.zeros((5, 2, 10, 10), dtype=np.float32)
    raters[:4, 0, 2:7, 2:7] = 1.0  # four raters agree on a square
    raters[4, 0, 5:10, 5:10] = 1.0  # the outlier marks another square
    raters[:, 1] = 0.0  # structure 1 empty for everybody (ITK would give NaN)
    out = FuseRaters("staple")(raters)
    assert out.shape == (2, 10, 10) and out.dtype == np.float32
    consensus = raters[0, 0] == 1
    outlier_only = (raters[4, 0] == 1) & ~consensus
    assert np.all(out[0][consensus] == 1) and np.all(out[0][outlier_only] == 0)
    np.testing.assert_array_equal(out[0], raters[0, 0])
    np.testing.assert_array_equal(out[1], 0)
    # invalid raters are left out of STAPLE: with only the outlier valid the output is the outlier
    only = FuseRaters("staple")(raters, [False, False, False, False, True])
    np.testing.assert_array_equal(only[0], raters[4, 0])


def test_rater_stats_array_transform():
    soft, var = RaterStats()(_vote_raters())
    np.testing.assert_allclose(soft[0, 0], np.arange(6) / 5, rtol=1e-6)
    p = np.arange(6) / 5
    np.testing.assert_allclose(var[0, 0], p * (1 - p) * 5 / 4, rtol=1e-5, atol=1e-7)


def test_flatten_unflatten_array_round_trip():
    x = torch.arange(3 * 2 * 4 * 5, dtype=torch.float32).reshape(3, 2, 4, 5)
    mt = MetaTensor(x, affine=torch.diag(torch.tensor([2.0, 1.0, 1.0, 1.0])))
    flat = FlattenRaters()(mt)
    assert isinstance(flat, MetaTensor) and flat.shape == (6, 4, 5) and float(flat.affine[0, 0]) == 2.0
    torch.testing.assert_close(flat[1 * 2 + 1].as_tensor(), x[1, 1])  # channel r*L + l
    back = UnflattenRaters(num_raters=3)(flat)
    torch.testing.assert_close(back.as_tensor(), x)
    assert UnflattenRaters()(x.numpy().reshape(6, 4, 5), num_raters=2).shape == (2, 3, 4, 5)
    with pytest.raises(ValueError, match="into 4 raters"):
        UnflattenRaters(4)(flat)
