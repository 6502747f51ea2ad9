"""Render ``report.html``: one self-contained file (inline CSS and SVG, no network).

The content of each section comes from its module in :mod:`cpo.reporting.sections`;
this module assembles them with the charts and renders the template. The Jinja2
environment escapes everything by default; only the SVG charts
(:mod:`cpo.reporting.charts`, which escapes its own text) and the variant bodies
(escaped by :mod:`cpo.reporting.sections.variants`) are marked safe.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from cpo import __version__, run_folder
from cpo.logs import utc_now
from cpo.reporting import charts, sections
from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.sections import common
from cpo.settings_base import EXPERIMENT_CONFIG_FILE

#: Section ids in order (stable anchors; the tests and the PDF rely on them).
SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Executive summary"),
    ("design", "Experiment design"),
    ("results", "Results by arm"),
    ("segments", "Segment breakdown (exploratory)"),
    ("quality", "Data quality"),
    ("safety", "Safety audit summary"),
    ("citations", "Citation analysis"),
    ("explainability", "Explainability: who responds differently (exploratory)"),
    ("variants", "The variants"),
    ("operations", "Operationalization"),
    ("appendix", "Appendix: methods, configuration, manifest"),
)
#: Section ids and titles of report.pdf, the printable report for sign-off: the
#: decision, the results, the design checks, the safety audit and provenance (the
#: full detail stays in report.html; docs/report.md says what is where and why).
PRINT_SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Executive summary"),
    ("results", "Results by arm"),
    ("design", "Design and data quality"),
    ("segments", "Segments and moderators (exploratory)"),
    ("safety", "Safety audit and compliance"),
    ("appendix", "Provenance and methods"),
)
MAX_LOG_WARNINGS = 50


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja2 environment of the report templates (autoescape on).

    One per process: it keeps the compiled templates (compiling both takes
    longer than rendering them) and recompiles a template whose file changed.
    """
    env = Environment(
        loader=PackageLoader("cpo.reporting", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt.FILTERS)
    return env


def build_context(art: RunArtifacts, *, generated_at: str | None = None) -> dict[str, Any]:
    """Everything the template shows, charts included (one module per section)."""
    citations = sections.citations.citations_section(art)
    return {
        "sections": SECTIONS,
        "print_sections": PRINT_SECTIONS,
        "meta": _meta(art, generated_at),
        "summary": sections.summary.executive_summary(art),
        "design": sections.design.design_section(art),
        "results": sections.results.results_section(art),
        "cuped": sections.cuped.cuped_section(art),
        "waves": sections.waves.waves_section(art),
        "monitoring": sections.monitoring.monitoring_section(art),
        "segments": sections.segments.segments_section(art),
        "quality": sections.quality.quality_section(art, read_log_warnings(art.run_dir)),
        "safety": sections.safety.safety_section(art),
        "citations": citations,
        "explain": sections.explain.explain_section(art.moderators),
        "variants": sections.variants.variants_section(art),
        "operations": sections.operations.operations_section(
            art, run_folder.find_send_list(art.run_dir)
        ),
        "appendix": sections.appendix.appendix_section(art),
        "charts": {
            "lifts": Markup(_lift_chart(art)),
            "rates": Markup(_rate_chart(art)),
            "segments": Markup(_segment_chart(art)),
            "citations": Markup(_citation_chart(citations)),
            "bins": Markup(sections.explain.bins_chart(art.moderators)),
            "terms": Markup(sections.explain.terms_chart(art.moderators)),
            "waves": Markup(sections.waves.allocation_chart(art)),
            "monitoring": Markup(sections.monitoring.sequence_chart(art)),
        },
    }


def render_html(art: RunArtifacts, *, generated_at: str | None = None) -> str:
    """The report as one HTML string."""
    return render_documents(art, generated_at=generated_at, printable=False)[0]


def render_documents(
    art: RunArtifacts, *, generated_at: str | None = None, printable: bool = True
) -> tuple[str, str | None]:
    """report.html and (when ``printable``) the HTML report.pdf is laid out from.

    Both come from one context, so they show the same numbers; the printable one
    is the concise document of :data:`PRINT_SECTIONS` with its own print stylesheet.
    """
    data = build_context(art, generated_at=generated_at)
    env = environment()
    html = env.get_template("report.html.j2").render(**data)
    printed = env.get_template("report_print.html.j2").render(**data) if printable else None
    return html, printed


def _meta(art: RunArtifacts, generated_at: str | None) -> dict[str, Any]:
    manifest = art.manifest
    campaign = (manifest.get("config") or {}).get(EXPERIMENT_CONFIG_FILE, {}).get("campaign", {})
    return {
        "title": "Campaign report: "
        + str(campaign.get("name") or art.metrics.get("experiment_name") or "cpo run"),
        "run_id": manifest.get("run_id", ""),
        "created_at": manifest.get("created_at", ""),
        "generated_at": generated_at or utc_now(),
        "cpo_version": __version__,
        "simulated": common.is_simulated(art),
        "source": common.engagement_source(art),
        "primary_metric": common.primary_metric(art),
        "alpha_text": common.alpha_text(art),
        "confidence": common.confidence(art),
        "ci": common.level_text(common.confidence(art)),
    }


# --------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------


def _lift_chart(art: RunArtifacts) -> str:
    """Lift with its Newcombe interval per arm, one panel per metric."""
    primary = common.primary_metric(art)
    panels = []
    for metric in common.metric_names(art):
        records = common.lift_records(art.metrics, metric)
        rows = _forest_rows(art, records, _always(metric == primary))
        title = fmt.metric_label(metric) + (" (primary)" if metric == primary else "")
        panels.append(charts.ForestPanel(title, tuple(rows)))
    return charts.forest_chart(
        panels,
        xlabel="lift vs control (percentage points)",
        description="Lift of each treatment arm over control per metric, with Newcombe intervals",
    )


def _forest_rows(
    art: RunArtifacts, records: list[dict[str, Any]], emphasize: Callable[[str], bool]
) -> tuple[charts.ForestRow, ...]:
    """One forest-plot row per lift record (sorted by arm): lift and its interval."""
    rows = []
    for record in sorted(records, key=lambda r: r.get("treatment_arm", "")):
        lower, upper = common.interval_of(common.significance(record).get("confidence_interval"))
        arm = record.get("treatment_arm", "")
        label = f"{arm} ({common.arm_tone(art, arm)})"
        rows.append(
            charts.ForestRow(label, record.get("lift_absolute"), lower, upper, emphasize(arm))
        )
    return tuple(rows)


def _always(value: bool) -> Callable[[str], bool]:
    """Emphasize every row of a panel (or none)."""
    return lambda _arm: value


def _is_arm(best: str | None) -> Callable[[str], bool]:
    """Emphasize the row of one arm (a segment's best)."""
    return lambda arm: arm == best


def _rate_chart(art: RunArtifacts) -> str:
    """The primary metric per arm with Wilson intervals."""
    metric = common.primary_metric(art)
    arms = art.metrics.get("arms") or {}
    names = sorted(arms, key=lambda a: (a != common.CONTROL_ARM, a))
    values = [(arms[a].get("metrics") or {}).get(metric) for a in names]
    intervals = [common.interval_of((arms[a].get("intervals") or {}).get(metric)) for a in names]
    return charts.rate_chart(
        [f"{a} ({common.arm_tone(art, a)})" for a in names],
        values,
        [i[0] for i in intervals],
        [i[1] for i in intervals],
        title=f"{fmt.metric_label(metric)} by arm "
        f"({common.level_text(common.confidence(art))} Wilson intervals)",
        emphasis=[a != common.CONTROL_ARM for a in names],
    )


def _segment_chart(art: RunArtifacts) -> str:
    """Primary-metric lift per arm within each segment."""
    metric = common.primary_metric(art)
    panels = []
    for entry in art.metrics.get("segment_breakdown") or []:
        best = entry.get("best_performing_arm")
        rows = _forest_rows(art, common.lift_records(entry, metric), _is_arm(best))
        panels.append(
            charts.ForestPanel(
                f"{entry.get('segment')} (n = {entry.get('sample_size')})", tuple(rows)
            )
        )
    return charts.forest_chart(
        panels,
        xlabel=f"{fmt.metric_label(metric).lower()} lift (pp)",
        description="Primary-metric lift per arm within each segment, with Newcombe intervals",
    )


def _citation_chart(citations: dict[str, Any]) -> str:
    documents = citations["documents"][:15]
    return charts.bar_chart(
        [f"{d['document_id']}: {d['title']}" for d in documents],
        [d["citations"] for d in documents],
        xlabel="citations across all variants (blue: cited by a segment's best variant)",
        highlight=[d["in_best"] > 0 for d in documents],
        description="Citations per approved document",
    )


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def read_log_warnings(run_dir: Path) -> list[dict[str, Any]]:
    """Warnings from logs/system.log and logs/experiment.log (PII-free by design)."""
    found = []
    for name in ("system.log", "experiment.log"):
        path = run_folder.LOGS.path(run_dir) / name
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("level") == "warning":
                message = record.get("message") or record.get("event", "")
                found.append(
                    {
                        "code": f"{record.get('stage', '')}:{record.get('event', '')}",
                        "message": message,
                    }
                )
    return found[:MAX_LOG_WARNINGS]
