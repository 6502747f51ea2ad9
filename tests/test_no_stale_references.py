"""Docs, docstrings and comments point to things that ship with the repo.

Issue trackers and design notes outside the repo are not there for a reader of
the code or the docs, so a reference like "see the design doc" or "issue 7"
says nothing: write what it meant instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Folders and files read (text files below the folders).
SCANNED = ("src", "tests", "docs", "benchmarks", "README.md")
SUFFIXES = {".py", ".md", ".j2", ".yaml", ".txt", ".toml"}
STALE = re.compile(
    r"\bDESIGN\.md\b"  # the project's design note lives outside the repo
    r"|\b(?:the|an?|this) (?:experiment|architecture|report) issue\b"
    r"|\b[Ii]ssues? #?\d+"
)


def _text_files() -> list[Path]:
    """Every scanned text file, this one excepted (it spells the patterns)."""
    files: list[Path] = []
    for name in SCANNED:
        path = ROOT / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        files += [f for f in candidates if f.suffix in SUFFIXES and f.is_file()]
    return [f for f in files if f.resolve() != Path(__file__).resolve()]


def test_no_reference_to_documents_outside_the_repo() -> None:
    stale = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _text_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if STALE.search(line)
    ]
    assert stale == []


@pytest.mark.parametrize(
    "line",
    ["see DESIGN.md", "the schema of the experiment issue", "slow (issue 12)", "Issue 9's test"],
)
def test_the_pattern_finds_each_kind(line: str) -> None:
    assert STALE.search(line)


@pytest.mark.parametrize(
    "line", ["report an issue with the run's size", "issue store credit", "experiment_design.json"]
)
def test_the_pattern_leaves_ordinary_words(line: str) -> None:
    assert not STALE.search(line)
