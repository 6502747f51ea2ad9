"""What every section reads: the run's analysis settings, accessors and traceable cells.

The analysis settings (primary metric, significance level, interval level,
target power) are read from the artifacts that recorded them, metrics.json and
experiment_design.json, never defaulted here: a value an old run folder lacks is
``None`` and the report says it was not recorded. Cells that show a number from
metrics.json carry its location (``key``) and exact value, so a reader (or a
test) can check the report against the file.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from cpo import run_folder
from cpo.errors import DataValidationError
from cpo.experiment import catalog
from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.simulated import TruthCheck, read_true_effects, true_effect_text, truth_checks
from cpo.settings_base import EXPERIMENT_CONFIG_FILE

CONTROL_ARM = "control"
HOLDOUT_ARM = "holdout"
NOT_RECORDED = "not recorded"
_ANCHOR_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def source_anchor(document_id: str) -> str:
    """The HTML id of a document in the source list."""
    return "src-" + _ANCHOR_UNSAFE.sub("-", document_id)


# --------------------------------------------------------------------------
# The analysis settings, as recorded
# --------------------------------------------------------------------------


def primary_metric(art: RunArtifacts) -> str:
    """The primary metric named in metrics.json.

    Raises:
        DataValidationError: metrics.json names none (it cannot be reported on).
    """
    name = art.metrics.get("primary_metric")
    if not name:
        raise DataValidationError(
            f"{run_folder.METRICS.path(art.run_dir)}: no primary_metric recorded",
            hint="the analysis that wrote it is older than this report; analyse the run again "
            "with `cpo run` (or `cpo analyze`) and this cpo",
        )
    return str(name)


def alpha(art: RunArtifacts) -> float | None:
    """Significance level from metrics.json (top level, else the lift records); None if absent."""
    if art.metrics.get("alpha") is not None:
        return float(art.metrics["alpha"])
    for record in art.metrics.get("lift_analysis") or []:
        value = significance(record).get("alpha")
        if value is not None:
            return float(value)
    return None


def confidence(art: RunArtifacts) -> float | None:
    """Interval level from metrics.json (``confidence_level``); None if absent."""
    value = art.metrics.get("confidence_level")
    return None if value is None else float(value)


def power_level(art: RunArtifacts) -> float | None:
    """Target power from experiment_design.json (else metrics.json ``power``); None if absent."""
    for power in (art.design.get("power"), art.metrics.get("power")):
        value = (power or {}).get("power")
        if value is not None:
            return float(value)
    return None


def alpha_text(art: RunArtifacts) -> str:
    """``α = 0.05``, or says the level was not recorded."""
    value = alpha(art)
    return f"α = {value:g}" if value is not None else "α not recorded in metrics.json"


def level_text(value: float | None) -> str:
    """A level as a whole percentage (``95%``), or ``level not recorded``."""
    return fmt.pct(value, 0) if value is not None else "level not recorded"


def analysis_settings(art: RunArtifacts) -> dict[str, Any]:
    """The analysis section of the run's config snapshot (as recorded in the manifest)."""
    config = art.manifest.get("config") or {}
    return (config.get(EXPERIMENT_CONFIG_FILE) or {}).get("analysis") or {}


def metric_names(art: RunArtifacts) -> list[str]:
    """Metrics in display order: the primary first, then the others analysed.

    The others are those of metrics.json's lift records (else its
    ``secondary_metrics``), in the catalog's order, unregistered names last.
    """
    primary = primary_metric(art)
    seen = [r.get("metric") for r in art.metrics.get("lift_analysis") or []]
    analysed = [m for m in dict.fromkeys(seen) if m] or list(
        art.metrics.get("secondary_metrics") or []
    )
    known = [m for m in catalog.metric_names() if m in analysed]
    others = known + [m for m in analysed if m not in known]
    return [primary, *(m for m in others if m != primary)]


# --------------------------------------------------------------------------
# Accessors
# --------------------------------------------------------------------------


def is_simulated(art: RunArtifacts) -> bool:
    """True when metrics.json or engagement.csv says the engagement was simulated."""
    if str(art.metrics.get("engagement_source", "")).lower() == "simulated":
        return True
    column = art.engagement.get("engagement_source")
    return column is not None and bool(column.astype(str).str.lower().eq("simulated").any())


def engagement_source(art: RunArtifacts) -> str:
    """The engagement source as recorded (metrics.json first)."""
    source = art.metrics.get("engagement_source")
    if source:
        return str(source)
    column = art.engagement.get("engagement_source")
    if column is not None and len(column):
        return ", ".join(sorted(column.astype(str).unique()))
    return "unknown"


def arm_tone(art: RunArtifacts, arm: str) -> str:
    """The tone of an arm (metrics.json, else the design)."""
    record = (art.metrics.get("arms") or {}).get(arm) or {}
    if record.get("tone"):
        return str(record["tone"])
    for entry in art.design.get("arms") or []:
        if entry.get("name") == arm:
            return str(entry.get("tone", ""))
    return "control" if arm == CONTROL_ARM else ""


