"""The tamper-evident safety audit log (``safety_audit.jsonl``).

One JSON object per line, appended and fsynced before the decision can be used.
Every entry carries ``seq`` (1, 2, ...), ``prev_hash`` (the previous entry's
``hash``; 64 zeros for the first) and ``hash``: the sha256 of the entry's
canonical JSON without the ``hash`` key (keys sorted, separators ``,`` and ``:``,
UTF-8, non-ASCII kept). Lines are stored in that same canonical form.

Entry kinds:

* ``screening``: seq, timestamp, run_id, variant_id, segment, tone, backend,
  status (pass/review/block), severities {hate, violence, self_harm, sexual}
  (``null`` when the text could not be screened), reasons, policy_sha256,
  content_sha256 (never the text itself).
* ``approval`` / ``rejection``: seq, timestamp, run_id, variant_id, by, note,
  content_sha256 (of the screened text being approved).
* ``merge_withheld``: a merge value (e.g. a first name) that failed screening
  (:mod:`cpo.safety.merge`): run_id, variant_id ``""``, field, backend, status
  ``withheld``, reasons (codes), customers, policy_sha256, content_sha256 (a
  salted sha256 of the value, never the value).
* ``merge_screening``: the merge screening of one field in one run: run_id,
  variant_id ``""``, field, backend, values_screened, values_withheld,
  customers_withheld, policy_sha256, values_sha256 (digest of every screened
  value's salted hash).

Appends take a file lock on the sibling ``safety_audit.jsonl.lock`` and read the
last entry under the lock, so concurrent writers (threads or processes) keep one
valid chain. :func:`verify` detects edited, deleted, reordered, inserted and
truncated entries and names the first bad line; the run manifest records the
entry count and head hash so that truncation at the end is detected too.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from cpo.errors import AuditError
from cpo.logs import utc_now
from cpo.models import HARM_CATEGORIES, Variant, Verdict

GENESIS_HASH = "0" * 64
KIND_SCREENING = "screening"
KIND_APPROVAL = "approval"
KIND_REJECTION = "rejection"
KIND_MERGE_WITHHELD = "merge_withheld"
KIND_MERGE_SCREENING = "merge_screening"
CSV_COLUMNS = (
    "timestamp",
    "variant_id",
    "segment",
    "status",
    *HARM_CATEGORIES,
    "block_reason",
)
_REQUIRED = ("seq", "timestamp", "kind", "run_id", "variant_id", "prev_hash", "hash")
_TAIL_CHUNK = 64 * 1024


def canonical_json(data: dict[str, Any]) -> str:
    """Canonical JSON: sorted keys, compact separators, non-ASCII kept."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(entry: dict[str, Any]) -> str:
    """sha256 of an entry's canonical JSON without its ``hash`` key."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


class AuditLog:
    """Appends hash-chained entries to one audit file, safely across processes.

    Args:
        path: The ``safety_audit.jsonl`` file (created on first append).
        lock_timeout_s: How long to wait for another writer's lock.
    """

    def __init__(self, path: Path | str, lock_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout_s = lock_timeout_s

    def append(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Append one entry; ``seq``, ``timestamp``, ``prev_hash`` and ``hash`` are set here.

        The line is written with a single ``write`` on a descriptor opened with
        ``O_APPEND`` and fsynced before this returns.

        Raises:
            AuditError: the lock cannot be taken or the last line is broken.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(self.lock_path), timeout=self.lock_timeout_s):
                return self._append_locked(fields)
        except Timeout:
            raise AuditError(
                f"{self.path}: could not lock the audit log within {self.lock_timeout_s:g}s",
                hint=f"another process holds {self.lock_path.name}; wait for it to finish",
            ) from None

    def _append_locked(self, fields: dict[str, Any]) -> dict[str, Any]:
        last = read_last_entry(self.path)
        entry = dict(fields)
        entry["seq"] = last["seq"] + 1 if last else 1
        entry["timestamp"] = utc_now()
        entry["prev_hash"] = last["hash"] if last else GENESIS_HASH
        entry["hash"] = entry_hash(entry)
        line = (canonical_json(entry) + "\n").encode("utf-8")
        created = not self.path.exists()
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if created:
            _fsync_dir(self.path.parent)
        return entry

    def record_decision(
        self,
        verdict: Verdict,
        variant: Variant,
        *,
        run_id: str,
        policy_sha256: str,
        content_sha256: str,
    ) -> dict[str, Any]:
        """Append a screening decision (never the text; only its sha256)."""
        severities = {c: verdict.severities.get(c) for c in HARM_CATEGORIES}
        return self.append(
            {
                "kind": KIND_SCREENING,
                "run_id": run_id,
                "variant_id": variant.variant_id,
                "segment": variant.segment,
                "tone": variant.tone,
                "backend": verdict.backend,
                "status": verdict.status,
                "severities": severities,
                "reasons": list(verdict.reasons),
                "policy_sha256": policy_sha256,
                "content_sha256": content_sha256,
            }
        )

    def record_review(
        self,
        kind: str,
        *,
        run_id: str,
        variant_id: str,
        by: str,
        note: str,
        content_sha256: str,
        channel: str | None = None,
    ) -> dict[str, Any]:
        """Append an ``approval`` or ``rejection`` by a named person.

        ``channel`` records where the decision was made (``cli``, ``web``);
        ``None`` leaves it out.
        """
        if kind not in (KIND_APPROVAL, KIND_REJECTION):
            raise ValueError(f"kind must be approval or rejection, not {kind!r}")
        fields = {
            "kind": kind,
            "run_id": run_id,
            "variant_id": variant_id,
            "by": by,
            "note": note,
            "content_sha256": content_sha256,
        }
        if channel is not None:
            fields["channel"] = channel
        return self.append(fields)


def _fsync_dir(folder: Path) -> None:
    """Make a newly created file's directory entry durable (POSIX only)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def read_last_entry(path: Path) -> dict[str, Any] | None:
    """The last entry of an audit file (``None`` when missing or empty), read from the end.

    Raises:
        AuditError: the last line is incomplete or not a JSON entry; appending to a
            broken log would hide the damage.
    """
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        position, tail = end, b""
        while position > 0 and tail.count(b"\n") < 2:
            step = min(_TAIL_CHUNK, position)
            position -= step
            handle.seek(position)
            tail = handle.read(step) + tail
    if not tail.endswith(b"\n"):
        raise AuditError(
            f"{path}: the last line is incomplete (the file was truncated or is being edited)",
            hint=f"run `cpo audit verify {path}`; a damaged log is evidence, do not repair it",
        )
    last_line = tail[:-1].rsplit(b"\n", 1)[-1]
    try:
        entry = json.loads(last_line)
        int(entry["seq"]), str(entry["hash"])
    except (ValueError, KeyError, TypeError):
        raise AuditError(
            f"{path}: the last line is not a valid audit entry",
            hint=f"run `cpo audit verify {path}` to see what is wrong",
        ) from None
    return entry


