"""The variants page, the customer preview and the report served inside the app."""

from __future__ import annotations

import json

import pytest

from cpo.run_folder import (
    REPORT_HTML,
    REPORT_NOTEBOOK,
    REPORT_PDF,
    SAFETY_AUDIT,
    VARIANTS,
    read_retrieval,
    read_variants,
)
from cpo.web.routes.report import REPORT_CSP
from cpo.web.routes.variants import PREVIEW_CSP
from cpo.web.security import DEFAULT_CSP

from .conftest import RUN_ID

SCRIPT = "<script>alert('x')</script>"


def test_every_variant_is_shown_beside_the_paragraphs_it_cites(client_for, run_dir):
    response = client_for("marketer").get(f"/runs/{RUN_ID}/variants")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == DEFAULT_CSP
    text = response.text
    variants = read_variants(run_dir)
    for variant in variants:
        assert f'id="variant-{variant.variant_id}"' in text
    cited = next(v for v in variants if v.citations)
    citation = cited.citations[0]
    paragraph = next(
        r["snippet"]
        for segment in read_retrieval(run_dir)["segments"]
        for r in segment["results"]
        if (r["document_id"], r["paragraph_index"])
        == (citation.document_id, citation.paragraph_index)
    )
    article = text.split(f'id="variant-{cited.variant_id}"')[1].split("</article>")[0]
    assert f"<blockquote>{_escaped(paragraph)}</blockquote>" in article
    assert "Harm severities" in article and "Customer preview" in article
    assert "[Source:" in article  # the variant as generated keeps its markers...
    customer = article.split("Customer preview")[1]
    assert "[Source:" not in customer  # ...the customer's copy has none


def _escaped(text: str) -> str:
    from html import escape

    return escape(text, quote=True)


@pytest.fixture
def scripted(run_dir):
    """The run with a variant whose subject and body hold markup."""
    path = VARIANTS.path(run_dir)
    document = json.loads(path.read_text(encoding="utf-8"))
    target = next(v for v in document["variants"] if v["tone"] != "control")
    target["subject"] = f"Hello {SCRIPT}"
    target["body"] = target["body"].replace("Hi {first_name},", f"Hi {{first_name}}, {SCRIPT}")
    path.write_text(json.dumps(document), encoding="utf-8")
    return target["variant_id"]


def test_markup_in_a_variant_is_shown_escaped(client_for, scripted):
    client = client_for("reviewer")
    text = client.get(f"/runs/{RUN_ID}/variants").text
    assert SCRIPT not in text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in text
    preview = client.get(f"/runs/{RUN_ID}/variants/{scripted}/preview")
    assert preview.status_code == 200
    assert SCRIPT not in preview.text and "&lt;script&gt;" in preview.text
    assert preview.headers["content-security-policy"] == PREVIEW_CSP
    assert "sandbox" in PREVIEW_CSP and "script-src" not in PREVIEW_CSP
    assert preview.headers["x-frame-options"] == "SAMEORIGIN"


def test_the_preview_needs_a_login_and_a_known_variant(client_for, anonymous):
    response = anonymous.get(f"/runs/{RUN_ID}/variants/control/preview", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    client = client_for("marketer")
    assert client.get(f"/runs/{RUN_ID}/variants/control/preview").status_code == 200
    assert client.get(f"/runs/{RUN_ID}/variants/nope/preview").status_code == 404


def test_a_tampered_audit_log_is_an_error_not_a_page_of_decisions(client_for, run_dir):
    path = SAFETY_AUDIT.path(run_dir)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[0] = lines[0].replace('"status":"pass"', '"status":"review"')
    path.write_text("".join(lines), encoding="utf-8")
    response = client_for("reviewer").get(f"/runs/{RUN_ID}/variants")
    assert response.status_code == 400
    assert "failed verification" in response.text


def test_the_report_is_served_with_its_own_policy(client_for, run_dir):
    response = client_for("marketer").get(f"/runs/{RUN_ID}/report")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.content == REPORT_HTML.path(run_dir).read_bytes()
    policy = response.headers["content-security-policy"]
    assert policy == REPORT_CSP
    assert "script-src" not in policy and "default-src 'none'" in policy


@pytest.mark.parametrize(
    ("suffix", "artifact", "media_type"),
    [
        ("report.pdf", REPORT_PDF, "application/pdf"),
        ("report.ipynb", REPORT_NOTEBOOK, "application/x-ipynb+json"),
    ],
)
def test_pdf_and_notebook_are_downloads(client_for, run_dir, suffix, artifact, media_type):
    response = client_for("reviewer").get(f"/runs/{RUN_ID}/{suffix}")
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment") and f"{RUN_ID}-{artifact.name}" in disposition
    assert response.content == artifact.path(run_dir).read_bytes()


def test_a_missing_report_and_bad_run_ids_are_404(client_for, run_dir, anonymous):
    client = client_for("marketer")
    REPORT_PDF.path(run_dir).unlink()
    missing = client.get(f"/runs/{RUN_ID}/report.pdf")
    assert missing.status_code == 404 and "has no report.pdf yet" in missing.text
    for path in ("/runs/..%2F..%2Fetc/report", "/runs/.hidden/report", "/runs/nope/variants"):
        assert client.get(path).status_code == 404, path
    assert anonymous.get(f"/runs/{RUN_ID}/report", follow_redirects=False).status_code == 303
