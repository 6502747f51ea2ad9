"""The run folder: every artifact's file name, schema version and description, once.

``cpo run --out DIR`` writes one folder per run. This module is its single
owner: each file (or folder) the run writes is an :class:`Artifact` constant
below, and :data:`ARTIFACTS` lists them all in the order a run writes them
(``cpo run --help`` and the docs print that list). Stages, commands and the
report name files only through these constants.

This is a leaf module: it imports the standard library, :mod:`cpo.errors` and
:mod:`cpo.models` only; pandas and the file helpers of :mod:`cpo.runfiles` are
imported inside the functions that need them, so ``cpo --help`` stays light.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cpo.errors import DataValidationError, RunDirError
from cpo.models import Citation, Grounding, SegmentProfile, Snippet, Variant

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd
    import pyarrow as pa

_RUN_HINT = "pass the folder of a `cpo run --out`"


@dataclass(frozen=True, slots=True)
class Artifact:
    """One file (or folder) of a run folder.

    Attributes:
        name: File name relative to the run folder, e.g. ``"segments.csv"``
            (a folder ends with ``/``, e.g. ``"logs/"``).
        schema_version: Version of the file's layout; it changes when a
            column or key is renamed or removed, or its meaning changes.
        description: One line saying what is in it (shown by ``cpo run --help``).
        writer: The stage (or command) that writes it.
        personal: Whether it holds personal data (emails, names, rows of the
            customer file): share it only with people allowed to see customers.
    """

    name: str
    schema_version: int
    description: str
    writer: str
    personal: bool = False

    @property
    def is_folder(self) -> bool:
        """True for a folder artifact (``logs/``)."""
        return self.name.endswith("/")

    @property
    def file_name(self) -> str:
        """The name without a folder's trailing ``/``."""
        return self.name.rstrip("/")

    def path(self, run_dir: Path | str) -> Path:
        """This artifact's path inside ``run_dir``."""
        return Path(run_dir) / self.file_name

    @property
    def rewrite_hint(self) -> str:
        """How to get a missing or damaged copy written again."""
        if self.writer == "pipeline":
            return "start a new run with `cpo run --out NEW_DIR`"
        return f"the {self.writer} stage writes it: rerun it with `cpo run --resume RUN_DIR`"


MANIFEST = Artifact(
    "manifest.json",
    1,
    "run id, seed, config snapshot, inputs, stages, state",
    "pipeline",
)
SEGMENTS = Artifact(
    "segments.csv",
    1,
    "per customer: segment, segment id, confidence, why",
    "segment",
)
SEGMENTS_DATASET = Artifact(
    "segments.parquet/",
    1,
    "segments.csv as a Parquet dataset (Spark, or a large run)",
    "segment",
)
SEGMENT_PROFILES = Artifact(
    "segment_profiles.json",
    1,
    "per segment: size, share, definition, means, traits",
    "segment",
)
REJECTED = Artifact(
    "rejected.csv",
    1,
    "rows set aside by --on-invalid skip, with the reason",
    "segment",
    personal=True,
)
CUSTOMERS_COPY = Artifact(
    "customers.parquet",
    1,
    "the validated customers, read by later stages",
    "segment",
    personal=True,
)
CONTENT_INDEX = Artifact(
    "content_index.sqlite",
    1,
    "full-text index of the content (sqlite_fts backend)",
    "retrieve",
)
RETRIEVAL = Artifact(
    "retrieval.json",
    1,
    "per segment: query, filters, snippets with scores",
    "retrieve",
)
VARIANTS = Artifact(
    "variants.json",
    1,
    "every variant and the control, citations, usage",
    "generate",
)
SAFETY_AUDIT = Artifact(
    "safety_audit.jsonl",
    1,
    "hash-chained screening and approval decisions",
    "screen",
)
SAFETY_AUDIT_CSV = Artifact(
    "safety_audit.csv",
    1,
    "the audit log as CSV (compliance export)",
    "screen",
)
EXPERIMENT_DESIGN = Artifact(
    "experiment_design.json",
    1,
    "arms, allocation, metrics, alpha, power, sample size",
    "assign",
)
ASSIGNMENTS = Artifact(
    "assignments.csv",
    1,
    "per customer: experiment arm, variant, method",
    "assign",
)
ASSIGNMENTS_DATASET = Artifact(
    "assignments.parquet/",
    1,
    "assignments.csv as a Parquet dataset (Spark, or a large run)",
    "assign",
)
WAVES = Artifact(
    "waves.json",
    1,
    "adaptive waves: plan, each wave's allocation and responses",
    "assign",
)
SENDS = Artifact(
    "sends.csv",
    1,
    "the send list (screened-and-passed content only)",
    "assign",
    personal=True,
)
SENDS_PARQUET = Artifact(
    "sends.parquet",
    1,
    "the send list of a large or Spark run, compact (cpo export-sends)",
    "assign",
    personal=True,
)
#: The forms of the send list; a run folder holds exactly one once assign has run.
SEND_LIST_FORMS: tuple[Artifact, ...] = (SENDS_PARQUET, SENDS)
WITHHELD = Artifact(
    "withheld.csv",
    1,
    "recipients held back at merge screening, and why",
    "assign",
)
SEND_LEDGER = Artifact(
    "send_ledger.sqlite",
    1,
    "per recipient: SMTP delivery state (cpo send)",
    "send",
    personal=True,
)
ENGAGEMENT = Artifact(
    "engagement.csv",
    1,
    "per recipient: opened, clicked, converted, source",
    "engage",
)
ENGAGEMENT_DATASET = Artifact(
    "engagement.parquet/",
    1,
    "engagement.csv as a Parquet dataset (compute.engine: spark)",
    "engage",
)
ENGAGEMENT_COUNTS = Artifact(
    "engagement_counts.csv",
    1,
    "imported engagement counts per arm (counts layout)",
    "engage",
)
ENGAGEMENT_REPORT = Artifact(
    "engagement_report.json",
    1,
    "engagement source: import checks or simulation model",
    "engage",
)
METRICS = Artifact(
    "metrics.json",
    1,
    "rates, lifts, intervals, adjusted p-values, power",
    "analyze",
)
MODERATORS = Artifact(
    "moderators.json",
    1,
    "customer attributes that moderate the lift",
    "analyze",
)
MONITORING = Artifact(
    "monitoring.json",
    1,
    "always-valid p-values and confidence sequences per look (analysis.sequential)",
    "analyze",
)
REPORT_HTML = Artifact(
    "report.html",
    1,
    "self-contained report (works offline)",
    "report",
)
REPORT_PDF = Artifact("report.pdf", 1, "printable report", "report")
REPORT_NOTEBOOK = Artifact(
    "report.ipynb",
    1,
    "executed notebook reproducing the report",
    "report",
)
LOGS = Artifact(
    "logs/",
    1,
    "system.log, experiment.log (JSON lines, no PII)",
    "pipeline",
)
LOCK = Artifact(
    ".cpo.lock",
    1,
    "lock of the cpo process changing the folder (pid)",
    "pipeline",
)

