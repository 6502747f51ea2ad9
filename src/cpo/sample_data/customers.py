"""Deterministic, vectorized generator of synthetic customers.

The generative story (documented so a data scientist can reason about it):

1. Each customer has a hidden lifecycle stage: ``new`` (15%), ``active`` (60%)
   or ``lapsed`` (25%).
2. Tier depends on the stage: active customers are more often Gold, new ones
   mostly Bronze.
3. Purchase frequency (purchases/year) and average order value are log-normal
   with medians that rise with tier (Gold buys more, and more often); lapsed
   customers buy about half as often; new customers have 0.5-2 purchases.
4. Days since last engagement: new 1-45, active a gamma around two weeks
   (under 90), lapsed 91-365.
5. Historical open rate is Beta-distributed with a mean that falls with days
   since last engagement (recent customers engage more) and rises slightly with
   tier; click rate is the open rate times a Beta(~0.22) click-to-open share, so
   it is always below the open rate.

Names come from fixed synthetic lists and emails use only the reserved
``example.com``/``example.org``/``example.net`` domains (RFC 2606). Generation is
chunked (one million rows per chunk, each with its own seeded generator), so any
N fits in memory and the same (N, seed) always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from cpo.runfiles import escape_formulas

CHUNK_ROWS = 1_000_000

FIRST_NAMES = [
    "Avery",
    "Blake",
    "Casey",
    "Dana",
    "Elliot",
    "Frankie",
    "Gray",
    "Harper",
    "Indy",
    "Jordan",
    "Kai",
    "Logan",
    "Morgan",
    "Noel",
    "Oakley",
    "Parker",
    "Quinn",
    "Riley",
    "Sage",
    "Taylor",
    "Umi",
    "Val",
    "Wren",
    "Xan",
    "Yael",
    "Zion",
    "Amara",
    "Bruno",
    "Celia",
    "Dmitri",
    "Esme",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Luca",
    "Mila",
    "Nico",
    "Olga",
    "Pablo",
    "Rosa",
    "Soren",
    "Tess",
    "Ugo",
    "Vera",
    "Wim",
    "Yara",
    "Zeno",
    "Anika",
    "Bodhi",
    "Cleo",
    "Dario",
    "Elan",
    "Farah",
    "Gideon",
    "Hana",
    "Ivo",
    "Juno",
    "Keanu",
    "Lena",
    "Mateo",
    "Nadia",
    "Orin",
    "Priya",
    "Rafael",
    "Selma",
    "Tomas",
    "Uma",
    "Viktor",
    "Willa",
    "Yusuf",
    "Zara",
    "Aiko",
    "Bastian",
    "Carmen",
    "Devi",
    "Emil",
    "Fiona",
    "Goran",
    "Hedda",
    "Idris",
    "Jana",
    "Kofi",
    "Lior",
    "Maren",
    "Nils",
    "Odile",
    "Pavel",
    "Rhea",
    "Silas",
    "Tova",
]
LAST_NAMES = [
    "Abbott",
    "Baker",
    "Carver",
    "Dalton",
    "Ellis",
    "Fischer",
    "Garner",
    "Hale",
    "Ibarra",
    "Jensen",
    "Keller",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quintero",
    "Rahman",
    "Sorensen",
    "Takahashi",
    "Underwood",
    "Varga",
    "Whitlock",
    "Xu",
    "Yamada",
    "Zielinski",
    "Alvarez",
    "Bishop",
    "Castellano",
    "Drummond",
    "Eriksen",
    "Fontaine",
    "Gallagher",
    "Haddad",
    "Iversen",
    "Jovanovic",
    "Kowalski",
    "Laurent",
    "Mbeki",
    "Novak",
    "Oyelaran",
    "Pereira",
    "Rossi",
    "Santos",
    "Tanaka",
    "Ueda",
    "Vasquez",
    "Weller",
    "Yilmaz",
    "Zhang",
]
LOCATIONS = [
    "Seattle, WA",
    "Portland, OR",
    "Denver, CO",
    "Boulder, CO",
    "Salt Lake City, UT",
    "Austin, TX",
    "Chicago, IL",
    "Minneapolis, MN",
    "Boston, MA",
    "Burlington, VT",
    "New York, NY",
    "Philadelphia, PA",
    "Atlanta, GA",
    "Asheville, NC",
    "San Diego, CA",
    "San Francisco, CA",
    "Sacramento, CA",
    "Phoenix, AZ",
    "Boise, ID",
    "Anchorage, AK",
]
LOCATION_WEIGHTS = np.array([9, 7, 8, 3, 4, 6, 7, 4, 6, 2, 9, 5, 5, 2, 5, 6, 3, 4, 3, 2], float)
DOMAINS = np.array(["example.com", "example.org", "example.net"])
TIERS = np.array(["Gold", "Silver", "Bronze"])
STAGES = ("new", "active", "lapsed")
STAGE_SHARES = np.array([0.15, 0.60, 0.25])
#: P(tier | stage), rows in STAGES order, columns in TIERS order.
TIER_GIVEN_STAGE = np.array([[0.02, 0.18, 0.80], [0.25, 0.35, 0.40], [0.12, 0.33, 0.55]])
FREQ_MEDIAN = np.array([12.0, 6.0, 3.0])
AOV_MEDIAN = np.array([160.0, 90.0, 55.0])

COLUMNS = [
    "customer_id",
    "first_name",
    "email",
    "age",
    "location",
    "tier",
    "purchase_frequency",
    "avg_order_value",
    "last_engagement_days",
    "historical_open_rate",
    "historical_click_rate",
]


def generate_customers(n: int, seed: int = 42) -> pd.DataFrame:
    """Return ``n`` synthetic customers as a DataFrame (deterministic in n, seed)."""
    chunks = list(iter_customer_chunks(n, seed))
    if not chunks:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    return pd.concat(chunks, ignore_index=True)


def iter_customer_chunks(n: int, seed: int = 42) -> Iterator[pd.DataFrame]:
    """Yield the customers in chunks of at most :data:`CHUNK_ROWS` rows."""
    if n < 0:
        raise ValueError("number of customers must be >= 0")
    width = max(6, len(str(n)))
    for index, start in enumerate(range(0, n, CHUNK_ROWS)):
        size = min(CHUNK_ROWS, n - start)
        rng = np.random.default_rng([seed, index])
        yield _chunk(rng, np.arange(start + 1, start + size + 1), width)


def _chunk(rng: np.random.Generator, numbers: np.ndarray, width: int) -> pd.DataFrame:
    """Generate one chunk of customers numbered ``numbers``."""
    size = numbers.size
    stage = rng.choice(3, size=size, p=STAGE_SHARES)
    tier_index = _tier_from_stage(rng, stage)
    frequency = _purchase_frequency(rng, stage, tier_index)
    days = _last_engagement_days(rng, stage)
    open_rate, click_rate = _engagement_rates(rng, days, tier_index)
    first, email = _names_and_emails(rng, numbers)
    age = np.clip(np.round(rng.normal(42, 13, size) + 4 * (tier_index == 0)), 18, 85)
    aov = AOV_MEDIAN[tier_index] * np.exp(rng.normal(0, 0.35, size))
    locations = rng.choice(len(LOCATIONS), size=size, p=LOCATION_WEIGHTS / LOCATION_WEIGHTS.sum())
    return pd.DataFrame(
        {
            "customer_id": pd.Series(numbers).map(lambda i: f"C{i:0{width}d}"),
            "first_name": first,
            "email": email,
            "age": age.astype(np.int64),
            "location": np.asarray(LOCATIONS, dtype=object)[locations],
            "tier": TIERS[tier_index].astype(object),
            "purchase_frequency": np.round(frequency, 1),
            "avg_order_value": np.round(aov, 2),
            "last_engagement_days": days,
            "historical_open_rate": np.round(open_rate, 4),
            "historical_click_rate": np.round(click_rate, 4),
        }
    )


def _tier_from_stage(rng: np.random.Generator, stage: np.ndarray) -> np.ndarray:
    """Draw a tier index per customer from P(tier | stage) by inverse CDF."""
    cumulative = np.cumsum(TIER_GIVEN_STAGE, axis=1)[stage]
    draws = rng.random(stage.size)[:, None]
    return (draws > cumulative).sum(axis=1).clip(0, 2)


def _purchase_frequency(
    rng: np.random.Generator, stage: np.ndarray, tier_index: np.ndarray
) -> np.ndarray:
    """Purchases per year: log-normal by tier; halved when lapsed; 0.5-2 when new."""
    frequency = FREQ_MEDIAN[tier_index] * np.exp(rng.normal(0, 0.45, stage.size))
    frequency = np.where(stage == 2, frequency * 0.5, frequency)
    new_frequency = rng.uniform(0.5, 2.0, stage.size)
    return np.maximum(np.where(stage == 0, new_frequency, frequency), 0.1)


def _last_engagement_days(rng: np.random.Generator, stage: np.ndarray) -> np.ndarray:
    """Days since the last open or click, by lifecycle stage."""
    new = rng.integers(1, 46, stage.size)
    active = np.clip(np.round(rng.gamma(1.6, 12.0, stage.size)) + 1, 1, 89)
    lapsed = rng.integers(91, 366, stage.size)
    return np.select([stage == 0, stage == 1], [new, active], lapsed).astype(np.int64)


def _engagement_rates(
    rng: np.random.Generator, days: np.ndarray, tier_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Open rate falls with days since engagement; click rate = open x click-to-open."""
    mean_open = 0.08 + 0.40 * np.exp(-days / 120.0) + 0.04 * (tier_index == 0)
    concentration = 25.0
    open_rate = rng.beta(mean_open * concentration, (1 - mean_open) * concentration)
    click_to_open = rng.beta(0.22 * 18, 0.78 * 18, days.size)
    return open_rate, open_rate * click_to_open


