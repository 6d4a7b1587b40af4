"""The shared contract primitives: known answers, refusals, and that importing them stays light."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from monai_lexu.contract import (
    NONZERO,
    binary_entropy,
    check_unit_range,
    heads_to_prob_unc,
    mean_var_over_heads,
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


@pytest.mark.parametrize("shape", [(2, 5, 2, 16, 16), (1, 4, 2, 6, 8, 10), (3, 2, 1, 7), (1, 10, 3, 9, 9)])
@pytest.mark.parametrize("unbiased", [True, False])
def test_mean_var_over_heads_equals_torch_mean_var(shape, unbiased):
    g = torch.Generator().manual_seed(sum(shape))
    probs = torch.sigmoid(3 * torch.randn(shape, generator=g))
    mean, var = mean_var_over_heads(probs, unbiased=unbiased)
    torch.testing.assert_close(mean, probs.mean(1), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(var, probs.var(1, unbiased=unbiased), rtol=1e-6, atol=1e-7)
    # both within float32 rounding of the float64 reference
    var64 = probs.double().var(1, unbiased=unbiased)
    assert (var.double() - var64).abs().max() <= 1e-6 * var64.abs().max()


@pytest.mark.parametrize("unbiased", [True, False])
def test_mean_var_over_heads_gradients_equal_torch_var(unbiased):
    g = torch.Generator().manual_seed(7)
    z = torch.randn(2, 5, 2, 8, 8, generator=g, dtype=torch.float64)
    weights = torch.rand(2, 2, 8, 8, generator=g, dtype=torch.float64)
    grads = []
    for fn in (lambda p: mean_var_over_heads(p, unbiased), lambda p: (p.mean(1), p.var(1, unbiased=unbiased))):
        x = z.clone().requires_grad_(True)
        mean, var = fn(torch.sigmoid(x))
        ((mean * weights).sum() + (var * weights).sum() ** 2).backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-12)
    x = z.float().requires_grad_(True)
    _, var = mean_var_over_heads(torch.sigmoid(x), unbiased)
    var.sum().backward()
    x_ref = z.float().requires_grad_(True)
    torch.sigmoid(x_ref).var(1, unbiased=unbiased).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-6, atol=1e-8)


def test_mean_var_over_heads_single_head_and_refusals():
    probs = torch.rand(2, 1, 3, 4, 4)
    mean, var = mean_var_over_heads(probs)  # torch.var would give NaN (ddof=1, one head): one head -> no spread
    assert torch.equal(mean, probs[:, 0]) and torch.equal(var, torch.zeros_like(mean))
    _, var0 = mean_var_over_heads(probs, unbiased=False)
    assert torch.equal(var0, probs.var(1, unbiased=False))
    with pytest.raises(ValueError, match="shape"):
        mean_var_over_heads(torch.rand(2, 0, 3))


def test_heads_to_prob_unc_equals_torch_var_reference():
    g = torch.Generator().manual_seed(3)
    logits = 4 * torch.randn(2, 10 * 2, 12, 12, generator=g)
    for skip, unbiased in ((0, True), (6, True), (0, False), (9, True)):
        out = heads_to_prob_unc(logits, 10, skip_first=skip, unbiased=unbiased)
        probs = torch.sigmoid(split_heads(logits, 10)[:, skip:])
        ref_var = probs.var(1, unbiased=unbiased) if probs.shape[1] > 1 else torch.zeros_like(probs[:, 0])
        torch.testing.assert_close(out, torch.cat([probs.mean(1), ref_var], 1), rtol=1e-6, atol=1e-7)


def test_entropy_of_large_maps_is_computed_in_chunks_with_the_same_values():
    """Above 2^18 elements on CPU the entropy is computed a chunk at a time: identical values (element-wise), the
    input's shape and dtype, 0 at p = 0 and 1, a non-contiguous input, and the unchunked path under autograd."""
    from monai_lexu.contract import _ENTROPY_CHUNK, _entropy, entropy_of_probabilities

    g = torch.Generator().manual_seed(0)
    p = torch.rand(3, 2, 256, 256, generator=g)  # 393 216 elements: two chunks, the second partial
    p[0, 0, 0, :3] = torch.tensor([0.0, 1.0, 0.5])
    assert p.numel() > _ENTROPY_CHUNK
    h = entropy_of_probabilities(p)
    assert h.shape == p.shape and h.dtype == p.dtype
    assert torch.equal(h, _entropy(p, 2.0))
    assert h[0, 0, 0, :3].tolist() == [0.0, 0.0, 1.0]
    t = p.transpose(2, 3)
    assert torch.equal(entropy_of_probabilities(t), _entropy(t, 2.0))
    assert torch.equal(entropy_of_probabilities(p.double(), base=math.e), _entropy(p.double(), math.e))
    q = p.clone().requires_grad_(True)
    entropy_of_probabilities(q).sum().backward()
    assert q.grad is not None and q.grad.shape == p.shape
