"""The report's count of recipients without an assignment (vectorized, no loop per recipient)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from cpo.cli import cli
from cpo.reporting.sections.quality import _count_missing


def test_count_missing_agrees_with_a_set_lookup_on_random_ids() -> None:
    rng = np.random.default_rng(11)
    known = np.array([f"K{v}" for v in rng.integers(0, 5000, 4000)], dtype=object)
    values = np.array([f"K{v}" for v in rng.integers(0, 8000, 6000)], dtype=object)
    expected = sum(value not in set(known) for value in values)
    assert 0 < expected < len(values)
    assert _count_missing(values, known) == expected


def test_count_missing_edge_cases() -> None:
    empty = np.array([], dtype=object)
    ids = np.array(["a", "b", "b"], dtype=object)
    assert _count_missing(ids, empty) == 3
    assert _count_missing(empty, ids) == 0
    assert _count_missing(ids, np.array(["b"], dtype=object)) == 1


def test_cpo_report_counts_recipients_missing_from_assignments(make_run) -> None:
    run: Path = make_run(n=300)
    assignments = pd.read_csv(run / "assignments.csv", dtype={"customer_id": str})
    recipients = pd.read_csv(run / "engagement.csv", dtype={"customer_id": str})
    recipients = recipients[recipients["experiment_arm"] != "holdout"]["customer_id"]
    dropped = recipients.iloc[[0, 5, 17, 40, 41]]
    kept = assignments[~assignments["customer_id"].isin(set(dropped))]
    kept.to_csv(run / "assignments.csv", index=False)
    result = CliRunner().invoke(cli, ["report", str(run), "--no-pdf", "--no-notebook"])
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text(encoding="utf-8")
    found = re.search(r"Recipients without an assignment: ([\d,]+)", html)
    assert found is not None and found.group(1) == str(len(set(dropped)))
