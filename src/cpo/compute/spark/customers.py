"""The customer file read and validated by Spark (the data never passes through the driver).

The file (a local path or any URI Spark reads: ``file://``, ``s3a://``,
``abfss://``) is read by Spark as text cells, as the local loader reads it
(:mod:`cpo.customer_reader`). Every partition is then validated by the local
loader's own checks (:mod:`cpo.customers`, in ``mapInPandas``), so a row is
rejected for the same reasons with the same labels; duplicate ids are found by
a Spark aggregate over the whole file (the first occurrence in file order is
kept, as locally). Only the counts, a few example rows per problem and (with
``--on-invalid skip``) the rejected rows reach the driver.

What differs from the local loader: messages name a row by its customer id
("row (customer_id=C-17)"), not by line number (a partition does not know its
line numbers), and rejected.csv's ``line`` column is blank.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cpo.customer_reader import (
    CSV_SUFFIXES,
    DEFAULT_ENCODING,
    PARQUET_SUFFIXES,
    _clean_name,
    apply_column_mapping,
    detect_delimiter,
)
from cpo.customer_settings import CustomerSettings
from cpo.customers import (
    INTEGER_COLUMNS,
    MAX_EXAMPLES,
    NUMERIC_RANGES,
    TEXT_COLUMNS,
    _check_columns,
    _find_problems,
    nothing_valid,
    parse_numbers,
)
from cpo.errors import DataValidationError

POSITION = "__position"  # file order (partition, then row): the first duplicate is kept
REASON = "__reason"  # the local loader's reasons, "" for a valid row
DUPLICATE = "__duplicate"
VALUE = "__value"  # suffix of a numeric column's parsed number
#: Ids that repeat, up to this many, are sent to every task to mark the later rows (no
#: shuffle of the customers); more are joined by a shuffle (then the file order is restored).
BROADCAST_REPEATS = 100_000
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")
_DUPLICATE_REASON = "duplicate id"


@dataclass(frozen=True)
class SparkCustomers:
    """The validated customers as a Spark DataFrame, and what was set aside.

    Attributes:
        frame: Valid rows, typed as the local loader types them (extra columns text).
        rejected: Rejected rows as read (pandas, on the driver), with ``line`` and ``reason``.
        total_rows: Rows in the file.
        valid_rows: Rows in ``frame``.
        reading: How the file was read (recorded in the manifest).
        has_email: Whether the customers have email addresses.
        cached: The validated rows Spark keeps (``frame`` reads them); :meth:`release` frees them.
    """

    frame: Any
    rejected: pd.DataFrame
    total_rows: int
    valid_rows: int
    reading: dict[str, Any] = field(default_factory=dict)
    has_email: bool = False
    cached: Any = None

    def release(self) -> None:
        """Free the validated rows Spark keeps (``frame`` is read from the file again after)."""
        if self.cached is not None:
            self.cached.unpersist()


def is_uri(location: str) -> bool:
    """Whether ``location`` is a URI (``scheme:/...``) rather than a local path."""
    return bool(_URI.match(location)) and not re.match(r"^[A-Za-z]:[\\/]", location)


def spark_location(location: str | Path) -> str:
    """The location as Spark reads it.

    ``pathlib`` folds ``s3a://bucket/key`` into ``s3a:/bucket/key``; a URI with
    an authority gets its ``//`` back (``file:/tmp/x`` is already a valid URI).
    """
    text = str(location)
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):/(?!/)(.*)$", text)
    if match and match.group(1).lower() != "file":
        return f"{match.group(1)}://{match.group(2)}"
    return text


def read_customers(
    session: Any, location: str, settings: CustomerSettings, on_invalid: str
) -> SparkCustomers:
    """Read, map and validate the customer file with Spark.

    Raises:
        DataValidationError: the file cannot be read, lacks required columns,
            has no rows, or (``on_invalid="error"``) holds invalid rows; the
            messages are the local loader's, rows named by customer id.
    """
    raw, reading = _read_raw(session, location, settings)
    names = [str(c) for c in raw.columns]
    _check_columns(Path(location), pd.DataFrame(columns=names, index=[0]))
    has_email = _has_email(raw, names)
    flagged = _validate(_with_duplicates(raw), names, has_email).cache()
    try:
        total, bad_rows = _counts(flagged)
        if total == 0:
            _check_columns(Path(location), pd.DataFrame(columns=names))
        bad = flagged.filter(flagged[REASON] != "")
        if bad_rows and on_invalid == "error":
            raise _invalid_error(location, bad, bad_rows)
        rejected = _rejected(bad, names) if bad_rows else _empty_rejected(names)
        if bad_rows == total:
            raise nothing_valid(location, rejected, total)
        valid = _typed(flagged.filter(flagged[REASON] == ""), names, has_email)
    except BaseException:
        flagged.unpersist()
        raise
    return SparkCustomers(valid, rejected, total, total - bad_rows, reading, has_email, flagged)


def _read_raw(session: Any, location: str, settings: CustomerSettings) -> tuple[Any, dict]:
    """Every column as text (missing cells ``""``), header names cleaned and mapped."""
    from pyspark.sql import functions as F

    reading: dict[str, Any] = {"columns": dict(settings.columns), "encoding": None}
    suffix = Path(location.rstrip("/")).suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES or (suffix not in CSV_SUFFIXES and _is_dataset(location)):
            frame, reading["delimiter"] = session.read.parquet(location), None
        elif suffix in CSV_SUFFIXES:
            reading["encoding"] = settings.encoding or DEFAULT_ENCODING
            frame, reading["delimiter"] = _read_csv(session, location, settings)
        else:
            raise DataValidationError(
                f"{location}: unsupported file type '{suffix}'",
                hint="use a .csv (or .tsv) or .parquet file or a folder of Parquet files",
            )
    except DataValidationError:
        raise
    except Exception as exc:  # Spark's AnalysisException: path not found, unreadable
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataValidationError(
            f"{location}: Spark cannot read the customer file: {first}",
            hint="check the path or URI given to --customers (or data.customers)",
        ) from None
    names = [_clean_name(c) for c in frame.columns]
    text = [F.coalesce(F.col(f"`{c}`").cast("string"), F.lit("")) for c in frame.columns]
    frame = frame.select(*(cell.alias(name) for cell, name in zip(text, names, strict=True)))
    mapped = apply_column_mapping(Path(location), pd.DataFrame(columns=names), settings.columns)
    return frame.toDF(*[str(c) for c in mapped.columns]), reading


def _is_dataset(location: str) -> bool:
    """A local folder (of Parquet part files); a URI without a file suffix is taken as one."""
    return is_uri(location) or Path(location).is_dir()


def _read_csv(session: Any, location: str, settings: CustomerSettings) -> tuple[Any, str]:
    """A delimited file as text cells and the delimiter (given, or detected from the header)."""
    encoding = settings.encoding or DEFAULT_ENCODING
    delimiter = settings.delimiter
    if delimiter is None:
        first = session.read.text(location).first()
        header = (first[0] if first else "").lstrip("\ufeff")
        delimiter = detect_delimiter(Path(location), header)
    reader = session.read.options(
        header=True,
        sep=delimiter,
        encoding="utf-8" if encoding == "utf-8-sig" else encoding,
        inferSchema=False,
        ignoreLeadingWhiteSpace=True,
        multiLine=False,
    )
    return reader.csv(location), delimiter


def _has_email(raw: Any, names: list[str]) -> bool:
    """An email column that is not all blank (an all-blank one is no column, as locally)."""
    from pyspark.sql import functions as F

    if "email" not in names:
        return False
    return raw.filter(F.trim(F.col("email")) != "").limit(1).count() > 0


def _with_duplicates(raw: Any) -> Any:
    """Add the file position and whether the (stripped) id appeared earlier in the file.

    The repeated ids are found first, from the id column alone (one aggregate);
    usually there are none and the customers are not joined at all. A few are
    broadcast to the tasks; only very many are joined by a shuffle, after which
    the rows are put back in file order.
    """
    from pyspark.sql import functions as F

    positioned = raw.withColumn(POSITION, F.monotonically_increasing_id())
    key = F.trim(F.col("customer_id"))
    firsts = (
        positioned.groupBy(key.alias("__id"))
        .agg(F.count(F.lit(1)).alias("__n"), F.min(POSITION).alias("__first"))
        .filter((F.col("__n") > 1) & (F.col("__id") != ""))
        .select("__id", "__first")
    )
    repeated = firsts.limit(BROADCAST_REPEATS + 1).count()
    if repeated == 0:
        return positioned.withColumn(DUPLICATE, F.lit(False))
    few = repeated <= BROADCAST_REPEATS
    joined = positioned.join(F.broadcast(firsts) if few else firsts, key == F.col("__id"), "left")
    duplicate = F.col("__first").isNotNull() & (F.col(POSITION) != F.col("__first"))
    marked = joined.withColumn(DUPLICATE, duplicate).drop("__id", "__first")
    return marked if few else marked.orderBy(POSITION)


def _validate(frame: Any, names: list[str], has_email: bool) -> Any:
    """Each partition checked by the local loader's rules; reasons joined as locally."""
    numeric = list(NUMERIC_RANGES)
    schema = ", ".join(
        [f"`{c}` string" for c in names]
        + [f"`{c}{VALUE}` double" for c in numeric]
        + [f"{REASON} string", f"{POSITION} long"]
    )

    def mapper(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for part in parts:
            yield _checked_part(part, names, has_email)

    return frame.mapInPandas(mapper, schema)


def _checked_part(part: pd.DataFrame, names: list[str], has_email: bool) -> pd.DataFrame:
    """One partition: the local problems (duplicates from the whole file), reasons per row.

    A numeric column keeps its text only on rejected rows (messages and rejected.csv
    show it); valid rows carry the parsed number alone.
    """
    raw = part[names].reset_index(drop=True)
    checked = raw if has_email or "email" not in names else raw.drop(columns="email")
    if "first_name" not in checked.columns:
        checked = checked.assign(first_name="")
    numbers = {c: parse_numbers(checked[c].str.strip()) for c in NUMERIC_RANGES}
    problems = _find_problems(checked, numbers)
    duplicates = part[DUPLICATE].to_numpy(dtype=bool)
    reasons = np.full(len(raw), "", dtype=object)
    for problem in problems:
        mask = duplicates if problem.reason.startswith(_DUPLICATE_REASON) else problem.mask
        if mask.any():
            label = f"{problem.column}: {problem.reason}"
            reasons[mask] = np.where(reasons[mask] == "", label, reasons[mask] + "; " + label)
    out = raw.copy()
    valid = reasons == ""
    for column in TEXT_COLUMNS:
        if column in out.columns:  # valid rows are stripped, as locally
            out[column] = np.where(valid, out[column].str.strip(), out[column])
    for column in NUMERIC_RANGES:
        out[column] = raw[column].where(~valid, None)
        out[f"{column}{VALUE}"] = numbers[column]
    out[REASON] = reasons
    out[POSITION] = part[POSITION].to_numpy()
    return out


def _counts(flagged: Any) -> tuple[int, int]:
    """Rows, and rows with a problem (one pass)."""
    from pyspark.sql import functions as F

    row = flagged.select(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(F.col(REASON) != "", 1).otherwise(0)).alias("bad"),
    ).first()
    return int(row["rows"]), int(row["bad"] or 0)


