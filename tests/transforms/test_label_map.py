"""Tests for monai_lexu.inferers.labelmap."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from monai_lexu.transforms import ProbToLabelMap, ProbToLabelMapd


def test_known_answer():
    # 4 voxels: (GTVp, GTVn) = (0.9, 0.2) -> 1; (0.6, 0.7) -> 2; (0.3, 0.4) -> 0; (0.5, 0.5) tie -> 1
    prob = torch.tensor([[0.9, 0.6, 0.3, 0.5], [0.2, 0.7, 0.4, 0.5]])
    out = ProbToLabelMap((1, 2))(prob)
    assert out.dtype == torch.uint8 and out.tolist() == [[1, 2, 0, 1]]


def test_dict_keeps_meta_and_checks_channels():
    affine = torch.diag(torch.tensor([2.0, 2.0, 3.0, 1.0]))
    prob = MetaTensor(torch.rand(2, 3, 3, 3), affine=affine)
    d = ProbToLabelMapd("prob", (1, 2))({"prob": prob})
    assert isinstance(d["label_map"], MetaTensor) and torch.equal(d["label_map"].affine, affine)
    assert d["label_map"].shape == (1, 3, 3, 3)
    with pytest.raises(ValueError, match="3 probability channels"):
        ProbToLabelMap((1, 2))(torch.rand(3, 2, 2))
