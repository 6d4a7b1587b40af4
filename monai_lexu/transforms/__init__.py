"""monai_lexu.transforms."""
