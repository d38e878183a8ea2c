"""Bulk scoring (``score.py``): files of texts -> Parquet parts, on one machine or a Ray cluster."""
