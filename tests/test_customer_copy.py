"""The customer file is read and validated once per run; later stages read the columnar copy."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.config import load_config
from cpo.customers import load_customers
from cpo.run_folder import CUSTOMERS_COPY, read_customer_copy
from cpo.run_inputs import load_run_customers, valid_customer_copy
from cpo.sample_data.customers import generate_customers
from cpo.stage_api import RunOptions


def _customer_file(folder: Path, rows: int = 160) -> Path:
    """A customer export of another shop: semicolon-separated, renamed id column, extra column."""
    frame = generate_customers(rows, seed=11).rename(columns={"customer_id": "Kundennummer"})
    frame["loyalty_card"] = ["yes" if i % 3 else "no" for i in range(rows)]
    path = folder / "kunden.csv"
    frame.to_csv(path, index=False, sep=";")
    return path


def _run(tmp_path: Path, customers: Path) -> Path:
    out = tmp_path / "run"
    flags = ["--customers", str(customers), "--map", "Kundennummer=customer_id"]
    result = CliRunner().invoke(cli, ["run", *flags, "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


def _context(run_dir: Path, customers: Path, **options: object) -> SimpleNamespace:
    """What valid_customer_copy reads of a RunContext."""
    run_options = RunOptions(
        customers=customers, column_map=(("Kundennummer", "customer_id"),), **options
    )
    manifest = {"inputs": {"customers": {"path": str(customers)}}}
    return SimpleNamespace(
        run_dir=run_dir, options=run_options, manifest=manifest, config=load_config()
    )


def test_later_stages_never_reparse_the_customer_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the segment stage parses the file: the copy feeds retrieve, assign, engage, analyze."""
    customers = _customer_file(tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a later stage parsed the customer file again")

    monkeypatch.setattr("cpo.run_inputs.load_customers", refuse)
    monkeypatch.setattr("cpo.experiment.analysis_stage.read_customer_attributes", refuse)
    run_dir = _run(tmp_path, customers)
    copy = read_customer_copy(run_dir)
    assert copy is not None
    expected = load_customers(customers, settings=_settings_with_map(), on_invalid="error").frame
    pd.testing.assert_frame_equal(copy.frame, expected)
    assert "loyalty_card" in copy.frame.columns  # extra columns travel with the copy


def _settings_with_map():
    from cpo.customer_settings import CustomerSettings

    return CustomerSettings(columns={"Kundennummer": "customer_id"})


def test_copy_is_used_only_while_its_source_is_unchanged(tmp_path: Path) -> None:
    customers = _customer_file(tmp_path)
    run_dir = _run(tmp_path, customers)
    ctx = _context(run_dir, customers)
    frame = valid_customer_copy(ctx, ["age", "tier"])
    assert frame is not None and list(frame.columns) == ["customer_id", "age", "tier"]
    assert frame["age"].dtype == "int64"

    assert valid_customer_copy(_context(run_dir, customers, on_invalid="skip")) is None
    assert valid_customer_copy(_context(run_dir, customers, encoding="latin-1")) is None

    edited = customers.read_text().replace(";Gold;", ";Silver;", 1)
    customers.write_text(edited)
    assert valid_customer_copy(ctx) is None
    reloaded = load_run_customers(ctx)  # falls back to reading and validating the file
    assert (reloaded["tier"] == "Silver").sum() == (
        load_customers(customers, settings=_settings_with_map()).frame["tier"] == "Silver"
    ).sum()


def test_damaged_copy_falls_back_to_the_file(tmp_path: Path) -> None:
    customers = _customer_file(tmp_path)
    run_dir = _run(tmp_path, customers)
    CUSTOMERS_COPY.path(run_dir).write_bytes(b"not parquet")
    ctx = _context(run_dir, customers)
    assert valid_customer_copy(ctx) is None
    assert len(load_run_customers(ctx)) == 160