def _invalid_error(location: str, bad: Any, bad_rows: int) -> DataValidationError:
    """The local loader's message: each failing column, its count and first rows by id."""
    from pyspark.sql import functions as F

    labels = bad.select(F.explode(F.split(F.col(REASON), "; ")).alias("label"), POSITION)
    counts = labels.groupBy("label").agg(F.count(F.lit(1)).alias("n")).collect()
    order = {label: i for i, label in enumerate(_label_order())}
    parts = [f"{location}: invalid customer data"]
    shown: list[str] = []
    for label, count in sorted(((r["label"], int(r["n"])) for r in counts), key=_rank(order)):
        column = label.split(": ", 1)[0]
        value_column = column
        with_value = column in NUMERIC_RANGES or label.endswith(_DUPLICATE_REASON + _KEPT)
        rows = (
            bad.filter(F.array_contains(F.split(F.col(REASON), "; "), label))
            .orderBy(POSITION)
            .select("customer_id", value_column)
            .limit(MAX_EXAMPLES)
            .collect()
        )
        examples = []
        for row in rows:
            customer = str(row["customer_id"]).strip()
            shown.append(customer)
            ref = f"row (customer_id={customer})" if customer else "row"
            examples.append(ref + (f" value {row[value_column]!r}" if with_value else ""))
        more = f" (+{count - MAX_EXAMPLES} more)" if count > MAX_EXAMPLES else ""
        reason = label.split(": ", 1)[1]
        parts.append(
            f"  column '{column}': {reason} in {count} row(s): " + "; ".join(examples) + more
        )
    message = "\n".join(parts)
    message += "\n  fix: correct these rows, or pass --on-invalid skip to set them aside"
    return DataValidationError(message, sensitive=shown)


