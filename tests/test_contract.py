"""The shared contract primitives: known answers, refusals, and that importing them stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from monai_lexu.contract import (
    NONZERO,
    binary_entropy,
    check_unit_range,
    heads_to_prob_unc,
    split_heads,
    split_prob_unc,
    validate_structures,
)


def test_split_heads_is_head_major():
    logits = torch.arange(2 * 6 * 1 * 1, dtype=torch.float32).reshape(2, 6, 1, 1)  # K=3 heads x L=2 structures
    heads = split_heads(logits, 3)
    assert heads.shape == (2, 3, 2, 1, 1)
    assert heads[0, :, 0, 0, 0].tolist() == [0.0, 2.0, 4.0]  # structure 0 of heads 0, 1, 2 = channels 0, 2, 4
    assert heads[1, 2, 1, 0, 0].item() == 11.0


@pytest.mark.parametrize("shape, heads", [((1, 5, 2, 2), 2), ((5, 4), 2), ((1, 4, 2), 0)])
def test_split_heads_refuses_bad_shapes(shape, heads):
    with pytest.raises(ValueError):
        split_heads(torch.zeros(shape), heads)


def test_heads_to_prob_unc_known_answer():
    # two heads, one structure, one pixel: sigmoid -> 0.5 and sigmoid(log 3) = 0.75
    logits = torch.tensor([0.0, float(torch.log(torch.tensor(3.0)))]).reshape(1, 2, 1, 1)
    out = heads_to_prob_unc(logits, 2)
    assert out.shape == (1, 2, 1, 1)
    assert out[0, 0].item() == pytest.approx(0.625)
    assert out[0, 1].item() == pytest.approx(0.03125)  # unbiased variance of {0.5, 0.75}
    assert heads_to_prob_unc(logits, 2, unbiased=False)[0, 1].item() == pytest.approx(0.015625)
    assert heads_to_prob_unc(logits, 2, skip_first=1)[0, :, 0, 0].tolist() == pytest.approx([0.75, 0.0])
    entropy = heads_to_prob_unc(logits, 2, uncertainty="entropy")[0, 1].item()
    assert entropy == pytest.approx(float(binary_entropy(torch.tensor(0.625))))


@pytest.mark.parametrize("kwargs", [{"skip_first": 2}, {"uncertainty": "std"}])
def test_heads_to_prob_unc_refuses(kwargs):
    with pytest.raises(ValueError):
        heads_to_prob_unc(torch.zeros(1, 4, 2, 2), 2, **kwargs)


def test_binary_entropy_known_answers():
    h = binary_entropy(torch.tensor([0.0, 0.5, 1.0, 0.25]))
    assert h.tolist() == pytest.approx([0.0, 1.0, 0.0, 0.8112781])


def test_check_unit_range_tolerance_and_message():
    check_unit_range(torch.tensor([0.0, 1.0 + 1e-7, float("nan")]), "p")  # round-off and NaN pass
    with pytest.raises(ValueError, match=r"`y_pred` must hold probabilities in \[0, 1\].*logits"):
        check_unit_range(torch.tensor([-2.0, 3.0]), "y_pred")
    with pytest.raises(ValueError):
        check_unit_range(torch.tensor([1.0 + 1e-7]), "p", tol=0.0)


def test_split_prob_unc():
    prob, unc = split_prob_unc(torch.arange(4.0).reshape(4, 1))
    assert prob.flatten().tolist() == [0.0, 1.0] and unc.flatten().tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match="even channel count"):
        split_prob_unc(torch.zeros(3, 2))


def test_validate_structures_normalises_and_names_the_source():
    assert validate_structures({"disc": "NonZero", "cup": 255, "rim": [1.0, 2]}) == {
        "disc": NONZERO,
        "cup": [255],
        "rim": [1, 2],
    }
    with pytest.raises(ValueError, match="datalist.json: structure 'cup' has a non-integer"):
        validate_structures({"cup": [1.5]}, source="datalist.json")


def test_importing_the_contract_imports_no_monai():
    code = "import sys, monai_lexu.contract; print(sorted(m for m in sys.modules if m.split('.')[0] == 'monai'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
