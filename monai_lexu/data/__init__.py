"""monai_lexu.data."""
