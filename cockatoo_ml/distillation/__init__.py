"""Distillation: a cheap student trained on a model's own scores, and the bands where it is sure (the cascade)."""
