"""monai_lexu.handlers.handlers_for_rank: which training handlers every DDP rank runs."""

from __future__ import annotations

from monai.handlers import StatsHandler, ValidationHandler

from monai_lexu.handlers import ResumableCheckpoint, StopOnNonFiniteLoss, handlers_for_rank


class _Logger:
    """A rank-0-only handler standing in for anything new put in front of the list."""


class _Collective:
    all_ranks = True


def test_rank_zero_runs_all_and_the_others_the_collective_ones_whatever_their_position(tmp_path):
    stop = StopOnNonFiniteLoss()
    validation = ValidationHandler(interval=1, validator=None)
    checkpoint = ResumableCheckpoint(save_dir=str(tmp_path), save_dict={})
    collective, stats, logger = _Collective(), StatsHandler(), _Logger()
    handlers = [logger, stats, stop, validation, collective, checkpoint]
    assert handlers_for_rank(handlers, 0) == handlers
    assert handlers_for_rank(handlers, 1) == [stop, validation, collective, checkpoint]


def test_end_process_group_waits_then_destroys_and_is_a_no_op_without_a_group(tmp_path):
    import torch.distributed as dist

    from monai_lexu.handlers import end_process_group

    end_process_group()  # no group: nothing to do, no error
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert dist.is_initialized()
    end_process_group()  # a one-rank barrier returns at once, then the group is gone
    assert not dist.is_initialized()
