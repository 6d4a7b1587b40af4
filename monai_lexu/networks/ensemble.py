"""Deep Ensembles (Lakshminarayanan et al. 2017) as ONE network whose members are heads of the shared contract.

The ensemble's output is the concatenation of its members' head-major logits, ``(B, (sum_m K_m) * L, *S)``, so
:class:`monai_lexu.inferers.MultiHeadInferer` turns it into the same per-structure probability (mean over members)
and uncertainty (variance over members) as LEXU, and one checkpoint holds every member.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = ["DeepEnsemble"]


class DeepEnsemble(nn.Module):
    """``num_members`` independently initialised networks evaluated side by side.

    Member ``m`` is built by ``member()`` with the torch RNG seeded to ``seed + m`` (inside ``torch.random.fork_rng``,
    so the global RNG state is left untouched); the members therefore differ only by their random initialisation, as
    in the LEXU paper's DE baseline (5 single-head U-Nets trained on the soft label).

    Training all members in one run: the members share no parameter, so a loss that is the SUM of the members' losses
    (e.g. ``MultiHeadRaterLoss(num_heads=num_members, aux_weight=1.0)``: the sum of the members' BCEs
    against the soft label) gives every member exactly the gradient it would get alone, and Adam's element-wise update
    keeps the members' trajectories independent. The one deliberate difference from training the members in separate
    runs is that all members see the same mini-batch order (Lakshminarayanan et al. also reshuffle per member); the
    diversity comes from the initialisation only. Memory during training is that of all members together.

    Args:
        member: factory returning one member network (e.g. a MONAI config item with ``"_mode_": "callable"``); each
            member maps ``(B, C, *S)`` to head-major logits ``(B, K_m * L, *S)`` and may expose ``num_heads``
            (``K_m``, default 1).
        num_members: number of members ``N`` (the LEXU paper uses 5).
        seed: base seed of the members' initialisation; ``None`` draws from the current global RNG (no forking).
        members: alternatively, already built member networks (then ``member``/``num_members`` are ignored), e.g. to
            assemble separately trained networks.

    Attributes:
        num_heads: total number of heads ``sum_m K_m`` of the concatenated output (``N`` for single-head members).

    Shapes:
        input ``(B, C, *S)`` -> output ``(B, num_heads * L, *S)``; channels of member ``m`` come before those of
        member ``m + 1``.

    Example::

        from functools import partial
        net = DeepEnsemble(partial(MultiHeadUNet, spatial_dims=2, in_channels=3, out_channels=2, heads="last"), 5, 27)
        prob_unc = MultiHeadInferer(net.num_heads)(torch.rand(1, 3, 64, 64), net)  # (1, 4, 64, 64)
    """

    def __init__(
        self,
        member: Callable[[], nn.Module] | None = None,
        num_members: int = 5,
        seed: int | None = 0,
        members: Sequence[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if members is None:
            if member is None:
                raise ValueError("DeepEnsemble needs either a member factory or a list of members.")
            if num_members < 1:
                raise ValueError(f"num_members must be >= 1, got {num_members}.")
            built: list[nn.Module] = []
            for m in range(num_members):
                if seed is None:
                    built.append(member())
                    continue
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(seed) + m)
                    built.append(member())
            members = built
        members = list(members)
        if not members or not all(isinstance(m, nn.Module) for m in members):
            raise ValueError("DeepEnsemble members must be a non-empty sequence of torch.nn.Module.")
        self.members = nn.ModuleList(members)
        self.member_heads = [int(getattr(m, "num_heads", 1)) for m in self.members]
        self.num_heads = sum(self.member_heads)
        self.num_members = len(self.members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run every member on ``x`` ``(B, C, *S)`` and concatenate their logits along channels."""
        return torch.cat([m(x) for m in self.members], dim=1)
