"""Shared metrics: what training, evaluation and distillation count and tune, in one place."""
