"""The assign stage's per-customer work on Spark: segments dataset in, assignments dataset out.

Spark reads the segments the segment stage wrote (a Parquet dataset, or
segments.csv of a run segmented locally), assigns every customer by the
design (:mod:`.assignment`) and writes the assignments as a Parquet dataset in
the segments' order (file, then row within the file: the customers' order).
Only the segment sizes and the customers per arm reach the driver; the send
list is built from the dataset by Spark too (:mod:`.sends`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cpo.compute.spark.assignment import (
    assign_mapper,
    assignment_schema,
    block_ranks,
    check_segments,
)
from cpo.compute.work import AssignedCustomers
from cpo.experiment.assignment import ASSIGNMENT_COLUMNS
from cpo.experiment.design import Design
from cpo.run_folder import (
    ASSIGNMENTS_DATASET,
    SEGMENTS_DATASET,
    read_segments,
    write_assignments_dataset,
)

FILE = "__file"  # the part file a segment row came from (part files are in customer order)
INDEX = "__index"  # the row's index within that file
ORDER = (FILE, INDEX)


def assign_segments(
    engine: Any, run_dir: Path, design: Design, assigned_at: str
) -> AssignedCustomers:
    """Assign on Spark, write the assignments dataset, return the customers per arm.

    Raises:
        ValueError: a segment is not in the design, or (stratified_block) a
            segment's size is not the design's (as the local engine).
    """
    from pyspark.sql import functions as F

    segments = _read_segments(engine, Path(run_dir))
    sizes = {
        str(r["segment"]): int(r["count"]) for r in segments.groupBy("segment").count().collect()
    }
    check_segments(sizes, design)
    if design.method == "stratified_block":
        segments = block_ranks(segments, design.salt, ORDER)
    mapper = assign_mapper(design, assigned_at, ORDER)
    assigned = segments.mapInPandas(mapper, assignment_schema({FILE: "string", INDEX: "long"}))
    ordered = assigned.orderBy(F.col(FILE), F.col(INDEX)).select(*ASSIGNMENT_COLUMNS)
    write_assignments_dataset(run_dir, ordered)
    written = engine.session.read.parquet(str(ASSIGNMENTS_DATASET.path(run_dir).resolve()))
    counts = written.groupBy("experiment_arm").count().collect()
    return AssignedCustomers({str(row["experiment_arm"]): int(row["count"]) for row in counts})


def _read_segments(engine: Any, run_dir: Path) -> Any:
    """``customer_id``, ``segment`` and the row's place (file, index) as a Spark frame."""
    from pyspark.sql import functions as F

    dataset = SEGMENTS_DATASET.path(run_dir)
    if not dataset.is_dir():  # segments.csv of a run segmented by the local engine
        local = read_segments(run_dir)[["customer_id", "segment"]].astype(str)
        local[FILE], local[INDEX] = "", np.arange(len(local), dtype=np.int64)
        return engine.session.createDataFrame(local)
    frame = engine.session.read.parquet(str(dataset.resolve()))
    return frame.select(
        F.col("customer_id").cast("string"),
        F.col("segment").cast("string"),
        F.col("_metadata.file_name").alias(FILE),
        F.col("_metadata.row_index").alias(INDEX),
    )
