"""The inference server: ``model`` (load + batched scoring + windows), ``batcher`` (micro-batching),
``schemas`` (request/response models) and ``app`` (routes, errors, auth, metrics). ``app.py`` at the repository
root is what Hypercorn runs."""
