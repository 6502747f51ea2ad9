"""Load and validate an approved-content folder.

A content folder holds one JSON object per document (``*.json``, subfolders
included; other files are ignored)::

    {
      "document_id": "FERN-PRM-003",          required, unique across the folder
      "title": "COMEBACK25: 25% Off ...",     required, cited as the source title
      "category": "promotion",                required (product, promotion, support, ...)
      "content": "Paragraph one.\\n\\nTwo.",  required; paragraphs separated by blank lines
      "audience": "At-Risk",                  required: whom it is written for (a segment
                                              name or a word of one, or "All"; see
                                              cpo.audience)
      "eligibility": ["tier == Gold"],        optional: conditions every recipient must meet
                                              (cpo.retrieval.eligibility)
      "keywords": ["win-back", "lapsed"],     required list of strings (may be empty)
      "approval_date": "2026-01-12",          required ISO date
      "expiry_date": "2027-02-28",            optional ISO date or null (never expires)
      "source_url": "https://...",            optional URL or null
      "metadata": {"author": "...", "version": "2.1", "last_updated": "2026-01-08"}
    }                                         metadata optional; other keys inside it are kept

Unknown top-level keys are errors: a misspelt ``expiry_date`` must not silently
turn expired copy into approved copy. Every problem in the folder is collected and
reported at once, naming the file and the field (and the line, for broken JSON).
Documents whose ``expiry_date`` is before the run's as-of date are excluded with a
warning; a document expiring on the as-of date is still valid that day.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from cpo.conditions import Condition
from cpo.errors import DataValidationError
from cpo.logs import RunLog
from cpo.retrieval.eligibility import parse_condition

#: Most problems listed in one error message (the rest are counted).
MAX_PROBLEMS_SHOWN = 20
PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")


class DocumentMetadata(BaseModel):
    """Editorial metadata of a document (free-form beyond the three known keys)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    author: str | None = None
    version: str | None = None
    last_updated: date | None = None


class DocumentRecord(BaseModel):
    """The JSON schema of one approved-content document (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    document_id: Annotated[str, Field(min_length=1, max_length=200)]
    title: Annotated[str, Field(min_length=1, max_length=500)]
    category: Annotated[str, Field(min_length=1, max_length=100)]
    content: Annotated[str, Field(min_length=1)]
    audience: Annotated[str, Field(min_length=1, max_length=200)]
    keywords: list[Annotated[str, Field(min_length=1, max_length=200)]]
    approval_date: date
    expiry_date: date | None = None
    source_url: str | None = None
    eligibility: list[Any] = Field(default_factory=list)
    metadata: DocumentMetadata = Field(default_factory=DocumentMetadata)

    @field_validator("document_id", "title", "category", "audience")
    @classmethod
    def _trimmed_text(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError("must not start or end with whitespace")
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("must not contain control characters such as newlines")
        return value

    @field_validator("content")
    @classmethod
    def _has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must contain text, found only whitespace")
        return value

    @field_validator("eligibility")
    @classmethod
    def _conditions(cls, value: list[Any]) -> list[Condition]:
        return [_condition(position, item) for position, item in enumerate(value)]

    @field_validator("source_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value and not re.match(r"^https?://\S+$", value):
            raise ValueError("expected an http(s) URL without spaces")
        return value or None

    @field_validator("expiry_date")
    @classmethod
    def _expiry_after_approval(cls, value: date | None, info: ValidationInfo) -> date | None:
        approved = info.data.get("approval_date")
        if value is not None and approved is not None and value < approved:
            raise ValueError(f"is before approval_date {approved}")
        return value


def _condition(position: int, item: Any) -> Condition:
    """One eligibility entry: a condition object or its short string form."""
    if isinstance(item, str):
        try:
            return parse_condition(item)
        except ValueError as exc:
            raise ValueError(f"entry {position}: {exc}") from None
    if not isinstance(item, dict):
        raise ValueError(
            f"entry {position}: expected 'column op value' text or an object "
            f"{{column, op, value}}, found {type(item).__name__}"
        )
    try:
        return Condition.model_validate(item)
    except ValidationError as exc:
        detail = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'condition'}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise ValueError(f"entry {position}: {detail}") from None


@dataclass(frozen=True, slots=True)
class Document:
    """A validated approved-content document, split into paragraphs.

    Attributes:
        document_id: Unique id.
        title: Title, used in citations.
        category: Category (compared case-insensitively by filters).
        audience: Segment name the copy was written for, or "All".
        keywords: Keywords, as given.
        paragraphs: Paragraph texts (whitespace collapsed); ``paragraphs[0]`` is ¶1.
        approval_date: Approval date.
        expiry_date: Expiry date, or None.
        source_url: Public URL, or "".
        metadata: Editorial metadata (JSON-ready).
        path: The file it was read from.
        eligibility: Conditions every customer it is used for must meet (empty = none).
    """

    document_id: str
    title: str
    category: str
    audience: str
    keywords: tuple[str, ...]
    paragraphs: tuple[str, ...]
    approval_date: date
    expiry_date: date | None
    source_url: str
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    eligibility: tuple[Condition, ...] = ()

    def is_expired(self, as_of: date) -> bool:
        """True when the document expired before ``as_of``."""
        return self.expiry_date is not None and self.expiry_date < as_of


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A valid document left out of this run, and why."""

    document_id: str
    reason: str
    path: str = ""


