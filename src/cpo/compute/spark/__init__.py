"""The Spark engine (``compute.engine: spark``): PySpark on any Spark cluster or ``local[N]``."""
