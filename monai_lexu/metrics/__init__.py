"""monai_lexu.metrics."""
