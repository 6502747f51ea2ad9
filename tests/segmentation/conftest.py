"""Segmentation fixtures: synthetic customer bases of three other industries.

Each keeps the text columns, ages and email rates of the package's generator
(:func:`cpo.sample_data.customers.generate_customers`) and replaces the three
behaviour columns the default rules read with an industry's own shape:

* ``software``: a subscription app. Tiny order values (a few dollars), monthly
  (12/year) and annual (1/year) billing ties plus usage-based buyers, and very
  recent engagement (most customers active within a few days).
* ``grocery``: a grocery chain. Weekly-ish shoppers (dozens of purchases a year),
  mid-size baskets, days since the last visit short and shorter for frequent
  shoppers, plus a tail of lapsed customers.
* ``bank``: a retail bank. Few, large transactions a year and long engagement
  gaps (weeks to two years), longer for infrequent customers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from cpo.sample_data.customers import generate_customers


def software(count: int, seed: int) -> pd.DataFrame:
    """Subscription software: tiny orders, billing-cycle ties, very recent engagement."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(3, size=count, p=[0.55, 0.25, 0.20])
    frequency = np.select(
        [plan == 0, plan == 1], [12.0, 1.0], default=np.round(rng.gamma(2.0, 3.0, count), 1)
    )
    order_value = np.round(rng.lognormal(np.log(4.99), 0.6, count), 2)
    recent = rng.geometric(0.3, count) - 1
    days = np.where(rng.random(count) < 0.9, recent, rng.integers(10, 61, count))
    return _with_behaviour(count, seed, frequency, order_value, days)


def grocery(count: int, seed: int) -> pd.DataFrame:
    """Grocery chain: high frequency, recency that follows frequency, a lapsed tail."""
    rng = np.random.default_rng(seed)
    frequency = np.round(rng.gamma(3.0, 17.0, count) + 1, 1)
    order_value = np.round(rng.lognormal(np.log(45.0), 0.5, count), 2)
    gap = rng.exponential(365.0 / frequency)
    lapsed = rng.random(count) < 0.08
    days = np.where(lapsed, rng.integers(30, 200, count), np.round(gap)).astype(np.int64)
    return _with_behaviour(count, seed, frequency, order_value, days)


def bank(count: int, seed: int) -> pd.DataFrame:
    """Retail bank: few large transactions, long gaps that grow as frequency falls."""
    rng = np.random.default_rng(seed)
    frequency = np.round(rng.lognormal(np.log(2.0), 0.7, count), 2)
    order_value = np.round(rng.lognormal(np.log(2500.0), 0.9, count), 2)
    gap = rng.gamma(2.0, 90.0 / np.sqrt(frequency))
    days = np.clip(np.round(gap), 7, 720).astype(np.int64)
    return _with_behaviour(count, seed, frequency, order_value, days)


DISTRIBUTIONS = {"software": software, "grocery": grocery, "bank": bank}


@pytest.fixture
def industries() -> dict[str, Callable[[int, int], pd.DataFrame]]:
    """Industry name -> ``generator(count, seed)`` of customers (see the module docstring)."""
    return DISTRIBUTIONS


def _with_behaviour(
    count: int,
    seed: int,
    frequency: np.ndarray,
    order_value: np.ndarray,
    days: np.ndarray,
) -> pd.DataFrame:
    """Generated customers with the three behaviour columns replaced."""
    frame = generate_customers(count, seed=seed)
    frame["purchase_frequency"] = frequency.astype(float)
    frame["avg_order_value"] = order_value.astype(float)
    frame["last_engagement_days"] = days.astype(np.int64)
    return frame
