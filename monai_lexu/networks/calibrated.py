"""The members of a calibrated ensemble (Buddenkotte et al.) as ONE network that starts as one shared base model.

The paper's recipe: train one model with ``w_DSC`` for the first three quarters of training, then let each member
continue from that checkpoint (weights and optimiser state) with ``w_DSC + delta_k`` for the last quarter.
:class:`SharedBaseEnsemble` does this in one run and one checkpoint: while ``shared`` (phase 1) only member 0 is
evaluated and its logits are repeated for every member; :meth:`SharedBaseEnsemble.branch` (called by
:class:`monai_lexu.handlers.BranchMembers` at the switch epoch) copies member 0's weights and optimiser state into
every other member, after which each member trains on its own. The phase is a buffer of the state dict, so a resumed
run and inference see the right one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from monai_lexu.networks.ensemble import DeepEnsemble

__all__ = ["SharedBaseEnsemble"]


class SharedBaseEnsemble(DeepEnsemble):
    """``num_members`` copies of one base network that branch into separately trained members.

    Args:
        member: factory of one member network (``(B, C, *S)`` -> ``(B, K_m * L, *S)`` head-major logits).
        num_members: ``K`` (the paper: 7 shifts ``-3..3``).
        seed: seed of the base initialisation (every member starts from the same weights).

    Attributes:
        shared: bool buffer; True until :meth:`branch` (phase 1: one base model).

    Shapes:
        input ``(B, C, *S)`` -> ``(B, num_heads * L, *S)``, member-major (as :class:`DeepEnsemble`).
    """

    __jit_unused_properties__ = ["is_shared"]

    def __init__(self, member: Callable[[], nn.Module], num_members: int = 7, seed: int | None = 0) -> None:
        if num_members < 1:
            raise ValueError(f"num_members must be >= 1, got {num_members}.")
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(int(seed))
            first = member()
        super().__init__(members=[first] + [copy.deepcopy(first) for _ in range(num_members - 1)])
        self.register_buffer("shared", torch.tensor(True))

    @property
    def is_shared(self) -> bool:
        """Whether the members are still one shared base model."""
        return bool(self.shared.item())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Member 0 repeated while shared, else every member; concatenated along channels."""
        if bool(self.shared):
            out = self.members[0](x)
            return torch.cat([out for _ in range(self.num_members)], dim=1)
        return torch.cat([m(x) for m in self.members], dim=1)

    @torch.no_grad()
    def branch(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Copy member 0's weights (and its optimiser state, e.g. Adam's moments) into every other member.

        Args:
            optimizer: the training optimiser; the state of each member-0 parameter is deep-copied to the matching
                parameter of every other member (same order of ``parameters()``).
        """
        if not self.is_shared:
            return
        base = self.members[0]
        base_params = list(base.parameters())
        state = base.state_dict()
        for m in self.members[1:]:
            m.load_state_dict(state)
            if optimizer is not None:
                for p0, p in zip(base_params, m.parameters()):
                    if p0 in optimizer.state:
                        optimizer.state[p] = copy.deepcopy(optimizer.state[p0])
        self.shared.fill_(False)
