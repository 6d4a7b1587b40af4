"""SharedBaseEnsemble + BranchMembers: one base model for 3/4 of training, then members with shifted loss weights."""

from __future__ import annotations

from functools import partial

import torch
from ignite.engine import Engine, Events

from monai_lexu.handlers import BranchMembers
from monai_lexu.losses import ParametricCalibrationLoss, shifted_loss_weights
from monai_lexu.networks import MultiHeadUNet, SharedBaseEnsemble


def _net() -> SharedBaseEnsemble:
    member = partial(MultiHeadUNet, 2, 1, 1, backbone="plain", features=(4, 8), heads="last")
    return SharedBaseEnsemble(member, num_members=3, seed=0)


def test_shared_phase_equals_the_base_model_then_branches():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 16, 16)
    y = (torch.rand(2, 1, 16, 16) > 0.5).float()
    net = _net()
    base = MultiHeadUNet(2, 1, 1, backbone="plain", features=(4, 8), heads="last")
    base.load_state_dict(net.members[0].state_dict())
    loss = ParametricCalibrationLoss(w=shifted_loss_weights(-0.5, [-1, 0, 1], 1), num_heads=3, base_w=-0.5)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    opt_base = torch.optim.Adam(base.parameters(), lr=1e-2)
    ref_loss = ParametricCalibrationLoss(w=-0.5)

    def step(engine, _):
        opt.zero_grad()
        value = loss(net(x), y)
        value.backward()
        opt.step()
        if net.is_shared:  # the base model trained alone sees exactly the same losses and updates
            opt_base.zero_grad()
            ref = ref_loss(base(x), y)
            ref.backward()
            opt_base.step()
            assert torch.allclose(value, ref, atol=1e-6)
        return value.item()

    engine = Engine(step)
    BranchMembers(net, loss, opt, branch_epoch=2).attach(engine)
    seen = []
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: seen.append((e.state.epoch, net.is_shared, loss.shared)))
    engine.run(range(2), max_epochs=2)
    assert seen == [(1, True, True), (2, True, True)]
    # same function (conv biases in front of a norm layer have no true gradient: Adam turns their float noise into
    # arbitrary steps, so the parameters themselves are compared through the outputs)
    with torch.no_grad():
        assert torch.allclose(net.members[0](x), base(x), atol=1e-4)
    engine.run(range(2), max_epochs=4)
    assert not net.is_shared and not loss.shared
    out = net(x)
    assert out.shape == (2, 3, 16, 16)
    assert not torch.allclose(out[:, 0], out[:, 2])  # members with w = -1.5 and 0.5 have moved apart
    assert set(net.state_dict()) >= {"shared"}
