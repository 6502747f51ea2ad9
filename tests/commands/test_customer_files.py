"""Customer files from other systems through ``cpo run`` and ``cpo segment``.

A behavioural export with no names and no emails runs end to end; renamed
columns load with ``--map`` (and a resume keeps the mapping); Latin-1,
semicolon and tab files load with the right flags or clear errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from cpo_testkit import BEHAVIOUR_COLUMNS

from cpo.cli import cli
from cpo.sample_data import bundled_customers

NO_EMAIL_WARNING = "the customer file has no email column"
#: A CRM's names for our columns.
CRM_NAMES = {
    "customer_id": "Kundennummer",
    "location": "Ort",
    "tier": "Stufe",
    "last_engagement_days": "TageSeitKontakt",
}


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def sample(rows: int) -> pd.DataFrame:
    """The first ``rows`` bundled customers as text cells."""
    frame = pd.read_csv(bundled_customers(), dtype=str, keep_default_na=False)
    return frame.head(rows)


def veterinary_frame(rows: int = 40) -> pd.DataFrame:
    """Clients of a veterinary practice network, with accented towns, as text cells."""
    towns = ["Genève", "Besançon", "Liège", "Nîmes", "Annecy"]
    return pd.DataFrame(
        {
            "customer_id": [f"VET{i:05d}" for i in range(rows)],
            "age": [str(25 + (7 * i) % 50) for i in range(rows)],
            "location": [towns[i % len(towns)] for i in range(rows)],
            "tier": ["Or" if i % 4 == 0 else "Argent" for i in range(rows)],
            "purchase_frequency": [str(i % 12) for i in range(rows)],
            "avg_order_value": [f"{35 + 9.5 * (i % 13):.2f}" for i in range(rows)],
            "last_engagement_days": [str((17 * i) % 200) for i in range(rows)],
            "historical_open_rate": [f"{0.05 + 0.03 * (i % 20):.2f}" for i in range(rows)],
            "historical_click_rate": [f"{0.01 + 0.01 * (i % 15):.2f}" for i in range(rows)],
        }
    )


def test_behavioural_export_without_names_or_emails_runs_end_to_end(tmp_path: Path):
    export = tmp_path / "other_system_export.csv"
    sample(160)[BEHAVIOUR_COLUMNS].to_csv(export, index=False)
    run = tmp_path / "run"
    result = invoke("run", "--out", run, "--customers", export)
    assert result.exit_code == 0, result.output
    assert result.output.count(NO_EMAIL_WARNING) == 1
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert all(s["status"] == "completed" for s in manifest["stages"].values())
    for artifact in ("segments.csv", "assignments.csv", "engagement.csv", "metrics.json"):
        assert (run / artifact).is_file(), artifact
    assert (run / "report.html").is_file()
    log = (run / "logs" / "system.log").read_text()
    assert log.count('"no_email_column"') == 1
    sends = pd.read_csv(run / "sends.csv", dtype=str, keep_default_na=False)
    assert sends["customer_id"].is_unique and sends["email"].eq("").all()
    greetings = sends["body"].str.split("\n").str[0]
    assert greetings.str.contains(r"\bthere[,!]$").all()  # customers.greeting_fallback
    assert not sends["body"].str.contains("{first_name}", regex=False).any()
    assert set(sends["customer_id"]) <= set(sample(160)["customer_id"])


def test_renamed_columns_run_with_map_and_resume_keeps_it(tmp_path: Path):
    export = tmp_path / "crm.csv"
    frame = sample(140).rename(columns=CRM_NAMES)
    frame.loc[9, "age"] = "7"  # the first run stops at this row
    frame.to_csv(export, sep=";", index=False, encoding="cp1252")
    maps = [arg for ours, theirs in CRM_NAMES.items() for arg in ("--map", f"{theirs}={ours}")]
    run = tmp_path / "run"
    first = invoke("run", "--out", run, "--customers", export, *maps, "--encoding", "cp1252")
    assert first.exit_code == 1
    assert "column 'age': out of range" in first.output  # mapped and read: only the bad row fails
    stored = json.loads((run / "manifest.json").read_text())["options"]
    assert stored["column_map"] == {theirs: ours for ours, theirs in CRM_NAMES.items()}
    assert stored["encoding"] == "cp1252"
    frame.loc[9, "age"] = "47"
    frame.to_csv(export, sep=";", index=False, encoding="cp1252")
    resumed = invoke("run", "--resume", run, "-q")
    assert resumed.exit_code == 0, resumed.output
    segments = pd.read_csv(run / "segments.csv", dtype=str)
    assert len(segments) == 140 and segments["customer_id"].iloc[0] == frame.iloc[0, 0]


def test_bad_map_is_a_usage_error_naming_the_value(tmp_path: Path):
    export = tmp_path / "export.csv"
    veterinary_frame().to_csv(export, index=False)
    result = invoke("segment", export, "--map", "Kundennummer")
    assert result.exit_code == 2
    assert "'Kundennummer' is not THEIRS=OURS" in result.output
    result = invoke("segment", export, "--map", "A=customer_id", "--map", "B=customer_id")
    assert (
        result.exit_code == 2 and "'A' and 'B' are both mapped onto 'customer_id'" in result.output
    )
    result = invoke("segment", export, "--encoding", "klingon-8")
    assert result.exit_code == 2 and "unknown encoding 'klingon-8'" in result.output


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ("Town=location", "column mapping Town=location: the file has no column 'Town'"),
        ("tier=location", "the file already has a column 'location'"),
    ],
)
def test_mapping_that_does_not_fit_the_file_names_both_columns(tmp_path, mapping, expected):
    export = tmp_path / "export.csv"
    veterinary_frame().to_csv(export, index=False)
    result = invoke("segment", export, "--map", mapping)
    assert result.exit_code == 1
    assert expected in result.output and "Traceback" not in result.output


def test_latin1_file_errors_with_line_then_loads_with_encoding(tmp_path: Path):
    export = tmp_path / "legacy.csv"
    frame = veterinary_frame()
    frame["location"] = frame["location"].where(frame.index >= 3, "Lyon")  # ASCII lines 2-4
    frame.to_csv(export, index=False, encoding="latin-1")
    failed = invoke("segment", export)
    assert failed.exit_code == 1
    assert f"{export}: line 5 has a byte (0xee)" in failed.output
    assert "--encoding latin-1" in failed.output
    assert "Traceback" not in failed.output
    out = tmp_path / "segments.csv"
    loaded = invoke("segment", export, "--encoding", "latin-1", "--out", out)
    assert loaded.exit_code == 0, loaded.output
    assert loaded.output.startswith("40 customers")


@pytest.mark.parametrize(("flag", "separator"), [(None, ";"), (None, "\t"), ("|", "|")])
def test_semicolon_tab_and_given_delimiters(tmp_path: Path, flag, separator):
    export = tmp_path / "export.csv"
    veterinary_frame().to_csv(export, index=False, sep=separator)
    args = ["--delimiter", flag] if flag else []
    result = invoke("segment", export, *args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("40 customers")


def test_pipe_file_without_delimiter_hints_delimiter(tmp_path: Path):
    export = tmp_path / "export.csv"
    veterinary_frame().to_csv(export, index=False, sep="|")
    result = invoke("segment", export)
    assert result.exit_code == 1
    assert "could not detect the delimiter" in result.output and "--delimiter" in result.output


def test_directory_as_customer_file_says_it_is_a_directory(tmp_path: Path):
    folder = tmp_path / "exports"
    folder.mkdir()
    veterinary_frame().to_csv(folder / "clients.csv", index=False)
    result = invoke("run", "--out", tmp_path / "run", "--customers", folder)
    assert result.exit_code == 1
    assert f"{folder}: is a directory" in result.output and "clients.csv" in result.output
    assert "not found" not in result.output and "Traceback" not in result.output


def test_config_customers_section_maps_and_sets_the_delimiter(tmp_path: Path):
    config = tmp_path / "cfg"
    assert invoke("init", config).exit_code == 0
    path = config / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text())
    data["customers"]["columns"] = {"ClientID": "customer_id"}
    data["customers"]["delimiter"] = "tab"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    export = tmp_path / "clients.txt"
    veterinary_frame().rename(columns={"customer_id": "ClientID"}).to_csv(
        export, index=False, sep="\t"
    )
    out = tmp_path / "segments.csv"
    result = invoke("segment", export, "--config", config, "--out", out)
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)["customer_id"].iloc[0] == "VET00000"