#: Every artifact of a run folder, in the order a run writes them.
ARTIFACTS: tuple[Artifact, ...] = (
    MANIFEST,
    SEGMENTS,
    SEGMENTS_DATASET,
    SEGMENT_PROFILES,
    REJECTED,
    CUSTOMERS_COPY,
    CONTENT_INDEX,
    RETRIEVAL,
    VARIANTS,
    SAFETY_AUDIT,
    SAFETY_AUDIT_CSV,
    EXPERIMENT_DESIGN,
    ASSIGNMENTS,
    ASSIGNMENTS_DATASET,
    WAVES,
    SENDS,
    SENDS_PARQUET,
    WITHHELD,
    SEND_LEDGER,
    ENGAGEMENT,
    ENGAGEMENT_DATASET,
    ENGAGEMENT_COUNTS,
    ENGAGEMENT_REPORT,
    METRICS,
    MODERATORS,
    MONITORING,
    REPORT_HTML,
    REPORT_PDF,
    REPORT_NOTEBOOK,
    LOGS,
    LOCK,
)


def artifact(name: str) -> Artifact:
    """The artifact with file name ``name`` (``"logs"`` and ``"logs/"`` both work).

    Raises:
        KeyError: no artifact has that name.
    """
    for candidate in ARTIFACTS:
        if name in (candidate.name, candidate.file_name):
            return candidate
    raise KeyError(name)


# --- manifest -----------------------------------------------------------------


def read_manifest(run_dir: Path | str) -> dict[str, Any]:
    """The run's manifest.json as a dict.

    Raises:
        RunDirError: there is no manifest (not a run folder) or it is not a JSON object.
    """
    path = MANIFEST.path(run_dir)
    if not path.is_file():
        raise RunDirError(f"{run_dir}: no {MANIFEST.name} here", hint=_RUN_HINT)
    return _read_json_object(path, MANIFEST)


