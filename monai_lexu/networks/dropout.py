"""Element-wise dropout with a cheaper random mask on CPU (same semantics as ``torch.nn.Dropout``).

``torch.nn.Dropout`` draws its mask with ``bernoulli_``, which on CPU costs about 2.7x a ``uniform_`` fill of the same
tensor (measured: 3.4 vs 1.3 ms for a 32 x 128 x 128 activation, 1 thread) and was 41 % of a Monte-Carlo dropout
pass of the CPU recipe network. :class:`UniformMaskDropout` draws ``u ~ U[0, 1)`` per element (``torch.rand``, the
global torch generator) and keeps an element iff ``u >= p``, scaling kept elements by ``1 / (1 - p)``: the same
element-wise Bernoulli(``1 - p``) mask and scaling as ``nn.Dropout`` (keep probability exact to the 2^-24 resolution
of float32 uniforms), from a different random stream, so masks are equal in distribution, not bit for bit.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["UniformMaskDropout"]


class UniformMaskDropout(nn.Dropout):
    """``nn.Dropout`` (element-wise, inverted scaling) whose training-mode mask comes from ``torch.rand``.

    No parameters or buffers: a state dict is unchanged, and an ``nn.Dropout`` instance can be switched to this class
    and back (``module.__class__``), which :func:`monai_lexu.inferers.mc_dropout` does for Monte-Carlo inference.

    Shapes:
        any input; output of the same shape and dtype.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Drop each element with probability ``p`` and scale the rest by ``1 / (1 - p)`` in training mode."""
        if not self.training or self.p == 0.0:
            return input
        if self.p == 1.0:
            return input.mul_(0.0) if self.inplace else torch.zeros_like(input)
        keep = torch.rand_like(input).ge_(self.p).mul_(1.0 / (1.0 - self.p))  # 0 or 1/(1-p), one buffer
        if self.inplace:
            return input.mul_(keep)
        return input * keep if input.requires_grad and torch.is_grad_enabled() else keep.mul_(input)
