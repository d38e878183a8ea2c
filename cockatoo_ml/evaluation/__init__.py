"""Evaluation stage: score a model directory or a server on labelled rows, beside baselines; write a report."""
