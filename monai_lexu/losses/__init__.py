"""monai_lexu.losses."""
