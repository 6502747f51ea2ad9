"""Tests of the bundled approved-content corpus (its packaged JSON files) and its copy."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from cpo.cli import cli

CONTENT_DIR = Path(str(resources.files("cpo") / "data" / "sample" / "content"))
CONTROL_PATH = Path(
    str(resources.files("cpo") / "data" / "config" / "prompts" / "control_message.txt")
)
REFERENCE_DATE = date(2026, 11, 26)
CATEGORIES = ("product", "promotion", "support")
#: Keys of a document record, in the order the bundled files write them.
RECORD_KEYS = (
    "document_id",
    "title",
    "category",
    "content",
    "audience",
    "keywords",
    "approval_date",
    "expiry_date",
    "source_url",
    "metadata",
)
SEGMENTS = ("High-Value Recent", "At-Risk", "New Customer", "Standard")
BANNED_PHRASES = ("guaranteed", "guarantee", "risk-free", "no risk", "100% safe", "cure")
HARMFUL_WORDS = ("kill", "shoot", "die", "attack", "bomb", "weapon", "gun", "blood", "dead")
BACK_REFERENCE_STARTS = {"it", "its", "this", "they", "their", "these", "that", "those"}
#: Canonical prices; any "<product> costs/at/priced at $X" in the corpus must match.
PRICES = {
    "Summit Ridge 2": "329",
    "Summit Ridge 4": "479",
    "Alpine Loft 20": "299",
    "Meadow 40 Synthetic Sleeping Bag": "99",
    "Stormline Rain Jacket": "199",
    "Glacier Down Parka": "349",
    "Ridgeline Synthetic Vest": "129",
    "Granite Trail Hiking Boots": "179",
    "Cascade 30 Daypack": "119",
    "Timberline 65": "289",
    "Emberlight Headlamp": "39",
    "TrailBrew Camp Stove": "89",
    "Ridgeback Carbon Trekking Poles": "149",
    "Driftwood Camp Chair": "69",
    "Canopy Hammock": "59",
    "Beginner Camping Kit": "469",
}


def _bundled() -> list[tuple[Path, dict]]:
    files = sorted(CONTENT_DIR.glob("*.json"))
    return [(path, json.loads(path.read_text(encoding="utf-8"))) for path in files]


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return [doc for _, doc in _bundled()]


def _sentences(text: str) -> list[str]:
    return [s for p in text.split("\n\n") for s in re.split(r"(?<=[.!?])\s+", p.strip()) if s]


def _words(text: str) -> int:
    return len(text.split())


def test_corpus_size_and_categories(docs: list[dict]) -> None:
    assert 30 <= len(docs) <= 50
    categories = Counter(d["category"] for d in docs)
    assert set(categories) == set(CATEGORIES)
    assert all(n >= 8 for n in categories.values()), categories


def test_ids_unique_and_match_file_names() -> None:
    bundled = _bundled()
    ids = [doc["document_id"] for _, doc in bundled]
    assert len(ids) == len(set(ids))
    for path, doc in bundled:
        assert path.stem == doc["document_id"]
        assert re.fullmatch(r"FERN-(PRD|PRM|SUP)-\d{3}", doc["document_id"])


def test_record_schema_and_key_order(docs: list[dict]) -> None:
    for doc in docs:
        assert tuple(doc) == RECORD_KEYS, doc["document_id"]
        assert list(doc["metadata"]) == ["author", "version", "last_updated"]
        assert doc["title"].strip() and doc["metadata"]["author"].strip()
        assert re.fullmatch(r"\d+\.\d+", doc["metadata"]["version"])
        assert doc["source_url"].startswith("https://www.fernleaf.example.com/")


def test_categories_and_audiences_valid(docs: list[dict]) -> None:
    for doc in docs:
        assert doc["category"] in CATEGORIES, doc["document_id"]
        assert doc["audience"] in ("All", *SEGMENTS), doc["document_id"]


def test_every_segment_is_well_covered(docs: list[dict]) -> None:
    audiences = Counter(d["audience"] for d in docs)
    for segment in SEGMENTS:
        assert audiences[segment] >= 5, (segment, audiences)
    assert audiences["All"] >= 5


def test_paragraph_and_word_counts(docs: list[dict]) -> None:
    for doc in docs:
        paragraphs = doc["content"].split("\n\n")
        assert 2 <= len(paragraphs) <= 5, doc["document_id"]
        assert all(p.strip() == p and p and "\n" not in p for p in paragraphs), doc["document_id"]
        assert 120 <= _words(doc["content"]) <= 400, (doc["document_id"], _words(doc["content"]))


def test_keywords(docs: list[dict]) -> None:
    for doc in docs:
        keywords = doc["keywords"]
        assert isinstance(keywords, list) and 4 <= len(keywords) <= 8, doc["document_id"]
        assert all(isinstance(k, str) and k == k.lower() and k.strip() == k for k in keywords)
        assert len(set(keywords)) == len(keywords), doc["document_id"]


def test_dates_parse_and_are_coherent(docs: list[dict]) -> None:
    for doc in docs:
        approved = date.fromisoformat(doc["approval_date"])
        updated = date.fromisoformat(doc["metadata"]["last_updated"])
        assert updated <= approved <= REFERENCE_DATE, doc["document_id"]
        if doc["expiry_date"] is not None:
            assert date.fromisoformat(doc["expiry_date"]) > approved, doc["document_id"]
        if doc["category"] == "promotion":
            assert doc["expiry_date"] is not None, doc["document_id"]


def test_exactly_one_document_already_expired(docs: list[dict]) -> None:
    expired = [
        d["document_id"]
        for d in docs
        if d["expiry_date"] and date.fromisoformat(d["expiry_date"]) < REFERENCE_DATE
    ]
    assert len(expired) == 1, expired
    live_promotions = [
        d for d in docs if d["category"] == "promotion" and d["document_id"] not in expired
    ]
    for doc in live_promotions:
        assert date.fromisoformat(doc["expiry_date"]).year in (2027, 2028), doc["document_id"]


def test_no_banned_or_harmful_wording(docs: list[dict]) -> None:
    for doc in docs:
        text = f"{doc['title']}\n{doc['content']}".lower()
        for phrase in BANNED_PHRASES:
            assert phrase not in text, (doc["document_id"], phrase)
        for word in HARMFUL_WORDS:
            assert not re.search(rf"\b{word}\b", text), (doc["document_id"], word)


def test_sentences_stand_alone(docs: list[dict]) -> None:
    for doc in docs:
        for sentence in _sentences(doc["content"]):
            assert 10 <= _words(sentence) <= 30, (doc["document_id"], sentence)
            first = re.sub(r"\W", "", sentence.split()[0]).lower()
            assert first not in BACK_REFERENCE_STARTS, (doc["document_id"], sentence)
            assert sentence[-1] in ".!?", (doc["document_id"], sentence)
            assert not sentence.startswith(('"', "\u201c", "-", "*")), sentence


def test_product_prices_consistent(docs: list[dict]) -> None:
    seen: Counter[str] = Counter()
    for doc in docs:
        for name, price in PRICES.items():
            pattern = rf"{re.escape(name)}(?: \w+){{0,3}},? (?:costs|at|priced at|for) \$([\d.,]+)"
            for match in re.finditer(pattern, doc["content"]):
                tail = doc["content"][match.end() : match.end() + 12]
                if tail.startswith((" instead", " per weekend")):
                    continue  # a sale or rental price, not the list price
                assert match.group(1).rstrip(".,") == price, (doc["document_id"], match.group(0))
                seen[name] += 1
    assert len(seen) >= 10, seen  # the pattern really is exercised


def test_facts_in_documents() -> None:
    by_id = {doc["document_id"]: doc for _, doc in _bundled()}
    assert "WELCOME15" in by_id["FERN-PRM-001"]["content"]
    assert "$49 a year" in by_id["FERN-SUP-005"]["content"]
    assert "$75 or more" in by_id["FERN-SUP-001"]["content"]
    assert "60 days" in by_id["FERN-SUP-002"]["content"]


def test_bundled_files_are_formatted_alike() -> None:
    for path, doc in _bundled():
        text = path.read_bytes().decode("utf-8")
        assert text == json.dumps(doc, ensure_ascii=False, indent=2) + "\n", path.name


def test_sample_data_command_copies_the_bundled_files(tmp_path: Path) -> None:
    out = tmp_path / "sample"
    (out / "content").mkdir(parents=True)
    (out / "content" / "mine.txt").write_text("kept", encoding="utf-8")
    result = CliRunner().invoke(cli, ["sample-data", "--customers", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    bundled = sorted(CONTENT_DIR.glob("*.json"))
    assert f"wrote {len(bundled)} approved-content documents" in result.output
    copied = sorted((out / "content").glob("*.json"))
    assert [p.name for p in copied] == [p.name for p in bundled]
    for source, copy in zip(bundled, copied, strict=True):
        assert copy.read_bytes() == source.read_bytes(), copy.name
    assert (out / "content" / "mine.txt").read_text(encoding="utf-8") == "kept"


def test_sample_data_command_can_skip_the_content(tmp_path: Path) -> None:
    out = tmp_path / "sample"
    result = CliRunner().invoke(
        cli, ["sample-data", "--customers", "10", "--out", str(out), "--no-content"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "customers.csv").is_file() and not (out / "content").exists()


def test_control_message_format() -> None:
    # The packaged control message is a brand template; check it as sent for the sample brand.
    from cpo.config import load_config
    from cpo.generation.prompts import PromptLibrary
    from cpo.generation.service import control_variant

    text = CONTROL_PATH.read_text(encoding="utf-8")
    assert text.split("\n")[0].startswith("Subject: ") and text.split("\n")[1] == ""
    control = control_variant(PromptLibrary.for_config(load_config()))
    assert 0 < len(control.subject) <= 60
    body = control.body
    assert 100 <= _words(body) <= 200, _words(body)
    assert body.startswith("Hi {first_name},")
    assert "unsubscribe" in body.splitlines()[-1].lower()
    assert "[Source:" not in body
    rendered = body.format(first_name="Avery")  # no other placeholders
    assert "Hi Avery," in rendered
    lowered = body.lower()
    assert not any(phrase in lowered for phrase in BANNED_PHRASES)