_KEPT = " (first occurrence kept)"


def _label_order() -> list[str]:
    """The local loader's order of problems (required text, email, id, numeric columns)."""
    sample = pd.DataFrame({c: [""] for c in (*TEXT_COLUMNS, *NUMERIC_RANGES)})
    numbers = {c: np.array([np.nan]) for c in NUMERIC_RANGES}
    return [f"{p.column}: {p.reason}" for p in _find_problems(sample, numbers)]


def _rank(order: dict[str, int]) -> Any:
    """Sort key: the local order of problems, unknown labels last."""
    return lambda item: (order.get(item[0], len(order)), item[0])


def _rejected(bad: Any, names: list[str]) -> pd.DataFrame:
    """Rejected rows as read, in file order, with a blank ``line`` and the reasons."""
    columns = [f"`{c}`" for c in names]
    rows = bad.orderBy(POSITION).select(*columns, REASON).toPandas()
    rows.columns = [*names, "reason"]
    rejected = rows[names].copy()
    rejected.insert(0, "reason", rows["reason"].to_numpy())
    rejected.insert(0, "line", "")
    return rejected.reset_index(drop=True)


def _empty_rejected(names: list[str]) -> pd.DataFrame:
    """No rejected rows (the columns the local loader gives)."""
    return pd.DataFrame(columns=["line", "reason", *names])


def _typed(valid: Any, names: list[str], has_email: bool) -> Any:
    """Valid rows typed as the local loader types them, in file order."""
    from pyspark.sql import functions as F

    columns = []
    for name in names:
        if name == "email" and not has_email:
            continue
        if name in NUMERIC_RANGES:
            kind = "long" if name in INTEGER_COLUMNS else "double"
            columns.append(F.col(f"`{name}{VALUE}`").cast(kind).alias(name))
        else:
            columns.append(F.col(f"`{name}`"))
    if "first_name" not in names:
        columns.append(F.lit("").alias("first_name"))
    return valid.select(*columns, POSITION)
