"""GuardedInferenceEvaluator.log_written: what was written where, one line per input, capped."""

from __future__ import annotations

import logging

from monai_lexu.engines.inference import SUMMARY_FILE, GuardedInferenceEvaluator


def test_written_files_are_listed_and_capped(tmp_path, caplog):
    evaluator = GuardedInferenceEvaluator.__new__(GuardedInferenceEvaluator)  # only the log of its records
    evaluator.output_dir = tmp_path
    evaluator.written = [
        {"input": {"ct": f"/in/c{i}__CT.nii.gz"}, "files": [f"c{i}__CT_prob.nii.gz", f"c{i}__CT_unc.nii.gz"]}
        for i in range(3)
    ]
    with caplog.at_level(logging.INFO, logger="monai_lexu.engines.inference"):
        evaluator.log_written(max_lines=2)
    assert caplog.records[-1].getMessage() == (
        f"inference wrote into {tmp_path}:\n"
        "  c0__CT.nii.gz: c0__CT_prob.nii.gz, c0__CT_unc.nii.gz\n"
        "  c1__CT.nii.gz: c1__CT_prob.nii.gz, c1__CT_unc.nii.gz\n"
        f"  ... and 1 more inputs (all in {SUMMARY_FILE})"
    )
