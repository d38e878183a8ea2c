"""The inference core: load a model directory and score texts with it, window by window, with its cascade.

A shared layer: serving, evaluation, distillation and bulk scoring import it; it imports none of them.
"""
