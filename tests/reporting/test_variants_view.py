"""The report's variants section shows what the customer receives beside the cited version."""

from __future__ import annotations

import copy

from cpo.reporting.artifacts import load_run
from cpo.reporting.sections.variants import variants_section


def views(section):
    return [v for group in section["groups"] for v in group["variants"]]


def test_customer_copy_beside_the_cited_version(fixture_run):
    art = load_run(fixture_run)
    section = variants_section(art)
    cited = [v for v in views(section) if "[Source:" in str(v["body"])]
    assert cited, "the fixture variants carry citation markers"
    for view in views(section):
        if view["status"] == "failed":
            continue
        assert "[Source:" not in str(view["customer_body"])
        assert view["customer_preheader"] and len(view["customer_preheader"]) <= 100
        assert "[Source:" not in view["customer_preheader"]
    assert section["citations_in_email"] == "none"


def test_footnotes_setting_and_withheld_count_come_from_the_run(fixture_run):
    art = load_run(fixture_run)
    manifest = copy.deepcopy(art.manifest)
    manifest["config"]["experiment_config.yaml"]["generation"]["citations_in_email"] = "footnotes"
    manifest.setdefault("experiment", {})["withheld"] = {
        "customers": 3,
        "by_reason": {"link": 2, "violence": 1},
        "values_screened": 40,
    }
    section = variants_section(type(art)(**{**art.__dict__, "manifest": manifest}))
    assert section["citations_in_email"] == "footnotes"
    bodies = [str(v["customer_body"]) for v in views(section) if "[Source:" in str(v["body"])]
    assert bodies and all("[1]" in body and "Sources:" in body for body in bodies)
    assert section["withheld"]["customers"] == 3
    assert section["withheld"]["reasons"] == "link 2, violence 1"
