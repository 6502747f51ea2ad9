"""report.pdf: opens, has text, every section, the SIMULATED band on every page, < 10 MB."""

from __future__ import annotations

import pytest

from cpo.reporting.html import SECTIONS
from cpo.reporting.pdf import MAX_PDF_BYTES, offline_fetcher


def test_pdf_opens_with_text_and_every_section(sim_report, pdf_text) -> None:
    path = sim_report.run_dir / "report.pdf"
    assert path.stat().st_size < MAX_PDF_BYTES
    pages = pdf_text(path)
    assert len(pages) >= 8
    assert all(len(text.strip()) > 50 for text in pages)
    text = "\n".join(pages)
    for number, (_, title) in enumerate(SECTIONS, start=1):
        assert f"{number}.{title.split(' (')[0].split(':')[0]}" in text.replace("\n", " ").replace(
            ". ", "."
        ), title
    assert "page 1 of" in pages[0]


def test_every_page_says_simulated_when_simulated(sim_report, imported_report, pdf_text) -> None:
    simulated = pdf_text(sim_report.run_dir / "report.pdf")
    assert all("SIMULATED DATA" in text for text in simulated)
    imported = pdf_text(imported_report.run_dir / "report.pdf")
    assert not any("SIMULATED" in text for text in imported)


def test_charts_are_in_the_pdf(sim_report, pdf_text) -> None:
    # Chart axis labels are SVG text, so they are extractable from the PDF.
    text = "\n".join(pdf_text(sim_report.run_dir / "report.pdf"))
    assert "lift vs control (percentage points)" in text
    assert "treatment − control (pp)" in text


@pytest.mark.parametrize("url", ["https://example.com/x.png", "file:///etc/passwd"])
def test_the_pdf_renderer_fetches_nothing(url: str) -> None:
    with pytest.raises(ValueError):
        offline_fetcher()(url)


def test_the_pdf_renderer_reads_inline_data() -> None:
    response = offline_fetcher()("data:text/plain;base64,aGk=")
    body = response["string"] if isinstance(response, dict) else response.read()
    assert body == b"hi"
