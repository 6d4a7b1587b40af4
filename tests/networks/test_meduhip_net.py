"""MedUHIP network: mixture sampling, Eq. 5 posterior, Eq. 2, forward/TorchScript, prompt handling, weights."""

from __future__ import annotations

import math

import pytest
import torch

from monai_lexu.networks import MedUHIPNet
from monai_lexu.networks.meduhip import majority_soft_prediction, mixture_posterior, sample_gaussian_mixture


def _tiny(**kw) -> MedUHIPNet:
    args = dict(features=(8, 16), embed_dim=16, num_samples=6, num_components=3, sample_dim=4, decoder_depth=1)
    args.update(kw)
    return MedUHIPNet(**args)


def test_mixture_component_frequencies_match_weights():
    torch.manual_seed(0)
    weights = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    mean = torch.tensor([[-10.0, 0.0, 10.0, 20.0]])
    var = torch.tensor([[1.0, 0.25, 4.0, 0.01]])
    samples, comps = sample_gaussian_mixture(weights, mean, var, 40000, 3)
    freq = torch.bincount(comps[0], minlength=4).float() / 40000
    assert torch.allclose(freq, weights[0], atol=0.01)
    for m in range(4):  # every element of a sample comes from its own component: mean and variance of that one
        vals = samples[0][comps[0] == m]
        assert abs(float(vals.mean()) - float(mean[0, m])) < 0.05
        assert abs(float(vals.var()) - float(var[0, m])) / float(var[0, m]) < 0.05
    # a true mixture: bimodal sample means, not one Gaussian around the weighted mean (SPA's shared-noise draw)
    s, _ = sample_gaussian_mixture(torch.tensor([[0.5, 0.5]]), torch.tensor([[-5.0, 5.0]]), torch.ones(1, 2), 2000, 2)
    assert float((s[0].mean(1).abs() < 2.0).float().mean()) < 0.01


def test_fixed_uniforms_give_stratified_counts():
    weights = torch.tensor([[0.25, 0.75], [1.0, 0.0]])
    u = (torch.arange(8) + 0.5) / 8
    _, comps = sample_gaussian_mixture(weights, torch.zeros(2, 2), torch.ones(2, 2), 8, 2, u, torch.zeros(8, 2))
    assert comps[0].tolist() == [0, 0, 1, 1, 1, 1, 1, 1]
    assert comps[1].tolist() == [0] * 8


def test_posterior_eq5_known_answer():
    weights = torch.tensor([[0.5, 0.5]])
    mean = torch.tensor([[0.0, 1.0]])
    var = torch.tensor([[1.0, 1.0]])
    # x = 0: f(0; 0, 1) / (f(0; 0, 1) + f(0; 1, 1)) = 1 / (1 + exp(-1/2))
    p0 = 1.0 / (1.0 + math.exp(-0.5))
    post = mixture_posterior(torch.tensor([[0.0]]), weights, mean, var)
    assert torch.allclose(post, torch.tensor([[p0, 1 - p0]]), atol=1e-6)
    # weights enter as priors: pi = (0.2, 0.8) at x = 0.5 (equal densities) gives the priors back
    post = mixture_posterior(torch.tensor([[0.5]]), torch.tensor([[0.2, 0.8]]), mean, var)
    assert torch.allclose(post, torch.tensor([[0.2, 0.8]]), atol=1e-6)
    # a map: mean of the per-pixel posteriors; a mask restricts the pixels
    x = torch.tensor([[0.0, 1.0, 0.0]])
    want = (2 * p0 + (1 - p0)) / 3
    assert torch.allclose(mixture_posterior(x, weights, mean, var), torch.tensor([[want, 1 - want]]), atol=1e-6)
    mask = torch.tensor([[False, True, False]])
    assert torch.allclose(mixture_posterior(x, weights, mean, var, mask), torch.tensor([[1 - p0, p0]]), atol=1e-6)
    # far-away components do not underflow to NaN
    post = mixture_posterior(torch.tensor([[100.0]]), weights, mean, torch.tensor([[1e-4, 1e-4]]))
    assert torch.allclose(post, torch.tensor([[0.0, 1.0]]))


