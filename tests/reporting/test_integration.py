"""``cpo run`` on the bundled data ends with the three reports (the real pipeline)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from cpo.pipeline import default_stages, run_pipeline
from cpo.reporting.html import PRINT_SECTIONS, SECTIONS


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("pipeline") / "run"
    manifest = run_pipeline(run_dir)
    return run_dir, manifest


def test_report_is_the_last_stage() -> None:
    assert default_stages()[-1].name == "report"


def test_run_writes_the_three_reports(real_run) -> None:
    run_dir, manifest = real_run
    assert manifest["status"] == "completed"
    assert manifest["stages"]["report"]["status"] == "completed"
    for name in ("report.html", "report.pdf", "report.ipynb"):
        assert (run_dir / name).stat().st_size > 10_000, name
    assert (run_dir / "report.pdf").stat().st_size < 10 * 1024 * 1024


def test_real_report_numbers_equal_metrics_json(real_run, report_checks) -> None:
    run_dir, _ = real_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    checked = report_checks.check_numbers(run_dir / "report.html", metrics)
    assert {
        f"lift:{r['treatment_arm']}:{r['metric']}:lift_absolute" for r in metrics["lift_analysis"]
    } <= checked
    page = report_checks.parse(run_dir / "report.html")
    assert [s for s, _ in SECTIONS if s in page.ids] == [s for s, _ in SECTIONS]
    simulated = metrics["engagement_source"] == "simulated"
    assert ("simulated-banner" in page.ids) == simulated


def test_real_report_pdf_and_notebook(real_run, pdf_text) -> None:
    run_dir, _ = real_run
    pages = pdf_text(run_dir / "report.pdf")
    text = " ".join(pages)
    assert all(f"{number}. {title}" in text for number, (_, title) in enumerate(PRINT_SECTIONS, 1))
    # Sections flow on: no page but the last is nearly empty. A forced page break per
    # section used to leave page 2 holding only the summary's last bullet (about 220
    # characters with the SIMULATED band and the footer).
    assert [len(page) for page in pages[:-1] if len(page) < 800] == []
    assert all("SIMULATED DATA" in text for text in pages)
    notebook = nbformat.read(run_dir / "report.ipynb", as_version=4)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]


def test_cpo_report_regenerates_without_rerunning(real_run) -> None:
    from cpo.reporting.render import render_report

    run_dir, _ = real_run
    before = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "report.html").unlink()
    render_report(run_dir, pdf=False, notebook=False)
    assert (run_dir / "report.html").is_file()
    after = json.loads((run_dir / "manifest.json").read_text())
    assert after == before, "the report never touches the run's artifacts"
