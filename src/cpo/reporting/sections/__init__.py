"""The report's content, one module per section: typed artifacts in, the template's data out.

Each module is a few short functions from :class:`cpo.reporting.artifacts.RunArtifacts`
(metrics.json, experiment_design.json, moderators.json, the audit log, ...) to
plain dicts the template lays out. They present what the artifacts recorded:
nothing is re-estimated and no analysis setting is defaulted here (see
:mod:`.common`). Modules, in the report's order: ``summary``, ``design``,
``results``, ``segments``, ``quality``, ``safety``, ``citations``, ``explain``,
``variants``, ``operations``, ``appendix``; ``cuped`` (the regression-adjusted
lifts) and ``waves`` (only for adaptive waves) are blocks of the results
section; ``monitoring`` (only with
``analysis.sequential``) follows them; ``common`` holds what they share.
"""

from cpo.reporting.sections import (
    appendix,
    citations,
    common,
    cuped,
    design,
    explain,
    monitoring,
    operations,
    quality,
    results,
    safety,
    segments,
    summary,
    variants,
    waves,
)

__all__ = [
    "appendix",
    "citations",
    "common",
    "cuped",
    "design",
    "explain",
    "monitoring",
    "operations",
    "quality",
    "results",
    "safety",
    "segments",
    "summary",
    "variants",
    "waves",
]
