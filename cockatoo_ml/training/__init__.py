"""Training: tokenize/collate, masked multi-label loss, metrics, thresholds, telemetry, report, and ``run``
(which wires the ``transformers`` Trainer)."""
