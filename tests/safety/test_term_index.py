"""The local analyzer's term lookup finds exactly what the word-bounded trie regex found.

``_TermIndex`` replaced one regex of every lexicon term (``_bounded(terms)``),
whose compile was most of the lexicon's load time. These tests compare the two
on the bundled lexicon: every term alone and in awkward company (glued to
letters, before a contraction, overlapping a longer term), and seeded random
texts built from terms, lexicon words and separators.
"""

from __future__ import annotations

import random
import re

import pytest

from cpo.safety import local
from cpo.safety.local import DEFAULT_LEXICON_DIR, _bounded, _Lexicon, _TermIndex


@pytest.fixture(scope="module")
def lexicon() -> _Lexicon:
    return _Lexicon(DEFAULT_LEXICON_DIR)


@pytest.fixture(scope="module")
def old_regex(lexicon: _Lexicon) -> re.Pattern[str]:
    return _bounded(lexicon.entries)


def _regex_spans(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    return [match.span() for match in pattern.finditer(text)]


def test_every_term_in_context_matches_like_the_regex(
    lexicon: _Lexicon, old_regex: re.Pattern[str]
) -> None:
    terms = sorted(lexicon.entries)
    contexts = [
        "{}",
        "x{}",
        "{}x",
        "{}'ll go",
        "{}'",
        "'{}'",
        "{} 's",
        "9{}",
        "{}9",
        "({}).",
        "{}-{}",
    ]
    texts = [context.format(term, term) for term in terms for context in contexts]
    mismatches = [t for t in texts if lexicon.terms.find(t) != _regex_spans(old_regex, t)]
    assert mismatches == []
    assert lexicon.terms.find("we " + terms[0] + " now") == [(3, 3 + len(terms[0]))]


def test_random_texts_match_like_the_regex(lexicon: _Lexicon, old_regex: re.Pattern[str]) -> None:
    rng = random.Random(20261201)
    terms = sorted(lexicon.entries)
    words = [*sorted(lexicon.vocabulary), "deal", "you", "ll", "s", "re", "a", "the", "7"]
    separators = [" ", " ", " ", "", "'", "-", ". ", ", ", "'s ", "'ll ", "  ", "!", "é", "0"]
    found = 0
    for _ in range(3000):
        parts = []
        for _ in range(rng.randint(1, 12)):
            pool = terms if rng.random() < 0.45 else words
            parts.append(rng.choice(pool))
            parts.append(rng.choice(separators))
        text = "".join(parts)
        expected = _regex_spans(old_regex, text)
        assert lexicon.terms.find(text) == expected, text
        found += len(expected)
    assert found > 1000  # the texts did exercise matching, not just misses


def test_longest_term_wins_and_scanning_resumes_after_it() -> None:
    index = _TermIndex(["kill", "kill them", "them all", "all"])
    text = "kill them all"
    assert index.find(text) == [(0, 9), (10, 13)]
    assert index.find(text) == _regex_spans(_bounded(index.terms), text)
    assert index.find("kill them'll") == [(0, 4)]  # "them" is in a contraction
    assert index.find("skill") == [] and index.find("killer") == []


def test_the_analyzer_compiles_no_term_regex_when_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the lexicon compiles only small patterns; big ones wait for a match."""
    compiled: list[int] = []
    real_compile = re.compile

    def counting(pattern: str, flags: int = 0) -> re.Pattern[str]:
        compiled.append(len(pattern))
        return real_compile(pattern, flags)

    monkeypatch.setattr(local.re, "compile", counting)
    lexicon = _Lexicon(DEFAULT_LEXICON_DIR)
    assert max(compiled, default=0) < 5_000
    assert lexicon.terms.find("our killer deal") != []
