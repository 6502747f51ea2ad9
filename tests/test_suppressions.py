"""The suppression list: normalised, idempotent, counted, shared between opens."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cpo.errors import DataValidationError
from cpo.suppressions import (
    SUPPRESSIONS_FILE,
    default_suppressions_path,
    open_suppressions,
    resolve_suppressions_path,
)


def test_add_is_idempotent_and_normalises(tmp_path):
    with open_suppressions(tmp_path) as suppressions:
        assert suppressions.add(" Ann@Example.COM ", "unsubscribe", "run-1")
        assert not suppressions.add("ann@example.com", "hard_bounce", "run-2")
        assert suppressions.add("C-17", "manual", "manual", datetime(2026, 1, 2, 3, 4, 5))
        entries = list(suppressions.entries())
    assert [(e.value, e.reason, e.source) for e in entries] == [
        ("ann@example.com", "unsubscribe", "run-1"),
        ("c-17", "manual", "manual"),
    ]
    assert entries[1].added_at == "2026-01-02T03:04:05+00:00"


def test_contains_many_returns_values_as_given(tmp_path):
    with open_suppressions(tmp_path / SUPPRESSIONS_FILE) as suppressions:
        suppressions.add("bob@example.com", "complaint", "events.json", datetime.now(UTC))
        values = ["BOB@example.com", "carol@example.com", " bob@example.com"]
        assert suppressions.contains_many(values) == {"BOB@example.com", " bob@example.com"}
        # More values than one SQL query takes at once.
        many = [f"x{i}@example.com" for i in range(1200)] + ["bob@example.com"]
        assert suppressions.contains_many(many) == {"bob@example.com"}


def test_counts_and_remove_persist_across_opens(tmp_path):
    with open_suppressions(tmp_path) as suppressions:
        suppressions.add("a@example.com", "unsubscribe", "r")
        suppressions.add("b@example.com", "hard_bounce", "r")
        suppressions.add("c@example.com", "hard_bounce", "r")
    with open_suppressions(tmp_path) as suppressions:
        assert suppressions.counts() == {
            "unsubscribe": 1,
            "hard_bounce": 2,
            "complaint": 0,
            "manual": 0,
        }
        assert suppressions.remove("B@example.com")
        assert not suppressions.remove("b@example.com")
        assert suppressions.counts()["hard_bounce"] == 1


@pytest.mark.parametrize(("value", "reason"), [("  ", "manual"), ("a@example.com", "bored")])
def test_bad_entries_are_refused(tmp_path, value, reason):
    with open_suppressions(tmp_path) as suppressions, pytest.raises(DataValidationError):
        suppressions.add(value, reason, "manual")


def test_default_path_is_beside_the_run_folder(tmp_path):
    run_dir = tmp_path / "runs" / "run-1"
    run_dir.mkdir(parents=True)
    assert default_suppressions_path(run_dir) == tmp_path / "runs" / SUPPRESSIONS_FILE
    assert resolve_suppressions_path(None, run_dir) == tmp_path / "runs" / SUPPRESSIONS_FILE
    assert resolve_suppressions_path(tmp_path, run_dir) == tmp_path / SUPPRESSIONS_FILE
    explicit = tmp_path / "lists" / "team.sqlite"
    assert resolve_suppressions_path(explicit, run_dir) == explicit
