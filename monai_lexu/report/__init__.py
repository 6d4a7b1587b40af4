"""monai_lexu.report."""
