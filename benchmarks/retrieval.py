"""Benchmark: approved-content loading, index build and query latency (sqlite_fts).

Generates N synthetic approved-content documents (3 paragraphs of templated
marketing copy each; each document is written for one audience and talks about
that audience's themes, with invented product names from a brand-sized vocabulary),
writes them as JSON files, then times:

* loading and validating the folder (``load_content``);
* building the SQLite FTS5 index from scratch, and the no-op rebuild when the
  content is unchanged (fingerprint check);
* ``search`` latency for segment-style queries (about 10 terms, as the retrieve
  stage builds them), short free-text queries, a category filter, and a worst case
  whose terms cover every audience (nearly every paragraph matches and is scored);
* ``retrieve_segment`` (search + threshold + per-document cap + fallback).

    python benchmarks/retrieval.py                  # 5,000 documents, 300 queries each
    python benchmarks/retrieval.py --documents 20000 --queries 1000
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import print_machine

from cpo.retrieval.content import LoadedContent, load_content
from cpo.retrieval.query import SegmentQuery, format_query, parse_query
from cpo.retrieval.service import retrieve_segment
from cpo.retrieval.settings import ContentSettings
from cpo.retrieval.sqlite_fts import SqliteFtsRetriever, fts_match

#: Themes per audience: copy written for a segment talks about that segment's themes.
THEMES: dict[str, list[str]] = {
    "High-Value Recent": [
        "premium",
        "vip",
        "exclusive",
        "loyalty",
        "early access",
        "members only",
        "flagship",
        "concierge",
    ],
    "At-Risk": [
        "win-back",
        "re-engagement",
        "lapsed",
        "we miss you",
        "come back",
        "welcome back",
        "been away",
        "returning customers",
    ],
    "New Customer": [
        "welcome",
        "onboarding",
        "first purchase",
        "getting started",
        "new customer",
        "beginner",
        "first order",
        "starter kit",
    ],
    "Standard": [
        "value",
        "seasonal",
        "everyday",
        "savings",
        "sale",
        "bundle",
        "essentials",
        "deal",
    ],
    "All": [
        "free shipping",
        "price match",
        "returns",
        "warranty",
        "repairs",
        "support",
        "gift card",
        "store pickup",
    ],
}
ADJECTIVES = [
    "lightweight",
    "waterproof",
    "packable",
    "durable",
    "warm",
    "breathable",
    "recycled",
    "versatile",
    "rugged",
    "compact",
    "insulated",
    "ventilated",
]
KINDS = [
    "tent",
    "sleeping bag",
    "rain jacket",
    "hiking boots",
    "daypack",
    "headlamp",
    "camp stove",
    "trekking poles",
    "base layer",
    "parka",
    "hammock",
    "camp chair",
    "water filter",
    "trail runners",
    "fleece",
    "gaiters",
    "bivy",
    "cook set",
]
SYLLABLES = [
    "al",
    "ber",
    "cor",
    "dra",
    "el",
    "fen",
    "gla",
    "hal",
    "ir",
    "jor",
    "kel",
    "lum",
    "mar",
    "nor",
    "ost",
    "pel",
    "qua",
    "ros",
    "sil",
    "tor",
    "ul",
    "ven",
    "wil",
    "yar",
]
CATEGORIES = ["product", "promotion", "support"]
AUDIENCE_WEIGHTS = {
    "All": 3,
    "High-Value Recent": 1,
    "At-Risk": 1,
    "New Customer": 1,
    "Standard": 2,
}


def product_names(rng: random.Random, count: int) -> list[str]:
    """Invented product names ("Kelmar 40 daypack"): a brand-sized vocabulary."""
    names = []
    for _ in range(count):
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).title()
        names.append(f"{word} {rng.randint(2, 90)} {rng.choice(KINDS)}")
    return names


def sentence(rng: random.Random, product: str, themes: list[str]) -> str:
    """One templated marketing sentence about a product and the document's themes."""
    theme = rng.choice(themes)
    templates = [
        f"The {rng.choice(ADJECTIVES)} {product} costs ${rng.randint(19, 499)} and ships "
        f"in {rng.randint(1, 7)} business days.",
        f"Customers who love {theme} offers can save {rng.randint(5, 40)}% on "
        f"the {product} through {rng.randint(1, 28)} March 2027.",
        f"The {product} is {rng.choice(ADJECTIVES)} and {rng.choice(ADJECTIVES)}, and "
        f"{theme} is part of every order.",
        f"Members earn {rng.randint(1, 4)} points per dollar on the {product}, and "
        f"{theme} applies all season.",
    ]
    return rng.choice(templates)


def make_document(number: int, rng: random.Random, products: list[str]) -> dict:
    """A valid approved-content record: three paragraphs for one audience's themes."""
    audience = rng.choices(list(AUDIENCE_WEIGHTS), weights=list(AUDIENCE_WEIGHTS.values()))[0]
    themes = rng.sample(THEMES[audience], 4)
    product = rng.choice(products)
    paragraphs = [
        " ".join(
            sentence(rng, rng.choice([product, *rng.sample(products, 2)]), themes) for _ in range(3)
        )
        for _ in range(3)
    ]
    return {
        "document_id": f"SYN-{number:06d}",
        "title": f"{product.title()}: {themes[0].title()}",
        "category": rng.choice(CATEGORIES),
        "content": "\n\n".join(paragraphs),
        "audience": audience,
        "keywords": [*themes[:3], product.split()[-1]],
        "approval_date": "2026-01-15",
        # About 2% of the copy has expired, so the loader's exclusion path runs too.
        "expiry_date": "2026-06-30" if rng.random() < 0.02 else rng.choice([None, "2027-12-31"]),
        "source_url": f"https://example.com/docs/{number}",
        "metadata": {"author": "Benchmark", "version": "1.0", "last_updated": "2026-01-10"},
    }


