"""monai_lexu.networks."""
