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