def write_corpus(folder: Path, count: int, seed: int) -> None:
    """Write ``count`` documents as JSON files."""
    rng = random.Random(seed)
    products = product_names(rng, max(50, count // 5))
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        record = make_document(number, rng, products)
        (folder / f"{record['document_id']}.json").write_text(json.dumps(record), "utf-8")


def segment_queries(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """(audience, query) as the stage builds them: name phrase, traits, expansions (~10 terms)."""
    queries = []
    segments = [a for a in THEMES if a != "All"]
    for _ in range(count):
        segment = rng.choice(segments)
        terms = [segment.lower(), *rng.sample(THEMES[segment], 7), rng.choice(THEMES["All"])]
        queries.append((segment, format_query(terms)))
    return queries


def broad_queries(rng: random.Random, count: int) -> list[str]:
    """Worst case: terms from every audience, so nearly every paragraph matches."""
    return [
        format_query([term for themes in THEMES.values() for term in rng.sample(themes, 2)])
        for _ in range(count)
    ]


def free_queries(rng: random.Random, count: int) -> list[str]:
    """Two-word free-text queries."""
    return [f"{rng.choice(ADJECTIVES)} {rng.choice(KINDS)}" for _ in range(count)]


def timed(function, items) -> list[float]:
    """Milliseconds per call of ``function(item)``."""
    times = []
    for item in items:
        started = time.perf_counter()
        function(item)
        times.append((time.perf_counter() - started) * 1000)
    return times


def report(label: str, times: list[float]) -> None:
    """Print p50 / p95 / max latency and throughput."""
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    print(
        f"{label:<44} n={len(times):<5} p50={statistics.median(ordered):7.2f} ms  "
        f"p95={p95:7.2f} ms  max={ordered[-1]:7.2f} ms  "
        f"({len(times) / (sum(times) / 1000):,.0f} queries/s)"
    )


def match_share(retriever: SqliteFtsRetriever, queries: list[str]) -> float:
    """Mean share of all paragraphs that a query matches (before top-k)."""
    connection = sqlite3.connect(retriever.db_path)
    total = connection.execute("SELECT count(*) FROM paragraphs").fetchone()[0]
    matched = [
        connection.execute(
            "SELECT count(*) FROM paragraphs WHERE paragraphs MATCH ?",
            (fts_match(parse_query(q)),),
        ).fetchone()[0]
        for q in queries
    ]
    connection.close()
    return statistics.mean(matched) / total


def time_queries(
    retriever: SqliteFtsRetriever,
    content: LoadedContent,
    settings: ContentSettings,
    rng: random.Random,
    count: int,
) -> None:
    """Time each kind of query ``count`` times and print the latencies."""
    seg = segment_queries(rng, count)
    broad = broad_queries(rng, count)
    free = free_queries(rng, count)
    report(
        "search, segment query (~10 terms), top 16",
        timed(lambda q: retriever.search(q[1], 16, {"boost_audience": q[0]}), seg),
    )
    report(
        "search, segment query + category filter",
        timed(
            lambda q: retriever.search(
                q[1], 16, {"boost_audience": q[0], "category": ["promotion", "product"]}
            ),
            seg,
        ),
    )
    report("search, free 2-word query, top 4", timed(lambda q: retriever.search(q, 4), free))
    report(
        "search, worst case (all themes), top 16",
        timed(lambda q: retriever.search(q, 16), broad),
    )
    print(
        f"  share of paragraphs matched: segment queries "
        f"{match_share(retriever, [q for _, q in seg[:50]]):.0%}, worst case "
        f"{match_share(retriever, broad[:50]):.0%} (FTS5 scores every match)"
    )
    queries = [SegmentQuery(a, 1, tuple(parse_query(q)), q, {"boost_audience": a}) for a, q in seg]
    report(
        "retrieve_segment (search+threshold+cap)",
        timed(lambda q: retrieve_segment(retriever, q, settings, content.documents), queries),
    )


def main() -> None:
    """Generate the corpus, then time loading, indexing and queries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print_machine()
    print(f"sqlite: {sqlite3.sqlite_version}")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "content"
        write_corpus(folder, args.documents, args.seed)
        started = time.perf_counter()
        content = load_content(folder, as_of=date(2026, 11, 26))
        load_s = time.perf_counter() - started
        print(
            f"\n{args.documents:,} documents generated; {len(content.documents):,} usable "
            f"({len(content.excluded):,} expired), {content.paragraphs:,} paragraphs"
        )
        print(f"load + validate folder:                      {load_s:7.3f} s")
        settings = ContentSettings()
        retriever = SqliteFtsRetriever(Path(scratch) / "index.sqlite", settings)
        build = retriever.index(content.documents)
        size = (Path(scratch) / "index.sqlite").stat().st_size / 1024 / 1024
        print(
            f"index build (from scratch):                  {build.seconds:7.3f} s "
            f"({build.paragraphs / build.seconds:,.0f} paragraphs/s, {size:.1f} MiB file)"
        )
        again = retriever.index(content.documents)
        print(
            f"index rebuild, content unchanged (skipped):  {again.seconds:7.3f} s "
            f"(built={again.built})\n"
        )
        time_queries(retriever, content, settings, rng, args.queries)
        retriever.close()


if __name__ == "__main__":
    main()
