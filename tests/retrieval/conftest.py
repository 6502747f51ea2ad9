"""Fixtures for the retrieval tests: content folders, an FTS index, a fake Azure AI Search."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cpo.retrieval.content import LoadedContent, load_content
from cpo.retrieval.settings import ContentSettings
from cpo.retrieval.sqlite_fts import SqliteFtsRetriever
from cpo.sample_data import bundled_content

#: The as-of date of the sample data's tests: FERN-PRM-011 (expiry 2025-12-31) is expired.
AS_OF = date(2026, 11, 26)


def make_record(document_id: str = "DOC-1", **overrides: Any) -> dict[str, Any]:
    """A valid approved-content record; ``overrides`` replace fields (None values kept)."""
    record: dict[str, Any] = {
        "document_id": document_id,
        "title": f"Title of {document_id}",
        "category": "product",
        "content": "First paragraph about tents.\n\nSecond paragraph about boots.",
        "audience": "All",
        "keywords": ["tent", "camping"],
        "approval_date": "2026-01-01",
        "expiry_date": None,
        "source_url": f"https://example.com/{document_id.lower()}",
        "metadata": {"author": "A. Writer", "version": "1.0", "last_updated": "2026-01-01"},
    }
    record.update(overrides)
    return record


def write_record(folder: Path, record: dict[str, Any], name: str | None = None) -> Path:
    """Write a record as ``<name or document_id>.json`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or record['document_id']}.json"
    path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def make_doc():
    """The :func:`make_record` factory."""
    return make_record


@pytest.fixture
def write_doc():
    """The :func:`write_record` helper."""
    return write_record


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    """A small valid content folder: two general documents and one for 'Loyal Fans'."""
    folder = tmp_path / "content"
    write_record(
        folder,
        make_record(
            "GEN-1",
            title="Shipping",
            keywords=["shipping"],
            content="Free shipping on orders over $50.\n\nExpress shipping takes two days.",
        ),
    )
    write_record(
        folder,
        make_record(
            "GEN-2",
            title="Returns",
            category="support",
            keywords=["returns"],
            content="Return unused items within 30 days.",
        ),
    )
    write_record(
        folder,
        make_record(
            "FAN-1",
            title="Loyalty points",
            audience="Loyal Fans",
            category="promotion",
            keywords=["loyalty", "rewards"],
            content="Earn double loyalty points this week.\n\nPoints never expire while you shop.",
        ),
    )
    return folder


@pytest.fixture
def sample_content_dir(tmp_path: Path) -> Path:
    """A writable copy of the bundled approved content."""
    target = tmp_path / "sample_content"
    shutil.copytree(bundled_content(), target)
    return target


@pytest.fixture(scope="session")
def sample_content() -> LoadedContent:
    """The bundled content, loaded as of :data:`AS_OF`."""
    return load_content(bundled_content(), as_of=AS_OF)


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory, sample_content: LoadedContent):
    """An FTS index of the bundled content with the default settings."""
    path = tmp_path_factory.mktemp("index") / "content.sqlite"
    retriever = SqliteFtsRetriever(path, ContentSettings())
    retriever.index(sample_content.documents)
    return retriever
