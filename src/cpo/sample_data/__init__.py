"""The bundled sample data: where it lives and how to copy it.

The approved content exists only as its packaged JSON files (``data/sample/content``);
:mod:`cpo.sample_data.customers` generates synthetic customers deterministically.
"""

from __future__ import annotations

import shutil
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


def copy_bundled_content(out_dir: Path) -> list[Path]:
    """Copy the bundled approved-content documents into ``out_dir``.

    The packaged JSON files are the only source of the sample content; the copies
    are byte for byte the same. Other files in ``out_dir`` are left alone.

    Args:
        out_dir: The folder to write into; created when missing.

    Returns:
        The written paths, in document-id (file-name) order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        Path(shutil.copyfile(source, out_dir / source.name))
        for source in sorted(bundled_content().glob("*.json"))
    ]
