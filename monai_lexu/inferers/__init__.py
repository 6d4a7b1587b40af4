"""monai_lexu.inferers."""
