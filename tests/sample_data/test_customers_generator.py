"""The synthetic customer generator: deterministic, valid, realistically correlated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cpo.customers import load_customers
from cpo.sample_data import bundled_customers
from cpo.sample_data.customers import COLUMNS, generate_customers, write_customers


def test_bundled_customers_are_reproduced_byte_for_byte(tmp_path: Path):
    out = write_customers(500, tmp_path / "customers.csv", seed=42)
    assert out.read_bytes() == bundled_customers().read_bytes()


def test_same_seed_same_data_other_seed_other_data():
    first = generate_customers(300, seed=1)
    pd.testing.assert_frame_equal(first, generate_customers(300, seed=1))
    assert not first.equals(generate_customers(300, seed=2))


def test_generated_data_passes_validation(tmp_path: Path):
    path = write_customers(2000, tmp_path / "c.csv", seed=9)
    loaded = load_customers(path)
    assert list(loaded.frame.columns) == COLUMNS
    assert len(loaded.frame) == 2000 and loaded.rejected.empty


def test_parquet_output_round_trips(tmp_path: Path):
    path = write_customers(1000, tmp_path / "c.parquet", seed=9)
    assert len(load_customers(path).frame) == 1000


def test_emails_use_reserved_domains_only():
    frame = generate_customers(3000, seed=4)
    domains = frame["email"].str.split("@").str[1].unique()
    assert set(domains) <= {"example.com", "example.org", "example.net"}
    assert frame["email"].is_unique and frame["customer_id"].is_unique


def test_correlations_are_realistic():
    frame = generate_customers(20_000, seed=11)
    by_tier = frame.groupby("tier")[["purchase_frequency", "avg_order_value"]].mean()
    assert by_tier.loc["Gold", "purchase_frequency"] > by_tier.loc["Silver", "purchase_frequency"]
    assert by_tier.loc["Silver", "purchase_frequency"] > by_tier.loc["Bronze", "purchase_frequency"]
    assert by_tier.loc["Gold", "avg_order_value"] > by_tier.loc["Bronze", "avg_order_value"]
    assert (frame["historical_click_rate"] < frame["historical_open_rate"]).all()
    recent = frame["last_engagement_days"] <= 30
    assert (
        frame.loc[recent, "historical_open_rate"].mean()
        > frame.loc[~recent, "historical_open_rate"].mean() + 0.1
    )
    correlation = np.corrcoef(frame["last_engagement_days"], frame["historical_open_rate"])[0, 1]
    assert correlation < -0.3


def test_chunked_generation_is_prefix_stable_across_chunks(monkeypatch):
    import cpo.sample_data.customers as module

    monkeypatch.setattr(module, "CHUNK_ROWS", 100)
    chunked = module.generate_customers(250, seed=5)
    assert len(chunked) == 250 and chunked["customer_id"].is_unique
    assert chunked["customer_id"].iloc[-1] == "C000250"
