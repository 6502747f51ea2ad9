"""Deterministic generators for the bundled sample data."""
