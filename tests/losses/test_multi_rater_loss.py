from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from monai_lexu.contract import mean_var_over_heads
from monai_lexu.losses import LEXULoss, MultiHeadRaterLoss, sample_valid_raters

LN2, LN3 = math.log(2.0), math.log(3.0)


def _hand_case():
    """2 heads, 2 raters, B=1, L=1, 2x2 image (flattened order: (0,0), (0,1), (1,0), (1,1))."""
    z0 = torch.tensor([[0.0, LN3], [-LN3, 0.0]])  # sigmoid: 0.5, 0.75, 0.25, 0.5
    z1 = torch.zeros(2, 2)  # sigmoid 0.5 everywhere
    logits = torch.stack([z0, z1]).reshape(1, 2, 2, 2)  # (B, K*L, H, W) with L=1
    r0 = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    r1 = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    raters = torch.stack([r0, r1]).reshape(1, 2, 1, 2, 2)
    valid = torch.tensor([[True, True]])
    return logits, raters, valid


# BCE(z, t) = softplus(z) - z t, each head term a mean over the 4 pixels
BCE_HEAD0_R0 = (2 * LN2 + 2 * math.log(4 / 3)) / 4  # targets 1, 1, 0, 0
BCE_HEAD0_R1 = (2 * LN2 + math.log(4) + math.log(4 / 3)) / 4  # targets 1, 0, 0, 0
BCE_HEAD0_SOFT = (6 * LN2 - 1.5 * LN3) / 4  # targets 1, 0.5, 0, 0
BCE_HEAD1 = LN2  # z = 0: log 2 whatever the target
# head variance (K=2, unbiased) = (p0 - p1)^2 / 2 = 0, 1/32, 1/32, 0; rater variance = 0, 1/2, 0, 0
DGM = math.sqrt((225 + 1) / 1024 / 4)


def test_known_answer_sampling_none():
    logits, raters, valid = _hand_case()
    loss = LEXULoss(num_heads=2, alpha=1.0, beta=5.0, aux_weight=0.3, sampling="none")
    value = loss(logits, {"raters": raters, "rater_valid": valid})
    expected = 0.3 * BCE_HEAD0_SOFT + 1.0 * BCE_HEAD1 + 5.0 * DGM
    assert value.item() == pytest.approx(expected, rel=1e-6)
    assert loss.last_terms["seg"].item() == pytest.approx(0.3 * BCE_HEAD0_SOFT + BCE_HEAD1, rel=1e-6)
    assert loss.last_terms["seg_last"].item() == pytest.approx(BCE_HEAD1, rel=1e-6)
    assert loss.last_terms["dgm"].item() == pytest.approx(DGM, rel=1e-6)
    assert loss.last_terms["loss"].item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_known_answer_mro_batch(seed):
    logits, raters, valid = _hand_case()
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand((1, 1), generator=torch.Generator().manual_seed(seed)).item()
    chosen = math.floor(u * 2)  # rater index the non-last head must get
    loss = LEXULoss(num_heads=2, alpha=2.0, beta=5.0, sampling="batch", generator=gen)
    value = loss(logits, {"raters": raters, "rater_valid": valid})
    bce0 = BCE_HEAD0_R0 if chosen == 0 else BCE_HEAD0_R1
    assert value.item() == pytest.approx(2.0 * (0.3 * bce0 + BCE_HEAD1) + 5.0 * DGM, rel=1e-6)


def test_both_raters_get_drawn():
    logits, raters, valid = _hand_case()
    loss = LEXULoss(num_heads=2, beta=0.0, generator=torch.Generator().manual_seed(0))
    values = [loss(logits, {"raters": raters, "rater_valid": valid}).item() for _ in range(40)]
    options = [0.3 * BCE_HEAD0_R0 + BCE_HEAD1, 0.3 * BCE_HEAD0_R1 + BCE_HEAD1]
    picked = [min(range(2), key=lambda i, v=v: abs(options[i] - v)) for v in values]
    assert all(v == pytest.approx(options[i], rel=1e-6) for v, i in zip(values, picked))
    assert set(picked) == {0, 1}


