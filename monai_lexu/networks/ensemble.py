"""Deep Ensembles (Lakshminarayanan et al. 2017) as ONE network whose members are heads of the shared contract.

The ensemble's output is the concatenation of its members' head-major logits, ``(B, (sum_m K_m) * L, *S)``, so
:class:`monai_lexu.inferers.MultiHeadInferer` turns it into the same per-structure probability (mean over members)
and uncertainty (variance over members) as LEXU, and one checkpoint holds every member.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = ["DeepEnsemble", "FORWARD_MODES"]

FORWARD_MODES = ("loop", "vmap")


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
        forward_mode: ``"loop"`` (default): one member after the other; ``"vmap"``: all members in ONE vectorised
            call (``torch.func.stack_module_state`` + ``functional_call`` under ``torch.vmap``, which batches each
            convolution of the members into one grouped convolution; no per-member Python or kernel-launch overhead;
            needs members of identical architecture). Both give the same outputs (<= 1e-6; tested). Measured on
            CPU (benchmarks/README.md): the loop is the faster one there (CPU convolutions are compute-bound and the
            grouped convolution is not faster than ``N`` separate ones; stacking copies the parameters at every call);
            on a GPU ``"vmap"`` removes ``N - 1`` launches of every kernel, which is what matters for small networks and
            small batches. ``"vmap"`` is an inference path: in training mode the loop runs (the stacked parameters
            are copies, so gradients and batch-norm statistics must go through the members themselves). The state dict
            (``members.<m>.*``) is the same in both modes.

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
        forward_mode: str = "loop",
    ) -> None:
        super().__init__()
        if forward_mode not in FORWARD_MODES:
            raise ValueError(f"forward_mode must be one of {FORWARD_MODES}, got {forward_mode!r}.")
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
        self.forward_mode = forward_mode
        self._template: tuple[nn.Module, ...] = ()  # stateless (meta) copy of a member for "vmap"; not a submodule

    @torch.jit.unused
    def _forward_vmap(self, x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, stack_module_state

        members = list(self.members)
        if len({type(m) for m in members}) != 1 or len(set(self.member_heads)) != 1:
            raise ValueError("DeepEnsemble(forward_mode='vmap') needs members of one architecture.")
        if not self._template:
            self._template = (copy.deepcopy(members[0]).to("meta").eval(),)
        params, buffers = stack_module_state(members)  # type: ignore[arg-type]

        def call(p: dict, b: dict, inp: torch.Tensor) -> torch.Tensor:
            return functional_call(self._template[0], (p, b), (inp,))

        out = torch.vmap(call, in_dims=(0, 0, None))(params, buffers, x)  # (N, B, K_m * L, *S)
        return out.transpose(0, 1).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run every member on ``x`` ``(B, C, *S)`` and concatenate their logits along channels."""
        if self.forward_mode == "vmap" and not self.training and not torch.jit.is_scripting():
            return self._forward_vmap(x)  # TorchScript (ckpt_export) keeps the loop
        return torch.cat([m(x) for m in self.members], dim=1)
