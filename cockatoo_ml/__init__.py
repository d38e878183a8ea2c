"""Cockatoo ML: train and serve a multi-label text moderation classifier."""

__version__ = "0.1.0"