def test_beta0_sampling_none_is_weighted_bce_to_soft_label():
    torch.manual_seed(0)
    k, n_struct = 4, 2
    logits = torch.randn(3, k * n_struct, 6, 5)
    raters = (torch.rand(3, 3, n_struct, 6, 5) > 0.5).float()
    soft = raters.mean(dim=1)
    loss = LEXULoss(num_heads=k, beta=0.0, aux_weight=0.3, sampling="none")
    value = loss(logits, {"raters": raters})
    heads = logits.reshape(3, k, n_struct, 6, 5)
    expected = sum(
        w * F.binary_cross_entropy_with_logits(heads[:, i], soft) for i, w in enumerate([0.3, 0.3, 0.3, 1.0])
    )
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    # the soft label alone is enough for this (Layer Ensembles) configuration
    assert loss(logits, {"soft_label": soft}).item() == pytest.approx(expected.item(), rel=1e-6)


def _padded_batch(invalid_fill: float):
    torch.manual_seed(1)
    raters = (torch.rand(2, 3, 2, 4, 4) > 0.5).float()
    raters[1, 2] = invalid_fill  # padded rater of sample 1
    valid = torch.tensor([[True, True, True], [True, True, False]])
    return raters, valid


@pytest.mark.parametrize("sampling", ["batch", "sample"])
def test_invalid_raters_are_never_seen(sampling):
    logits = torch.randn(2, 5 * 2, 4, 4)
    ra, valid = _padded_batch(0.0)
    rb, _ = _padded_batch(1.0)
    for seed in range(10):
        la = LEXULoss(5, sampling=sampling, generator=torch.Generator().manual_seed(seed))
        lb = LEXULoss(5, sampling=sampling, generator=torch.Generator().manual_seed(seed))
        va = la(logits, {"raters": ra, "rater_valid": valid})
        vb = lb(logits, {"raters": rb, "rater_valid": valid})
        assert va.item() == pytest.approx(vb.item(), rel=1e-6)


def test_sample_valid_raters_selection():
    b, r = 2, 4
    raters = torch.arange(r, dtype=torch.float32).reshape(1, r, 1, 1, 1).repeat(b, 1, 1, 2, 2)  # rater i is all i
    raters[1, 1] = 99.0  # invalid for sample 1
    valid = torch.tensor([[True, True, True, False], [True, False, True, True]])
    gen = torch.Generator().manual_seed(0)
    batch = sample_valid_raters(raters, valid, num_draws=500, per_sample=False, generator=gen)
    assert batch.shape == (b, 500, 1, 2, 2)
    ids = batch[:, :, 0, 0, 0]
    assert set(ids[0].tolist()) == {0.0, 1.0, 2.0}
    assert set(ids[1].tolist()) == {0.0, 2.0, 3.0}
    # one u per draw for the whole batch: sample b takes its floor(u * 3)-th valid rater -> same rank in both
    rank = {0: {0.0: 0, 1.0: 1, 2.0: 2}, 1: {0.0: 0, 2.0: 1, 3.0: 2}}
    assert all(rank[0][a] == rank[1][c] for a, c in zip(ids[0].tolist(), ids[1].tolist()))
    # roughly uniform over the valid raters
    counts = torch.stack([(ids[0] == v).sum() for v in (0.0, 1.0, 2.0)]).float()
    assert (counts > 120).all()
    per = sample_valid_raters(raters, valid, 500, per_sample=True, generator=gen)[:, :, 0, 0, 0]
    ranks = [(rank[0][a], rank[1][c]) for a, c in zip(per[0].tolist(), per[1].tolist())]
    assert any(x != y for x, y in ranks)
    assert 99.0 not in per.unique().tolist()


def test_sample_valid_raters_no_valid_rater():
    with pytest.raises(ValueError, match=r"no valid rater for batch sample\(s\) \[1\]"):
        sample_valid_raters(torch.zeros(2, 2, 1, 2, 2), torch.tensor([[True, False], [False, False]]), 1)


