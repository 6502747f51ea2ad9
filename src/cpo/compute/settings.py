"""The ``compute`` section of experiment_config.yaml: which engine runs the per-customer work."""

from __future__ import annotations

from typing import Literal

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


class ComputeSettings(StrictModel):
    """Which engine segments and assigns customers (``compute``).

    Attributes:
        engine: ``local`` (pandas on this machine) or ``spark`` (Apache Spark).
        spark: The Spark session settings (used with ``engine: spark``).
    """

    engine: Literal["local", "spark"] = "local"
    spark: SparkSettings = Field(default_factory=SparkSettings)
