"""The clean-export path of ``cpo analyze EXPORT --assignments`` against the general path.

Both must give the same metrics document (apart from ``computed_at``) and, on input the
clean path does not vouch for, it must step aside so the general path's messages stay.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.experiment import metrics
from cpo.experiment.export_join import PYTHON_WHITESPACE, import_clean_export

ASSIGNMENT_HEADER = "customer_id,segment,experiment_arm,variant_id,assigned_at,assignment_method"


def write_pair(
    folder: Path,
    *,
    rows: int = 400,
    arms: tuple[str, ...] = ("control", "treatment_1", "treatment_2"),
    seed: int = 1,
    id_format: str = "C{:06d}",
    flag_text: tuple[str, str] = ("0", "1"),
    unknown: int = 0,
    missing: int = 0,
    duplicates: int = 0,
    click_without_open: int = 0,
    export_header: str = "customer_id,opened,clicked,converted",
) -> tuple[Path, Path]:
    """assignments.csv and a shuffled export of ``rows`` recipients (each case optional)."""
    generator = np.random.default_rng(seed)
    ids = [id_format.format(i) for i in range(rows)]
    segments = ("High-Value Recent", "At-Risk", "New Customer", "Standard")
    assignments = folder / "assignments.csv"
    lines = [ASSIGNMENT_HEADER]
    for customer in ids:
        arm = arms[generator.integers(len(arms))]
        segment = segments[generator.integers(len(segments))]
        lines.append(f"{customer},{segment},{arm},v-{arm},2026-11-30T12:00:00Z,stratified_block")
    assignments.write_text("\n".join(lines) + "\n", encoding="utf-8")
    opened = generator.random(rows) < 0.4
    clicked = opened & (generator.random(rows) < 0.3)
    clicked[:click_without_open] = True
    opened[:click_without_open] = False
    converted = generator.random(rows) < 0.05
    order = list(generator.permutation(rows))[missing:]
    order += order[:duplicates]
    export_rows = [(ids[i], int(opened[i]), int(clicked[i]), int(converted[i])) for i in order]
    export_rows += [(f"X{i}", 1, 0, 0) for i in range(unknown)]
    export = folder / "engagement.csv"
    lines = [export_header]
    lines += [f"{c},{flag_text[o]},{flag_text[k]},{flag_text[v]}" for c, o, k, v in export_rows]
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return export, assignments


def general_path(monkeypatch: pytest.MonkeyPatch, export: Path, assignments: Path) -> dict:
    """The metrics document of the general path (the clean path switched off)."""
    with monkeypatch.context() as patch:
        patch.setattr(metrics, "_analyze_clean_export", lambda *args: None)
        return metrics.analyze_file(export, assignments=assignments)


def without_time(document: dict) -> dict:
    return {key: value for key, value in document.items() if key != "computed_at"}


@pytest.mark.parametrize(
    "case",
    [
        {},
        {"arms": ("control", "treatment_1", "treatment_2", "treatment_3", "treatment_4")},
        {"arms": ("control", "treatment_1", "holdout")},
        {"arms": ("control", "Ünïcode arm", "b")},
        {"id_format": "{}"},
        {"id_format": "customer-{:x}-é"},
        {"flag_text": ("false", "TRUE")},
        {"flag_text": ("0.0", "t")},
        {"unknown": 7},
        {"missing": 25},
        {"duplicates": 9},
        {"click_without_open": 5},
        {"export_header": "Customer_ID,Opened,Clicked,Converted"},
        {"rows": 3000, "unknown": 3, "missing": 4, "duplicates": 2, "seed": 5},
    ],
)
def test_same_metrics_as_the_general_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: dict
) -> None:
    export, assignments = write_pair(tmp_path, **case)
    assert import_clean_export(export, assignments) is not None  # the clean path was taken
    fast = metrics.analyze_file(export, assignments=assignments)
    assert without_time(fast) == without_time(general_path(monkeypatch, export, assignments))


def test_same_warnings_and_counts_as_the_engagement_import(tmp_path: Path) -> None:
    from cpo.experiment.engagement import import_engagement

    export, assignments = write_pair(
        tmp_path, unknown=3, missing=4, duplicates=5, click_without_open=2, seed=3
    )
    clean = import_clean_export(export, assignments)
    general = import_engagement(export, metrics._read_assignments(assignments))
    assert clean is not None
    assert clean.warnings == general.warnings and clean.counts == general.counts
    assert {w["code"] for w in clean.warnings} >= {
        "unknown_customers",
        "duplicate_rows",
        "click_without_open",
        "missing_recipients",
    }


def test_byte_order_mark_and_crlf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export, assignments = write_pair(tmp_path)
    for path in (export, assignments):
        text = path.read_text(encoding="utf-8").replace("\n", "\r\n")
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert import_clean_export(export, assignments) is not None
    fast = metrics.analyze_file(export, assignments=assignments)
    assert without_time(fast) == without_time(general_path(monkeypatch, export, assignments))


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, count), encoding="utf-8")


# Input the clean path leaves to the general path: (file, old text, new text).
STEP_ASIDE = {
    "bad flag": ("export", ",1,", ",2,"),
    "blank flag": ("export", ",1,", ",,"),
    "blank id": ("export", "\nC", "\n,C"),
    "id with spaces": ("export", "\nC000001,", "\n C000001 ,"),
    "id with a tab": ("export", "\nC000001,", "\nC000001\t,"),
    "id with a no-break space": ("export", "\nC000001,", "\nC000001\u00a0,"),
    "value after a space": ("export", ",1,", ", 1,"),
    "missing flag column": ("export", "converted", "conversion"),
    "event layout": ("export", "customer_id,", "customer_id,event,"),
    "repeated column": ("export", "clicked", "opened"),
    "ragged row": ("export", ",1,", ",1,1,"),
    "header only": ("export", None, "customer_id,opened,clicked,converted\n"),
    "empty export": ("export", None, ""),
    "no assignments column": ("assignments", "segment,", "tier,"),
    "escaped assignment id": ("assignments", "\nC000001,", "\n'-C000001,"),
    "escaped arm": ("assignments", ",control,", ",'=control,"),
    "blank segment": ("assignments", ",Standard,", ", ,"),
    "assignments header only": ("assignments", None, ASSIGNMENT_HEADER + "\n"),
    "no match": ("export", "\nC", "\nZ", -1),  # every row
    "invalid utf-8": ("export", None, b"customer_id,opened,clicked,converted\n\xff,1,1,1\n"),
}


@pytest.mark.parametrize("name", list(STEP_ASIDE))
def test_steps_aside_and_the_general_path_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    export, assignments = write_pair(tmp_path, id_format="C{:06d}")
    which, old, new, *count = (*STEP_ASIDE[name],)
    path = export if which == "export" else assignments
    if isinstance(new, bytes):
        path.write_bytes(new)
    elif old is None:
        path.write_text(new, encoding="utf-8")
    else:
        edit(path, old, new, *count)
    assert import_clean_export(export, assignments) is None
    args = ["analyze", str(export), "--assignments", str(assignments), "--json"]
    result = CliRunner().invoke(cli, args)
    with monkeypatch.context() as patch:
        patch.setattr(metrics, "_analyze_clean_export", lambda *args: None)
        expected = CliRunner().invoke(cli, args)
    assert (result.exit_code, result.output) == (expected.exit_code, expected.output) or (
        result.exit_code == expected.exit_code == 0
        and without_time(json.loads(result.output)) == without_time(json.loads(expected.output))
    )


def test_invalid_utf8_in_an_assignments_column_it_does_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The general path reads every column as text (and fails on the file): so must this one.
    export, assignments = write_pair(tmp_path)
    data = assignments.read_bytes().replace(b",stratified_block", b",\xff", 1)
    assignments.write_bytes(data)
    assert import_clean_export(export, assignments) is None
    with pytest.raises(UnicodeDecodeError):
        general_path(monkeypatch, export, assignments)
    with pytest.raises(UnicodeDecodeError):
        metrics.analyze_file(export, assignments=assignments)


@pytest.mark.parametrize(
    ("data", "valid"),
    [
        (b"plain ascii", True),
        ("é€😀".encode() * 3, True),
        (b"abc\xff", False),
        (b"ab\xe2\x82", False),  # cut at the end
        (b"a\xe2\x82b", False),  # cut, then ASCII
        (b"\xed\xa0\x80", False),  # a surrogate
        (b"\xc0\xaf", False),  # overlong
    ],
)
@pytest.mark.parametrize("block_size", [1, 2, 3, 1 << 24])
def test_valid_utf8_across_blocks(
    tmp_path: Path, data: bytes, valid: bool, block_size: int
) -> None:
    from cpo.experiment.export_join import _valid_utf8

    path = tmp_path / "file.csv"
    path.write_bytes(data)
    assert _valid_utf8(path, block_size) is valid


def test_no_clean_path_beside_a_customer_copy(tmp_path: Path) -> None:
    # The regression adjustment joins the run's customer copy by id: the general path does.
    from cpo import run_folder

    export, assignments = write_pair(tmp_path)
    run_folder.CUSTOMERS_COPY.path(tmp_path).write_bytes(b"not parquet")
    plan, warnings = metrics._plan_and_warnings(None, None)
    assert metrics._analyze_clean_export(export, assignments, plan, warnings) is None


def test_python_whitespace_is_what_str_strip_removes() -> None:
    expected = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
    assert expected == PYTHON_WHITESPACE


def test_analyze_neither_builds_the_general_frames_nor_imports_scipy_optimize(
    tmp_path: Path,
) -> None:
    # In a fresh interpreter (this one has imported everything): the clean path's command
    # imports neither scipy.optimize (brentq is cpo's own) nor the general path's reader.
    # Large enough that no table needs Fisher's exact test (scipy.stats imports optimize).
    export, assignments = write_pair(tmp_path, rows=100_000)
    child = (
        "import sys\n"
        "import cpo.experiment.engagement as engagement\n"
        "engagement.import_engagement = None  # the general path would fail\n"
        "from cpo.cli import main\n"
        f"sys.argv = ['cpo', 'analyze', {str(export)!r}, '--assignments', {str(assignments)!r}]\n"
        "sys.argv.append('--json')\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "print(sorted(m for m in sys.modules if m.startswith('scipy.optimize')), file=sys.stderr)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["total_customers"] > 0
    assert completed.stderr.strip().splitlines()[-1] == "[]"
