"""Fixtures shared by every test area."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cpo.sample_data import bundled_customers
from cpo.sample_data.customers import generate_customers


@pytest.fixture
def customers_frame() -> pd.DataFrame:
    """200 synthetic customers as typed data (the generator's output)."""
    return generate_customers(200, seed=7)


@pytest.fixture
def customers_csv(tmp_path: Path) -> Path:
    """A copy of the bundled sample customers as a CSV in a temporary folder."""
    target = tmp_path / "customers.csv"
    target.write_bytes(bundled_customers().read_bytes())
    return target


def rewrite_csv(path: Path, edit) -> Path:
    """Read a CSV as text columns, apply ``edit(frame)``, and write it back."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    edit(frame)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def edit_csv():
    """The :func:`rewrite_csv` helper as a fixture."""
    return rewrite_csv
