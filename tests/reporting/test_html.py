"""report.html: sections, self-containment, numbers equal to metrics.json, banners, escaping."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from cpo.errors import RunDirError
from cpo.reporting import formatting as fmt
from cpo.reporting.html import SECTIONS
from cpo.reporting.render import render_report

# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_every_section_is_present_in_order(sim_report, report_checks) -> None:
    page = report_checks.parse(sim_report.run_dir / "report.html")
    positions = [page.ids.index(section_id) for section_id, _ in SECTIONS]
    assert positions == sorted(positions)
    assert len(SECTIONS) == 11
    html = (sim_report.run_dir / "report.html").read_text(encoding="utf-8")
    for _, title in SECTIONS:
        assert title.split(" (")[0].split(":")[0] in html


@pytest.mark.parametrize("which", ["sim_report", "imported_report"])
def test_no_external_resources(which: str, request: pytest.FixtureRequest, report_checks) -> None:
    path = request.getfixturevalue(which).run_dir / "report.html"
    page = report_checks.parse(path)
    html = path.read_text(encoding="utf-8")
    assert not [tag for tag, _ in page.tags if tag in ("script", "iframe", "object", "embed")]
    assert not [a for tag, a in page.tags if tag == "link"], "stylesheets must be inline"
    for tag, attributes in page.tags:
        for name in report_checks.resource_attributes:
            value = attributes.get(name) or ""
            if tag == "a" and name == "href":
                continue  # links to sources are navigation, not resources
            assert not re.match(r"\s*(https?:)?//", value), f"<{tag} {name}={value!r}>"
    for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", html):
        assert url.startswith(("data:", "#")), f"CSS url({url}) is not inline"
    assert "@import" not in html
    assert "<svg" in html and "<style>" in html


def test_shown_numbers_equal_metrics_json(sim_report, report_checks) -> None:
    metrics = json.loads((sim_report.run_dir / "metrics.json").read_text())
    checked = report_checks.check_numbers(sim_report.run_dir / "report.html", metrics)
    # Every overall lift record and every arm's click rate is shown and checked.
    for lift in metrics["lift_analysis"]:
        key = f"lift:{lift['treatment_arm']}:{lift['metric']}:"
        assert key + "lift_absolute" in checked
        assert key + "statistical_significance.p_value_adjusted" in checked
    for arm in metrics["arms"]:
        assert f"arm:{arm}:metrics.click_rate" in checked
        assert f"arm:{arm}:counts.sent" in checked
    assert "srm:p_value" in checked
    assert any(k.startswith("segment:") for k in checked)
    assert len(checked) > 150


def test_summary_names_the_primary_result_and_respects_power(imported_report) -> None:
    metrics = json.loads((imported_report.run_dir / "metrics.json").read_text())
    html = (imported_report.run_dir / "report.html").read_text(encoding="utf-8")
    primary = [r for r in metrics["lift_analysis"] if r["metric"] == "click_rate"]
    best = max(primary, key=lambda r: r["lift_absolute"])
    headline = re.search(r'<p class="lead" id="headline">(.*?)</p>', html, re.S).group(1)
    assert best["treatment_arm"] in headline
    assert fmt.pp(best["lift_absolute"]) in headline
    assert "adjusted" in headline
    significant = [r for r in primary if r["statistical_significance"]["significant"]]
    if significant:
        assert "beat control" in headline and "No arm" not in headline
    else:
        assert headline.startswith("No arm beat control")


def test_simulated_summary_names_the_estimate_but_recommends_nothing(sim_report) -> None:
    metrics = json.loads((sim_report.run_dir / "metrics.json").read_text())
    html = (sim_report.run_dir / "report.html").read_text(encoding="utf-8")
    primary = [r for r in metrics["lift_analysis"] if r["metric"] == "click_rate"]
    best = max(primary, key=lambda r: r["lift_absolute"])
    headline = re.search(r'<p class="lead" id="headline">(.*?)</p>', html, re.S).group(1)
    assert headline.startswith("Pipeline check on simulated engagement, no recommendation")
    assert best["treatment_arm"] in headline and fmt.pp(best["lift_absolute"]) in headline
    assert "beat control" not in headline
    recommendation = re.search(r'id="recommendation">(.*?)</ul>', html, re.S).group(1)
    assert "checks the pipeline, not the customers" in recommendation
    for advice in ("Adopt", "do not send", "Do not roll out", "Use the"):
        assert advice not in html


def test_inconclusive_summary_states_the_detectable_lift(imported_report) -> None:
    metrics = json.loads((imported_report.run_dir / "metrics.json").read_text())
    html = (imported_report.run_dir / "report.html").read_text(encoding="utf-8")
    primary = [r for r in metrics["lift_analysis"] if r["metric"] == "click_rate"]
    recommendation = re.search(r'id="recommendation">(.*?)</ul>', html, re.S).group(1)
    if not any(r["statistical_significance"]["significant"] for r in primary):
        mde = metrics["power"]["metrics"]["click_rate"]["mde_absolute"]
        assert "had to be at least" in recommendation and fmt.pp(mde) in recommendation
        assert "not evidence that there is no effect" in recommendation


def test_simulated_banner_on_every_section_iff_simulated(sim_report, imported_report) -> None:
    simulated = (sim_report.run_dir / "report.html").read_text(encoding="utf-8")
    imported = (imported_report.run_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="simulated-banner"' in simulated
    assert simulated.count('<p class="sim-banner sim-inline">SIMULATED DATA</p>') == len(SECTIONS)
    assert "@top-center" in simulated  # the PDF's per-page band
    assert "SIMULATED DATA" not in imported
    assert 'data-simulated="false"' in imported


def test_variant_text_is_escaped_and_citations_link_to_sources(sim_report, report_checks) -> None:
    html = (sim_report.run_dir / "report.html").read_text(encoding="utf-8")
    page = report_checks.parse(sim_report.run_dir / "report.html")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Rewards <Gold> Program" not in html
    links = [a["href"] for tag, a in page.tags if tag == "a" and "cite" in (a.get("class") or "")]
    assert links, "citations are highlighted as links"
    for href in links:
        assert href.startswith("#") and href[1:] in page.ids
    sources = [a for tag, a in page.tags if tag == "a" and (a.get("href") or "").startswith("http")]
    assert {a["href"] for a in sources} >= {"https://www.example.com/docs/tent"}


def test_no_customer_personal_data(sim_report) -> None:
    html = (sim_report.run_dir / "report.html").read_text(encoding="utf-8")
    manifest = json.loads((sim_report.run_dir / "manifest.json").read_text())
    customers = pd.read_csv(manifest["inputs"]["customers"]["path"], dtype=str)
    emails = set(re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", html))
    assert not emails & set(customers["email"])
    words = set(re.findall(r"[\w-]+", html))
    assert not words & set(customers["customer_id"])


def test_safety_coverage_and_chain_come_from_the_audit_log(sim_report, report_checks) -> None:
    page = report_checks.parse(sim_report.run_dir / "report.html")
    coverage = next(a for _, a in page.tags if a.get("id") == "safety-coverage")
    variants = json.loads((sim_report.run_dir / "variants.json").read_text())["variants"]
    assert coverage["data-screened"] == coverage["data-total"] == str(len(variants))
    html = (sim_report.run_dir / "report.html").read_text(encoding="utf-8")
    assert f"{len(variants)} of {len(variants)} (100%)" in html
    chain = next(a for _, a in page.tags if a.get("id") == "audit-chain")
    assert chain["data-ok"] == "true"


def test_unscreened_variant_lowers_coverage(make_run) -> None:
    run = make_run(n=300)
    path = run / "variants.json"
    data = json.loads(path.read_text())
    extra = dict(data["variants"][1], variant_id="v-not-screened")
    data["variants"].append(extra)
    path.write_text(json.dumps(data))
    render_report(run, pdf=False, notebook=False)
    html = (run / "report.html").read_text(encoding="utf-8")
    total = len(data["variants"])
    assert f"{total - 1} of {total} (" in html
    assert "v-not-screened" in html and "Not every variant has a screening decision" in html


def test_tampered_audit_log_is_reported(make_run, report_checks) -> None:
    run = make_run(n=300)
    log = run / "safety_audit.jsonl"
    lines = log.read_text().splitlines()
    lines[2] = lines[2].replace('"status":"pass"', '"status":"block"')
    log.write_text("\n".join(lines) + "\n")
    render_report(run, pdf=False, notebook=False)
    page = report_checks.parse(run / "report.html")
    chain = next(a for _, a in page.tags if a.get("id") == "audit-chain")
    assert chain["data-ok"] == "false"
    assert "line 3" in (run / "report.html").read_text(encoding="utf-8")


def test_the_report_reads_moderators_json_not_the_customer_file(make_run, report_checks) -> None:
    """The customer file is gone after the run: explainability still comes from moderators.json."""
    run = make_run(n=300, with_customers=False)
    result = render_report(run, pdf=False, notebook=False)
    assert result.explain_note is None
    page = report_checks.parse(run / "report.html")
    assert "explain-narrative" in page.ids and "explain-unavailable" not in page.ids


def test_a_run_without_moderators_json_says_so(make_run, report_checks) -> None:
    run = make_run(n=300)
    (run / "moderators.json").unlink()
    result = render_report(run, pdf=False, notebook=False)
    assert "no moderators.json" in (result.explain_note or "")
    page = report_checks.parse(run / "report.html")
    assert "explain-unavailable" in page.ids


def test_a_moderator_analysis_that_was_not_computed_shows_its_reason(make_run) -> None:
    run = make_run(n=300)
    document = json.loads((run / "moderators.json").read_text(encoding="utf-8"))
    document.update(computed=False, result=None, note="the customer file was not available")
    (run / "moderators.json").write_text(json.dumps(document), encoding="utf-8")
    render_report(run, pdf=False, notebook=False)
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "Explainability was not computed: the customer file was not available." in html


@pytest.mark.parametrize("artifact", ["metrics.json", "engagement.csv", "safety_audit.jsonl"])
def test_missing_artifact_is_named(make_run, artifact: str) -> None:
    run = make_run(n=200)
    (run / artifact).unlink()
    with pytest.raises(RunDirError, match=re.escape(artifact)):
        render_report(run, pdf=False, notebook=False)


def test_unfinished_run_is_refused(make_run) -> None:
    run = make_run(n=200)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"]["engage"]["status"] = "failed"
    manifest["status"] = "failed"
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunDirError, match=r"engage \(failed\)"):
        render_report(run, pdf=False, notebook=False)


def test_report_is_deterministic_apart_from_the_timestamp(make_run, tmp_path: Path) -> None:
    run = make_run(n=300)
    render_report(run, pdf=False, notebook=False)
    first = (run / "report.html").read_text(encoding="utf-8")
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    render_report(copy, pdf=False, notebook=False)
    second = (copy / "report.html").read_text(encoding="utf-8")
    stamp = re.compile(r"report generated [^·<]+")
    assert stamp.sub("", first) == stamp.sub("", second)