def _names_and_emails(
    rng: np.random.Generator, numbers: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic first names and reserved-domain emails (unique by customer number)."""
    first = np.asarray(FIRST_NAMES, dtype=object)[rng.integers(0, len(FIRST_NAMES), numbers.size)]
    last = np.asarray(LAST_NAMES, dtype=object)[rng.integers(0, len(LAST_NAMES), numbers.size)]
    domain = DOMAINS[rng.integers(0, DOMAINS.size, numbers.size)].astype(object)
    local = pd.Series(first).str.lower() + "." + pd.Series(last).str.lower()
    email = local + pd.Series(numbers).astype(str) + "@" + pd.Series(domain)
    return first, email.to_numpy(dtype=object)


def write_customers(n: int, out: Path, seed: int = 42) -> Path:
    """Write ``n`` customers to ``out`` (``.csv`` or ``.parquet``), chunk by chunk."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        try:
            for chunk in iter_customer_chunks(n, seed):
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                writer = writer or pq.ParquetWriter(out, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            generate_customers(0).to_parquet(out, index=False)
        return out
    with out.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(COLUMNS) + "\n")
        for chunk in iter_customer_chunks(n, seed):
            escape_formulas(chunk).to_csv(handle, header=False, index=False, lineterminator="\n")
    return out