def write_manifest(run_dir: Path | str, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically (the pipeline and ``cpo approve`` call this)."""
    from cpo.runfiles import write_json

    write_json(MANIFEST.path(run_dir), manifest)


RecordT = TypeVar("RecordT")


def read_versioned(
    path: Path | str,
    what: Artifact,
    build: Callable[[dict[str, Any]], RecordT],
    *,
    missing_hint: str,
    invalid_hint: str,
) -> RecordT:
    """Read a JSON artifact with a ``schema_version`` this cpo reads, into its records.

    Args:
        path: The file.
        what: The artifact (its name and the newest schema version this cpo writes).
        build: Turns the JSON object into the typed record (``Document.from_dict``).
        missing_hint: What to do when the file does not exist.
        invalid_hint: What to do when it is not in the schema's shape.

    Raises:
        DataValidationError: missing, not JSON, not an object, a newer schema
            version, or a key of the schema missing or mistyped.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataValidationError(f"{path}: not found", hint=missing_hint) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataValidationError(f"{path}: expected a JSON object, found {type(data).__name__}")
    version = data.get("schema_version")
    if not isinstance(version, int) or version > what.schema_version:
        raise DataValidationError(
            f"{path}: schema_version {version!r} is not one this cpo reads "
            f"(up to {what.schema_version})",
            hint="read it with the cpo version that wrote it, or analyse the run again",
        )
    try:
        return build(data)
    except (KeyError, TypeError, AttributeError) as exc:
        raise DataValidationError(
            f"{path}: not a {what.name} of schema version {version} ({type(exc).__name__}: {exc})",
            hint=invalid_hint,
        ) from None


def _read_json_object(path: Path, what: Artifact) -> dict[str, Any]:
    """A JSON object from ``path``, with one clear error when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataValidationError(
            f"{path}: malformed JSON at line {exc.lineno} ({exc.msg})", hint=what.rewrite_hint
        ) from None
    except (OSError, ValueError) as exc:
        raise DataValidationError(
            f"{path}: cannot read {what.name} ({type(exc).__name__}: {exc})",
            hint=what.rewrite_hint,
        ) from None
    if not isinstance(data, dict):
        raise DataValidationError(
            f"{path}: {what.name} must hold a JSON object, found {type(data).__name__}",
            hint=what.rewrite_hint,
        )
    return data


def _locate(source: Path | str, what: Artifact) -> Path:
    """The artifact's file: ``source`` itself, or its copy inside the run folder ``source``."""
    source = Path(source)
    return what.path(source) if source.is_dir() else source


# --- segment: segments.csv, segment_profiles.json -----------------------------


def write_segments(
    run_dir: Path | str, assignments: pd.DataFrame, *, columnar: bool = False
) -> None:
    """Write the segments (one row per customer); the other form of an earlier run goes.

    Args:
        run_dir: The run folder.
        assignments: segments.csv's columns.
        columnar: Write the segments dataset (``segments.parquet/``, one part file)
            instead of segments.csv (a large run: ``compute.columnar_above``).
    """
    from cpo.runfiles import write_csv

    if columnar:
        _write_local_dataset(assignments, SEGMENTS_DATASET.path(run_dir))
        SEGMENTS.path(run_dir).unlink(missing_ok=True)
        return
    write_csv(SEGMENTS.path(run_dir), assignments)
    _remove_dataset(SEGMENTS_DATASET.path(run_dir))


def write_segments_dataset(run_dir: Path | str, segments: Any) -> None:
    """Write the segments as a Parquet dataset from a Spark DataFrame (segments.csv goes).

    Args:
        run_dir: The run folder (a path Spark's executors can write).
        segments: A Spark DataFrame with segments.csv's columns.
    """
    SEGMENTS.path(run_dir).unlink(missing_ok=True)
    _write_dataset(segments, SEGMENTS_DATASET.path(run_dir))


def _write_dataset(frame: Any, path: Path) -> None:
    """Spark writes ``frame`` as Parquet part files into the folder ``path`` (replaced)."""
    if path.is_file():
        path.unlink()
    frame.write.mode("overwrite").option("compression", "zstd").parquet(str(path.resolve()))


#: The one part file of a dataset the local engine writes (Spark's are ``part-NNNNN-...``).
_LOCAL_PART = "part-00000.parquet"


def _write_local_dataset(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as a one-part Parquet dataset in the folder ``path`` (replaced).

    pyarrow writes the part into a hidden sibling folder that is renamed into
    place, so an interrupted write never leaves a partial dataset behind.
    """
    import os
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from cpo.runfiles import atomic_open

    table = pa.Table.from_pandas(frame, preserve_index=False)
    staging = path.parent / f".{path.name}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with atomic_open(staging / _LOCAL_PART, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")
        if path.is_file():
            path.unlink()
        _remove_dataset(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _remove_dataset(path: Path) -> None:
    """Remove a Parquet dataset folder (nothing when absent)."""
    import shutil

    if path.is_dir():
        shutil.rmtree(path)


def read_dataset(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A Parquet dataset (Spark's or the local engine's), read with pyarrow, parts in order."""
    return _dataset_table(path, columns).to_pandas()


def _dataset_table(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """The dataset's rows (only ``columns`` of them that it has) as an Arrow table."""
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(path), format="parquet", exclude_invalid_files=False)
    files = sorted(dataset.files)  # part-00000, part-00001, ...: the rows' order
    ordered = ds.dataset(files, format="parquet", schema=dataset.schema)
    present = [c for c in columns if c in dataset.schema.names] if columns else None
    return ordered.to_table(columns=present)


def _read_text_dataset(
    path: Path, columns: Sequence[str] | None, text: Sequence[str] | None
) -> pd.DataFrame:
    """A dataset with the ``text`` columns (all when ``None``) as text, nulls as ``""``.

    The frame its CSV form gives when read with every one of those columns as text.
    """
    import pyarrow as pa

    table = _dataset_table(path, columns)
    names = table.column_names if text is None else [n for n in text if n in table.column_names]
    for name in names:
        column: Any = table.column(name).cast(pa.large_string())
        column = column.fill_null("")
        table = table.set_column(table.column_names.index(name), name, column)
    frame = table.to_pandas()
    return frame.astype(dict.fromkeys(names, str))


#: The segments' columns that are text (the others are numbers).
_SEGMENT_TEXT = ("customer_id", "segment", "reason")


def read_segments(run_dir: Path | str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """segments.csv (or its dataset) with ``customer_id``, ``segment`` and ``reason`` as text.

    Empty cells stay ``""``.

    Args:
        run_dir: The run folder.
        columns: Only these of its columns, in this order (all when ``None``).

    Raises:
        DataValidationError: the run has no segments.csv and no segments dataset.
    """
    path = SEGMENTS.path(run_dir)
    if not path.is_file() and SEGMENTS_DATASET.path(run_dir).is_dir():
        return _read_text_dataset(SEGMENTS_DATASET.path(run_dir), columns, _SEGMENT_TEXT)
    if not path.is_file():
        raise DataValidationError(
            f"{path}: segment assignments not found", hint=SEGMENTS.rewrite_hint
        )
    frame = _read_segments_csv(path)
    return frame if columns is None else frame[[c for c in columns if c in frame.columns]]


def _read_segments_csv(path: Path) -> pd.DataFrame:
    """segments.csv: text, with the numbers segmentation wrote typed."""
    import pandas as pd
    import pyarrow as pa

    from cpo.runfiles import read_text_artifact

    frame = read_text_artifact(path)
    for column, kind in (("segment_id", pa.int64()), ("confidence", pa.float64())):
        if column in frame.columns:  # the numbers segmentation wrote
            try:
                numbers: Any = pa.array(frame[column], type=pa.string()).cast(kind)
                frame[column] = numbers.to_numpy(zero_copy_only=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                frame[column] = pd.to_numeric(frame[column])
    return frame


_COPY_SOURCE_KEY = b"cpo.source"


@dataclass(frozen=True)
class CustomerCopy:
    """The run's validated customers as the segment stage wrote them.

    Attributes:
        frame: The validated, typed customers (the columns asked for).
        source: What the copy was made from: ``sha256`` of the customer file,
            ``settings`` (how it was read) and ``on_invalid``.
    """

    frame: pd.DataFrame
    source: dict[str, Any]


def write_customer_copy(
    run_dir: Path | str, customers: pd.DataFrame, source: dict[str, Any]
) -> None:
    """Write customers.parquet: the validated customers, typed, with ``source`` in its metadata.

    Later stages (and a resume) read this copy instead of parsing and
    validating the customer file again, as long as ``source`` still matches.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cpo.runfiles import atomic_open

    table = pa.Table.from_pandas(customers, preserve_index=False)
    metadata = {**(table.schema.metadata or {}), _COPY_SOURCE_KEY: json.dumps(source).encode()}
    _remove_dataset(CUSTOMERS_COPY.path(run_dir))
    with atomic_open(CUSTOMERS_COPY.path(run_dir), "wb") as handle:
        pq.write_table(table.replace_schema_metadata(metadata), handle, compression="zstd")


#: The customer copy's ``source`` inside a copy written by Spark (a folder of part files);
#: a leading underscore keeps it out of the dataset's files.
_COPY_SOURCE_FILE = "_cpo_source.json"


def write_customer_copy_dataset(
    run_dir: Path | str, customers: Any, source: dict[str, Any]
) -> None:
    """Write customers.parquet as a Parquet dataset from a Spark DataFrame, with ``source``.

    The folder takes the name of the local engine's file; :func:`read_customer_copy`
    reads either form.
    """
    from cpo.runfiles import write_json

    path = CUSTOMERS_COPY.path(run_dir)
    _write_dataset(customers, path)
    write_json(path / _COPY_SOURCE_FILE, source)


def read_customer_copy(
    run_dir: Path | str, columns: Sequence[str] | None = None
) -> CustomerCopy | None:
    """customers.parquet (only ``columns`` when given), or None when absent or unreadable.

    A copy that cannot be read is not an error: the caller reads the
    customer file instead.
    """
    import pyarrow.parquet as pq

    path = CUSTOMERS_COPY.path(run_dir)
    if path.is_dir():
        return _read_copy_dataset(path, columns)
    if not path.is_file():
        return None
    try:
        parquet = pq.ParquetFile(path)
        metadata = parquet.schema_arrow.metadata or {}
        source = json.loads(metadata[_COPY_SOURCE_KEY])
        present = [c for c in columns if c in parquet.schema_arrow.names] if columns else None
        frame = parquet.read(columns=present).to_pandas()
    except (OSError, ValueError, KeyError):
        return None
    return CustomerCopy(frame, source) if isinstance(source, dict) else None


def customer_copy_source(run_dir: Path | str) -> dict[str, Any] | None:
    """What the run's customer copy was made from (its ``source``), without reading its rows.

    None when there is no copy or it cannot be read.
    """
    import pyarrow.parquet as pq

    path = CUSTOMERS_COPY.path(run_dir)
    try:
        if path.is_dir():
            source = json.loads((path / _COPY_SOURCE_FILE).read_text(encoding="utf-8"))
        elif path.is_file():
            metadata = pq.read_schema(path).metadata or {}
            source = json.loads(metadata[_COPY_SOURCE_KEY])
        else:
            return None
    except (OSError, ValueError, KeyError):
        return None
    return source if isinstance(source, dict) else None


def _read_copy_dataset(path: Path, columns: Sequence[str] | None) -> CustomerCopy | None:
    """A customer copy Spark wrote (a dataset and its source file), or None when unreadable."""
    try:
        source = json.loads((path / _COPY_SOURCE_FILE).read_text(encoding="utf-8"))
        frame = read_dataset(path, columns)
    except (OSError, ValueError):
        return None
    return CustomerCopy(frame, source) if isinstance(source, dict) else None


def write_profiles(
    run_dir: Path | str,
    profiles: Sequence[SegmentProfile],
    *,
    method: str,
    total_customers: int,
    details: dict[str, Any],
) -> None:
    """Write segment_profiles.json: how the run segmented, and one profile per segment."""
    from cpo.runfiles import write_json

    write_json(
        SEGMENT_PROFILES.path(run_dir),
        {
            "method": method,
            "total_customers": total_customers,
            "details": details,
            "segments": [asdict(profile) for profile in profiles],
        },
    )


def read_profiles(source: Path | str) -> list[SegmentProfile]:
    """The segment profiles of a run folder (or of a segment_profiles.json file).

    Raises:
        DataValidationError: the file is missing or not in the expected shape.
    """
    path = _locate(source, SEGMENT_PROFILES)
    if not path.is_file():
        raise DataValidationError(
            f"{path}: segment profiles not found",
            hint="run the segment stage first (cpo run), or pass --run RUN_DIR",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [_profile(entry) for entry in data["segments"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataValidationError(
            f"{path}: not a valid {SEGMENT_PROFILES.name} ({type(exc).__name__}: {exc})",
            hint="rerun the segment stage to rewrite it",
        ) from None


def _profile(entry: dict[str, Any]) -> SegmentProfile:
    """A :class:`SegmentProfile` from its JSON form."""
    return SegmentProfile(
        name=str(entry["name"]),
        segment_id=int(entry["segment_id"]),
        size=int(entry["size"]),
        share=float(entry["share"]),
        definition=str(entry.get("definition", "")),
        means={str(k): float(v) for k, v in (entry.get("means") or {}).items()},
        medians={str(k): float(v) for k, v in (entry.get("medians") or {}).items()},
        traits=tuple(str(t) for t in entry.get("traits") or ()),
    )


# --- retrieve: retrieval.json ---------------------------------------------------


def write_retrieval(run_dir: Path | str, document: dict[str, Any]) -> None:
    """Write retrieval.json (built by :func:`cpo.retrieval.service.retrieval_document`)."""
    from cpo.runfiles import write_json

    write_json(RETRIEVAL.path(run_dir), document)


def read_retrieval(source: Path | str) -> dict[str, Any]:
    """retrieval.json of a run folder (or the file itself) as a dict.

    Raises:
        DataValidationError: the file is missing or is not a JSON object.
    """
    path = _locate(source, RETRIEVAL)
    if not path.is_file():
        raise DataValidationError(
            f"{path}: retrieval results not found",
            hint="the retrieve stage writes it; rerun with `cpo run --resume RUN_DIR`",
        )
    return _read_json_object(path, RETRIEVAL)


def snippet_to_result(snippet: Snippet) -> dict[str, Any]:
    """One ``results`` entry of retrieval.json for a snippet (score rounded to 4 places)."""
    return {
        "document_id": snippet.document_id,
        "title": snippet.title,
        "paragraph_index": snippet.paragraph_index,
        "snippet": snippet.text,
        "score": round(float(snippet.score), 4),
        "category": snippet.category,
        "audience": snippet.audience,
        "source_url": snippet.source_url,
    }


def snippet_from_result(result: dict[str, Any]) -> Snippet:
    """A :class:`Snippet` from one ``results`` entry of retrieval.json."""
    return Snippet(
        document_id=str(result["document_id"]),
        title=str(result["title"]),
        paragraph_index=int(result["paragraph_index"]),
        text=str(result["snippet"]),
        score=float(result["score"]),
        category=str(result.get("category", "")),
        audience=str(result.get("audience", "")),
        source_url=str(result.get("source_url", "")),
    )


def segment_snippets(retrieval: dict[str, Any], segment: str) -> list[Snippet]:
    """The snippets retrieved for ``segment`` in a loaded retrieval.json, best first.

    Raises:
        DataValidationError: the segment is not in the file, or the file is malformed.
    """
    try:
        segments = retrieval["segments"]
        for entry in segments:
            if entry["segment"] == segment:
                return [snippet_from_result(r) for r in entry["results"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataValidationError(
            f"{RETRIEVAL.name} is malformed ({type(exc).__name__}: {exc})",
            hint="rerun the retrieve stage (cpo run --resume RUN_DIR)",
        ) from None
    names = ", ".join(json.dumps(e.get("segment")) for e in segments) or "(none)"
    raise DataValidationError(
        f"{RETRIEVAL.name} has no segment '{segment}'; it has: {names}",
        hint=f"use a segment name from {SEGMENT_PROFILES.name}, or rerun the retrieve stage",
    )


# --- generate: variants.json ----------------------------------------------------


def write_variants(run_dir: Path | str, document: dict[str, Any]) -> None:
    """Write variants.json (built by :func:`cpo.generation.service.variants_document`)."""
    from cpo.runfiles import write_json

    write_json(VARIANTS.path(run_dir), document)


def read_variants(source: Path | str) -> list[Variant]:
    """The variants of a run folder (or of a variants.json file); unknown keys are ignored.

    Raises:
        DataValidationError: the file is missing or malformed, a variant is
            invalid, or variant ids repeat.
    """
    path = _locate(source, VARIANTS)
    if not path.is_file():
        raise DataValidationError(
            f"{path}: variants file not found",
            hint="the generate stage of `cpo run` writes variants.json into the run folder",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data["variants"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataValidationError(
            f"{path}: expected a JSON object with a 'variants' list ({exc})"
        ) from None
    variants = [_variant_from_dict(path, index, item) for index, item in enumerate(items)]
    repeated = [vid for vid, n in Counter(v.variant_id for v in variants).items() if n > 1]
    if repeated:
        raise DataValidationError(f"{path}: variant ids repeat: {', '.join(sorted(repeated))}")
    return variants


_VARIANT_FIELDS = frozenset(f.name for f in fields(Variant))


def _variant_from_dict(path: Path, index: int, item: Any) -> Variant:
    """Build one Variant, naming the file and list position when it is malformed."""
    try:
        values = {key: value for key, value in item.items() if key in _VARIANT_FIELDS}
        values["citations"] = tuple(Citation(**c) for c in values.get("citations", ()))
        grounding = values.get("grounding") or {"score": 1.0}
        values["grounding"] = Grounding(
            score=float(grounding.get("score", 1.0)),
            unsupported_claims=tuple(grounding.get("unsupported_claims", ())),
            invalid_citations=tuple(grounding.get("invalid_citations", ())),
        )
        values["retrieved_document_ids"] = tuple(values.get("retrieved_document_ids", ()))
        variant = Variant(**values)
    except (AttributeError, TypeError, ValueError) as exc:
        raise DataValidationError(
            f"{path}: variants[{index}] is not a valid variant ({exc})"
        ) from None
    if not isinstance(variant.subject, str) or not isinstance(variant.body, str):
        raise DataValidationError(f"{path}: variants[{index}]: subject and body must be text")
    return variant


# --- screen: the audit log's recorded head --------------------------------------


@dataclass(frozen=True, slots=True)
class AuditHead:
    """What the manifest recorded about the audit log, to verify it against.

    Attributes:
        entries: Number of entries when the run recorded it (``None``: nothing recorded).
        head_hash: Hash of the last entry then (``None``: nothing recorded).
    """

    entries: int | None = None
    head_hash: str | None = None

    def as_record(self) -> dict[str, Any]:
        """The manifest's ``safety.audit`` record of this head."""
        return {"entries": self.entries, "head_hash": self.head_hash}


def recorded_audit_head(manifest: dict[str, Any]) -> AuditHead:
    """The audit log's length and head hash recorded under ``safety.audit`` in a manifest."""
    recorded = (manifest.get("safety") or {}).get("audit") or {}
    return AuditHead(recorded.get("entries"), recorded.get("head_hash"))


# --- assign and engage: experiment_design.json, assignments.csv, engagement.csv --


def write_design(run_dir: Path | str, document: dict[str, Any]) -> None:
    """Write experiment_design.json (``Design.to_dict()`` of :mod:`cpo.experiment.design`)."""
    from cpo.runfiles import write_json

    write_json(EXPERIMENT_DESIGN.path(run_dir), document)


def read_design(run_dir: Path | str) -> dict[str, Any]:
    """experiment_design.json of a run folder as a dict.

    Raises:
        DataValidationError: the file is missing or is not a JSON object.
    """
    path = EXPERIMENT_DESIGN.path(run_dir)
    if not path.is_file():
        raise DataValidationError(
            f"{path}: experiment design not found", hint=EXPERIMENT_DESIGN.rewrite_hint
        )
    return _read_json_object(path, EXPERIMENT_DESIGN)


def write_assignments(
    run_dir: Path | str, assignments: pd.DataFrame, *, columnar: bool = False
) -> None:
    """Write the assignments (one row per customer); the other form of an earlier run goes.

    Args:
        run_dir: The run folder.
        assignments: assignments.csv's columns, all text.
        columnar: Write the assignments dataset (``assignments.parquet/``, one part
            file) instead of assignments.csv (a large run: ``compute.columnar_above``).
    """
    from cpo.runfiles import write_csv

    if columnar:
        _write_local_dataset(assignments, ASSIGNMENTS_DATASET.path(run_dir))
        ASSIGNMENTS.path(run_dir).unlink(missing_ok=True)
        return
    write_csv(ASSIGNMENTS.path(run_dir), assignments)
    _remove_dataset(ASSIGNMENTS_DATASET.path(run_dir))


def write_assignments_dataset(run_dir: Path | str, assignments: Any) -> None:
    """Write the assignments as a Parquet dataset from a Spark DataFrame (assignments.csv goes).

    Args:
        run_dir: The run folder (a path Spark's executors can write).
        assignments: A Spark DataFrame with assignments.csv's columns, all text.
    """
    ASSIGNMENTS.path(run_dir).unlink(missing_ok=True)
    _write_dataset(assignments, ASSIGNMENTS_DATASET.path(run_dir))


def read_assignments(run_dir: Path | str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """assignments.csv (or its dataset) with every column as text (empty cells stay ``""``).

    Args:
        run_dir: The run folder.
        columns: Read only these columns of a dataset (all of a CSV).

    Raises:
        DataValidationError: the run has no assignments.csv and no assignments dataset.
    """
    from cpo.runfiles import read_text_artifact

    path = ASSIGNMENTS.path(run_dir)
    if not path.is_file() and ASSIGNMENTS_DATASET.path(run_dir).is_dir():
        return _read_text_dataset(ASSIGNMENTS_DATASET.path(run_dir), columns, None)
    if not path.is_file():
        raise DataValidationError(f"{path}: assignments not found", hint=ASSIGNMENTS.rewrite_hint)
    return read_text_artifact(path)


def write_waves(run_dir: Path | str, document: dict[str, Any]) -> None:
    """Write waves.json (adaptive waves: :func:`cpo.experiment.waves.waves_document`)."""
    from cpo.runfiles import write_json

    write_json(WAVES.path(run_dir), document)


def read_waves(run_dir: Path | str) -> dict[str, Any] | None:
    """waves.json of a run folder, or ``None`` for a run of one wave (no file).

    Raises:
        DataValidationError: the file is not a JSON object.
    """
    path = WAVES.path(run_dir)
    return _read_json_object(path, WAVES) if path.is_file() else None


def write_engagement(run_dir: Path | str, engagement: pd.DataFrame) -> None:
    """Write engagement.csv (one row per recipient; only the header after a counts import).

    An engagement dataset of an earlier run goes.
    """
    from cpo.runfiles import write_csv

    write_csv(ENGAGEMENT.path(run_dir), engagement)
    _remove_dataset(ENGAGEMENT_DATASET.path(run_dir))


def write_engagement_dataset(run_dir: Path | str, engagement: Any) -> None:
    """Write the engagement as a Parquet dataset (engagement.csv goes).

    Args:
        run_dir: The run folder (with Spark: a path Spark's executors can write).
        engagement: engagement.csv's rows: a Spark DataFrame (Spark writes the
            part files) or a pandas DataFrame (written as one part file).
    """
    path = ENGAGEMENT_DATASET.path(run_dir)
    if hasattr(engagement, "write"):  # a Spark DataFrame
        ENGAGEMENT.path(run_dir).unlink(missing_ok=True)
        _write_dataset(engagement, path)
        return
    _write_local_dataset(engagement, path)  # complete before engagement.csv goes
    ENGAGEMENT.path(run_dir).unlink(missing_ok=True)


def find_engagement(run_dir: Path | str) -> Path | None:
    """The run's engagement: engagement.csv, else its dataset; None before the engage stage."""
    path = ENGAGEMENT.path(run_dir)
    if path.is_file():
        return path
    dataset = ENGAGEMENT_DATASET.path(run_dir)
    return dataset if dataset.is_dir() else None


def engagement_columns(run_dir: Path | str) -> list[str]:
    """The columns of the run's engagement (engagement.csv's header or the dataset's schema).

    Raises:
        DataValidationError: the run has no engagement yet.
    """
    path = _engagement_path(run_dir)
    if path.is_dir():
        import pyarrow.dataset as ds

        return list(ds.dataset(str(path), format="parquet").schema.names)
    from cpo.runfiles import csv_header

    return csv_header(path)


def read_engagement(
    run_dir: Path | str, columns: Sequence[str] | None = None, *, text: Sequence[str] = ()
) -> pd.DataFrame:
    """The run's engagement (engagement.csv or its dataset): the same values from either form.

    Args:
        run_dir: The run folder.
        columns: Read only these columns (all when None); each must exist.
        text: Of the columns read, those returned as text (a missing value as
            ``""``); the others are typed from their values (the 0/1 flags as
            integers).

    Raises:
        DataValidationError: the run has no engagement yet, or it lacks one of ``columns``.
    """
    path = _engagement_path(run_dir)
    present = engagement_columns(run_dir)
    wanted = present if columns is None else [c for c in present if c in set(columns)]
    missing = [c for c in (columns or ()) if c not in present]
    if missing:
        raise DataValidationError(
            f"{path}: missing column(s) {', '.join(missing)}",
            hint=f"{ENGAGEMENT.name} has customer_id, experiment_arm, segment, opened, "
            f"clicked, converted; {ENGAGEMENT.rewrite_hint}",
        )
    if path.is_dir():
        frame = read_dataset(path, wanted)
        for column in (c for c in text if c in frame.columns):
            values = frame[column]
            frame[column] = values.where(values.notna(), "").astype(str)
        return frame
    from cpo.runfiles import read_columns, read_text_artifact

    if set(text) >= set(present) and wanted == present:
        return read_text_artifact(path)
    return read_columns(path, wanted, text=text)


def _engagement_path(run_dir: Path | str) -> Path:
    """engagement.csv or its dataset, or an error naming both when there is neither."""
    found = find_engagement(run_dir)
    if found is None:
        raise DataValidationError(
            f"{ENGAGEMENT.path(run_dir)}: engagement not found (nor {ENGAGEMENT_DATASET.name})",
            hint=ENGAGEMENT.rewrite_hint,
        )
    return found


# --- assign: the send list (sends.csv or sends.parquet) -------------------------

#: Rows per record batch when a send list is streamed (bounded memory at any size).
SEND_LIST_BATCH_ROWS = 65_536
#: A cell cpo escaped against formulas (see :mod:`cpo.runfiles`): its added quote, then group 1.
_ESCAPED_CELL = r"^'('*[=+\-@\t\r])"


@dataclass(frozen=True, slots=True)
class SendListFile:
    """The send list a run wrote: its form and file.

    Attributes:
        artifact: :data:`SENDS` (plain CSV) or :data:`SENDS_PARQUET` (compact).
        path: The file in the run folder (with the Spark engine, ``sends.parquet``
            is a folder of Parquet part files, read in part-file order).
    """

    artifact: Artifact
    path: Path

    @property
    def dataset(self) -> bool:
        """True for a send list written by Spark (a folder of part files)."""
        return self.path.is_dir()

    def part_files(self) -> list[Path]:
        """The Parquet files holding the rows, in row order (the file itself unless a dataset)."""
        if not self.dataset:
            return [self.path]
        return sorted(
            p
            for p in self.path.iterdir()
            if p.suffix == ".parquet" and not p.name.startswith(("_", "."))
        )

    def schema(self) -> pa.Schema:
        """The Arrow schema of a Parquet send list (every column's name and type)."""
        import pyarrow.dataset as ds

        return ds.dataset([str(p) for p in self.part_files()], format="parquet").schema

    @property
    def compact(self) -> bool:
        """True for ``sends.parquet``."""
        return self.artifact == SENDS_PARQUET

    @property
    def format(self) -> str:
        """``parquet`` or ``csv``."""
        return "parquet" if self.compact else "csv"

    def row_count(self) -> int:
        """Recipients in the send list (Parquet: from its metadata; CSV: one parse)."""
        if self.compact:
            import pyarrow.parquet as pq

            return sum(int(pq.ParquetFile(p).metadata.num_rows) for p in self.part_files())
        import pandas as pd

        # pandas' C parser, first column only: faster here than Arrow's streaming reader
        return len(pd.read_csv(self.path, usecols=[0]))

    def parts(self) -> Iterator[pa.Table]:
        """The send list's rows in consecutive parts, in file order, as values.

        A Parquet part is one row group (its text columns dictionary-encoded:
        each distinct message once, shared by the part's rows); a CSV part is
        about :data:`SEND_LIST_BATCH_ROWS` rows of text with cpo's formula
        escaping undone, so both forms give the same values. Memory is bounded
        by a part, never the whole list.
        """
        if self.compact:
            import pyarrow.parquet as pq

            for path in self.part_files():
                parquet = pq.ParquetFile(path)
                for group in range(parquet.num_row_groups):
                    yield parquet.read_row_group(group)
            return
        yield from _csv_parts(self.path, SEND_LIST_BATCH_ROWS)

    def record_batches(self, batch_rows: int = SEND_LIST_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """The rows of :meth:`parts` as record batches of at most ``batch_rows`` rows."""
        for part in self.parts():
            yield from part.to_batches(max_chunksize=batch_rows)


def _csv_parts(path: Path, part_rows: int) -> Iterator[pa.Table]:
    """Parts of a send-list CSV: every column text, formula escaping undone."""
    import csv

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    text = dict.fromkeys(header, pa.string())
    convert = pacsv.ConvertOptions(
        column_types=text, strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    parse = pacsv.ParseOptions(newlines_in_values=True)  # bodies span lines
    reader = pacsv.open_csv(path, parse_options=parse, convert_options=convert)
    pending: list[pa.RecordBatch] = []  # a block holds a few hundred rows: regrouped
    rows = 0
    for batch in reader:
        columns = [pc.replace_substring_regex(c, _ESCAPED_CELL, r"\1") for c in batch.columns]
        pending.append(pa.RecordBatch.from_arrays(columns, schema=batch.schema))
        rows += batch.num_rows
        if rows >= part_rows:
            yield pa.Table.from_batches(pending).combine_chunks()
            pending, rows = [], 0
    if pending:
        yield pa.Table.from_batches(pending).combine_chunks()


def find_send_list(run_dir: Path | str) -> SendListFile | None:
    """The run's send list, or ``None`` before the assign stage wrote one.

    The assign stage writes one form and removes the other; when both are
    present (a ``cpo export-sends --out RUN_DIR/sends.csv``) the Parquet file
    (or, with the Spark engine, the Parquet dataset) it wrote is the send list.
    """
    for form in SEND_LIST_FORMS:
        path = form.path(run_dir)
        if path.is_file() or (form == SENDS_PARQUET and path.is_dir()):
            return SendListFile(form, path)
    return None


#: Largest dictionary of a send-list column per row group that Spark keeps
#: dictionary-encoded (each distinct message stored once, as in sends.parquet).
SEND_LIST_DICTIONARY_BYTES = 1 << 30


def write_send_list_dataset(run_dir: Path | str, sends: Any) -> None:
    """Write the send list as a Parquet dataset (``sends.parquet/``) from a Spark DataFrame.

    Any other form of the send list goes first (sends.csv, a sends.parquet
    file). The text columns are dictionary-encoded up to
    :data:`SEND_LIST_DICTIONARY_BYTES` per row group and zstd-compressed.

    Args:
        run_dir: The run folder (a path Spark's executors can write).
        sends: A Spark DataFrame with sends.csv's columns, in send-list order.
    """
    remove_send_lists(run_dir)
    path = SENDS_PARQUET.path(run_dir)
    writer = sends.write.mode("overwrite").option("compression", "zstd")
    writer = writer.option("parquet.dictionary.page.size", str(SEND_LIST_DICTIONARY_BYTES))
    writer.parquet(str(path.resolve()))


def remove_send_lists(run_dir: Path | str) -> None:
    """Remove every form of the run's send list (sends.csv, sends.parquet file or dataset)."""
    for form in SEND_LIST_FORMS:
        path = form.path(run_dir)
        if path.is_dir():
            _remove_dataset(path)
        else:
            path.unlink(missing_ok=True)


def read_send_list(run_dir: Path | str) -> SendListFile:
    """The run's send list (``sends.parquet`` or ``sends.csv``).

    Raises:
        RunDirError: ``run_dir`` is not a run folder.
        DataValidationError: the run has no send list yet.
    """
    if not MANIFEST.path(run_dir).is_file():
        raise RunDirError(f"{run_dir}: not a run folder (no {MANIFEST.name})", hint=_RUN_HINT)
    found = find_send_list(run_dir)
    if found is None:
        raise DataValidationError(
            f"{run_dir}: no send list yet (neither {SENDS.name} nor {SENDS_PARQUET.name})",
            hint=SENDS.rewrite_hint,
        )
    return found
