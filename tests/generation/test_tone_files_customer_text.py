"""The packaged tone files never make customers look for sources.

Citations are for reviewers (variants.json, the audit, the report); the customer
copy has no markers (docs/generation.md, "What the customer receives"). So no line
a tone file puts into an email may point at sources: "with the source of every
detail", "check the sources listed above", "each with its source".
"""

from __future__ import annotations

import re
from importlib import resources

import pytest
import yaml

#: Keys that instruct a backend and never reach a customer.
NOT_CUSTOMER_TEXT = frozenset({"description", "llm_guidance", "style"})
SOURCE_POINTING = re.compile(r"\bsources?\b|\bcit(?:ed|ation)s?\b|\[\s*source\s*:", re.I)
TONES = resources.files("cpo") / "data" / "config" / "prompts" / "tones"


def customer_lines(value, path=()):
    """Every string in a tone file outside the backend-only keys, with its key path."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in NOT_CUSTOMER_TEXT:
                yield from customer_lines(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from customer_lines(item, (*path, str(index)))
    elif isinstance(value, str):
        yield ".".join(path), value


@pytest.mark.parametrize("tone", ["urgent", "informational", "friendly"])
def test_no_customer_line_points_at_sources(tone):
    data = yaml.safe_load((TONES / f"{tone}.yaml").read_text(encoding="utf-8"))
    lines = list(customer_lines(data))
    assert len(lines) > 10  # greetings, openers, closers, calls to action ...
    offending = [(key, text) for key, text in lines if SOURCE_POINTING.search(text)]
    assert offending == []


def test_the_check_finds_the_old_wording():
    old = {"closers": ["You can check the full terms for each item in the sources listed above."]}
    assert [k for k, t in customer_lines(old) if SOURCE_POINTING.search(t)] == ["closers.0"]
