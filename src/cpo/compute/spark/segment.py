"""The segment stage on Spark: customers read, validated, segmented and written by Spark.

The customers are read from their file by Spark (:mod:`.customers`), segmented
by the local rules code on every partition with thresholds and scales computed
in Spark (:mod:`.engine`), and written by Spark as two Parquet datasets in the
run folder: the segments and the validated customers (the copy later stages
read). The driver receives the counts, the thresholds and the per-segment
profile numbers (sizes, means, exact medians) only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cpo.compute.spark import rules as spark_rules
from cpo.compute.spark.customers import POSITION, read_customers, spark_location
from cpo.compute.spark.order_statistics import order_statistics
from cpo.compute.work import SegmentedCustomers, SegmentRequest
from cpo.customers import NUMERIC_RANGES
from cpo.models import SegmentProfile
from cpo.run_folder import write_customer_copy_dataset, write_segments_dataset
from cpo.segmentation import _rule_definitions, _share_warnings, _threshold_records
from cpo.segmentation.advice import SPARSE_SHARE, sparse_segment_warnings
from cpo.segmentation.base import ASSIGNMENT_COLUMNS as SEGMENT_COLUMNS
from cpo.segmentation.profiles import _rounded
from cpo.segmentation.rules import ResolvedRules, assign_by_rules
from cpo.segmentation.settings import SegmentationSettings

#: Rows of the customers taken to the driver to run the local column checks on.
SAMPLE_ROWS = 1000


def segment_customers(engine: Any, request: SegmentRequest) -> SegmentedCustomers:
    """Read, validate, segment and write with Spark (see the module docstring)."""
    settings = request.segmentation
    spark_rules.check_rules(settings)
    loaded = read_customers(
        engine.session, spark_location(request.customers), request.reading, request.on_invalid
    )
    customers = loaded.frame.withColumnRenamed(POSITION, spark_rules.ROW)
    sample = _sample(customers.drop(spark_rules.ROW))
    spark_rules.check_columns(sample, settings)
    numeric = spark_rules.numeric_columns(sample, settings)
    copy = customers.drop(spark_rules.ROW)
    write_customer_copy_dataset(request.run_dir, copy, request.copy_source)
    features = [c for c in NUMERIC_RANGES if c in customers.columns]
    rules = spark_rules.rules_frame(customers, sample, settings, numeric, features).cache()
    try:
        resolved = spark_rules.resolve(rules, sample, loaded.valid_rows, settings, numeric)
        types = {f: kind for f, kind in rules.select(*features).dtypes}
        # The segments with each customer's features: written, then profiled (no join).
        segmented = rules.mapInPandas(
            spark_rules.rules_mapper(settings, resolved, features),
            spark_rules.segment_schema(types),
        ).cache()
        write_segments_dataset(request.run_dir, segmented.select(*SEGMENT_COLUMNS))
        rules.unpersist()
        profiles, warnings = _profiles(segmented, features, settings, resolved, loaded.valid_rows)
        warnings += _sparse_warnings(customers, settings, resolved, profiles, loaded.valid_rows)
        segmented.unpersist()
    finally:
        rules.unpersist()
        loaded.release()
    return SegmentedCustomers(
        profiles=profiles,
        method=settings.method,
        warnings=warnings,
        details=_details(settings, resolved),
        total_rows=loaded.total_rows,
        valid_rows=loaded.valid_rows,
        rejected=loaded.rejected,
        reading=loaded.reading,
        has_email=loaded.has_email,
    )


def _sample(customers: Any) -> pd.DataFrame:
    """The first rows as the local loader types them, for the local column checks."""
    sample = customers.limit(SAMPLE_ROWS).toPandas()
    for column in sample.columns:
        if sample[column].dtype == object:
            sample[column] = sample[column].astype(str)
    return sample


def _details(settings: SegmentationSettings, resolved: ResolvedRules) -> dict[str, object]:
    """segment_profiles.json's method facts (as the local engine records them)."""
    return {
        "rules": len(settings.rules),
        "quantile_method": settings.quantile_method,
        "thresholds": _threshold_records(settings, resolved.thresholds),
    }


def _profiles(
    segmented: Any,
    features: list[str],
    settings: SegmentationSettings,
    resolved: ResolvedRules,
    total: int,
) -> tuple[list[SegmentProfile], list[str]]:
    """Per segment: size, share, means and exact medians of the numeric features.

    ``segmented`` holds each customer's segment beside their features.
    """
    from pyspark.sql import functions as F

    rows = (
        segmented.groupBy("segment_id", "segment")
        .agg(F.count(F.lit(1)).alias("size"), *(F.avg(f).alias(f) for f in features))
        .orderBy("segment_id")
        .collect()
    )
    sizes = {int(r["segment_id"]): int(r["size"]) for r in rows}
    medians = _medians(segmented, features, sizes)
    definitions = _rule_definitions(settings, resolved.thresholds)
    traits = {i: tuple(r.traits) for i, r in enumerate(settings.rules)}
    traits[len(settings.rules)] = tuple(settings.fallback.traits)
    profiles = []
    for row in rows:
        segment_id, size = int(row["segment_id"]), int(row["size"])
        profiles.append(
            SegmentProfile(
                name=str(row["segment"]),
                segment_id=segment_id,
                size=size,
                share=round(size / total, 6),
                definition=definitions.get(segment_id, ""),
                means=_rounded(pd.Series({f: float(row[f]) for f in features})),
                medians=_rounded(pd.Series(medians[segment_id])),
                traits=traits.get(segment_id, ()),
            )
        )
    return profiles, _share_warnings(profiles, settings)


def _medians(
    joined: Any, features: list[str], sizes: dict[int, int]
) -> dict[int, dict[str, float]]:
    """Each segment's median of each feature, from exact order statistics (pandas' median)."""
    from pyspark.sql import functions as F

    columns, wanted, counts = [], {}, {}
    for segment_id, size in sizes.items():
        ranks = (size // 2,) if size % 2 else (size // 2 - 1, size // 2)
        for position, feature in enumerate(features):
            name = f"__m{segment_id}_{position}"
            value = F.col(feature).cast("double")
            columns.append(F.when(F.col("segment_id") == segment_id, value).alias(name))
            wanted[name], counts[name] = ranks, size
    found = order_statistics(joined.select(*columns), wanted, counts) if columns else {}
    medians: dict[int, dict[str, float]] = {}
    for segment_id in sizes:
        medians[segment_id] = {}
        for position, feature in enumerate(features):
            values = found[f"__m{segment_id}_{position}"]
            medians[segment_id][feature] = float(np.mean([values[r] for r in sorted(values)]))
    return medians


def _sparse_warnings(
    customers: Any,
    settings: SegmentationSettings,
    resolved: ResolvedRules,
    profiles: list[SegmentProfile],
    total: int,
) -> list[str]:
    """The local engine's sparse-segment advice, only when a segment is sparse.

    The advice searches looser thresholds over every customer, so in that rare
    case the rule columns come to the driver.
    """
    sizes = {p.segment_id: p.size for p in profiles}
    smallest = min(sizes.get(i, 0) for i in range(len(settings.rules) + 1))
    if total == 0 or smallest >= SPARSE_SHARE * total:
        return []
    used = [c for c in customers.columns if c != spark_rules.ROW]
    local = customers.orderBy(spark_rules.ROW).select(*used).toPandas()
    return sparse_segment_warnings(local, settings, assign_by_rules(local, settings, resolved))
