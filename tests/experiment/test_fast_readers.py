"""The pyarrow CSV reader and the hashed id lookup behind ``cpo analyze --assignments``.

Both replace slower calls (``pandas.read_csv`` and ``pyarrow.compute.index_in``)
and must give exactly their answers, on clean files and on the odd ones where
the fast path hands over to the original reader.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.experiment.aggregate import locate_ids
from cpo.textcsv import read_text_csv

CSV_CASES = {
    "plain": "member_no,opened,clicked\nM-1,1,0\nM-2,0,0\n",
    "empty cells and quotes": 'member_no,note\nM-1,""\nM-2,"a, ""quoted"" b"\nM-3,\n',
    "header only": "member_no,opened\n",
    "byte order mark": "\ufeffmember_no,opened\nM-1,1\n",
    "crlf and blank line": "member_no,opened\r\nM-1,1\r\n\r\nM-2,0\r\n",
    "space before a value": 'member_no, opened\nM-1, 1\nM-2, "x, y"\n',
    "quoted leading space": 'member_no,opened\n"  M-1",1\n',
    "ragged row": "member_no,opened\nM-1\nM-2,0\n",
    "repeated header name": "member_no,opened,opened\nM-1,1,0\n",
    "unicode": "member_no,città\nM-1,Zürich\nM-2,東京\n",
}


@pytest.mark.parametrize("skip_initial_space", [True, False])
@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_read_text_csv_returns_what_pandas_returns(tmp_path, name, skip_initial_space):
    path = tmp_path / "export.csv"
    path.write_bytes(CSV_CASES[name].encode("utf-8"))
    try:
        expected = pd.read_csv(
            path, dtype=str, keep_default_na=False, skipinitialspace=skip_initial_space
        )
    except pd.errors.ParserError as error:
        with pytest.raises(pd.errors.ParserError, match=str(error)):
            read_text_csv(path, skip_initial_space=skip_initial_space)
        return
    actual = read_text_csv(path, skip_initial_space=skip_initial_space)
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False)
    assert all(isinstance(v, str) for column in actual for v in actual[column])


def test_read_text_csv_keeps_pandas_errors_for_text_that_is_not_utf8(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(b"member_no,opened\nM-\xff,1\n")
    with pytest.raises(UnicodeDecodeError):
        pd.read_csv(path, dtype=str, keep_default_na=False)
    with pytest.raises(UnicodeDecodeError):
        read_text_csv(path)


def index_in(ids, known):
    found = pc.index_in(pa.array(ids, pa.string()), value_set=pa.array(known, pa.string()))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


@pytest.mark.parametrize(
    ("ids", "known"),
    [
        (["b", "zz", "a", "a", "c"], ["a", "b", "c"]),  # mixed lengths, repeats, unknowns
        ([f"ACCT{n:05d}" for n in (7, 3, 99999, 3)], [f"ACCT{n:05d}" for n in range(10)]),
        (["x", "y"], []),
        ([], ["x"]),
        (["dup", "other"], ["first", "dup", "dup"]),  # repeated known id: its first position
        (["ü-1", "ü-2", "é"], ["é", "ü-2"]),
    ],
)
def test_locate_ids_matches_arrow_index_in(ids, known):
    located = locate_ids(pa.array(ids, pa.string()), pa.array(known, pa.string()))
    assert located.tolist() == index_in(ids, known).tolist()


def test_locate_ids_on_many_shuffled_ids_with_unknowns():
    rng = np.random.default_rng(3)
    known = [f"{n:x}@shop" for n in rng.permutation(50_000)]
    ids = [f"{n:x}@shop" for n in rng.integers(0, 60_000, 20_000)]  # some not in known
    located = locate_ids(pa.array(ids), pa.array(known, pa.large_string()))
    assert located.tolist() == index_in(ids, known).tolist()
    assert (located < 0).any() and (located >= 0).any()


def test_cpo_analyze_joins_a_shuffled_export_to_the_assignments(tmp_path):
    """Counts per arm equal a plain loop over the two files (unknown ids excluded)."""
    rng = np.random.default_rng(11)
    ids = [f"member-{n}" for n in range(3_000)]
    arms = rng.choice(["control", "treatment_1", "treatment_2"], len(ids))
    pd.DataFrame(
        {"customer_id": ids, "segment": rng.choice(["Trail", "Road"], len(ids)),
         "experiment_arm": arms, "variant_id": "v", "assigned_at": "2026-01-05T08:00:00Z"}
    ).to_csv(tmp_path / "assignments.csv", index=False)  # fmt: skip
    order = rng.permutation(len(ids))
    clicked = rng.random(len(ids)) < 0.2
    export = pd.DataFrame(
        {"customer_id": [ids[i] for i in order] + ["member-x", "member-y"],
         "opened": np.r_[clicked[order] | (rng.random(len(ids)) < 0.3), [1, 0]].astype(int),
         "clicked": np.r_[clicked[order], [1, 0]].astype(int), "converted": 0}
    )  # fmt: skip
    export.to_csv(tmp_path / "export.csv", index=False)
    result = CliRunner().invoke(
        cli,
        ["analyze", str(tmp_path / "export.csv"), "--assignments",
         str(tmp_path / "assignments.csv"), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    for arm in ("control", "treatment_1", "treatment_2"):
        members = arms == arm
        assert metrics["arms"][arm]["sample_size"] == int(members.sum())
        assert metrics["arms"][arm]["counts"]["clicked"] == int(clicked[members].sum())
    codes = {w["code"] for w in metrics["warnings"]}
    assert "unknown_customers" in codes


def test_an_id_hashes_the_same_in_arrays_of_equal_and_of_mixed_lengths():
    from cpo.experiment.aggregate import id_hashes

    alone = id_hashes(pa.array(["C0001", "C0002"]))
    mixed = id_hashes(pa.array(["C0001", "x", "C0002", "a-much-longer-customer-id"]))
    assert alone.tolist() == [mixed[0], mixed[2]]
    assert len(set(mixed.tolist())) == 4


def test_a_duplicate_across_batches_of_different_id_lengths_is_found(tmp_path):
    from cpo.errors import DataValidationError
    from cpo.experiment.aggregate import aggregate_file

    ids = ["K-10", "K-11", "K-12", "K-13", "K-9", "K-10000", "K-10"]
    frame = pd.DataFrame(
        {"customer_id": ids, "experiment_arm": ["control", "treatment_1"] * 3 + ["control"],
         "opened": 0, "clicked": 0, "converted": 0}
    )  # fmt: skip
    path = tmp_path / "engagement.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataValidationError, match="1 customer_id value"):
        aggregate_file(path, batch_rows=4)


def test_in_memory_records_tell_hash_collisions_from_repeated_ids(monkeypatch):
    from cpo.errors import DataValidationError
    from cpo.experiment import aggregate
    from cpo.experiment.metrics import calculate_metrics

    monkeypatch.setattr(aggregate, "id_hashes", lambda ids: np.zeros(len(ids), np.uint64))
    records = [
        {"customer_id": f"guest-{i}", "experiment_arm": ("control", "treatment_1")[i % 2],
         "opened": i % 3 == 0, "clicked": 0, "converted": 0}
        for i in range(40)
    ]  # fmt: skip
    assert calculate_metrics(records)["total_customers"] == 40
    records[39]["customer_id"] = "guest-1"
    with pytest.raises(DataValidationError, match=r"1 customer_id value\(s\) occur more than once"):
        calculate_metrics(records)


@pytest.mark.parametrize(
    ("text", "delimiter", "encoding"),
    [
        ('kundennr;stadt;notiz\nK-1;Köln;"a; b"\nK-2;Düsseldorf;\n', ";", "latin-1"),
        ("kundennr;preis\nK-1;12€\nK-2; 3€\n", ";", "cp1252"),
        ("id\tcity\nA-1\tOslo\nA-2\t東京\n", "\t", "utf-16"),
        ("\ufeffid|city\nA-1|Zürich\n", "|", "utf-8"),
    ],
)
def test_read_text_csv_with_other_delimiters_and_encodings(tmp_path, text, delimiter, encoding):
    """Customer exports from other systems: read as pandas reads them (cpo.customer_reader)."""
    path = tmp_path / "export.csv"
    path.write_bytes(text.encode(encoding))
    options = {"sep": delimiter, "encoding": encoding, "skipinitialspace": True}
    expected = pd.read_csv(path, dtype=str, keep_default_na=False, **options)
    actual = read_text_csv(path, skip_initial_space=True, delimiter=delimiter, encoding=encoding)
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False)


ASSIGNMENTS_WITH_A_REPEATED_ID = (
    "customer_id,segment,experiment_arm,variant_id,assigned_at,assignment_method\n"
    + "".join(
        f"{cid},S,{arm},{arm},2026-11-30T12:00:00Z,stratified_block\n"
        for cid, arm in (("C1", "control"), ("C2", "treatment_1"), ("C2", "control"),
                         ("C3", "treatment_1"))
    )
)  # fmt: skip


def test_an_export_joined_to_a_repeated_assignment_counts_the_customer_once(tmp_path):
    """The export's ids match the first assignment row only, so no id repeats in the analysis."""
    (tmp_path / "assignments.csv").write_text(ASSIGNMENTS_WITH_A_REPEATED_ID, encoding="utf-8")
    export = tmp_path / "export.csv"
    export.write_text(
        "customer_id,opened,clicked,converted\nC1,1,0,0\nC2,1,1,0\nC3,0,0,0\n", encoding="utf-8"
    )
    result = CliRunner().invoke(
        cli, ["analyze", str(export), "--assignments", str(tmp_path / "assignments.csv"), "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["total_customers"] == 3
    assert {arm: a["sample_size"] for arm, a in metrics["arms"].items()} == {
        "control": 1, "treatment_1": 2
    }  # fmt: skip
    assert "missing_recipients" in {w["code"] for w in metrics["warnings"]}


def test_events_joined_to_a_repeated_assignment_are_still_refused(tmp_path):
    (tmp_path / "assignments.csv").write_text(ASSIGNMENTS_WITH_A_REPEATED_ID, encoding="utf-8")
    events = tmp_path / "events.csv"
    events.write_text(
        "customer_id,event,timestamp\nC1,open,2026-12-01T10:00:00Z\nC2,click,2026-12-01T10:00:00Z\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli, ["analyze", str(events), "--assignments", str(tmp_path / "assignments.csv")]
    )
    assert result.exit_code == 1
    assert "1 customer_id value(s) occur more than once" in result.output
    assert "Traceback" not in result.output
