"""Fixtures for the generation tests: content folders, snippets, profiles, a chat server.

Two content folders besides the bundled Fernleaf corpus prove the composer is not
tuned to one brand: a B2B software company (euro prices, "per cent", US-style
dates, plan names, one over-long sentence, very short sentences) and a bakery
whose copy contains no numbers at all.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cpo.config import load_config
from cpo.customers import load_customers
from cpo.generation.base import GenerationContext
from cpo.generation.prompts import PromptLibrary
from cpo.generation.settings import GenerationSettings
from cpo.models import GenerationRequest, SegmentProfile, Snippet
from cpo.sample_data import bundled_content, bundled_customers
from cpo.segmentation import segment
from cpo.text import terms

HERE = Path(__file__).parent
TONES = ("urgent", "informational", "friendly")


def _load_server_module() -> Any:
    """Import fake_chat_server.py by path (tests cannot import each other)."""
    name = "cpo_tests_fake_chat_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "fake_chat_server.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


fake_chat_server = _load_server_module()


# ----------------------------------------------------------------------------- content

NORTHWIND = {
    "NW-PLAN-001": (
        "Northwind Team Plan",
        "product",
        "All",
        ["team", "plan", "pricing", "value", "collaboration"],
        [
            "The Northwind Team Plan costs €12 per user per month when billed annually. "
            "Team Plan workspaces include 500 GB of shared storage and unlimited guest reviewers.",
            "Every Team Plan includes single sign-on, audit history for 90 days and priority "
            "email support. Admins can add or remove seats at any time, and billing adjusts on "
            "the next invoice.",
        ],
    ),
    "NW-PRM-001": (
        "ANNUAL20: Save 20 Percent on Annual Billing",
        "promotion",
        "All",
        ["discount", "annual billing", "offer code", "value", "deals"],
        [
            "Switch to annual billing before March 31, 2027 and save 20 per cent with code "
            "ANNUAL20. The ANNUAL20 discount applies to the first annual invoice of any "
            "Northwind plan.",
            "Code ANNUAL20 cannot be combined with other offers. Northwind applies the discount "
            "automatically once the code is entered on the Billing page.",
        ],
    ),
    "NW-PRM-002": (
        "Welcome Back to Northwind",
        "promotion",
        "Dormant Accounts",
        ["win-back", "re-engagement", "lapsed", "reactivate"],
        [
            "We've rebuilt Northwind since you last signed in. Search is faster. Sharing is "
            "simpler. Your files are exactly where you left them.",
            "Reactivate a paused workspace within 60 days and Northwind restores every project, "
            "comment and version history at no extra cost; after that, archived projects remain "
            "available for export from the account settings page for as long as the account "
            "itself stays open, so nothing you created is ever lost or deleted without notice.",
            "Come back this quarter and your first month on the Team Plan is free with code "
            "RETURNFREE.",
        ],
    ),
    "NW-SUP-001": (
        "Getting Started with Northwind",
        "support",
        "Trial Users",
        ["onboarding", "welcome", "trial", "first purchase", "getting started"],
        [
            "Your trial includes every Team Plan feature for 14 days. No credit card is needed "
            "to start.",
            "Start by inviting two colleagues; teams that invite others in the first week are "
            "far more likely to keep using Northwind. The Quick Start checklist walks you "
            "through your first project in about 10 minutes.",
            "Live onboarding webinars run every Tuesday and Thursday. You can book a seat from "
            "the Help Center.",
        ],
    ),
    "NW-PRD-001": (
        "Northwind Enterprise Plan",
        "product",
        "Power Users",
        ["premium", "enterprise", "vip", "exclusive", "loyalty"],
        [
            "The Northwind Enterprise Plan adds a dedicated success manager, a 99.95% uptime "
            "commitment and data residency in the EU or the US.",
            "Enterprise customers get 24/7 phone support with a one-hour response target for "
            "urgent issues. Pricing for the Enterprise Plan is quoted per organization.",
        ],
    ),
    "NW-SUP-002": (
        "Northwind Security Overview",
        "support",
        "All",
        ["security", "encryption", "compliance", "support"],
        [
            "Northwind encrypts files at rest and in transit. Independent auditors review "
            "Northwind's controls every year.",
            "Workspace owners can require two-factor sign-in for every member. Activity logs "
            "show who viewed, edited or shared each file.",
        ],
    ),
    "NW-PRM-003": (
        "Referral Credit for Power Users",
        "promotion",
        "Power Users",
        ["referral", "loyalty", "rewards", "premium", "credit"],
        [
            "Refer another team to Northwind and receive a €50 account credit when they "
            "subscribe to any paid plan. There is no limit on the number of referrals.",
            "Referral credits appear on your next invoice and never expire while your account "
            "is active.",
        ],
    ),
}

BAKERY = {
    "HH-001": (
        "Our Sourdough",
        "product",
        "All",
        ["bread", "sourdough", "everyday", "value"],
        [
            "Our sourdough is baked fresh every morning. We use a starter that has been fed "
            "daily since the bakery opened. Each loaf is shaped by hand.",
            "The crust is dark and crackly. The crumb is open and tender. Many customers buy a "
            "loaf on the way home from work.",
        ],
    ),
    "HH-002": (
        "The Hearth Club",
        "promotion",
        "Regulars",
        ["loyalty", "rewards", "members", "value"],
        [
            "The Hearth Club is our free loyalty program for regular customers. Members collect "
            "a stamp with every visit.",
            "A full card earns a free pastry of your choice. Members also hear about seasonal "
            "bakes before anyone else.",
        ],
    ),
    "HH-003": (
        "Seasonal Bakes",
        "product",
        "All",
        ["seasonal", "autumn", "winter", "pastry"],
        [
            "Our seasonal menu changes with the harvest. Autumn brings spiced apple buns and "
            "pumpkin loaves.",
            "Winter is the season for stollen, ginger cookies and rich fruit cakes. Seasonal "
            "bakes sell out quickly on weekends.",
        ],
    ),
    "HH-004": (
        "Welcome to Harbor & Hearth",
        "support",
        "Newcomers",
        ["welcome", "first purchase", "new customer", "onboarding"],
        [
            "Welcome to Harbor & Hearth, the neighborhood bakery by the old harbor. We are glad "
            "you found us.",
            "Ask our staff for a taste of the day's bread before you choose. Coffee is roasted "
            "nearby and brewed fresh all day.",
        ],
    ),
    "HH-005": (
        "Custom Cakes",
        "product",
        "All",
        ["cakes", "celebrations", "custom", "orders"],
        [
            "We bake custom cakes for birthdays, weddings and office parties. Tell us the "
            "flavors you love and we will suggest a design.",
            "Custom cake orders need a few days' notice. You can place an order in the shop or "
            "by phone.",
        ],
    ),
}

OTHER_BRAND_PROFILES = {
    "northwind": [
        SegmentProfile(
            "Trial Users",
            0,
            120,
            0.3,
            "Accounts in their free trial.",
            traits=("onboarding", "welcome", "first purchase"),
        ),
        SegmentProfile(
            "Power Users",
            1,
            80,
            0.2,
            "Large, long-standing teams.",
            traits=("premium", "loyalty", "vip"),
        ),
        SegmentProfile(
            "Dormant Accounts",
            2,
            200,
            0.5,
            "No sign-in for 90 days.",
            traits=("win-back", "re-engagement", "lapsed"),
        ),
    ],
    "bakery": [
        SegmentProfile(
            "Regulars", 0, 300, 0.6, "Weekly visitors.", traits=("loyalty", "rewards", "value")
        ),
        SegmentProfile(
            "Newcomers",
            1,
            100,
            0.2,
            "First visit this month.",
            traits=("welcome", "first purchase"),
        ),
        SegmentProfile(
            "Lapsed Visitors",
            2,
            100,
            0.2,
            "Not seen for a season.",
            traits=("win-back", "seasonal"),
        ),
    ],
}


def write_content(folder: Path, documents: dict[str, tuple], with_urls: bool) -> Path:
    """Write documents in the approved-content JSON schema; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, (title, category, audience, keywords, paragraphs) in documents.items():
        record = {
            "document_id": doc_id,
            "title": title,
            "category": category,
            "content": "\n\n".join(paragraphs),
            "audience": audience,
            "keywords": keywords,
            "approval_date": "2026-01-05",
            "expiry_date": None,
            "source_url": f"https://example.test/{doc_id.lower()}" if with_urls else None,
            "metadata": {"author": "Test", "version": "1.0", "last_updated": "2026-01-01"},
        }
        (folder / f"{doc_id}.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def northwind_content(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A software company's content folder (with links)."""
    return write_content(tmp_path_factory.mktemp("northwind"), NORTHWIND, with_urls=True)


@pytest.fixture(scope="session")
def bakery_content(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bakery's content folder: no numbers, no links, short paragraphs."""
    return write_content(tmp_path_factory.mktemp("bakery"), BAKERY, with_urls=False)


def read_paragraphs(folder: Path) -> list[tuple[dict, int, str]]:
    """(document, 1-based paragraph index, text) for every paragraph of a folder."""
    found = []
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("expiry_date") and doc["expiry_date"] < "2026-11-26":
            continue
        for index, text in enumerate(doc["content"].split("\n\n"), start=1):
            found.append((doc, index, " ".join(text.split())))
    return found


def snippets_for(profile: SegmentProfile, folder: Path, k: int = 5) -> tuple[Snippet, ...]:
    """A simple, deterministic stand-in for retrieval: term overlap plus audience match."""
    query = set(terms(" ".join(profile.traits) + " " + profile.name))
    scored = []
    for doc, index, text in read_paragraphs(folder):
        bag = set(terms(f"{text} {' '.join(doc['keywords'])} {doc['title']}"))
        score = len(query & bag) + (1.5 if doc["audience"] == profile.name else 0.0)
        scored.append((-score, doc["document_id"], index, doc, text))
    scored.sort(key=lambda row: row[:3])
    return tuple(
        Snippet(
            document_id=doc["document_id"],
            title=doc["title"],
            paragraph_index=index,
            text=text,
            score=-neg,
            category=doc["category"],
            audience=doc["audience"],
            source_url=doc.get("source_url") or "",
        )
        for neg, _, index, doc, text in scored[:k]
    )


@pytest.fixture(scope="session")
def default_config():
    """The packaged default configuration."""
    return load_config()


@pytest.fixture(scope="session")
def sample_profiles(default_config) -> list[SegmentProfile]:
    """Rules segmentation of the bundled 500 customers."""
    frame = load_customers(bundled_customers()).frame
    return list(segment(frame, default_config.experiment.segmentation, seed=42).profiles)


@pytest.fixture(scope="session")
def prompts(default_config) -> PromptLibrary:
    """The packaged prompts folder."""
    return PromptLibrary.for_config(default_config)


def make_setup(
    prompts: PromptLibrary,
    cache_dir: Path | None = None,
    generation: GenerationSettings | None = None,
    log: Any = None,
) -> GenerationContext:
    """What the generate stage gives a backend's ``from_settings``."""
    return GenerationContext(
        generation=generation or GenerationSettings(),
        prompts=prompts,
        log=log,
        cache_dir=cache_dir,
    )


def requests_for(
    profiles: list[SegmentProfile], folder: Path, tones=TONES, k: int = 5
) -> list[GenerationRequest]:
    """One request per profile x tone with stand-in retrieval from ``folder``."""
    return [
        GenerationRequest(profile, snippets_for(profile, folder, k), tone)
        for profile in profiles
        for tone in tones
    ]


@pytest.fixture
def chat_server() -> Iterator[Any]:
    """A running local Chat Completions server (scripted; see fake_chat_server.py)."""
    with fake_chat_server.ChatServer() as server:
        yield server


@pytest.fixture(scope="session")
def bundled_folder() -> Path:
    """The bundled Fernleaf content folder."""
    return bundled_content()


MARKER = re.compile(r"\[Source: (.+?), ¶(\d+)\]")
URL = re.compile(r"https?://\S+")


def violations(subject: str, body: str, snippets, min_words=50, max_words=200, max_chars=60):
    """Independent check of a variant (not using the library's validators).

    Subject length, word count without markers (the hard range: the 50-word floor
    to the maximum), 2-3 distinct citations that each
    name a given snippet (exact title and paragraph), and every number in the
    body present in a cited snippet's text or title.
    """
    found = []
    if not subject or len(subject) > max_chars:
        found.append(f"subject {len(subject)} chars")
    text = MARKER.sub("", body)
    n_words = sum(1 for t in text.split() if re.search(r"[A-Za-z0-9]", t))
    if not min_words <= n_words <= max_words:
        found.append(f"{n_words} words")
    cited = list(dict.fromkeys(MARKER.findall(body)))
    if not 2 <= len(cited) <= 3:
        found.append(f"{len(cited)} citations")
    by_key = {(s.title, str(s.paragraph_index)): s for s in snippets}
    cited_text = ""
    for title, index in cited:
        if (title, index) not in by_key:
            found.append(f"invalid citation {title} ¶{index}")
        else:
            cited_text += " " + by_key[(title, index)].title + " " + by_key[(title, index)].text
    for number in re.findall(r"\d+(?:[.,]\d+)*", URL.sub("", text)):
        if number not in cited_text:
            found.append(f"number {number} not in a cited snippet")
    return found


@pytest.fixture(scope="session")
def helpers() -> Any:
    """Helper functions and data for tests (tests cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        make_setup=make_setup,
        requests_for=requests_for,
        snippets_for=snippets_for,
        read_paragraphs=read_paragraphs,
        write_content=write_content,
        profiles=OTHER_BRAND_PROFILES,
        server=fake_chat_server,
        tones=TONES,
        northwind=NORTHWIND,
        bakery=BAKERY,
        violations=violations,
    )