def test_dgm_zero_when_variances_match_and_gradients_finite():
    torch.manual_seed(2)
    k = 3
    logits = torch.randn(2, k * 2, 5, 5, requires_grad=True)
    with torch.no_grad():
        # the loss's own primitive (torch.var differs from it by float rounding, ~3e-9 RMSE here; see the test below)
        _, head_var = mean_var_over_heads(torch.sigmoid(logits.reshape(2, k, 2, 5, 5)))
    soft = torch.rand(2, 2, 5, 5)
    loss = LEXULoss(k, beta=5.0, sampling="none")
    value = loss(logits, {"soft_label": soft, "rater_var": head_var})
    assert loss.last_terms["dgm"].item() == pytest.approx(0.0, abs=1e-9)
    assert value.item() == pytest.approx(loss.last_terms["seg"].item(), abs=1e-6)
    value.backward()
    assert torch.isfinite(logits.grad).all()


def test_gradients_flow_to_all_heads_and_dgm_gradient():
    torch.manual_seed(3)
    k = 3
    logits = torch.randn(2, k * 2, 4, 4, requires_grad=True)
    raters = (torch.rand(2, 3, 2, 4, 4) > 0.5).float()
    loss = LEXULoss(k, beta=5.0)
    loss(logits, {"raters": raters}).backward()
    grads = logits.grad.reshape(2, k, 2, 4, 4)
    assert all(grads[:, i].abs().sum() > 0 for i in range(k))
    # the DGM alone also produces a gradient (alpha = 0)
    logits.grad = None
    LEXULoss(k, alpha=0.0, beta=1.0)(logits, {"raters": raters}).backward()
    assert logits.grad.abs().sum() > 0


def test_statistics_computed_from_raters_equal_provided():
    torch.manual_seed(4)
    raters = (torch.rand(2, 4, 2, 3, 3) > 0.5).float()
    valid = torch.tensor([[True, True, True, False], [True, False, False, False]])
    w = valid.float()[:, :, None, None, None]
    soft = (raters * w).sum(1) / w.sum(1)
    var0 = raters[0, :3].var(dim=0)  # sample 0: three valid raters, unbiased
    var = torch.stack([var0, torch.zeros_like(var0)])  # sample 1: one valid rater -> zero
    logits = torch.randn(2, 2 * 2, 3, 3)
    a = LEXULoss(2, sampling="none")(logits, {"raters": raters, "rater_valid": valid})
    b = LEXULoss(2, sampling="none")(
        logits, {"raters": raters, "rater_valid": valid, "soft_label": soft, "rater_var": var}
    )
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


