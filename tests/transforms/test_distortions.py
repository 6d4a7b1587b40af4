"""Seeded distortions: deterministic under a seed, independent of order, of the documented strength."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_lexu.transforms import Distortd, FundusDistortion, VolumeDistortion, case_rng, choose_distorted


def _fundus(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((3, 64, 64), 100.0)
    img[0] += 60 * rng.random((64, 64))
    return img


def test_choose_distorted_exact_fraction_and_seeded():
    ids = [f"c{i:02d}" for i in range(30)]
    half = choose_distorted(ids, 0.5, seed=3)
    assert len(half) == 15 and half == choose_distorted(list(reversed(ids)), 0.5, seed=3)
    assert half != choose_distorted(ids, 0.5, seed=4)
    assert choose_distorted(ids, 0.0, 3) == [] and choose_distorted(ids, 1.0, 3) == sorted(ids)
    with pytest.raises(ValueError, match="fraction"):
        choose_distorted(ids, 1.5, 0)


def test_fundus_distortion_deterministic_under_a_seed():
    img = _fundus()
    a = FundusDistortion()(img, case_rng(7, "Magrabia_001"))
    b = FundusDistortion()(img, case_rng(7, "Magrabia_001"))
    c = FundusDistortion()(img, case_rng(8, "Magrabia_001"))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.shape == img.shape and a.min() >= 0 and a.max() <= 255
    # hue shift of 40-60 degrees moves the red-dominant image's hue: channel means change markedly
    assert np.abs(a.mean(axis=(1, 2)) - img.mean(axis=(1, 2))).max() > 5


def test_fundus_noise_strength_and_blur_kernel():
    img = np.full((3, 64, 64), 128.0)
    noisy = FundusDistortion(blur_kernel=1, hue_shift=(0, 0), sat_shift=(0, 0), val_shift=(0, 0))(
        img, np.random.default_rng(0)
    )
    assert 50 <= noisy.var() <= 62  # variance 50-60 on the 0-255 scale (clipping is far away)
    step = np.zeros((3, 64, 64))
    step[:, :, 32:] = 200.0
    blurred = FundusDistortion(noise_var=(0, 0), hue_shift=(0, 0), sat_shift=(0, 0), val_shift=(0, 0))(
        step, np.random.default_rng(0)
    )
    # a 21-wide box: the ramp spans 21 columns (values strictly between 0 and 200)
    assert int(((blurred[0, 10] > 1) & (blurred[0, 10] < 199)).sum()) == 20


def test_distortd_dictionary_selected_cases_and_meta():
    img = MetaTensor(torch.as_tensor(_fundus(), dtype=torch.float32), meta={"filename_or_obj": "x.png"})
    t = Distortd(keys="image", seed=5, selected=["a"])
    out_a = t({"id": "a", "image": img})
    out_a2 = t({"id": "a", "image": img})
    out_b = t({"id": "b", "image": img})
    assert out_a["distorted"] and not out_b["distorted"]
    assert isinstance(out_a["image"], MetaTensor) and out_a["image"].meta["filename_or_obj"] == "x.png"
    torch.testing.assert_close(out_a["image"], out_a2["image"])
    torch.testing.assert_close(out_b["image"], img)
    with pytest.raises(KeyError, match="case id"):
        t({"image": img})


def test_volume_distortion_deterministic_per_channel():
    rng = np.random.default_rng(1)
    vol = np.stack([rng.normal(0, 100, (16, 16, 8)), rng.gamma(2.0, 1.0, (16, 16, 8))])
    a = VolumeDistortion()(vol, case_rng(0, "P1"))
    np.testing.assert_array_equal(a, VolumeDistortion()(vol, case_rng(0, "P1")))
    assert a.shape == vol.shape and not np.allclose(a, vol)
    out = Distortd(keys="image", distortion="volume", fraction=1.0, seed=0)({"id": "P1", "image": vol})
    np.testing.assert_allclose(out["image"], a, rtol=1e-6)