def read_entries(path: Path | str) -> list[dict[str, Any]]:
    """Parse every entry of an audit file (no verification; see :func:`verify`).

    Raises:
        AuditError: the file is missing or a line is not JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise AuditError(
            f"{path}: audit log not found", hint="pass a run folder or its .jsonl file"
        )
    entries = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                raise AuditError(
                    f"{path}: line {number} is not valid JSON",
                    hint=f"run `cpo audit verify {path}`",
                ) from None
    return entries


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify`.

    Attributes:
        ok: True when the chain is intact (and matches the expectations given).
        entries: Number of lines read.
        head_hash: ``hash`` of the last valid entry (64 zeros when empty).
        bad_line: 1-based number of the first bad line, ``None`` when ok.
        reason: Why that line is bad.
    """

    ok: bool
    entries: int
    head_hash: str
    bad_line: int | None = None
    reason: str = ""

    def message(self) -> str:
        """One line for a person: "N entries, chain intact" or "line K: why"."""
        if self.ok:
            return f"{self.entries} entries, chain intact"
        return f"line {self.bad_line}: {self.reason}"


def verify(
    path: Path | str,
    expected_count: int | None = None,
    expected_head: str | None = None,
    *,
    allow_appended: bool = False,
) -> VerifyResult:
    """Check the hash chain of an audit file, line by line.

    Args:
        path: The ``safety_audit.jsonl`` file.
        expected_count: Entry count recorded in the manifest (detects truncation).
        expected_head: Head hash recorded in the manifest (detects a replaced last entry).
        allow_appended: Accept entries after the recorded head (a run resumed after
            a crash appends before the manifest catches up); the recorded head must
            still be the entry at ``expected_count``.

    Raises:
        AuditError: the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise AuditError(
            f"{path}: audit log not found", hint="pass a run folder or its .jsonl file"
        )
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    incomplete_tail = lines[-1] != b""
    lines = lines if incomplete_tail else lines[:-1]
    chain = _ChainChecker(lines)
    for number, line in enumerate(lines, start=1):
        problem = chain.check(
            number, line, is_last_incomplete=incomplete_tail and number == len(lines)
        )
        if problem:
            return VerifyResult(False, len(lines), chain.head, number, problem)
    return _check_expectations(chain, len(lines), expected_count, expected_head, allow_appended)


class _ChainChecker:
    """Walks the lines of an audit file, remembering the previous hash."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.head = GENESIS_HASH
        self.hashes: list[str] = []

    def check(self, number: int, line: bytes, *, is_last_incomplete: bool) -> str:
        """Return why line ``number`` is bad, or "" when it links correctly."""
        if is_last_incomplete:
            return "incomplete last line (the file was truncated mid-entry or not closed)"
        if not line.strip():
            return "empty line (a line was blanked or inserted)"
        try:
            entry = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return "not valid JSON (the entry was edited or cut)"
        if not isinstance(entry, dict):
            return "not a JSON object (the entry was replaced)"
        missing = [key for key in _REQUIRED if key not in entry]
        if missing:
            return f"missing field(s) {', '.join(missing)} (the entry was edited)"
        if entry_hash(entry) != entry["hash"]:
            return "hash mismatch: the entry's content was changed after it was written"
        if entry["prev_hash"] != self.head or entry["seq"] != number:
            return self._link_problem(number, entry)
        self.head = entry["hash"]
        self.hashes.append(self.head)
        return ""

    def _link_problem(self, number: int, entry: dict[str, Any]) -> str:
        """Explain a broken link from the entry's seq and where the expected seq went."""
        seq = entry["seq"]
        where = self._line_with_seq(number)
        if seq == number and number == 1:
            return (
                "prev_hash of the first entry is not 64 zeros (the start of the log was replaced)"
            )
        if seq == number:
            return (
                f"prev_hash does not match the hash of line {number - 1}: that entry was "
                "edited and re-hashed, or this entry was inserted"
            )
        if isinstance(seq, int) and 1 <= seq < number:
            # every earlier line passed, so seq s sits on line s
            return f"duplicate entry: seq {seq} already appears at line {seq} (copied or moved)"
        if where is not None:
            return f"entries out of order: seq {seq} is here, seq {number} is at line {where}"
        if isinstance(seq, int) and seq > number:
            missing = f"seq {number}" if seq == number + 1 else f"seq {number}-{seq - 1}"
            return (
                f"entry missing before this line: expected seq {number}, found {seq} "
                f"({missing} deleted)"
            )
        return f"unexpected seq {seq} (expected {number}): an entry was duplicated or inserted"

    def _line_with_seq(self, wanted: int) -> int | None:
        """The later line holding seq ``wanted`` (to diagnose reordering)."""
        for offset, line in enumerate(self.lines[wanted:], start=wanted + 1):
            try:
                if json.loads(line).get("seq") == wanted:
                    return offset
            except (ValueError, AttributeError):
                continue
        return None


