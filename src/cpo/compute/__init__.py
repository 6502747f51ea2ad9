"""Compute engines for the per-customer work of ``cpo run``.

The ``compute`` section of experiment_config.yaml picks the engine that
segments customers by rules and assigns them to arms: ``local`` (pandas on
this machine, the default) or ``spark`` (Apache Spark,
:mod:`cpo.compute.spark`; ``pip install "cpo[spark]"`` and Java 17). Both
give the same results on the same data (docs/spark.md).
Stages ask :func:`engine_for` instead of calling the pandas code directly.
"""

from __future__ import annotations

from cpo.compute.engine import Engine, engine_for
from cpo.compute.settings import ComputeSettings, SparkSettings

__all__ = ["ComputeSettings", "Engine", "SparkSettings", "engine_for"]