def lift_records(block: dict[str, Any], metric: str | None = None) -> list[dict[str, Any]]:
    """Lift records of a metrics block (overall or one segment), optionally one metric."""
    records = block.get("lift_analysis") or []
    return [r for r in records if metric is None or r.get("metric") == metric]


def significance(record: dict[str, Any]) -> dict[str, Any]:
    """The statistical_significance block (empty dict when absent)."""
    return record.get("statistical_significance") or {}


def interval_of(block: dict[str, Any] | None) -> tuple[float | None, float | None]:
    """(lower, upper) of an interval record."""
    block = block or {}
    return block.get("lower"), block.get("upper")


def relative_interval(record: dict[str, Any]) -> tuple[float | None, float | None]:
    """Relative-lift interval in percent, whatever unit metrics.json used.

    The record's lift_percent is in percent; an interval given as a fraction
    (``unit: fraction``) is converted.
    """
    lower, upper = interval_of(significance(record).get("relative_confidence_interval"))
    unit = (significance(record).get("relative_confidence_interval") or {}).get("unit")
    if unit == "fraction":
        return _times(lower, 100), _times(upper, 100)
    return lower, upper


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def mde_for(art: RunArtifacts, metric: str, *, planned: bool = False) -> dict[str, Any] | None:
    """The MDE record of a metric.

    By default the analysis's (metrics.json ``power``: observed arm sizes and
    control rate), falling back to the design's; ``planned=True`` reads only
    the design's (experiment_design.json ``power``).
    """
    sources = (
        [art.design.get("power")]
        if planned
        else [art.metrics.get("power"), art.design.get("power")]
    )
    for power in sources:
        record = ((power or {}).get("metrics") or {}).get(metric)
        if isinstance(record, dict) and "mde_absolute" in record:
            return record
    return None


def srm_mismatch(art: RunArtifacts) -> bool:
    """metrics.json flags a sample-ratio mismatch."""
    return bool((art.metrics.get("srm") or {}).get("mismatch"))


def recipients_frame(art: RunArtifacts) -> pd.DataFrame:
    """Engagement rows of recipients (holdout rows, if any, removed)."""
    arms = art.engagement["experiment_arm"].astype(str)
    return art.engagement.loc[arms != HOLDOUT_ARM]


# --------------------------------------------------------------------------
# Cells and their locations in metrics.json
# --------------------------------------------------------------------------


def cell(key: str, value: Any, text: str, note: str = "") -> dict[str, Any]:
    """A table cell that shows ``text`` for ``value`` found at ``key`` in metrics.json."""
    return {"key": key, "value": fmt.raw(value), "text": text, "note": note}


def lift_key(arm: str, metric: str, field: str, segment: str | None = None) -> str:
    """Location of a lift-record field: ``[segment:NAME:]lift:ARM:METRIC:FIELD``."""
    prefix = f"segment:{segment}:" if segment is not None else ""
    return f"{prefix}lift:{arm}:{metric}:{field}"


def arm_key(arm: str, field: str, segment: str | None = None) -> str:
    """Location of an arm field: ``[segment:NAME:]arm:ARM:FIELD``."""
    prefix = f"segment:{segment}:" if segment is not None else ""
    return f"{prefix}arm:{arm}:{field}"


def percent_interval(lower: float | None, upper: float | None) -> str:
    """A relative-lift interval in percent; an open end is shown as infinite."""
    if lower is None and upper is None:
        return fmt.MISSING
    low = fmt.signed_pct(lower) if lower is not None else "−∞"
    high = fmt.signed_pct(upper) if upper is not None else "+∞ (unbounded)"
    return f"{low} to {high}"


def adjustment_name(code: Any) -> str:
    """The display name of a multiplicity adjustment code."""
    names = {
        "holm": "Holm",
        "benjamini-hochberg": "Benjamini–Hochberg",
        "bh": "Benjamini–Hochberg",
        "fdr_bh": "Benjamini–Hochberg",
        "none": "none",
    }
    return names.get(str(code).lower(), str(code)) if code else "none"


def round1(value: Any) -> Any:
    """A float to one decimal (other values unchanged)."""
    return round(value, 1) if isinstance(value, float) else value


# --------------------------------------------------------------------------
# Simulated runs: the simulator's truth beside the estimates
# --------------------------------------------------------------------------


def simulation_truth(art: RunArtifacts, metric: str) -> list[TruthCheck]:
    """Each arm's estimate of ``metric`` beside the simulator's true effect (simulated runs)."""
    if not is_simulated(art):
        return []
    return truth_checks(art.metrics, read_true_effects(art.run_dir), metric)


def truth_cell(check: TruthCheck | None) -> dict[str, Any] | None:
    """The true effect as shown in a table: text, and whether the interval contains it."""
    if check is None or check.true_effect is None:
        return None
    return {"text": true_effect_text(check), "covered": check.covered}
