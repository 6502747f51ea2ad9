"""The engage stage's per-recipient work on Spark: engagement simulated or imported.

**Simulation.** Spark joins the assignments (the run's dataset) to the
customers' historical rates (the run's customer copy) and runs the local
simulation on every partition (``mapInPandas``): the per-customer
probabilities of :func:`cpo.experiment.simulate.response_probabilities`, with
the population's mean rates computed by Spark, and the draws of
:func:`cpo.experiment.simulate.draw_outcomes`, a keyed hash of (seed, customer
id), so a customer's outcome does not depend on the partitioning. Only the
counts and the sums of the true probabilities per arm reach the driver (the
model's true effects).

**Import.** A per-recipient file (``customer_id, opened, clicked, converted``;
CSV or Parquet, a path or any URI Spark reads) is read and checked by Spark
(blank ids, flags that are not 0/1/true/false), combined per customer and
joined to the assignments with the local import's rules and counts
(:mod:`cpo.experiment.engagement`: unknown and holdout customers excluded,
repeated rows combined, a click counts as an open, recipients without a row
excluded). A file that fails a check gets the local import's message: a local
file is checked again by the local code for it (line numbers); a URI's rows are
named by customer id. An event file (``customer_id, event, timestamp``) is
imported on the driver by the local code.

Both write ``engagement.parquet/`` in the assignments' order (part files, then
rows) with engagement.csv's columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from cpo.compute.work import Engaged, EngageRequest
from cpo.errors import DataValidationError
from cpo.experiment import engagement as local_import
from cpo.experiment.engagement import ENGAGEMENT_COLUMNS, FLAG_COLUMNS, SOURCE_IMPORTED
from cpo.experiment.settings import HOLDOUT_ARM
from cpo.experiment.simulate import (
    SIMULATION_COLUMNS,
    SOURCE_SIMULATED,
    draw_outcomes,
    effects_of_rates,
    model_description,
    rates_from_sums,
    response_probabilities,
    simulation_warnings,
)
from cpo.run_folder import (
    ASSIGNMENTS_DATASET,
    CUSTOMERS_COPY,
    read_assignments,
    write_engagement_dataset,
)

FILE = "__file"  # the assignments' part file a row came from (part files are in order)
INDEX = "__index"  # the row's index within that file
PROBABILITIES = ("p_open", "p_click", "p_convert")
_TRUE = ("1", "1.0", "true", "t")
_FALSE = ("0", "0.0", "false", "f")


def read_assignments_frame(session: Any, run_dir: Path) -> Any:
    """The run's assignments as a Spark frame: customer_id, segment, arm, and their place.

    From the assignments dataset (its place: part file and row), else from
    assignments.csv read on the driver (its place: the row).
    """
    from pyspark.sql import functions as F

    dataset = ASSIGNMENTS_DATASET.path(run_dir)
    columns = ["customer_id", "segment", "experiment_arm"]
    if not dataset.is_dir():
        local = read_assignments(run_dir)[columns].astype(str)
        local[FILE], local[INDEX] = "", range(len(local))
        return session.createDataFrame(local.astype({INDEX: "int64"}))
    frame = session.read.parquet(str(dataset.resolve()))
    return frame.select(
        *(F.col(c).cast("string") for c in columns),
        F.col("_metadata.file_name").alias(FILE),
        F.col("_metadata.row_index").alias(INDEX),
    )


def _customers(engine: Any, request: EngageRequest) -> Any:
    """customer_id and the historical rates: the run's customer copy, read by Spark.

    When the copy is not current (the customer file changed), the customers are
    read again by the run's reader on the driver and handed to Spark.
    """
    from pyspark.sql import functions as F

    columns = ["customer_id", *SIMULATION_COLUMNS]
    if request.customer_copy_current:
        frame = engine.session.read.parquet(str(CUSTOMERS_COPY.path(request.run_dir).resolve()))
    else:
        frame = engine.session.createDataFrame(request.customers(list(SIMULATION_COLUMNS)))
    return frame.select(
        F.col("customer_id").cast("string"), *(F.col(c).cast("double") for c in columns[1:])
    )


def simulate_engagement(engine: Any, request: EngageRequest) -> Engaged:
    """Simulate every recipient's engagement on Spark; Spark writes the engagement dataset.

    Raises:
        ValueError: a recipient has no customer record, or an arm has no tone
            (as the local simulation).
    """
    from pyspark.sql import functions as F

    customers = _customers(engine, request)
    means = customers.agg(*(F.avg(c).alias(c) for c in SIMULATION_COLUMNS)).first()
    population = (float(means[SIMULATION_COLUMNS[0]]), float(means[SIMULATION_COLUMNS[1]]))
    assigned = read_assignments_frame(engine.session, request.run_dir)
    pairs = assigned.select("experiment_arm", "segment").distinct().toPandas()
    for arm in sorted(set(pairs["experiment_arm"]) - {HOLDOUT_ARM}):
        if arm not in request.arm_tones:
            raise ValueError(f"arm '{arm}' has no tone; arms known: {sorted(request.arm_tones)}")
    recipients = assigned.filter(F.col("experiment_arm") != HOLDOUT_ARM)
    joined = recipients.join(customers, "customer_id", "left")
    schema = _simulated_schema()
    simulated = joined.mapInPandas(_simulation_mapper(request, population), schema).cache()
    try:
        sums = _simulated_sums(simulated)
        missing = int(sums.pop("__missing").sum())
        if missing:
            raise ValueError(
                f"{missing} recipient(s) have no customer record with historical rates"
            )
        ordered = simulated.orderBy(FILE, INDEX).select(*ENGAGEMENT_COLUMNS)
        write_engagement_dataset(request.run_dir, ordered)
    finally:
        simulated.unpersist()
    return _simulation_result(request, sums, pairs[["segment"]], population)


def _simulation_mapper(request: EngageRequest, population: tuple[float, float]) -> Any:
    """Per partition: the local probabilities and draws (rows without a customer flagged)."""
    arm_tones, settings, seed = dict(request.arm_tones), request.simulation, request.seed

    def mapper(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for part in parts:
            part = part.reset_index(drop=True)
            missing = part[SIMULATION_COLUMNS[0]].isna().to_numpy()
            found = part.loc[~missing].reset_index(drop=True)
            history = found[["customer_id", *SIMULATION_COLUMNS]]
            probs = response_probabilities(history, found, arm_tones, settings, population)
            out = draw_outcomes(probs, seed)
            for column in PROBABILITIES:
                out[column] = probs[column].to_numpy()
            out[FILE], out[INDEX] = found[FILE].to_numpy(), found[INDEX].to_numpy()
            out["__missing"] = False
            rows = pd.concat([out, _absent(part.loc[missing], out.columns)], ignore_index=True)
            yield _plain(rows)

    return mapper


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain Python strings (Arrow-backed chunked text does not go to Spark)."""
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) and frame[column].dtype != bool:
            frame[column] = frame[column].to_numpy(dtype=object)
    return frame


