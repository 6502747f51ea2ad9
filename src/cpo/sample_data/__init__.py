"""Deterministic generators for the bundled sample data, and where it lives."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_dir() -> Path:
    """The folder of the bundled sample data inside the package."""
    return Path(str(resources.files("cpo") / "data" / "sample"))


def bundled_customers() -> Path:
    """The bundled sample customers CSV (500 synthetic customers)."""
    return sample_dir() / "customers.csv"


def bundled_content() -> Path:
    """The bundled approved-content folder (JSON documents)."""
    return sample_dir() / "content"
