"""``cpo suppressions list|add|remove|export`` through the real CLI."""

from __future__ import annotations

import csv

from click.testing import CliRunner

from cpo.cli import cli
from cpo.suppressions import SUPPRESSIONS_FILE, open_suppressions


def cpo(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_add_list_remove_export(tmp_path):
    runs = tmp_path / "runs"  # does not exist yet: a folder name, created on first use
    added = cpo("suppressions", "add", "A@Example.com", "C-9", "--suppressions", runs,
                "--reason", "unsubscribe", "--source", "preference centre")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added 2; 0 already listed" in added.output
    assert (runs / SUPPRESSIONS_FILE).is_file()
    again = cpo("suppressions", "add", "a@example.com ", "--suppressions", runs)
    assert "added 0; 1 already listed" in again.output

    listed = cpo("suppressions", "list", "--suppressions", runs)
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert [line.split("\t")[:3] for line in lines] == [
        ["a@example.com", "unsubscribe", "preference centre"],
        ["c-9", "unsubscribe", "preference centre"],
    ]
    assert "2 suppressed (unsubscribe 2, hard_bounce 0" in listed.stderr

    removed = cpo("suppressions", "remove", "c-9", "nobody", "--suppressions", runs)
    assert "removed 1; 1 were not listed" in removed.output
    counts = cpo("suppressions", "list", "--counts", "--suppressions", runs)
    assert counts.stdout.strip().startswith("1 suppressed")

    with open_suppressions(runs) as suppressions:
        suppressions.add("=cmd|' /C calc'!A0@x.example.com", "complaint", "events.json")
    out = tmp_path / "export.csv"
    exported = cpo("suppressions", "export", "--suppressions", runs, "--out", out)
    assert exported.exit_code == 0, exported.output
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["value"] for r in rows] == ["'=cmd|' /c calc'!a0@x.example.com", "a@example.com"]
    refused = cpo("suppressions", "export", "--suppressions", runs, "--out", out)
    assert refused.exit_code == 1 and "already exists" in refused.output


def test_unknown_reason_is_a_usage_error(tmp_path):
    result = cpo("suppressions", "add", "a@example.com", "--suppressions", tmp_path,
                 "--reason", "bored")  # fmt: skip
    assert result.exit_code == 2 and "bored" in result.output
