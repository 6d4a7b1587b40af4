"""monai_lexu.handlers."""