def _check_expectations(
    chain: _ChainChecker,
    count: int,
    expected_count: int | None,
    expected_head: str | None,
    allow_appended: bool,
) -> VerifyResult:
    """Compare an intact chain with the count and head recorded in the manifest."""
    head = chain.head
    if expected_count is not None and count < expected_count:
        return VerifyResult(
            False,
            count,
            head,
            count + 1,
            f"truncated: the log has {count} entries but the manifest records {expected_count} "
            "(entries at the end were deleted)",
        )
    if expected_count is not None and count > expected_count and not allow_appended:
        return VerifyResult(
            False,
            count,
            head,
            expected_count + 1,
            f"the log has {count} entries but the manifest records {expected_count} "
            "(entries were added after the manifest was written)",
        )
    if expected_head is not None and expected_count:
        recorded = chain.hashes[expected_count - 1]
        if recorded != expected_head:
            return VerifyResult(
                False,
                count,
                head,
                expected_count,
                "hash differs from the head hash recorded in the manifest "
                "(the last entry was replaced and re-hashed)",
            )
    return VerifyResult(True, count, head)


def csv_rows(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """CSV rows for a compliance export: one per entry.

    Screening rows carry the severities; ``block_reason`` joins the reasons of a
    non-pass decision. Approval and rejection rows have status ``approved`` /
    ``rejected`` and ``block_reason`` saying who decided and their note.
    """
    segments: dict[str, str] = {}
    rows = []
    for entry in entries:
        kind = entry.get("kind", KIND_SCREENING)
        row = {column: "" for column in CSV_COLUMNS}
        row.update(timestamp=entry.get("timestamp", ""), variant_id=entry.get("variant_id", ""))
        if kind == KIND_SCREENING:
            segments[row["variant_id"]] = entry.get("segment", "")
            severities = entry.get("severities") or {}
            row.update(segment=entry.get("segment", ""), status=entry.get("status", ""))
            row.update(
                {c: "" if severities.get(c) is None else severities[c] for c in HARM_CATEGORIES}
            )
            if entry.get("status") != "pass":
                row["block_reason"] = "; ".join(entry.get("reasons", []))
        elif kind in (KIND_MERGE_WITHHELD, KIND_MERGE_SCREENING):
            row.update(_merge_row(entry))
        else:
            verb = "approved" if kind == KIND_APPROVAL else "rejected"
            note = f": {entry['note']}" if entry.get("note") else ""
            row.update(
                segment=segments.get(row["variant_id"], ""),
                status=verb,
                block_reason=f"{verb} by {entry.get('by', '')}{note}",
            )
        rows.append(row)
    return rows


def _merge_row(entry: dict[str, Any]) -> dict[str, Any]:
    """CSV cells of a merge-value entry (no value is ever in the log, so none here)."""
    field = entry.get("field", "")
    if entry.get("kind") == KIND_MERGE_WITHHELD:
        reasons = ", ".join(entry.get("reasons", []))
        return {
            "status": "withheld",
            "block_reason": f"merge field {field} ({entry.get('content_sha256', '')[:12]}): "
            f"{reasons}; {entry.get('customers', 0)} customer(s) withheld",
        }
    return {
        "status": "merge_screened",
        "block_reason": f"merge field {field}: {entry.get('values_screened', 0)} distinct "
        f"value(s) screened, {entry.get('values_withheld', 0)} withheld "
        f"({entry.get('customers_withheld', 0)} customer(s))",
    }


def export_csv(path: Path | str, out: Path | str) -> int:
    """Write the audit log as CSV (columns :data:`CSV_COLUMNS`); returns the row count.

    The export does not verify the chain: entries are exported as they are, so call
    :func:`verify` first to know whether the log is intact.
    """
    from cpo.runfiles import atomic_open, escape_formula  # here: runfiles pulls in pandas

    rows = [
        {key: escape_formula(value) for key, value in row.items()}
        for row in csv_rows(read_entries(path))
    ]
    with atomic_open(Path(out)) as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
