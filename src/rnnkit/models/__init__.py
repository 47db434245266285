"""Models: one module per task."""