def _absent(rows: pd.DataFrame, columns: pd.Index) -> pd.DataFrame:
    """Recipients without a customer record, flagged (the stage then stops with the local error)."""
    absent = rows[["customer_id", "experiment_arm", "segment", FILE, INDEX]].reset_index(drop=True)
    for column in FLAG_COLUMNS:
        absent[column] = pd.Series(0, index=absent.index, dtype="int8")
    absent["engagement_source"] = ""
    for column in PROBABILITIES:
        absent[column] = float("nan")
    absent["__missing"] = True
    return absent[list(columns)]


def _simulated_schema() -> str:
    """Spark schema of the simulated rows (engagement.csv's columns, probabilities, place)."""
    flags = ", ".join(f"{c} tinyint" for c in FLAG_COLUMNS)
    probabilities = ", ".join(f"{c} double" for c in PROBABILITIES)
    return (
        f"customer_id string, experiment_arm string, segment string, {flags}, "
        f"engagement_source string, {probabilities}, {FILE} string, {INDEX} long, "
        "__missing boolean"
    )


def _simulated_sums(simulated: Any) -> pd.DataFrame:
    """Per arm: recipients, outcome counts, true probabilities summed, rows without a customer."""
    from pyspark.sql import functions as F

    found = ~F.col("__missing")
    grouped = simulated.groupBy("experiment_arm").agg(
        F.sum(found.cast("long")).alias("n"),
        F.sum(F.col("__missing").cast("long")).alias("__missing"),
        *(F.sum(c).alias(c) for c in (*FLAG_COLUMNS, *PROBABILITIES)),
    )
    return grouped.toPandas().fillna(0)