def test_3d_and_autocast_float32():
    torch.manual_seed(5)
    logits = torch.randn(1, 3 * 2, 4, 4, 4)
    raters = (torch.rand(1, 2, 2, 4, 4, 4) > 0.5).float()
    target = {"raters": raters, "rater_valid": torch.tensor([[True, True]])}
    half = logits.to(torch.bfloat16)
    ref = LEXULoss(3, sampling="none")(half.float(), target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = LEXULoss(3, sampling="none")(half, target)
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(ref.item(), rel=1e-6)


def test_bare_raters_tensor_target():
    logits, raters, _ = _hand_case()
    value = LEXULoss(2, sampling="none")(logits, raters)
    assert value.item() == pytest.approx(0.3 * BCE_HEAD0_SOFT + BCE_HEAD1 + 5.0 * DGM, rel=1e-6)


def test_errors():
    logits, raters, valid = _hand_case()
    with pytest.raises(ValueError, match="multiple of num_heads=3"):
        LEXULoss(3)(logits, {"raters": raters})
    with pytest.raises(ValueError, match="target 'raters' shape"):
        LEXULoss(2)(logits, {"raters": raters[..., :1]})
    with pytest.raises(ValueError, match="missing key 'raters'"):
        LEXULoss(2, sampling="batch")(logits, {"soft_label": torch.zeros(1, 1, 2, 2)})
    with pytest.raises(ValueError, match="'rater_valid' shape"):
        LEXULoss(2)(logits, {"raters": raters, "rater_valid": torch.ones(1, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="target 'soft_label' shape"):
        LEXULoss(2, sampling="none")(logits, {"raters": raters, "soft_label": torch.zeros(1, 2, 2, 2)})
    with pytest.raises(ValueError, match="num_heads=1"):
        LEXULoss(1, beta=5.0)
    with pytest.raises(ValueError, match="sampling"):
        LEXULoss(2, sampling="rater")
    assert LEXULoss(4).head_weights == [0.3, 0.3, 0.3, 1.0]


def test_metatensor_input_gives_plain_tensor_with_gradient():
    from monai.data import MetaTensor

    logits, raters, valid = _hand_case()
    x = MetaTensor(logits.clone()).requires_grad_()
    value = LEXULoss(2, sampling="none")(x, {"raters": MetaTensor(raters), "rater_valid": valid})
    assert type(value) is torch.Tensor
    assert value.item() == pytest.approx(0.3 * BCE_HEAD0_SOFT + BCE_HEAD1 + 5.0 * DGM, rel=1e-6)
    value.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_neutral_loss_defaults_are_weighted_bce_against_the_soft_label():
    """MultiHeadRaterLoss() is the LE/DE loss: sum_k w_k BCE(z_k, soft label), w = 0.3 ... 0.3, 1; no DGM, no MRO."""
    torch.manual_seed(3)
    logits = torch.randn(2, 3 * 2, 4, 4)
    raters = (torch.rand(2, 4, 2, 4, 4) > 0.5).float()
    soft = raters.mean(dim=1)
    per_head = [
        F.binary_cross_entropy_with_logits(logits[:, 2 * k : 2 * k + 2], soft) for k in range(3)
    ]  # head-major channels
    expected = 0.3 * per_head[0] + 0.3 * per_head[1] + 1.0 * per_head[2]
    loss = MultiHeadRaterLoss(3)
    assert (loss.beta, loss.sampling) == (0.0, "none")
    assert torch.allclose(loss(logits, {"raters": raters}), expected, atol=1e-6)


def test_lexu_preset_equals_the_neutral_loss_with_mro_and_dgm():
    torch.manual_seed(4)
    logits = torch.randn(2, 3 * 2, 4, 4)
    raters = (torch.rand(2, 4, 2, 4, 4) > 0.5).float()
    preset = LEXULoss(3, generator=torch.Generator().manual_seed(9))(logits, {"raters": raters})
    neutral = MultiHeadRaterLoss(3, beta=5.0, sampling="batch", generator=torch.Generator().manual_seed(9))(
        logits, {"raters": raters}
    )
    assert torch.equal(preset, neutral)
    assert not torch.allclose(preset, MultiHeadRaterLoss(3)(logits, {"raters": raters}))


@pytest.mark.parametrize("k", [2, 5])
def test_dgm_values_and_gradients_equal_the_torch_var_reference(k):
    """The DGM term through the contract's two-pass head variance: value and gradient equal ``torch.var``'s."""
    g = torch.Generator().manual_seed(k)
    logits = 3 * torch.randn(4, k * 2, 16, 16, generator=g)
    rater_var = torch.rand(4, 2, 16, 16, generator=g) / 4

    def reference_dgm(x):
        head_var = torch.sigmoid(x.reshape(4, k, 2, 16, 16)).var(dim=1, unbiased=True)
        mse = F.mse_loss(head_var, rater_var)
        return torch.sqrt(torch.clamp(mse, min=torch.finfo(torch.float32).tiny))

    x = logits.clone().requires_grad_(True)
    value = MultiHeadRaterLoss._dgm(x.reshape(4, k, 2, 16, 16), rater_var)
    value.backward()
    x_ref = logits.clone().requires_grad_(True)
    ref = reference_dgm(x_ref)
    ref.backward()
    assert value.item() == pytest.approx(ref.item(), rel=1e-6)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-6, atol=1e-9)
    # and in the whole loss (alpha = 0: the DGM part only)
    x.grad = None
    MultiHeadRaterLoss(k, alpha=0.0, beta=2.5)(
        x, {"soft_label": torch.rand(4, 2, 16, 16), "rater_var": rater_var}
    ).backward()
    torch.testing.assert_close(x.grad, 2.5 * x_ref.grad, rtol=1e-6, atol=1e-9)


def _unfused_reference(logits, target, k, alpha, beta, aux_weight, sampling, seed):
    """The loss as the unfused autograd ops computed it before (rater gather, cat, element-wise BCE, torch.var)."""
    raters, valid, soft, rater_var = (
        target["raters"],
        target.get("rater_valid"),
        target["soft_label"],
        target["rater_var"],
    )
    heads = logits.reshape(logits.shape[0], k, -1, *logits.shape[2:])
    if k > 1 and sampling != "none":
        sampled = sample_valid_raters(
            raters, valid, k - 1, per_sample=sampling == "sample", generator=torch.Generator().manual_seed(seed)
        )
        targets = torch.cat([sampled, soft.unsqueeze(1)], dim=1)
    else:
        targets = soft.unsqueeze(1).expand_as(heads)
    per_head = F.binary_cross_entropy_with_logits(heads, targets, reduction="none")
    per_head = per_head.transpose(0, 1).reshape(k, -1).mean(dim=1)
    seg = (torch.tensor([aux_weight] * (k - 1) + [1.0]) * per_head).sum()
    total = alpha * seg
    if beta != 0:
        head_var = torch.sigmoid(heads).var(dim=1, unbiased=True)
        mse = F.mse_loss(head_var, rater_var)
        total = total + beta * torch.sqrt(torch.clamp(mse, min=torch.finfo(torch.float32).tiny))
    return total, per_head


@pytest.mark.parametrize(
    "k, sampling, beta, variable_raters, spatial",
    [
        (4, "batch", 5.0, False, (12, 10)),
        (4, "batch", 5.0, True, (12, 10)),
        (3, "sample", 2.5, True, (6, 5, 4)),
        (5, "none", 5.0, False, (8, 8)),
        (4, "batch", 0.0, False, (8, 8)),
        (2, "sample", 0.0, True, (8, 8)),
        (1, "none", 0.0, False, (8, 8)),
    ],
)
def test_fused_loss_equals_the_unfused_reference(k, sampling, beta, variable_raters, spatial):
    """The fused per-head BCE + DGM (one sigmoid, targets as views, gradient by hand) gives the unfused ops' value
    (<= 1e-6 relative), per-head terms and gradient, with the same rater draws from the same generator."""
    g = torch.Generator().manual_seed(k + len(spatial))
    b, r, n_struct = 3, 4, 2
    logits = 3 * torch.randn(b, k * n_struct, *spatial, generator=g)
    raters = (torch.rand(b, r, n_struct, *spatial, generator=g) > 0.5).float()
    valid = torch.ones(b, r, dtype=torch.bool)
    if variable_raters:
        valid[0, 2:] = False
        valid[2, 1] = False
    target = {"raters": raters, "rater_valid": valid}
    w = valid.float().reshape(b, r, 1, *([1] * len(spatial)))
    target["soft_label"] = (raters * w).sum(1) / w.sum(1)
    target["rater_var"] = torch.stack(
        [raters[i, valid[i]].var(dim=0) if valid[i].sum() > 1 else torch.zeros_like(raters[i, 0]) for i in range(b)]
    )
    for seed in (0, 1, 2):
        x = logits.clone().requires_grad_(True)
        loss = MultiHeadRaterLoss(
            k, alpha=1.5, beta=beta, aux_weight=0.3, sampling=sampling, generator=torch.Generator().manual_seed(seed)
        )
        value = loss(x, target)
        value.backward()
        x_ref = logits.clone().requires_grad_(True)
        ref, ref_heads = _unfused_reference(x_ref, target, k, 1.5, beta, 0.3, sampling, seed)
        ref.backward()
        assert value.item() == pytest.approx(ref.item(), rel=1e-6)
        assert loss.last_terms["seg_last"].item() == pytest.approx(ref_heads[-1].item(), rel=1e-6)
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-9)


def test_fused_loss_second_backward_is_refused():
    """The gradient is computed in place in the saved sigmoids: a second backward (retain_graph) raises."""
    x = torch.randn(2, 4, 4, 4, requires_grad=True)
    value = LEXULoss(2)(x, {"raters": (torch.rand(2, 3, 2, 4, 4) > 0.5).float()})
    value.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="one backward per forward"):
        value.backward()
