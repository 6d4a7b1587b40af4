"""DeepEnsemble: the loop and the vectorised (torch.func) forward give the same outputs; the state dict is the same."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from monai_lexu.networks import DeepEnsemble, MultiHeadUNet


def _ensemble(mode: str, dims: int = 2, heads: str = "last") -> DeepEnsemble:
    member = partial(MultiHeadUNet, dims, 2, 2, backbone="plain", features=(4, 8, 16), heads=heads)
    return DeepEnsemble(member, 3, seed=5, forward_mode=mode)


@pytest.mark.parametrize("dims,heads", [(2, "last"), (2, "decoder"), (3, "last")])
def test_vmap_forward_equals_the_member_loop(dims, heads):
    loop, vec = _ensemble("loop", dims, heads), _ensemble("vmap", dims, heads)
    vec.load_state_dict(loop.state_dict())  # same format: members.<m>.*
    assert set(vec.state_dict()) == set(loop.state_dict())
    assert all(k.startswith("members.") for k in loop.state_dict())
    with torch.no_grad():  # run once in train mode so the BN running statistics differ from their init
        loop.train()(torch.rand(4, 2, *(16,) * dims))
    vec.load_state_dict(loop.state_dict())
    x = torch.rand(2, 2, *(16,) * dims, generator=torch.Generator().manual_seed(1))
    loop.eval(), vec.eval()
    with torch.no_grad():
        ref, out = loop(x), vec(x)
        per_member = torch.cat([m(x) for m in loop.members], dim=1)
    assert out.shape == ref.shape == (2, loop.num_heads * 2, *(16,) * dims)
    assert torch.equal(ref, per_member)
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)


def test_vmap_mode_trains_through_the_members():
    """Training mode runs the loop (stacked parameters are copies): same gradients and BN statistics."""
    loop, vec = _ensemble("loop"), _ensemble("vmap")
    vec.load_state_dict(loop.state_dict())
    x = torch.rand(2, 2, 16, 16, generator=torch.Generator().manual_seed(2))
    loop(x).square().mean().backward()
    vec(x).square().mean().backward()
    for (name, a), (_, b) in zip(loop.named_parameters(), vec.named_parameters()):
        assert b.grad is not None and torch.equal(b.grad, a.grad), name
    for (name, a), (_, b) in zip(loop.named_buffers(), vec.named_buffers()):
        assert torch.equal(a, b), name


def test_forward_mode_refused():
    with pytest.raises(ValueError, match="forward_mode"):
        _ensemble("grouped")


@pytest.mark.parametrize("mode", ["loop", "vmap"])
def test_scriptable_for_ckpt_export(mode):
    """MONAI's ckpt_export scripts the network: both modes script (the scripted module runs the member loop)."""
    net = _ensemble(mode).eval()
    x = torch.rand(1, 2, 16, 16)
    scripted = torch.jit.script(net)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), net(x), rtol=1e-6, atol=1e-6)