def _simulation_result(
    request: EngageRequest,
    sums: pd.DataFrame,
    segments: pd.DataFrame,
    population: tuple[float, float],
) -> Engaged:
    """engagement_report.json of the simulation, from the sums per arm (as the local report)."""
    sums = sums.sort_values("experiment_arm", kind="stable").reset_index(drop=True)
    counts = {c: sums[c].astype("int64") for c in FLAG_COLUMNS}
    by_arm = {
        str(arm): {c: int(counts[c].iloc[i]) for c in FLAG_COLUMNS}
        for i, arm in enumerate(sums["experiment_arm"])
    }
    recipients = int(sums["n"].sum())
    arm_tones = dict(request.arm_tones)
    model = model_description(
        pd.DataFrame(), request.simulation, arm_tones, request.seed, population
    )
    model["true_effects"] = effects_of_rates(rates_from_sums(sums, ["experiment_arm"]))
    report = {
        "engagement_source": SOURCE_SIMULATED,
        "layout": "simulated",
        "counts": {"recipients": recipients},
        "by_arm": by_arm,
        "warnings": simulation_warnings(segments, arm_tones, request.simulation),
        "model": model,
    }
    totals = {c: int(counts[c].sum()) for c in FLAG_COLUMNS}
    return Engaged(report=report, totals=totals, recipients=recipients)


# --------------------------------------------------------------------------
# Import of a per-recipient file
# --------------------------------------------------------------------------


def engagement_layout(engine: Any, location: str) -> str:
    """The layout of the engagement file (:func:`cpo.experiment.engagement.detect_layout`).

    Raises:
        DataValidationError: the file is missing, empty, of another type, has
            no rows, or lacks a column its layout needs (the local messages).
    """
    frame = _read_file(engine.session, location)
    if frame.limit(1).count() == 0:
        raise DataValidationError(f"{location}: the engagement file has a header but no rows")
    return local_import.detect_layout(Path(location), list(frame.columns))


def import_recipients(engine: Any, request: EngageRequest) -> Engaged:
    """Import a per-recipient file on Spark; Spark writes the engagement dataset.

    Raises:
        DataValidationError: a blank id or a flag that is not 0/1/true/false
            (the local message), or no row matches a recipient.
    """
    from pyspark.sql import functions as F

    location = str(request.engagement)
    parsed = _parsed(_read_file(engine.session, location))
    _check(location, parsed)
    per_id = parsed.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("rows"), *(F.sum(c).alias(c) for c in FLAG_COLUMNS)
    )
    assigned = read_assignments_frame(engine.session, request.run_dir)
    joined = per_id.join(assigned, "customer_id", "full_outer").cache()
    try:
        counts, by_arm, totals = _import_counts(joined)
        if counts["recipients"] == 0:
            raise DataValidationError(
                f"{location}: no row matches a recipient of this experiment "
                f"({counts['unknown_customers']} unknown customer(s))",
                hint="is this the engagement export of this campaign's send?",
            )
        write_engagement_dataset(request.run_dir, _imported_rows(joined))
    finally:
        joined.unpersist()
    warnings = [
        *local_import.exclusion_warnings(counts),
        *local_import.duplicate_warnings(counts),
        *local_import.consistency_warnings(counts),
        *local_import.missing_warnings(counts, by_arm),
    ]
    report = {
        "engagement_source": SOURCE_IMPORTED,
        "layout": local_import.LAYOUT_RECIPIENTS,
        "counts": counts,
        "warnings": warnings,
    }
    return Engaged(report=report, totals=totals, recipients=counts["recipients"])


