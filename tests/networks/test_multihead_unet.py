from __future__ import annotations

import io
import json
import warnings

import pytest
import torch
from torch import nn

from monai_lexu.contract import split_heads
from monai_lexu.networks import MultiHeadUNet

SMALL = (4, 8, 16)  # plain U-Net with 3 levels: 2 decoder heads, 3 encoder heads


def _set_head_constants(net: MultiHeadUNet) -> None:
    """Zero every head's weights and set bias of head k, structure l to 10 * k + l."""
    with torch.no_grad():
        for k, head in enumerate(net.heads):
            head.weight.zero_()
            head.bias.copy_(torch.arange(net.out_channels, dtype=torch.float32) + 10.0 * k)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("heads,expected_k", [("decoder", 4), ("encoder_decoder", 9)])
def test_plain_shapes_default_features(dims, heads, expected_k):
    torch.manual_seed(0)
    net = MultiHeadUNet(spatial_dims=dims, in_channels=2, out_channels=3, backbone="plain", heads=heads).eval()
    size = (32, 48) if dims == 2 else (16, 16, 32)
    with torch.no_grad():
        y = net(torch.rand(2, 2, *size))
    assert net.num_heads == expected_k
    assert y.shape == (2, expected_k * 3, *size)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("dims,size", [(2, (64, 64)), (3, (32, 32, 32))])
@pytest.mark.parametrize("heads,expected_k", [("decoder", 5), ("encoder_decoder", 10)])
def test_resnet50_shapes(dims, size, heads, expected_k):
    torch.manual_seed(0)
    net = MultiHeadUNet(spatial_dims=dims, in_channels=2, out_channels=2, backbone="resnet50", heads=heads).eval()
    assert net.num_heads == expected_k
    assert net.num_encoder_heads == (5 if heads == "encoder_decoder" else 0)
    with torch.no_grad():
        y = net(torch.rand(1, 2, *size))
    assert y.shape == (1, expected_k * 2, *size)
    # SMP-style decoder: 2048 -> 256 -> 128 -> 64 -> 32 -> 16 channels; heads are 1x1 convs to L
    head_in = [h.in_channels for h in net.heads]
    expected = ([64, 256, 512, 1024, 2048] if heads == "encoder_decoder" else []) + [256, 128, 64, 32, 16]
    assert head_in == expected
    assert all(h.kernel_size == (1,) * dims and h.out_channels == 2 for h in net.heads)


@pytest.mark.parametrize("backbone", ["plain", "resnet50"])
def test_head_major_layout(backbone):
    net = MultiHeadUNet(2, 1, 3, backbone=backbone, heads="encoder_decoder", features=SMALL).eval()
    _set_head_constants(net)
    with torch.no_grad():
        y = net(torch.rand(1, 1, 32, 32))
    expected = torch.tensor([10.0 * k + s for k in range(net.num_heads) for s in range(3)])
    assert torch.equal(y[0, :, 5, 7], expected)
    per_head = split_heads(y, net.num_heads)
    assert per_head.shape == (1, net.num_heads, 3, 32, 32)
    assert torch.equal(per_head[0, :, :, 0, 0], expected.reshape(net.num_heads, 3))


def _capture_head_outputs(net: MultiHeadUNet) -> list[torch.Tensor]:
    store: list[torch.Tensor] = []
    for head in net.heads:
        head.register_forward_hook(lambda _m, _i, out: store.append(out.detach().clone()))
    return store


@pytest.mark.parametrize("dims", [2, 3])
def test_nearest_upsampling_is_repeat_interleave(dims):
    torch.manual_seed(1)
    net = MultiHeadUNet(dims, 1, 2, backbone="plain", heads="encoder_decoder", features=SMALL).eval()
    raw = _capture_head_outputs(net)
    size = (16,) * dims
    with torch.no_grad():
        y = split_heads(net(torch.rand(1, 1, *size)), net.num_heads)
    # heads: encoder levels at S, S/2, S/4, then decoder stages at S/2, S
    factors = [1, 2, 4, 2, 1]
    assert [r.shape[2] for r in raw] == [16 // f for f in factors]
    for k, f in enumerate(factors):
        up = raw[k]
        for d in range(dims):
            up = up.repeat_interleave(f, dim=2 + d)
        assert torch.equal(y[:, k], up)
    # the last head is the full-resolution decoder head and is not interpolated at all
    assert torch.equal(y[:, -1], raw[-1])


def test_resnet50_decoder_head_resolutions_and_nearest():
    torch.manual_seed(2)
    net = MultiHeadUNet(2, 3, 2, backbone="resnet50").eval()
    raw = _capture_head_outputs(net)
    with torch.no_grad():
        y = split_heads(net(torch.rand(1, 3, 64, 64)), 5)
    assert [r.shape[-1] for r in raw] == [4, 8, 16, 32, 64]  # S/16 ... S
    up = raw[0].repeat_interleave(16, dim=2).repeat_interleave(16, dim=3)
    assert torch.equal(y[:, 0], up)


@pytest.mark.parametrize("dims,mode", [(2, "bilinear"), (3, "trilinear")])
def test_linear_upsampling_mode(dims, mode):
    torch.manual_seed(3)
    net = MultiHeadUNet(dims, 1, 1, backbone="plain", features=SMALL, upsample_mode="linear").eval()
    assert net.upsample_mode == mode
    raw = _capture_head_outputs(net)
    with torch.no_grad():
        y = net(torch.rand(1, 1, *(8,) * dims))
    ref = nn.functional.interpolate(raw[0], size=(8,) * dims, mode=mode, align_corners=False)
    assert torch.allclose(y[:, :1], ref)
    nearest = raw[0]
    for d in range(dims):
        nearest = nearest.repeat_interleave(2, dim=2 + d)
    assert not torch.allclose(y[:, :1], nearest)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="upsample_mode"):
        MultiHeadUNet(3, 1, 1, backbone="plain", features=SMALL, upsample_mode="bilinear")
    with pytest.raises(ValueError, match="backbone"):
        MultiHeadUNet(2, 1, 1, backbone="vgg")
    with pytest.raises(ValueError, match="heads"):
        MultiHeadUNet(2, 1, 1, backbone="plain", heads="all")
    with pytest.raises(ValueError, match="spatial_dims"):
        MultiHeadUNet(1, 1, 1, backbone="plain")
    with pytest.raises(ValueError, match="decoder_channels"):
        MultiHeadUNet(2, 1, 1, backbone="resnet50", decoder_channels=(16, 8))


