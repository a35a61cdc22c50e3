"""Reducers that run on an accelerator, one module per framework (each imports its framework)."""
