"""Loading and validating the approved-content folder."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cpo.errors import DataValidationError
from cpo.logs import RunLog
from cpo.retrieval.content import load_content, split_paragraphs
from cpo.sample_data import bundled_content

AS_OF = date(2026, 11, 26)


def test_valid_folder_loads_typed_documents_with_paragraphs(content_dir: Path):
    loaded = load_content(content_dir, as_of=AS_OF)
    assert [d.document_id for d in loaded.documents] == ["FAN-1", "GEN-1", "GEN-2"]
    fan = loaded.documents[0]
    assert fan.paragraphs == (
        "Earn double loyalty points this week.",
        "Points never expire while you shop.",
    )
    assert fan.approval_date == date(2026, 1, 1)
    assert fan.expiry_date is None
    assert fan.keywords == ("loyalty", "rewards")
    assert fan.metadata["author"] == "A. Writer"
    assert loaded.excluded == ()
    assert loaded.as_of == AS_OF
    assert len(loaded.sha256) == 64


def test_bundled_content_loads_and_excludes_the_expired_holiday_sale():
    loaded = load_content(bundled_content(), as_of=AS_OF)
    assert len(loaded.documents) == 39
    assert [(e.document_id, e.reason) for e in loaded.excluded] == [
        ("FERN-PRM-011", "expired 2025-12-31")
    ]
    assert all(len(d.paragraphs) >= 1 for d in loaded.documents)


def test_paragraphs_split_on_blank_lines_and_whitespace_collapses():
    text = "One\nline  two.\n \n\nSecond\tpara.\r\n\r\nThird."
    assert split_paragraphs(text) == ("One line two.", "Second para.", "Third.")


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ({"title": ""}, "title", "at least 1 character"),
        ({"keywords": "tent, camping"}, "keywords", "valid list"),
        ({"approval_date": "2026-13-01"}, "approval_date", "valid date"),
        ({"expiry_date": "2025-01-01"}, "expiry_date", "before approval_date"),
        ({"content": "   \n\n  "}, "content", "only whitespace"),
        ({"source_url": "not a url"}, "source_url", "http(s) URL"),
        ({"document_id": " X-1"}, "document_id", "whitespace"),
        ({"expiry": "2027-01-01"}, "expiry", "unknown field"),
        ({"metadata": {"last_updated": "yesterday"}}, "metadata.last_updated", "valid date"),
    ],
)
def test_a_bad_document_names_the_file_and_the_field(
    make_doc, write_doc, tmp_path: Path, overrides: dict, field: str, expected: str
):
    path = write_doc(tmp_path / "c", {**make_doc("BAD-1"), **overrides}, name="bad")
    with pytest.raises(DataValidationError) as caught:
        load_content(tmp_path / "c", as_of=AS_OF)
    message = str(caught.value)
    assert str(path) in message
    assert f"field '{field}'" in message
    assert expected in message


def test_a_missing_required_field_is_named(make_doc, write_doc, tmp_path: Path):
    record = make_doc("BAD-2")
    del record["audience"]
    write_doc(tmp_path / "c", record)
    with pytest.raises(DataValidationError, match="field 'audience': required field is missing"):
        load_content(tmp_path / "c", as_of=AS_OF)


def test_duplicate_document_id_names_both_files(make_doc, write_doc, tmp_path: Path):
    first = write_doc(tmp_path / "c", make_doc("SAME"), name="a")
    second = write_doc(tmp_path / "c", make_doc("SAME"), name="b")
    with pytest.raises(DataValidationError) as caught:
        load_content(tmp_path / "c", as_of=AS_OF)
    message = str(caught.value)
    assert "duplicate id 'SAME'" in message
    assert str(first) in message and str(second) in message


def test_malformed_json_names_the_file_and_line(make_doc, write_doc, tmp_path: Path):
    folder = tmp_path / "c"
    write_doc(folder, make_doc("OK-1"))
    broken = folder / "broken.json"
    broken.write_text('{\n  "document_id": "X",\n  "title": "T",,\n}\n', encoding="utf-8")
    with pytest.raises(DataValidationError) as caught:
        load_content(folder, as_of=AS_OF)
    assert f"{broken}: malformed JSON at line 3" in str(caught.value)


def test_not_an_object_and_not_utf8_are_reported(tmp_path: Path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "list.json").write_text("[1, 2]", encoding="utf-8")
    (folder / "latin.json").write_bytes(b'{"title": "caf\xe9"}')
    with pytest.raises(DataValidationError) as caught:
        load_content(folder, as_of=AS_OF)
    message = str(caught.value)
    assert "list.json: expected a JSON object, found list" in message
    assert "latin.json: not a UTF-8 text file" in message
    assert "2 problem(s)" in message


def test_empty_folder_is_an_error(tmp_path: Path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "README.md").write_text("no documents here", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"no approved-content documents \(\*\.json\)"):
        load_content(folder, as_of=AS_OF)


def test_missing_folder_is_an_error(tmp_path: Path):
    with pytest.raises(DataValidationError, match="content folder not found"):
        load_content(tmp_path / "nowhere", as_of=AS_OF)


def test_expired_documents_are_excluded_with_a_warning(make_doc, write_doc, content_dir: Path):
    write_doc(content_dir, make_doc("OLD-1", expiry_date="2026-06-30"))
    write_doc(content_dir, make_doc("EDGE-1", expiry_date="2026-11-26"))
    log = RunLog()
    loaded = load_content(content_dir, as_of=AS_OF, log=log)
    ids = [d.document_id for d in loaded.documents]
    assert "OLD-1" not in ids
    assert "EDGE-1" in ids, "a document is still valid on its expiry date"
    assert [(e.document_id, e.reason) for e in loaded.excluded] == [("OLD-1", "expired 2026-06-30")]
    warnings = log.warnings()
    assert len(warnings) == 1
    assert warnings[0]["document_id"] == "OLD-1"
    assert "expired 2026-06-30" in warnings[0]["message"]


def test_as_of_decides_expiry(make_doc, write_doc, content_dir: Path):
    write_doc(content_dir, make_doc("OLD-1", expiry_date="2026-06-30"))
    earlier = load_content(content_dir, as_of=date(2026, 6, 1))
    assert "OLD-1" in [d.document_id for d in earlier.documents]
    assert earlier.excluded == ()


def test_all_documents_expired_is_an_error(make_doc, write_doc, tmp_path: Path):
    write_doc(tmp_path / "c", make_doc("OLD-1", expiry_date="2026-02-01"))
    with pytest.raises(DataValidationError, match="all 1 documents expired before 2026-11-26"):
        load_content(tmp_path / "c", as_of=AS_OF)


def test_hidden_files_and_other_extensions_are_ignored(make_doc, write_doc, content_dir: Path):
    (content_dir / ".backup").mkdir()
    (content_dir / ".backup" / "GEN-1.json").write_text("{broken", encoding="utf-8")
    (content_dir / "notes.txt").write_text("ignored", encoding="utf-8")
    sub = content_dir / "promotions"
    write_doc(sub, make_doc("SUB-1"))
    loaded = load_content(content_dir, as_of=AS_OF)
    assert [d.document_id for d in loaded.documents] == ["FAN-1", "GEN-1", "GEN-2", "SUB-1"]


def test_content_hash_changes_with_the_files(make_doc, write_doc, content_dir: Path):
    before = load_content(content_dir, as_of=AS_OF).sha256
    assert load_content(content_dir, as_of=AS_OF).sha256 == before
    write_doc(content_dir, make_doc("GEN-3"))
    assert load_content(content_dir, as_of=AS_OF).sha256 != before
