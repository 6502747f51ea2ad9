"""A small bank (Harbor Bank, tiers Standard and Premier) for the audience tests.

Customers: 120 rows. Rules put every Premier customer with a high balance into
"Premier Savers" (all Premier); "Active Savers" and the fallback "Everyday Banking"
mix Standard and Premier customers. The content has a promotion for everyone that
says "As a valued Premier member, ...", a document for "Premier" (reaches
"Premier Savers" by word match), one for "Savers" (reaches both savers segments),
one only Premier customers are eligible for, and one for "Students" (no segment).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from cpo import pipeline
from cpo.audience import find_mentions
from cpo.cli import cli

TIERS = ("Standard", "Premier")
AS_OF = "2026-11-26"


def customers_frame(count: int = 120) -> pd.DataFrame:
    """Deterministic customers; every third one is Premier."""
    rows = []
    for i in range(count):
        rows.append(
            {
                "customer_id": f"HB{i:04d}",
                "first_name": f"Name{i}",
                "email": f"client{i}@harbor.example",
                "age": 25 + i % 40,
                "location": "Portland, ME",
                "tier": "Premier" if i % 3 == 0 else "Standard",
                "purchase_frequency": 8.0 if i % 2 == 0 else 3.0,
                "avg_order_value": 220.0 if i % 12 == 0 else 80.0 + i % 7,
                "last_engagement_days": 5 + i % 50,
                "historical_open_rate": 0.2 + (i % 10) / 50,
                "historical_click_rate": 0.02 + (i % 10) / 200,
            }
        )
    return pd.DataFrame(rows)


RULES = [
    {
        "name": "Premier Savers",
        "description": "Premier clients with large balances.",
        "conditions": [
            {"column": "tier", "op": "==", "value": "Premier"},
            {"column": "avg_order_value", "op": ">=", "value": 200},
        ],
        "traits": ["savings", "premium"],
    },
    {
        "name": "Active Savers",
        "description": "Clients who bank often.",
        "conditions": [{"column": "purchase_frequency", "op": ">=", "value": 6}],
        "traits": ["savings", "rewards"],
    },
]
FALLBACK = {"name": "Everyday Banking", "description": "Everyone else.", "traits": ["value"]}


def record(document_id: str, audience: str, content: str, **extra: Any) -> dict[str, Any]:
    """One approved-content document of the bank."""
    return {
        "document_id": document_id,
        "title": extra.pop("title", f"Harbor Bank {document_id}"),
        "category": extra.pop("category", "promotion"),
        "content": content,
        "audience": audience,
        "keywords": extra.pop("keywords", ["savings", "rewards", "value", "premium"]),
        "approval_date": "2026-01-05",
        "expiry_date": None,
        "source_url": f"https://harbor.example/{document_id.lower()}",
        **extra,
    }


DOCUMENTS = [
    record(
        "HB-PRM-1",
        "All",
        "As a valued Premier member, you earn 2% cashback on every card purchase through "
        "31 March 2027. Harbor Bank savings accounts pay 4.1% interest on balances up to "
        "$50,000. You can open a savings account online in ten minutes.\n\n"
        "Premier members also get fee-free international transfers in 30 currencies. "
        "Harbor Bank rewards points never expire while your account is open. Redeem "
        "rewards points for travel, gift cards or a statement credit.",
        title="Savings and rewards at Harbor Bank",
    ),
    record(
        "HB-PRM-2",
        "Premier",
        "Premier members get a dedicated relationship manager, reachable by phone seven days "
        "a week. Your relationship manager can review your savings goals with you.\n\n"
        "Premium metal cards come with travel insurance and airport lounge access. "
        "Savings goals in the Harbor app round up every card purchase.",
        title="Premier banking",
    ),
    record(
        "HB-SAV-1",
        "Savers",
        "The Harbor Goal Saver account pays a 1% bonus on top of standard interest when you "
        "save every month. Automatic transfers help you build savings without thinking "
        "about it.\n\nYou can name each savings goal and watch it grow in the Harbor app. "
        "Savings rewards are paid on the first business day of each month.",
        title="Goal Saver",
    ),
    record(
        "HB-ELG-1",
        "All",
        "The Harbor Private Lounge in Portland offers free coffee and quiet meeting rooms. "
        "Book a private lounge room online up to 30 days ahead.",
        title="Private Lounge",
        eligibility=["tier == Premier"],
        keywords=["savings", "premium", "lounge"],
    ),
    record(
        "HB-STU-1",
        "Students",
        "Student accounts have no monthly fee until graduation.",
        title="Student banking",
    ),
    record(
        "HB-SUP-1",
        "All",
        "Harbor Bank support answers calls from 7 am to 10 pm every day. Report a lost card "
        "in the Harbor app and a new one ships within two business days.\n\n"
        "Harbor Bank deposits are insured up to $250,000 per depositor. Value-minded clients "
        "pay no monthly fee when they keep $500 in savings.",
        title="Support and security",
        category="support",
        keywords=["support", "value", "savings"],
    ),
]


def write_customers(folder: Path) -> Path:
    """The customers as CSV."""
    path = folder / "customers.csv"
    customers_frame().to_csv(path, index=False)
    return path


def write_content(folder: Path) -> Path:
    """The bank's approved content, one JSON file per document."""
    content = folder / "content"
    content.mkdir(parents=True, exist_ok=True)
    for document in DOCUMENTS:
        (content / f"{document['document_id']}.json").write_text(
            json.dumps(document, indent=2), encoding="utf-8"
        )
    return content


