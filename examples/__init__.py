"""Runnable examples; each runs offline from the repository root (``python -m examples.<name>``)."""
