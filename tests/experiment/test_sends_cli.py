"""`cpo run` end to end with hostile customer data: what reaches each CSV and the customer.

One run (module fixture) on 120 synthetic customers, some of them with names and
ids an attacker would choose: a threat with a phishing link and a card number,
markup, spreadsheet formulas. The real CLI, config, screening backend and report.
"""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.runfiles import read_csv
from cpo.sample_data.customers import generate_customers

THREAT = "I will kill you http://phish.example 4111 1111 1111 1111"
FORMULA = '=HYPERLINK("http://x","y")'
SCRIPT = "<script>alert(1)</script>"
NAMES = {
    "H-threat": THREAT,
    "H-script": SCRIPT,
    "H-plus": "+cmd|' /C calc'!A0",
    "H-at": "@SUM(1)",
    "H-blank": "",
}


def cpo(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def rows(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    customers = generate_customers(120, seed=7)
    customers = customers.drop(columns=["email"])  # a file without email addresses
    ids = [*NAMES, FORMULA]
    customers.loc[: len(ids) - 1, "customer_id"] = ids
    for customer_id, name in NAMES.items():
        customers.loc[customers["customer_id"] == customer_id, "first_name"] = name
    customers.loc[customers["customer_id"] == FORMULA, "first_name"] = "Mara"
    invalid = customers.iloc[[0]].copy()
    invalid["customer_id"], invalid["first_name"], invalid["age"] = "H-bad-age", FORMULA, "7"
    path = folder / "customers.csv"
    pd.concat([customers, invalid]).to_csv(path, index=False)
    run_dir = folder / "run"
    result = cpo("run", "--customers", path, "--out", run_dir, "--on-invalid", "skip", "-q")
    assert result.exit_code == 0, result.output
    return run_dir


def test_the_threat_is_withheld_everywhere_and_recorded_without_its_value(hostile_run):
    sends = read_csv(hostile_run / "sends.csv", dtype=str, keep_default_na=False)
    assert "H-threat" not in set(sends["customer_id"])
    withheld = rows(hostile_run / "withheld.csv")
    assert [w["customer_id"] for w in withheld] == ["H-threat"]
    assert set(withheld[0]["reason"].split(";")) == {"violence", "link", "pii_card"}
    manifest = json.loads((hostile_run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["experiment"]["withheld"]["customers"] == 1
    for name in ("withheld.csv", "safety_audit.jsonl", "safety_audit.csv", "manifest.json"):
        text = (hostile_run / name).read_text(encoding="utf-8")
        assert "kill you" not in text and "4111 1111" not in text and "phish." not in text, name
    entries = [json.loads(x) for x in (hostile_run / "safety_audit.jsonl").read_text().splitlines()]
    merge = [e for e in entries if e["kind"] == "merge_withheld"]
    assert len(merge) == 1 and merge[0]["customers"] == 1 and len(merge[0]["content_sha256"]) == 64
    verified = cpo("audit", "verify", hostile_run)  # the manifest's audit head kept in step
    assert verified.exit_code == 0, verified.output
    report = (hostile_run / "report.html").read_text(encoding="utf-8")
    assert 'id="withheld-recipients"' in report and "kill you" not in report


def test_customers_receive_clean_escaped_copy(hostile_run):
    sends = read_csv(hostile_run / "sends.csv", dtype=str, keep_default_na=False)
    assert list(sends.columns) == [
        "customer_id",
        "email",
        "first_name",
        "experiment_arm",
        "variant_id",
        "subject",
        "preheader",
        "body",
        "body_html",
    ]
    assert sends["email"].eq("").all()  # keyed by customer_id without an email column
    for column in ("subject", "preheader", "body", "body_html"):
        assert not sends[column].str.contains("[Source:", regex=False).any(), column
    assert sends["preheader"].str.len().le(100).all() and sends["preheader"].ne("").all()
    by_id = sends.set_index("customer_id")
    if "H-script" in by_id.index:  # holdout customers receive nothing
        html = by_id.loc["H-script", "body_html"]
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    blank = by_id.loc[by_id["first_name"] == ""]
    assert all("there" in body.split("\n", 1)[0] for body in blank["body"])
    report = (hostile_run / "report.html").read_text(encoding="utf-8")
    assert "What the customer receives" in report


def test_every_csv_cell_holding_a_formula_is_quoted(hostile_run):
    written = {}
    for path in sorted(hostile_run.glob("*.csv")):
        for row in rows(path):
            for column, cell in row.items():
                written.setdefault(cell, set()).add(f"{path.name}:{column}")
    formula_cells = {c: where for c, where in written.items() if c.startswith(("=", "+", "@"))}
    assert formula_cells == {}, formula_cells
    holding = {where for cell, places in written.items() if FORMULA in cell for where in places}
    escaped = {
        where for cell, places in written.items() if cell == "'" + FORMULA for where in places
    }
    assert holding == escaped  # every cell holding it starts with the quote
    assert {"segments.csv:customer_id", "assignments.csv:customer_id"} <= escaped
    assert "rejected.csv:first_name" in escaped  # the invalid row, set aside as read
    assert "engagement.csv:customer_id" in escaped


def test_escaped_ids_round_trip_through_the_analysis(hostile_run):
    assignments = read_csv(hostile_run / "assignments.csv", dtype=str, keep_default_na=False)
    engagement = read_csv(hostile_run / "engagement.csv", dtype=str, keep_default_na=False)
    assert FORMULA in set(assignments["customer_id"])
    recipients = assignments.loc[assignments["experiment_arm"] != "holdout", "customer_id"]
    assert set(engagement["customer_id"]) == set(recipients)
    metrics = json.loads((hostile_run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["total_customers"] == len(recipients)


def test_resume_keeps_the_send_list_and_records_the_merge_screening_once(tmp_path):
    from cpo.config import load_config
    from cpo.pipeline import default_stages, run_pipeline

    stages = default_stages()
    through_assign = stages[: [s.name for s in stages].index("assign") + 1]
    run_dir = tmp_path / "run"
    run_pipeline(run_dir, load_config(), stages=through_assign)
    before = (run_dir / "sends.csv").read_bytes()
    manifest = run_pipeline(run_dir, resume=True, stages=through_assign)
    assert manifest["stages"]["assign"]["status"] == "completed"
    assert (run_dir / "sends.csv").read_bytes() == before
    audit = (run_dir / "safety_audit.jsonl").read_text(encoding="utf-8").splitlines()
    kinds = [json.loads(line)["kind"] for line in audit]
    assert kinds.count("merge_screening") == 1  # the assign stage was skipped, not rerun
    log = (run_dir / "logs" / "system.log").read_text(encoding="utf-8")
    assert '"stage": "assign", "event": "stage_skipped"' in log.replace('":"', '": "')
    assert cpo("audit", "verify", run_dir).exit_code == 0
