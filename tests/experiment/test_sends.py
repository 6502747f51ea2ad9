"""The send list: only sendable variants, merge fields rendered safely, holdout excluded."""

from __future__ import annotations

import pandas as pd
import pytest

from cpo.experiment.sends import (
    SEND_COLUMNS,
    build_send_list,
    render,
    template_parts,
    unknown_merge_fields,
)


@pytest.mark.parametrize(
    "template, name, expected",
    [
        ("Hi {first_name}, welcome", "Ada", "Hi Ada, welcome"),
        ("{first_name}{first_name}", "Bo", "BoBo"),
        ("Save {{50%}} today", "Ada", "Save {50%} today"),
        ("Literal {{first_name}} stays", "Ada", "Literal {first_name} stays"),
        ("A {stray brace and {0.__class__}", "Ada", "A {stray brace and {0.__class__}"),
        ("No fields", "Ada", "No fields"),
    ],
)
def test_render(template, name, expected):
    assert render(template, pd.Series([name])).tolist() == [expected]


def test_a_name_is_inserted_once_and_never_rescanned():
    names = pd.Series(["{first_name}", "{{x}}", "Zoë"])
    assert render("Hi {first_name}!", names).tolist() == [
        "Hi {first_name}!",
        "Hi {{x}}!",
        "Hi Zoë!",
    ]


def test_template_parts_and_unknown_fields():
    assert template_parts("a{first_name}b{{c}}") == ["a", None, "b{c}"]
    assert unknown_merge_fields("Hi {first_name} {last_name} {{city}} {0}") == ["last_name"]


@pytest.fixture
def send_inputs(xkit):
    variants = {v.variant_id: v for v in xkit.variant_set(["a"])}
    variants["s0-urgent"] = xkit.make_variant(
        "s0-urgent", "a", "urgent", "Ends {tonight} {{sale}}", subject="{first_name}, hurry"
    )
    assignments = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c4", "c5"],
            "segment": "a",
            "experiment_arm": ["control", "treatment_1", "holdout", "treatment_1", "control"],
            "variant_id": ["control", "s0-urgent", "", "s0-urgent", "control"],
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": ["c5", "c4", "c3", "c2", "c1"],
            "email": ["e5@x.org", "e4@x.org", "e3@x.org", "e2@x.org", "e1@x.org"],
            "first_name": ["Eve", "  ", "Cy", "Bo\nBcc: x", "Ada"],
        }
    )
    return assignments, customers, variants


def test_send_list_renders_and_excludes_holdout(send_inputs):
    assignments, customers, variants = send_inputs
    sendable = {vid: variants[vid] for vid in ("control", "s0-urgent")}
    result = build_send_list(assignments, customers, sendable)
    frame = result.frame
    assert tuple(frame.columns) == SEND_COLUMNS
    assert frame["customer_id"].tolist() == ["c1", "c2", "c4", "c5"]
    assert "c3" not in set(frame["customer_id"])
    assert frame.loc[0, "email"] == "e1@x.org" and frame.loc[0, "first_name"] == "Ada"
    assert frame.loc[0, "body"].startswith("Hi Ada,\n\nBrowse the latest gear.")
    assert frame.loc[1, "subject"] == "Bo Bcc: x, hurry"  # control characters flattened
    assert frame.loc[2, "subject"] == "there, hurry" and frame.loc[2, "body"].startswith(
        "Hi there,"
    )
    assert "Ends {tonight} {sale}" in frame.loc[2, "body"]
    assert result.missing_names == 1
    assert result.unknown_fields == {"s0-urgent": ["tonight"]}
    assert not frame["body"].str.contains("{first_name}", regex=False).any()


def test_a_variant_not_in_the_sendable_set_is_refused(send_inputs):
    assignments, customers, variants = send_inputs
    with pytest.raises(ValueError, match="s0-urgent"):
        build_send_list(assignments, customers, {"control": variants["control"]})


def test_recipients_without_customer_record_are_refused(send_inputs):
    assignments, customers, variants = send_inputs
    with pytest.raises(ValueError, match="no customer record"):
        build_send_list(assignments, customers.iloc[1:], variants)
