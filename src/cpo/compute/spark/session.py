"""The Spark session of the Spark engine, and one clear error when Spark cannot start.

PySpark is an optional dependency (``pip install "cpo[spark]"``) and Spark runs
on a Java virtual machine (Java 17 or newer). A missing PySpark, a missing
``java`` or a JVM that does not start is one
:class:`~cpo.errors.BackendUnavailable` naming both install commands.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cpo.compute.settings import SparkSettings
from cpo.errors import BackendUnavailable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

INSTALL_PYSPARK = 'pip install "cpo[spark]"'
INSTALL_JAVA = "apt-get install openjdk-17-jre-headless (or any Java 17+; set JAVA_HOME)"
HINT = f"install PySpark with `{INSTALL_PYSPARK}` and Java with `{INSTALL_JAVA}`"

#: Settings for a ``local[...]`` master unless the config sets them: the driver
#: listens on the loopback interface only.
LOCAL_DEFAULTS = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
#: Settings every session gets unless the config sets them: pandas <-> Spark through Arrow;
#: no cap on results collected to the driver (the segments and assignments come back to it:
#: Spark's default 1 GiB cap stopped a 10M-customer segment stage).
DEFAULTS = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.maxResultSize": "0",
    "spark.ui.showConsoleProgress": "false",  # progress bars would garble cpo's terminal output
}


def java_executable() -> str | None:
    """The ``java`` Spark will launch: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.is_file() else None
    return shutil.which("java")


def _import_pyspark() -> Any:
    """The ``pyspark.sql`` module, or one error with the install command."""
    try:
        import pyspark.sql
    except ImportError as exc:
        raise BackendUnavailable(
            f"compute.engine is 'spark' but PySpark is not installed ({exc})", hint=HINT
        ) from None
    return pyspark.sql


def spark_session(settings: SparkSettings) -> SparkSession:
    """The active Spark session (``spark-submit``, Databricks) or a new one from ``settings``.

    Raises:
        BackendUnavailable: PySpark is missing, Java is missing, or the JVM failed to start.
    """
    sql = _import_pyspark()
    active = sql.SparkSession.getActiveSession()
    if active is not None:
        return active
    java = java_executable()
    if java is None:
        where = "JAVA_HOME/bin/java" if os.environ.get("JAVA_HOME") else "java on PATH"
        raise BackendUnavailable(
            f"compute.engine is 'spark' but Java was not found ({where}); Spark needs Java 17+",
            hint=HINT,
        )
    # Spark's Python workers must run this interpreter (with cpo and pandas installed).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = sql.SparkSession.builder.master(settings.master).appName(settings.app_name)
    conf = dict(DEFAULTS)
    if settings.master.startswith("local"):
        conf.update(LOCAL_DEFAULTS)
    conf.update(settings.conf)
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: wrong Java version, bad master, ...
        raise BackendUnavailable(
            f"Spark could not start with master '{settings.master}' and {java}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            hint=HINT + "; check compute.spark.master and compute.spark.conf",
        ) from None
