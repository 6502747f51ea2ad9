"""The ``compute`` section of experiment_config.yaml: which engine runs the per-customer work."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from cpo.settings_base import StrictModel


class SparkSettings(StrictModel):
    """How the Spark engine connects (``compute.spark``).

    Attributes:
        master: The Spark master URL: ``local[2]`` (two threads on this machine),
            ``yarn``, ``spark://host:7077``, ``k8s://...``. Ignored when a session
            already exists (``spark-submit``, a Databricks job): that one is used.
        app_name: The application name shown in the Spark UI.
        conf: Extra Spark settings (``spark.sql.shuffle.partitions``,
            ``spark.executor.memory``, ...), passed to the session builder as given.
    """

    master: str = "local[2]"
    app_name: str = "cpo"
    conf: dict[str, str] = Field(default_factory=dict)


#: Customers above which the local engine writes its per-customer files as Parquet.
DEFAULT_COLUMNAR_ABOVE = 100_000


class ComputeSettings(StrictModel):
    """Which engine segments and assigns customers (``compute``).

    Attributes:
        engine: ``local`` (pandas on this machine) or ``spark`` (Apache Spark).
        columnar_above: With more customers (recipients, for the engagement)
            than this, the local engine writes the segments, the assignments and
            the engagement as Parquet (``segments.parquet/``, ``assignments.parquet/``,
            ``engagement.parquet/``: the form the Spark engine always writes and
            every reader accepts) instead of CSV; adaptive waves keep their CSVs.
            ``0`` = always Parquet; ``None`` = always CSV.
        spark: The Spark session settings (used with ``engine: spark``).
    """

    engine: Literal["local", "spark"] = "local"
    columnar_above: Annotated[int, Field(ge=0)] | None = DEFAULT_COLUMNAR_ABOVE
    spark: SparkSettings = Field(default_factory=SparkSettings)

    def columnar(self, customers: int) -> bool:
        """Whether the local engine writes ``customers`` rows as Parquet rather than CSV."""
        return self.columnar_above is not None and customers > self.columnar_above