def _read_file(session: Any, location: str) -> Any:
    """The engagement file as Spark reads it, column names stripped and lower-cased.

    Raises:
        DataValidationError: the local reader's messages (missing, empty, type),
            or Spark cannot read it.
    """
    from cpo.compute.spark.customers import is_uri

    suffix = Path(location.rstrip("/")).suffix.lower()
    if not is_uri(location):
        path = Path(location)
        if not path.exists():
            raise DataValidationError(f"{path}: engagement file not found")
        if path.is_file() and path.stat().st_size == 0:
            raise DataValidationError(f"{path}: the engagement file is empty")
    if suffix not in (".parquet", ".csv", ".txt"):
        raise DataValidationError(
            f"{location}: unsupported engagement file type '{suffix}'",
            hint="use a .csv or .parquet file",
        )
    try:
        if suffix == ".parquet":
            frame = session.read.parquet(location)
        else:
            options = {"header": True, "inferSchema": False, "ignoreLeadingWhiteSpace": True}
            frame = session.read.options(**options).csv(location)
    except Exception as exc:  # Spark's AnalysisException: not found, unreadable
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataValidationError(
            f"{location}: Spark cannot read the engagement file: {first}",
            hint="check the path or URI given to --engagement",
        ) from None
    return frame.toDF(*[str(c).strip().lower() for c in frame.columns])


def _stripped(column: Any) -> Any:
    """A column as text without surrounding whitespace (Python's ``str.strip``)."""
    from pyspark.sql import functions as F

    return F.regexp_replace(column.cast("string"), r"^\s+|\s+$", "")


def _parsed(frame: Any) -> Any:
    """customer_id stripped, each flag as 1/0 (null: not 0/1/true/false), the raw cells kept."""
    from pyspark.sql import functions as F

    kinds = dict(frame.dtypes)
    flags = []
    for column in FLAG_COLUMNS:
        cell = F.col(column)
        if kinds[column] == "string":
            text = F.lower(_stripped(cell))
            value = F.when(text.isin(*_TRUE), 1).when(text.isin(*_FALSE), 0)
        else:  # Parquet numbers and booleans, as the local import reads them
            number = cell.cast("double")
            value = F.when(number == 1.0, 1).when(number == 0.0, 0)
        flags.append(value.cast("tinyint").alias(column))
    raw = [F.col(c).cast("string").alias(f"__raw_{c}") for c in FLAG_COLUMNS]
    return frame.select(_stripped(F.col("customer_id")).alias("customer_id"), *flags, *raw)


def _check(location: str, parsed: Any) -> None:
    """Raise the local import's error for blank ids or malformed flags (one Spark pass)."""
    from pyspark.sql import functions as F

    blank = F.col("customer_id").isNull() | (F.col("customer_id") == "")
    sums = [F.sum(blank.cast("long")).alias("customer_id")]
    sums += [F.sum(F.col(c).isNull().cast("long")).alias(c) for c in FLAG_COLUMNS]
    found = parsed.agg(*sums).first().asDict()
    if not any(found.values()):
        return
    from cpo.compute.spark.customers import is_uri

    if not is_uri(location):  # the local checks name the lines
        raw, first, unit = local_import.read_table(Path(location))
        local_import.detect_layout(Path(location), list(raw.columns))
        local_import._check_ids(Path(location), raw, first, unit)
        for column in FLAG_COLUMNS:
            local_import.parse_flags(Path(location), raw, column, first, unit)
    raise _spark_error(location, parsed, found)