def test_split_heads_values_and_errors():
    x = torch.arange(2 * 6 * 2, dtype=torch.float32).reshape(2, 6, 2)
    s = split_heads(x, 3)
    assert s.shape == (2, 3, 2, 2)
    assert torch.equal(s[1, 2, 1], x[1, 5])  # head 2, structure 1 = channel 2 * 2 + 1
    with pytest.raises(ValueError, match="multiple of num_heads=4"):
        split_heads(x, 4)


def test_dropout_after_every_conv_plain():
    net = MultiHeadUNet(2, 1, 1, backbone="plain", features=SMALL, dropout=0.5)
    n_dropout = sum(isinstance(m, nn.Dropout) for m in net.modules())
    n_conv3 = sum(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) for m in net.modules())
    assert n_conv3 == 2 * len(SMALL) + 2 * (len(SMALL) - 1)
    assert n_dropout == n_conv3
    assert all(m.p == 0.5 for m in net.modules() if isinstance(m, nn.Dropout))
    x = torch.rand(2, 1, 16, 16)
    net.train()
    torch.manual_seed(0)
    a = net(x)
    b = net(x)
    assert not torch.allclose(a, b)
    net.eval()
    assert torch.equal(net(x), net(x))
    assert sum(isinstance(m, nn.Dropout) for m in MultiHeadUNet(2, 1, 1, "plain", features=SMALL).modules()) == 0


@pytest.mark.parametrize("backbone", ["plain", "resnet50"])
def test_torchscript_roundtrip(backbone):
    torch.manual_seed(4)
    net = MultiHeadUNet(2, 2, 2, backbone=backbone, heads="encoder_decoder", features=SMALL).eval()
    x = torch.rand(1, 2, 64, 64)
    with torch.no_grad():
        ref = net(x)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(net), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    with torch.no_grad():
        out = loaded(x)
    assert torch.allclose(out, ref, atol=1e-5)


def test_torchscript_3d_plain_and_trace():
    torch.manual_seed(5)
    net = MultiHeadUNet(3, 1, 2, backbone="plain", features=SMALL, upsample_mode="trilinear").eval()
    x = torch.rand(1, 1, 8, 8, 8)
    with torch.no_grad():
        ref = net(x)
        assert torch.allclose(torch.jit.script(net)(x), ref, atol=1e-5)
        with warnings.catch_warnings():  # shape checks are frozen into a trace: valid for this input size only
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(net, x)
        assert torch.allclose(traced(x), ref, atol=1e-5)


