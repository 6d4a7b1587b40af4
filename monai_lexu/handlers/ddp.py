"""DDP helpers of the multi-GPU configs: which training handlers run on every rank, and the end of the process group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["end_process_group", "handlers_for_rank"]

#: Handlers that take part in collective operations or in the training loop's control flow, so every rank must run
#: them (otherwise the ranks' collectives pair up wrongly and the run hangs): validation (each rank evaluates its
#: share), the non-finite-loss stop (an all-reduce per iteration), the resumable checkpoint (every rank loads, rank 0
#: writes) and the Ctrl-C stop. A handler class may also declare ``all_ranks = True``.
EVERY_RANK = ("ValidationHandler", "StopOnNonFiniteLoss", "ResumableCheckpoint", "StopOnInterrupt")


def handlers_for_rank(handlers: Sequence[Any], rank: int) -> list[Any]:
    """The handlers of DDP rank ``rank``: all of them on rank 0; on the others those of :data:`EVERY_RANK` (by class
    name) or with a true ``all_ranks`` attribute, in their order. Logging, statistics and savers: rank 0 only.

    Selecting by position (``handlers[:3]``) broke silently when a handler was added in front: rank 1 then skipped
    the per-iteration all-reduce of :class:`~monai_lexu.handlers.StopOnNonFiniteLoss` and both ranks waited forever.
    """
    if rank == 0:
        return list(handlers)
    return [h for h in handlers if type(h).__name__ in EVERY_RANK or getattr(h, "all_ranks", False)]


def end_process_group() -> None:
    """End the default process group cleanly: wait for every rank (barrier), then destroy it; no-op without one.

    The configs' ``finalize`` calls it. Destroying right away let a rank that finished first (rank 1, which does not
    save checkpoints) tear down its gloo group while rank 0 was still writing the final weights; that rank then
    aborted about one run in four ("terminate called without an active exception", exit -6, torchrun failing the
    whole job although the weights were written).
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