def init_bank_config(folder: Path) -> None:
    """`cpo init` for the bank's brand."""
    args = ["init", str(folder), "--brand", "Harbor Bank", "--site", "https://harbor.example"]
    args += ["--unsubscribe-url", "https://harbor.example/unsubscribe"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


def configure(config_dir: Path, content: dict[str, Any] | None = None) -> None:
    """Edit an initialized config folder: the bank's rules, a fixed as-of date, content keys."""
    path = config_dir / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["campaign"]["as_of"] = AS_OF
    data["segmentation"]["method"] = "rules"
    data["segmentation"]["rules"] = RULES
    data["segmentation"]["fallback"] = FALLBACK
    data["content"].update(content or {})
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def set_policy(config_dir: Path, **rules: str) -> None:
    """Set compliance rule actions in safety_thresholds.yaml."""
    path = config_dir / "safety_thresholds.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for name, action in rules.items():
        data["compliance"][name]["action"] = action
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


# -- the end-to-end tests --------------------------------------------------------------------

STOP_AFTER_SENDS = {"engage", "analyze", "report"}


@pytest.fixture
def through_sends(monkeypatch):
    """`cpo run` without the stages after the send list (they never change sends.csv)."""
    real = pipeline.default_stages

    def stages(report_worker=None):
        return [stage for stage in real(report_worker) if stage.name not in STOP_AFTER_SENDS]

    monkeypatch.setattr(pipeline, "default_stages", stages)


def cpo_run(tmp_path: Path, name: str, content: dict | None = None, **policy: str):
    """Initialize a config, configure it for the bank and run `cpo run` on the bank."""
    config = tmp_path / f"config-{name}"
    init_bank_config(config)
    configure(config, content)
    if policy:
        set_policy(config, **policy)
    run_dir = tmp_path / name
    args = ["run", "--out", run_dir, "--config", config]
    args += ["--customers", write_customers(tmp_path), "--content", write_content(tmp_path)]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result, run_dir


def tier_violations(run_dir: Path) -> pd.DataFrame:
    """Sends whose subject or body names a tier value the recipient does not hold."""
    sends = pd.read_csv(run_dir / "sends.csv", dtype=str, keep_default_na=False)
    joined = sends.merge(customers_frame()[["customer_id", "tier"]], on="customer_id")
    named = [
        find_mentions(f"{row.subject}\n{row.preheader}\n{row.body}", TIERS)
        for row in joined.itertuples()
    ]
    tiers = joined["tier"].tolist()
    bad = [any(v != tier for v in values) for values, tier in zip(named, tiers, strict=True)]
    return joined[bad]


def test_no_customer_is_told_a_tier_they_do_not_hold(tmp_path: Path, through_sends):
    result, run_dir = cpo_run(tmp_path, "guarded")
    assert result.exit_code == 0, result.output
    sends = pd.read_csv(run_dir / "sends.csv", dtype=str, keep_default_na=False)
    assert len(sends) > 0
    assert tier_violations(run_dir).empty
    retrieval = json.loads((run_dir / "retrieval.json").read_text(encoding="utf-8"))
    by_name = {entry["segment"]: entry for entry in retrieval["segments"]}
    mixed = ("Active Savers", "Everyday Banking")
    removed = [r["sentence"] for name in mixed for r in by_name[name]["removed_sentences"]]
    assert any(s.startswith("As a valued Premier member") for s in removed)
    for name in mixed:
        assert by_name[name]["audience_values"]["held_by_all"] == {"tier": None}
        for snippet in by_name[name]["results"]:
            assert find_mentions(snippet["snippet"], TIERS) == []
    premier = by_name["Premier Savers"]
    assert premier["audience_values"] == {
        "held_by_all": {"tier": "Premier"},
        "not_held_by_all": ["Standard"],
    }
    assert "Premier" in premier["audiences"]["specific"]
    # eligibility: only Premier customers may get the private lounge
    assert "HB-ELG-1" not in {e["document_id"] for e in premier["excluded_documents"]}
    assert premier["eligible_shares"]["HB-ELG-1"] == 1.0
    excluded = {e["document_id"]: e for e in by_name["Active Savers"]["excluded_documents"]}
    assert excluded["HB-ELG-1"]["eligible_share"] == pytest.approx(10 / 50)
    assert "'tier == Premier'" in excluded["HB-ELG-1"]["reason"]
    assert all(r["document_id"] != "HB-ELG-1" for r in by_name["Active Savers"]["results"])
    # an audience no segment matches is a warning on the terminal and in retrieval.json
    assert "audience 'Students' matches no segment" in result.output
    assert [w.split(" matches")[0] for w in retrieval["audience_warnings"]] == [
        "audience 'Students'"
    ]


def test_without_the_backstop_the_same_run_names_tiers_wrongly(tmp_path: Path, through_sends):
    """The corpus does exercise the problem: with the backstop off, customers get it wrong."""
    result, run_dir = cpo_run(
        tmp_path, "unguarded", {"audience_columns": []}, audience_mentions="off"
    )
    assert result.exit_code == 0, result.output
    violations = tier_violations(run_dir)
    assert not violations.empty
    assert set(violations["tier"]) == {"Standard"}


def test_a_control_message_naming_a_tier_goes_to_review(tmp_path: Path, through_sends):
    """The control goes to everyone: naming a tier not all customers hold needs review."""
    config = tmp_path / "config-control"
    init_bank_config(config)
    configure(config)
    control = config / "prompts" / "control_message.txt"
    subject, _, body = control.read_text(encoding="utf-8").partition("\n\n")
    control.write_text(f"{subject}\n\nAs a valued Premier member, read on.\n\n{body}", "utf-8")
    run_dir = tmp_path / "run"
    args = ["run", "--out", run_dir, "--config", config, "--customers"]
    args += [write_customers(tmp_path), "--content", write_content(tmp_path)]
    result = CliRunner().invoke(cli, [str(a) for a in args])
    entries = [
        json.loads(line)
        for line in (run_dir / "safety_audit.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    decision = next(e for e in entries if e.get("variant_id") == "control")
    assert decision["status"] == "review", result.output
    assert (
        "audience mention: names Premier, not held by every customer of all customers "
        "(the control goes to everyone)" in decision["reasons"]
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            {"audience_columns": ["plan"]},
            "key 'content.audience_columns' names column 'plan', which the customer data",
        ),
        ({"min_eligible_share": 0}, "content.min_eligible_share"),
    ],
)
def test_bad_audience_settings_fail_with_one_clear_error(tmp_path: Path, content, expected):
    result, _ = cpo_run(tmp_path, "bad", content)
    assert result.exit_code == 1
    assert expected in result.output
    assert "Traceback" not in result.output
