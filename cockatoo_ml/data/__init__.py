"""Data stage: sources -> raw files -> prepared ``datasets.DatasetDict``."""
