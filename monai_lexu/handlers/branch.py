"""Branch a shared base model into the shifted-weight members of a calibrated ensemble at a given epoch."""

from __future__ import annotations

import logging
from typing import Any

from monai.utils import IgniteInfo, min_version, optional_import

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")

__all__ = ["BranchMembers"]

logger = logging.getLogger(__name__)


class BranchMembers:
    """Phase switch of a :class:`~monai_lexu.networks.SharedBaseEnsemble` and its parametric loss.

    Epochs ``1 .. branch_epoch`` train the shared base with ``w_DSC`` (the loss's ``base_w``; ``loss.shared`` True);
    at the start of epoch ``branch_epoch + 1`` the network copies the base's weights and optimiser state into every
    member (:meth:`SharedBaseEnsemble.branch`) and the loss switches to the members' shifted weights (the paper:
    ``branch_epoch`` = 3/4 of the epochs). The phase is part of the network's state dict, so a run resumed from
    ``checkpoint.pt`` continues in the right phase; the loss follows the network at every epoch start.

    Args:
        network: the :class:`SharedBaseEnsemble`.
        loss: the :class:`ParametricCalibrationLoss` (its ``shared`` attribute is set).
        optimizer: the optimiser whose per-parameter state is copied at the branch.
        branch_epoch: last epoch of the shared phase (``>= epochs``: never branch, i.e. only the base is trained).
    """

    def __init__(self, network: Any, loss: Any, optimizer: Any, branch_epoch: int) -> None:
        self.network = network
        self.loss = loss
        self.optimizer = optimizer
        self.branch_epoch = int(branch_epoch)

    def attach(self, engine: Any) -> None:
        """Attach to a trainer (``EPOCH_STARTED``)."""
        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Any) -> None:
        net = getattr(self.network, "module", self.network)  # DDP wraps the network
        if engine.state.epoch > self.branch_epoch and net.is_shared:
            net.branch(self.optimizer)
            logger.info(
                "epoch %d: the shared base model branches into %d members with shifted loss weights",
                engine.state.epoch,
                net.num_members,
            )
        self.loss.shared = net.is_shared
