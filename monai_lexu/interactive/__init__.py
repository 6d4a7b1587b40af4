"""monai_lexu.interactive: MedUHIP's human-in-the-loop refinement with simulated clinicians.

- :mod:`~monai_lexu.interactive.candidates`: K-means of the N predicted masks into K candidate regions.
- :mod:`~monai_lexu.interactive.clicks`: the simulated clinicians (random select, clinician disagreement, last
  wrong, MedUHIP's candidate choice); every definition is ours and documented there.
- :mod:`~monai_lexu.interactive.targets`: the clinician's target (a random subset of raters, fused, binarised).
- :mod:`~monai_lexu.interactive.loop`: the interaction loop (Dice after k interactions) and the three-stage
  training step.
- :mod:`~monai_lexu.interactive.evaluation`: Dice after k, Table 1, Table 3 (NoC), Table 4 and the case figure.

Dice after k and the number of clicks (NoC) are in :mod:`monai_lexu.metrics.interaction`.
"""

from __future__ import annotations

from monai_lexu.interactive.candidates import CandidateRegions, kmeans_candidates, select_candidate
from monai_lexu.interactive.clicks import (
    CLICK_STRATEGIES,
    Click,
    candidate_click,
    disagreement_click,
    last_wrong_click,
    random_select_click,
)
from monai_lexu.interactive.evaluation import (
    evaluate_interactive,
    interactive_report_markdown,
    plot_interaction_case,
    run_interactive_evaluation,
    sampling_diagnostics,
)
from monai_lexu.interactive.loop import (
    ABLATIONS,
    InteractionRecord,
    clicks_to_tensors,
    meduhip_train_step,
    run_interaction,
)
from monai_lexu.interactive.targets import rater_subset_target

__all__ = [
    "ABLATIONS",
    "CLICK_STRATEGIES",
    "CandidateRegions",
    "Click",
    "InteractionRecord",
    "candidate_click",
    "clicks_to_tensors",
    "disagreement_click",
    "evaluate_interactive",
    "interactive_report_markdown",
    "kmeans_candidates",
    "last_wrong_click",
    "meduhip_train_step",
    "plot_interaction_case",
    "random_select_click",
    "rater_subset_target",
    "run_interaction",
    "run_interactive_evaluation",
    "sampling_diagnostics",
    "select_candidate",
]
