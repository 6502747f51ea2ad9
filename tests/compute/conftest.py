"""One local Spark session (``local[2]``) shared by every test of tests/compute.

Start-up takes tens of seconds, so the session is created once per test run;
the engine finds it as the active session and uses it (as under spark-submit).
Without Java or PySpark the tests that need the session are skipped, except when
``CI`` is set: there ``.ci/run`` installs both, so their absence is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from cpo.compute.settings import SparkSettings
from cpo.compute.spark.session import spark_session
from cpo.errors import BackendUnavailable

#: Small and quiet for 2 cores: few shuffle partitions, no UI, loopback only.
TEST_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "1g",
}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The shared Spark session."""
    try:
        session = spark_session(
            SparkSettings(master="local[2]", app_name="cpo-tests", conf=TEST_CONF)
        )
    except BackendUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no local Spark (set CI to make this a failure): {exc}")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
