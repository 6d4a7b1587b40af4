"""Command-line converters from raw data sets to monai-lexu datalists (one module per data set)."""