def test_majority_soft_prediction_eq2():
    logits = torch.tensor([[[[5.0, -5.0]], [[5.0, 5.0]], [[-5.0, 5.0]], [[5.0, -5.0]]]])  # (1, 4, 1, 2)
    soft, votes = majority_soft_prediction(logits)
    assert votes.tolist() == [[[0.75, 0.5]]]
    assert soft.tolist() == [[[1.0, 0.0]]]  # exactly half is not a majority


def test_forward_shapes_determinism_and_torchscript():
    torch.manual_seed(0)
    net = _tiny().eval()
    x = torch.rand(2, 3, 32, 32)
    pts = torch.tensor([[[3.0, 4.0], [20.0, 20.0]], [[5.0, 5.0], [0.0, 0.0]]])
    lab = torch.tensor([[1.0, 0.0], [1.0, -1.0]])
    with torch.no_grad():
        y0, y0b, y1 = net(x), net(x), net(x, pts, lab)
        moved = pts.clone()
        moved[1, 1] = torch.tensor([30.0, 12.0])
        y_moved = net(x, moved, lab)
        scripted = torch.jit.script(net)
        s0, s1 = scripted(x), scripted(x, pts, lab)
    assert y0.shape == (2, 6, 32, 32)
    assert torch.equal(y0, y0b)  # eval mode: fixed draws
    assert float((y1 - y0).abs().max()) > 1e-4  # the clicks change the masks
    assert torch.equal(y_moved, y1)  # a padding click (-1) has no position: a "not a point" token
    assert torch.allclose(s0, y0, atol=1e-5) and torch.allclose(s1, y1, atol=1e-5)
    net.train()
    with torch.no_grad():
        assert not torch.equal(net(x), net(x))  # training mode: fresh draws


def test_weights_steer_the_samples():
    net = _tiny().eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a = net(x, weights=torch.tensor([[1.0, 0.0, 0.0]]))
        b = net(x, weights=torch.tensor([[0.0, 0.0, 1.0]]))
    assert float((a - b).abs().max()) > 1e-4


def test_parameter_groups_partition():
    net = _tiny()
    groups = net.parameter_groups()
    ids = [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) == len(list(net.parameters()))
    assert {id(p) for p in net.weight_net.parameters()} == {id(p) for p in groups["weight"]}
    assert id(net.label_embed.weight) in {id(p) for p in groups["mvp"]}
    assert id(net.combine.conv.weight) in {id(p) for p in groups["seg"]}


def test_pretrained_encoder_weights(tmp_path):
    a, b = _tiny(seed=1), _tiny(seed=2)
    path = tmp_path / "enc.pt"
    torch.save({"model": a.image_encoder.state_dict()}, path)
    c = _tiny(pretrained_weights=path)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(c.encode_image(x), a.encode_image(x.clone()))
    torch.save(b.mean_variance.state_dict(), tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="wrong.pt"):
        _tiny(pretrained_weights=tmp_path / "wrong.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        _tiny(pretrained_weights=tmp_path / "missing.pt")


def test_bad_arguments():
    with pytest.raises(ValueError, match="spatial_dims"):
        MedUHIPNet(spatial_dims=3)
    with pytest.raises(ValueError, match="encoder"):
        MedUHIPNet(encoder="resnet")
    with pytest.raises(ValueError, match="img_size"):
        MedUHIPNet(encoder="vit")


def test_vit_encoder():
    pytest.importorskip("einops")
    net = _tiny(encoder="vit", img_size=(32, 32), patch_size=8, vit_hidden=32, vit_depth=1).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 32, 32)).shape == (1, 6, 32, 32)
