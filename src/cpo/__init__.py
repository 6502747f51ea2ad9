"""cpo: the Customer Personalization Orchestrator.

Segments customers, retrieves approved brand content, generates cited message
variants, screens them for safety with a tamper-evident audit log, runs an A/B/n
experiment and writes a report. See ``cpo.pipeline.run_pipeline`` for the library
entry point and ``cpo --help`` for the command line.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cpo")
except PackageNotFoundError:  # pragma: no cover - only when run from a raw checkout
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
