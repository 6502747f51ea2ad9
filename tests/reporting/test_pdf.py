"""report.pdf: opens, has text, every print section, the SIMULATED band on every page, < 10 MB."""

from __future__ import annotations

import json
import re

import pytest

from cpo.reporting.html import PRINT_SECTIONS
from cpo.reporting.pdf import MAX_PDF_BYTES, offline_fetcher


def _flat(pages: list[str]) -> str:
    """The PDF's text on one line (pypdf breaks lines where the layout wrapped them)."""
    return re.sub(r"\s+", " ", " ".join(pages))


def test_pdf_opens_with_text_and_every_section(sim_report, pdf_text) -> None:
    path = sim_report.run_dir / "report.pdf"
    assert path.stat().st_size < MAX_PDF_BYTES
    pages = pdf_text(path)
    assert all(len(text.strip()) > 50 for text in pages)
    text = _flat(pages)
    for number, (_, title) in enumerate(PRINT_SECTIONS, start=1):
        assert f"{number}. {title}" in text, title
    assert "page 1 of" in pages[0]
    assert "report.html, next to it in the run folder, has everything in full" in text


def test_pdf_has_the_compliance_and_analysis_tables(sim_report, pdf_text) -> None:
    # What a compliance officer and a data scientist need on paper: one row per
    # screened variant with its outcome, the chain's head hash, every arm and metric.
    run = sim_report.run_dir
    text = _flat(pdf_text(run / "report.pdf"))
    compact = text.replace(" ", "")
    manifest = json.loads((run / "manifest.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    for variant in json.loads((run / "variants.json").read_text())["variants"]:
        assert variant["variant_id"] in compact, variant["variant_id"]
    assert manifest["safety"]["audit"]["head_hash"] in compact
    assert "Audit chain: verified" in text
    for arm in metrics["arms"]:
        assert arm in text
    for label in ("Click rate", "Open rate", "Conversion rate", "Click-to-open rate"):
        assert label in text
    assert "Stratified by segment (Cochran–Mantel–Haenszel)" in text
    assert "Who responds differently (moderators)" in text


def test_every_page_says_simulated_when_simulated(sim_report, imported_report, pdf_text) -> None:
    simulated = pdf_text(sim_report.run_dir / "report.pdf")
    assert all("SIMULATED DATA" in text for text in simulated)
    imported = pdf_text(imported_report.run_dir / "report.pdf")
    assert not any("SIMULATED" in text for text in imported)


def test_charts_are_in_the_pdf(sim_report, pdf_text) -> None:
    # Chart axis labels are SVG text, so they are extractable from the PDF.
    text = "\n".join(pdf_text(sim_report.run_dir / "report.pdf"))
    assert "lift vs control (percentage points)" in text
    assert "click rate lift (pp)" in text


@pytest.mark.parametrize("url", ["https://example.com/x.png", "file:///etc/passwd"])
def test_the_pdf_renderer_fetches_nothing(url: str) -> None:
    with pytest.raises(ValueError):
        offline_fetcher()(url)


def test_the_pdf_renderer_reads_inline_data() -> None:
    response = offline_fetcher()("data:text/plain;base64,aGk=")
    body = response["string"] if isinstance(response, dict) else response.read()
    assert body == b"hi"