def _spark_error(location: str, parsed: Any, found: dict[str, Any]) -> DataValidationError:
    """The local message with rows named by customer id (a file Spark alone reads)."""
    from pyspark.sql import functions as F

    if found["customer_id"]:
        return DataValidationError(
            f"{location}: column 'customer_id': missing value in {found['customer_id']} row(s)"
        )
    column = next(c for c in FLAG_COLUMNS if found[c])
    rows = parsed.filter(F.col(column).isNull()).limit(local_import.MAX_EXAMPLES).collect()
    shown = "; ".join(
        f"row (customer_id={r['customer_id']}) value {r[f'__raw_{column}']!r}" for r in rows
    )
    extra = found[column] - len(rows)
    more = f" (+{extra} more)" if extra > 0 else ""
    return DataValidationError(
        f"{location}: column '{column}': not 0/1/true/false in {found[column]} row(s): "
        f"{shown}{more}",
        sensitive=[str(r["customer_id"]) for r in rows],
    )


def _import_counts(joined: Any) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """The local import's counts, the missing recipients per arm, and the outcome totals."""
    from pyspark.sql import functions as F

    arm, rows = F.col("experiment_arm"), F.col("rows")
    unknown = arm.isNull()
    holdout = (arm == HOLDOUT_ARM) & rows.isNotNull()
    kept = arm.isNotNull() & (arm != HOLDOUT_ARM) & rows.isNotNull()
    missing = arm.isNotNull() & (arm != HOLDOUT_ARM) & rows.isNull()
    opened, clicked, converted = (F.col(c) > 0 for c in FLAG_COLUMNS)
    disagree = F.lit(False)
    for column in FLAG_COLUMNS:
        disagree = disagree | ((F.col(column) > 0) & (F.col(column) < rows))

    def count(condition: Any) -> Any:
        return F.sum(F.when(condition, 1).otherwise(0))

    def total(condition: Any) -> Any:
        return F.sum(F.when(condition, rows).otherwise(0))

    sums = {
        "unknown_customers": count(unknown),
        "unknown_customer_rows": total(unknown),
        "holdout_customers": count(holdout),
        "holdout_rows": total(holdout),
        "rows": F.sum(F.coalesce(rows, F.lit(0))),
        "kept_rows": total(kept),
        "present": count(kept),
        "duplicate_conflicts": count(kept & disagree),
        "click_without_open": count(kept & clicked & ~opened),
        "conversion_without_click": count(kept & converted & ~clicked),
        "missing_recipients": count(missing),
        "opened": count(kept & (opened | clicked)),
        "clicked": count(kept & clicked),
        "converted": count(kept & converted),
    }
    found = {
        k: int(v or 0)
        for k, v in joined.agg(*(v.alias(k) for k, v in sums.items())).first().asDict().items()
    }
    by_arm = {}
    if found["missing_recipients"]:
        grouped = joined.filter(missing).groupBy("experiment_arm").count().collect()
        by_arm = {str(r["experiment_arm"]): int(r["count"]) for r in grouped}
    counts = {k: found[k] for k in ("unknown_customers", "unknown_customer_rows")}
    counts.update({k: found[k] for k in ("holdout_customers", "holdout_rows", "rows")})
    counts["duplicate_rows"] = found["kept_rows"] - found["present"]
    counts["duplicate_conflicts"] = found["duplicate_conflicts"]
    counts["click_without_open"] = found["click_without_open"]
    counts["conversion_without_click"] = found["conversion_without_click"]
    counts["missing_recipients"] = found["missing_recipients"]
    counts["recipients"] = found["present"]
    return counts, by_arm, {c: found[c] for c in FLAG_COLUMNS}


def _imported_rows(joined: Any) -> Any:
    """engagement.csv's rows of the recipients found, in the assignments' order."""
    from pyspark.sql import functions as F

    arm, rows = F.col("experiment_arm"), F.col("rows")
    kept = joined.filter(arm.isNotNull() & (arm != HOLDOUT_ARM) & rows.isNotNull())
    opened = (F.col("opened") > 0) | (F.col("clicked") > 0)
    flags = {
        "opened": opened,
        "clicked": F.col("clicked") > 0,
        "converted": F.col("converted") > 0,
    }
    return kept.orderBy(FILE, INDEX).select(
        "customer_id",
        "experiment_arm",
        "segment",
        *(value.cast("tinyint").alias(name) for name, value in flags.items()),
        F.lit(SOURCE_IMPORTED).alias("engagement_source"),
    )
