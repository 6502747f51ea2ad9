"""The send list on Spark: the assignments dataset and the customer copy in, a dataset out.

Spark joins the recipients (every assignment outside the holdout) to their
email and first name in the customer copy, and writes the send list as a
Parquet dataset (``sends.parquet/``) in the assignments' order. The per-row
work is the local engine's own code (:mod:`cpo.experiment.sends`):

* **first names** are screened once each on the driver: Spark counts the
  recipients of every distinct first name and finds its first recipient, the
  driver runs :func:`~cpo.experiment.sends.screen_distinct_names` on them in
  that order (so the merge-screening audit entries are the local engine's)
  and records the screening before anything is written;
* **withheld recipients** (a name that failed) are found by a join with the
  few failing names and collected (``withheld.csv`` is written by the stage);
* **messages** are rendered per partition (``mapInPandas``) by
  :func:`~cpo.experiment.sends.render_rows` from the driver's customer copies
  (:func:`~cpo.experiment.sends.customer_messages`, built once) and the
  screened names, shipped to the executors as a broadcast.

Only the distinct first names, counts per variant and the withheld rows reach
the driver; the rendered rows never do.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cpo.compute.spark.assign_stage import FILE, INDEX, ORDER
from cpo.compute.work import SendListRequest, SendListSummary
from cpo.customer_text import CustomerMessage
from cpo.errors import DataValidationError
from cpo.experiment.send_stage import dataset_form
from cpo.experiment.sends import (
    CONTACT_COLUMNS,
    MERGE_FIELD,
    SEND_COLUMNS,
    WITHHELD_COLUMNS,
    MergeNames,
    ScreenedNames,
    customer_messages,
    merge_names,
    render_rows,
    screen_distinct_names,
    sendable_messages,
    unknown_fields_of,
)
from cpo.experiment.settings import HOLDOUT_ARM
from cpo.run_folder import (
    ASSIGNMENTS_DATASET,
    CUSTOMERS_COPY,
    write_send_list_dataset,
)

FOUND = "__found"  # set on a recipient with a customer record
RECIPIENT_COLUMNS = ("customer_id", "experiment_arm", "variant_id", *CONTACT_COLUMNS)


@dataclass(frozen=True)
class RenderInputs:
    """What every partition needs to render its rows (broadcast once).

    Attributes:
        raw_names: The distinct first names as the customers hold them.
        codes: Per raw name, its index in ``names``.
        reasons: Per screened name, its reason codes ("" = passed).
        names: The screened names as inserted.
        messages: Customer copy and HTML template of every variant sent.
    """

    raw_names: pd.Index
    codes: np.ndarray
    reasons: np.ndarray
    names: MergeNames
    messages: Mapping[str, tuple[CustomerMessage, str]]


def write_send_list(engine: Any, request: SendListRequest) -> SendListSummary:
    """Build the send list on Spark, audit the first names, write ``sends.parquet/``.

    Raises:
        ValueError: a recipient has no customer record, or an assigned variant
            is not sendable (as the local engine).
        DataValidationError: the run has no assignments dataset or customer copy.
        StageError: a customer copy still holds a citation marker.
    """
    if request.assignments is not None:
        raise ValueError(
            "the Spark engine builds the send list from the run's assignments dataset, "
            "not from rows held by the driver"
        )
    recipients = _recipients(engine, request).cache()  # read by every pass below
    try:
        names = _distinct_names(recipients)
        screened = screen_distinct_names(
            names[MERGE_FIELD], names["holders"].to_numpy(), request.screening
        )
        withheld = _withheld(engine, recipients, names, screened)
        sent = _sent_per_variant(recipients, withheld)
        sendable = sendable_messages(sent, request.variants)
        inputs = RenderInputs(
            raw_names=pd.Index(names[MERGE_FIELD], dtype=object),
            codes=screened.codes,
            reasons=screened.reasons,
            names=merge_names(screened.values, request.options.greeting_fallback),
            messages=customer_messages(sendable, request.options),
        )
        records = request.screening.record(screened.results)
        _write_rendered(engine, recipients, inputs, request)
    finally:
        recipients.unpersist()
    blank = inputs.names.blank[screened.codes]
    total = int(names["holders"].sum())
    return SendListSummary(
        recipients=total - len(withheld),
        form=dataset_form(request.settings, total - len(withheld)),
        records=records,
        withheld=withheld[list(WITHHELD_COLUMNS)],
        merge_results=screened.results,
        missing_names=int(names["holders"].to_numpy()[blank].sum()),
        unknown_fields=unknown_fields_of(sendable),
    )


def _recipients(engine: Any, request: SendListRequest) -> Any:
    """Recipients with their place in the assignments, email and first name ("" if absent).

    Raises:
        DataValidationError: no assignments dataset or no customer copy.
        ValueError: a recipient has no customer record.
    """
    from pyspark.sql import functions as F

    assignments_path = ASSIGNMENTS_DATASET.path(request.run_dir)
    copy_path = CUSTOMERS_COPY.path(request.run_dir)
    for path, what in ((assignments_path, ASSIGNMENTS_DATASET), (copy_path, CUSTOMERS_COPY)):
        if not path.exists():
            raise DataValidationError(f"{path}: not found", hint=what.rewrite_hint)
    assigned = engine.session.read.parquet(str(assignments_path.resolve())).select(
        F.col("customer_id").cast("string").alias("customer_id"),
        F.col("experiment_arm").cast("string").alias("experiment_arm"),
        F.col("variant_id").cast("string").alias("variant_id"),
        F.col("_metadata.file_name").alias(FILE),
        F.col("_metadata.row_index").alias(INDEX),
    )
    assigned = assigned.where(F.col("experiment_arm") != HOLDOUT_ARM)
    copy = engine.session.read.parquet(str(copy_path.resolve()))
    contacts = copy.select(
        F.col("customer_id").cast("string").alias("customer_id"),
        *(
            F.col(column).cast("string").alias(column)
            for column in CONTACT_COLUMNS
            if column in copy.columns
        ),
        F.lit(True).alias(FOUND),
    )
    joined = assigned.join(contacts, on="customer_id", how="left")
    return joined.select(
        "customer_id",
        "experiment_arm",
        "variant_id",
        *(
            F.coalesce(F.col(column), F.lit("")).alias(column)
            if column in copy.columns
            else F.lit("").alias(column)
            for column in CONTACT_COLUMNS
        ),
        FOUND,
        *ORDER,
    )


def _distinct_names(recipients: Any) -> pd.DataFrame:
    """Each distinct first name, its recipients, in the order of its first recipient.

    Raises:
        ValueError: a recipient has no customer record (as the local engine).
    """
    from pyspark.sql import functions as F

    rows = recipients.groupBy(MERGE_FIELD).agg(
        F.count(F.lit(1)).alias("holders"),
        F.sum(F.when(F.col(FOUND).isNull(), 1).otherwise(0)).alias("orphans"),
        F.min(F.struct(*ORDER)).alias("first"),
    )
    rows = rows.select(
        MERGE_FIELD, "holders", "orphans", F.col(f"first.{FILE}"), F.col(f"first.{INDEX}")
    )
    names = rows.toPandas()
    orphans = int(names["orphans"].sum())
    if orphans:
        raise ValueError(f"{orphans} recipients have no customer record")
    names = names.sort_values(list(ORDER), kind="stable").reset_index(drop=True)
    names[MERGE_FIELD] = names[MERGE_FIELD].astype(object)
    names["holders"] = names["holders"].astype(np.int64)
    return names[[MERGE_FIELD, "holders"]]


def _withheld(
    engine: Any, recipients: Any, names: pd.DataFrame, screened: ScreenedNames
) -> pd.DataFrame:
    """``withheld.csv`` rows (and each one's variant), in assignment order.

    Only recipients whose first name failed screening are collected.
    """
    from pyspark.sql import functions as F

    reasons = screened.reasons[screened.codes]
    failed = pd.DataFrame(
        {
            MERGE_FIELD: names[MERGE_FIELD].to_numpy()[reasons != ""],
            "reason": reasons[reasons != ""],
        }
    )
    columns = ["customer_id", "field", "reason", "variant_id"]
    if failed.empty:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    table = engine.session.createDataFrame(failed.astype(str))
    rows = recipients.join(F.broadcast(table), on=MERGE_FIELD, how="inner")
    local = rows.select("customer_id", "variant_id", "reason", *ORDER).toPandas()
    local = local.sort_values(list(ORDER), kind="stable").reset_index(drop=True)
    local["field"] = MERGE_FIELD
    return local[columns].astype(object)


def _sent_per_variant(recipients: Any, withheld: pd.DataFrame) -> list[str]:
    """The variants with at least one recipient who is not withheld."""
    counts = {
        str(row["variant_id"]): int(row["count"])
        for row in recipients.groupBy("variant_id").count().collect()
    }
    for variant_id, held in withheld["variant_id"].value_counts().items():
        counts[str(variant_id)] -= int(held)
    return [variant_id for variant_id, count in counts.items() if count > 0]


def _write_rendered(
    engine: Any, recipients: Any, inputs: RenderInputs, request: SendListRequest
) -> None:
    """Render every recipient's message per partition; Spark writes them in assignment order."""
    shared = engine.session.sparkContext.broadcast(inputs)
    try:
        ordered = recipients.orderBy(*ORDER).select(*RECIPIENT_COLUMNS)
        schema = ", ".join(f"{column} string" for column in SEND_COLUMNS)
        write_send_list_dataset(request.run_dir, ordered.mapInPandas(render_mapper(shared), schema))
    finally:
        shared.destroy()


def render_mapper(shared: Any) -> Any:
    """Per partition: drop withheld recipients, render the rest with the local code."""

    def render(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        inputs: RenderInputs = shared.value
        for part in parts:
            raw = inputs.raw_names.get_indexer(pd.Index(part[MERGE_FIELD], dtype=object))
            if (raw < 0).any():  # the names were counted from these very rows
                raise RuntimeError("a recipient's first name was not among the screened names")
            codes = inputs.codes[raw]
            keep = inputs.reasons[codes] == ""
            frame = part.loc[keep, list(RECIPIENT_COLUMNS)]
            rows = render_rows(frame, codes[keep], inputs.names, inputs.messages)
            yield pd.DataFrame(
                {column: np.asarray(rows[column], dtype=object) for column in SEND_COLUMNS}
            )

    return render
