"""The report's CUPED block: the adjusted lifts beside the unadjusted ones, as metrics.json says.

The section is computed for real (``cpo analyze --customers``) on the fixture
run's engagement and customers, written into its metrics.json, and the
report, the PDF and the executed notebook must present exactly those numbers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import load_run
from cpo.reporting.render import render_report
from cpo.reporting.sections.cuped import READING_GUIDE, cuped_section


@pytest.fixture(scope="module")
def cuped_run(imported_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the imported fixture run with a regression_adjustment section computed on it."""
    run = tmp_path_factory.mktemp("cuped") / "run"
    shutil.copytree(imported_run, run)
    customers = imported_run.parent / "customers.csv"
    result = CliRunner().invoke(
        cli, ["analyze", str(run / "engagement.csv"), "--customers", str(customers), "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    metrics["regression_adjustment"] = json.loads(result.output)["regression_adjustment"]
    (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return run


def test_section_presents_the_recorded_values(cuped_run: Path) -> None:
    """Every row is a recorded comparison, primary metric first, formatted from metrics.json."""
    recorded = json.loads((cuped_run / "metrics.json").read_text())["regression_adjustment"]
    section = cuped_section(load_run(cuped_run))
    assert section is not None and section["decision"] == recorded["decision"]
    assert len(section["rows"]) == len(recorded["comparisons"]) > 0
    assert section["rows"][0]["primary"] and section["rows"][0]["metric"] == "Click rate"
    first = next(
        c
        for c in recorded["comparisons"]
        if c["metric"] == "click_rate" and c["treatment_arm"] == section["rows"][0]["arm"]
    )
    assert section["rows"][0]["adjusted"] == fmt.pp(first["adjusted"]["difference"])
    assert section["rows"][0]["unadjusted"] == fmt.pp(first["unadjusted"]["difference"])
    assert section["rows"][0]["reduction"] == fmt.rel(first["variance_reduction"])


def test_a_run_analysed_before_the_section_existed_shows_no_block(make_run) -> None:
    """No regression_adjustment in metrics.json: nothing is shown, nothing invented."""
    run = make_run(source="imported")
    assert cuped_section(load_run(run)) is None
    render_report(run, notebook=False, pdf=False)
    html = (run / "report.html").read_text(encoding="utf-8")
    assert 'id="cuped"' not in html


def test_html_pdf_and_notebook_show_the_block(cuped_run: Path, pdf_text) -> None:
    """report.html has the table and the reading guide; the PDF and the notebook show it too."""
    render_report(cuped_run)
    html = (cuped_run / "report.html").read_text(encoding="utf-8")
    section = cuped_section(load_run(cuped_run))
    assert section is not None
    assert 'id="cuped-table"' in html and READING_GUIDE.split(":")[0] in html
    for row in section["rows"]:
        assert f"<td>{row['arm']}</td>" in html and row["adjusted"] in html
    assert any(
        "Adjusted for customers' history (CUPED)" in page
        for page in pdf_text(cuped_run / "report.pdf")
    )
    notebook = nbformat.read(cuped_run / "report.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if "regression_adjustment" in c.source)
    shown = "".join(output.get("text", "") for output in cell.outputs)
    assert section["decision"] in shown


def test_summary_says_the_decision_uses_the_adjusted_estimates(cuped_run: Path) -> None:
    """Executive summary: a caution flag and the adjusted primary result per arm."""
    from cpo.reporting.sections.summary import executive_summary

    recorded = json.loads((cuped_run / "metrics.json").read_text())["regression_adjustment"]
    assert recorded["used_for_decision"] is True
    block = executive_summary(load_run(cuped_run))
    assert "Decided on CUPED-adjusted estimates" in block["cautions"]
    primary = [c for c in recorded["comparisons"] if c["metric"] == "click_rate"]
    lines = [line for line in block["recommendation"] if line.startswith("Adjusted for")]
    assert len(lines) == len(primary)
    for line, record in zip(lines, primary, strict=True):
        assert record["treatment_arm"] in line
        assert fmt.pp(record["adjusted"]["difference"]) in line
        assert fmt.pval(record["p_value_adjusted"]) in line


def test_summary_points_out_a_verdict_that_differs(cuped_run: Path, tmp_path: Path) -> None:
    """When the adjusted verdict differs from the unadjusted one, the sentence says so."""
    from cpo.reporting.sections.summary import executive_summary

    run = tmp_path / "run"
    shutil.copytree(cuped_run, run)
    metrics = json.loads((run / "metrics.json").read_text())
    record = next(
        c for c in metrics["regression_adjustment"]["comparisons"] if c["metric"] == "click_rate"
    )
    plain = next(
        r
        for r in metrics["lift_analysis"]
        if r["metric"] == "click_rate" and r["treatment_arm"] == record["treatment_arm"]
    )
    record["significant"] = not plain["statistical_significance"]["significant"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    lines = executive_summary(load_run(run))["recommendation"]
    assert any("unlike the unadjusted comparison" in line for line in lines)


def test_no_flag_when_the_decision_is_unadjusted(make_run) -> None:
    from cpo.reporting.sections.summary import executive_summary

    block = executive_summary(load_run(make_run(source="imported")))
    assert "Decided on CUPED-adjusted estimates" not in block["cautions"]
    assert not any(line.startswith("Adjusted for") for line in block["recommendation"])