def test_pretrained_weights_encoder_full_and_errors(tmp_path):
    torch.manual_seed(6)
    src = MultiHeadUNet(2, 1, 2, backbone="plain", features=SMALL)
    enc_file = tmp_path / "enc.pt"
    torch.save(src.encoder.state_dict(), enc_file)
    dst = MultiHeadUNet(2, 1, 2, backbone="plain", features=SMALL, pretrained_weights=enc_file)
    for k, v in src.encoder.state_dict().items():
        assert torch.equal(dst.encoder.state_dict()[k], v)
    assert not torch.equal(dst.heads[0].weight, src.heads[0].weight)  # only the encoder was loaded

    full_file = tmp_path / "full.pt"
    torch.save({"model": src.state_dict()}, full_file)  # wrapped like a MONAI checkpoint
    dst2 = MultiHeadUNet(2, 1, 2, backbone="plain", features=SMALL, pretrained_weights=full_file).eval()
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(dst2(x), src.eval()(x))

    wrong = MultiHeadUNet(2, 3, 2, backbone="plain", features=SMALL)  # 3 input channels
    wrong_file = tmp_path / "wrong.pt"
    torch.save(wrong.encoder.state_dict(), wrong_file)
    with pytest.raises(ValueError, match=r"wrong\.pt.*shape mismatches \[levels\.0\.conv_0\.conv\.weight"):
        MultiHeadUNet(2, 1, 2, backbone="plain", features=SMALL, pretrained_weights=wrong_file)
    other_file = tmp_path / "other.pt"
    torch.save({"foo.weight": torch.zeros(1)}, other_file)
    with pytest.raises(ValueError, match=r"other\.pt.*unexpected keys \[foo\.weight\]"):
        MultiHeadUNet(2, 1, 2, backbone="plain", features=SMALL, pretrained_weights=other_file)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        MultiHeadUNet(2, 1, 2, backbone="plain", features=SMALL, pretrained_weights=tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    torch.save([1, 2, 3], junk)
    with pytest.raises(ValueError, match=r"junk\.pt does not contain a state dict"):
        MultiHeadUNet(2, 1, 2, backbone="plain", features=SMALL, pretrained_weights=junk)


def test_pretrained_resnet50_classifier_state_dict(tmp_path):
    """A torchvision/SMP-style ResNet-50 state dict (same key names, plus ``fc.*``) loads into the encoder."""
    torch.manual_seed(7)
    src = MultiHeadUNet(2, 3, 2, backbone="resnet50")
    state = {k: v for k, v in src.encoder.state_dict().items()}
    state["fc.weight"] = torch.zeros(1000, 2048)
    state["fc.bias"] = torch.zeros(1000)
    path = tmp_path / "resnet50_imagenet.pth"
    torch.save(state, path)
    dst = MultiHeadUNet(2, 3, 2, backbone="resnet50", pretrained_weights=path)
    assert torch.equal(dst.encoder.conv1.weight, src.encoder.conv1.weight)
    assert torch.equal(dst.encoder.layer4[2].bn3.running_var, src.encoder.layer4[2].bn3.running_var)
    with pytest.raises(ValueError, match=r"resnet50_imagenet\.pth.*conv1\.weight: file \(64, 3, 7, 7\)"):
        MultiHeadUNet(2, 2, 2, backbone="resnet50", pretrained_weights=path)


def _bundle_files(tmp_path, net_kwargs: dict, in_ch: int, out_ch: int, spatial: list) -> tuple[str, str]:
    config = {"network_def": {"_target_": "monai_lexu.networks.MultiHeadUNet", **net_kwargs}}
    meta = {
        "network_data_format": {
            "inputs": {"image": {"num_channels": in_ch, "spatial_shape": spatial, "dtype": "float32"}},
            "outputs": {"pred": {"num_channels": out_ch, "dtype": "float32"}},
        }
    }
    cfg, met = tmp_path / "inference.json", tmp_path / "metadata.json"
    cfg.write_text(json.dumps(config))
    met.write_text(json.dumps(meta))
    return str(cfg), str(met)


def test_bundle_verify_net_in_out_and_ckpt_export(tmp_path):
    from monai.bundle import ckpt_export, verify_net_in_out

    kwargs = {"spatial_dims": 2, "in_channels": 2, "out_channels": 2, "backbone": "plain", "features": [4, 8, 16, 32]}
    cfg, met = _bundle_files(tmp_path, kwargs, 2, 6, ["16*n", "16*n"])
    verify_net_in_out(net_id="network_def", meta_file=met, config_file=cfg, device="cpu", n=2)
    torch.manual_seed(8)
    net = MultiHeadUNet(**kwargs).eval()
    ckpt = tmp_path / "model.pt"
    torch.save(net.state_dict(), ckpt)
    out = tmp_path / "model.ts"
    ckpt_export(net_id="network_def", filepath=str(out), ckpt_file=str(ckpt), meta_file=met, config_file=cfg)
    loaded = torch.jit.load(str(out))
    x = torch.rand(1, 2, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), net(x), atol=1e-5)


@pytest.mark.parametrize("backbone", ["plain", "resnet50"])
def test_single_last_head_equals_last_head_of_decoder_network(backbone):
    """heads="last" is the same network with only the full-resolution head: same weights -> same logits."""
    torch.manual_seed(0)
    multi = MultiHeadUNet(2, 1, 2, backbone=backbone, heads="decoder", features=SMALL).eval()
    single = MultiHeadUNet(2, 1, 2, backbone=backbone, heads="last", features=SMALL).eval()
    assert single.num_heads == 1 and [h.in_channels for h in single.heads] == [multi.heads[-1].in_channels]
    state = {k: v for k, v in multi.state_dict().items() if not k.startswith("heads.")}
    state.update({f"heads.0.{n}": p for n, p in multi.heads[-1].state_dict().items()})
    single.load_state_dict(state)
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(single(x), multi(x)[:, -2:], atol=1e-6)
    assert sum(p.numel() for p in single.parameters()) < sum(p.numel() for p in multi.parameters())
    torch.jit.script(single)
