"""docs/configuration.md's key reference matches the config models."""

from __future__ import annotations

from pathlib import Path

from cpo.configdoc import BEGIN, END, reference_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_key_reference_is_up_to_date():
    text = DOC.read_text(encoding="utf-8")
    documented = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert documented == reference_markdown(), "run `python -m cpo.configdoc` and paste it"


def test_reference_lists_keys_of_every_file():
    reference = reference_markdown()
    for key in (
        "services.generation.backend",
        "categories",
        "segmentation.rules",
        "analysis.alpha",
    ):
        assert f"`{key}`" in reference