@dataclass(frozen=True)
class LoadedContent:
    """The usable documents of a content folder and what was excluded.

    Attributes:
        folder: The content folder.
        documents: Usable documents, sorted by ``document_id``.
        excluded: Expired documents left out (with reasons).
        as_of: The date expiry was judged against.
        sha256: Hash of the folder's JSON files (names and bytes).
    """

    folder: Path
    documents: tuple[Document, ...]
    excluded: tuple[Exclusion, ...]
    as_of: date
    sha256: str

    @property
    def paragraphs(self) -> int:
        """Number of paragraphs over all usable documents."""
        return sum(len(d.paragraphs) for d in self.documents)


def split_paragraphs(content: str) -> tuple[str, ...]:
    """Split text on blank lines; collapse whitespace inside each paragraph."""
    blocks = PARAGRAPH_BREAK.split(content.replace("\r\n", "\n").strip())
    return tuple(text for text in (" ".join(b.split()) for b in blocks) if text)


def content_files(folder: Path) -> list[Path]:
    """The JSON files of a content folder, sorted, hidden files and folders skipped."""
    return sorted(
        p
        for p in folder.rglob("*.json")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def load_content(
    folder: Path | str,
    as_of: date | None = None,
    log: RunLog | None = None,
    stage: str = "retrieve",
) -> LoadedContent:
    """Read, validate and filter an approved-content folder.

    Args:
        folder: The content folder.
        as_of: Date expiry is judged against (today when ``None``).
        log: Where to log exclusion warnings (optional).
        stage: Stage name used in log events.

    Raises:
        DataValidationError: the folder is missing or empty, a file is malformed or
            invalid, a ``document_id`` repeats, or every document has expired.
    """
    folder = Path(folder)
    as_of = as_of or date.today()
    files = _checked_files(folder)
    documents, problems = _parse_all(folder, files)
    if problems:
        raise _validation_error(folder, problems)
    usable, excluded = _apply_expiry(documents, as_of)
    for exclusion in excluded:
        if log is not None:
            log.warning(
                stage,
                "document_excluded",
                document_id=exclusion.document_id,
                reason=exclusion.reason,
                message=f"content {exclusion.document_id} excluded: {exclusion.reason}",
            )
    if not usable:
        raise DataValidationError(
            f"{folder}: all {len(documents)} documents expired before {as_of.isoformat()}",
            hint="add current approved content, or set campaign.as_of to reproduce an older run",
        )
    return LoadedContent(
        folder=folder,
        documents=tuple(sorted(usable, key=lambda d: d.document_id)),
        excluded=tuple(excluded),
        as_of=as_of,
        sha256=files_sha256(folder, files),
    )


def files_sha256(folder: Path, files: list[Path]) -> str:
    """sha256 over the relative names and bytes of ``files`` (in the given order)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode())
    return digest.hexdigest()


def _checked_files(folder: Path) -> list[Path]:
    """The folder's JSON files; an error when the folder is missing or has none."""
    if not folder.is_dir():
        raise DataValidationError(
            f"{folder}: content folder not found",
            hint="pass an existing folder of approved-content JSON files to --content",
        )
    files = content_files(folder)
    if not files:
        raise DataValidationError(
            f"{folder}: no approved-content documents (*.json) in this folder",
            hint="add one JSON file per document (see docs/retrieval.md for the schema)",
        )
    return files


def _parse_all(folder: Path, files: list[Path]) -> tuple[list[Document], list[str]]:
    """Parse every file; collect problems (including duplicate ids) instead of stopping."""
    documents: list[Document] = []
    problems: list[str] = []
    seen: dict[str, Path] = {}
    for path in files:
        document, file_problems = _parse_file(path)
        problems.extend(file_problems)
        if document is None:
            continue
        first = seen.get(document.document_id)
        if first is not None:
            problems.append(
                f"{path}: field 'document_id': duplicate id '{document.document_id}', "
                f"already used by {first}"
            )
            continue
        seen[document.document_id] = path
        documents.append(document)
    return documents, problems


def _parse_file(path: Path) -> tuple[Document | None, list[str]]:
    """Parse and validate one document file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        return None, [f"{path}: not a UTF-8 text file"]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"]
    if not isinstance(data, dict):
        return None, [f"{path}: expected a JSON object, found {type(data).__name__}"]
    try:
        record = DocumentRecord.model_validate(data)
    except ValidationError as exc:
        return None, [_describe(path, error) for error in exc.errors()]
    paragraphs = split_paragraphs(record.content)
    return _document(record, paragraphs, path), []


def _describe(path: Path, error: Any) -> str:
    """One problem line: file, field, what is wrong, what was found."""
    field_path = ".".join(str(part) for part in error["loc"]) or "(document)"
    if error["type"] == "missing":
        return f"{path}: field '{field_path}': required field is missing"
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(DocumentRecord.model_fields)
        return f"{path}: field '{field_path}': unknown field; expected one of: {allowed}"
    found = repr(error.get("input"))
    found = found if len(found) <= 60 else found[:57] + "..."
    message = error["msg"].removeprefix("Value error, ")
    return f"{path}: field '{field_path}': {message}; found {found}"


def _document(record: DocumentRecord, paragraphs: tuple[str, ...], path: Path) -> Document:
    """Turn a validated record into a :class:`Document`."""
    return Document(
        document_id=record.document_id,
        title=record.title,
        category=record.category,
        audience=record.audience,
        keywords=tuple(record.keywords),
        paragraphs=paragraphs,
        approval_date=record.approval_date,
        expiry_date=record.expiry_date,
        source_url=record.source_url or "",
        metadata=record.metadata.model_dump(mode="json"),
        path=path,
        eligibility=tuple(record.eligibility),
    )


def _apply_expiry(documents: list[Document], as_of: date) -> tuple[list[Document], list[Exclusion]]:
    """Split documents into usable and expired (before ``as_of``)."""
    usable: list[Document] = []
    excluded: list[Exclusion] = []
    for document in documents:
        expiry = document.expiry_date
        if expiry is not None and document.is_expired(as_of):
            reason = f"expired {expiry.isoformat()}"
            excluded.append(Exclusion(document.document_id, reason, str(document.path or "")))
        else:
            usable.append(document)
    excluded.sort(key=lambda e: e.document_id)
    return usable, excluded


def _validation_error(folder: Path, problems: list[str]) -> DataValidationError:
    """One error listing the folder's problems (the first few, and how many more)."""
    shown = problems[:MAX_PROBLEMS_SHOWN]
    more = len(problems) - len(shown)
    lines = [f"{folder}: invalid approved content ({len(problems)} problem(s))"]
    lines += [f"  {line}" for line in shown]
    if more:
        lines.append(f"  ... and {more} more")
    return DataValidationError(
        "\n".join(lines),
        hint="fix the named fields (schema: docs/retrieval.md); ids must be unique",
    )
