"""Render ``report.html``: one self-contained file (inline CSS and SVG, no network).

The Jinja2 environment escapes everything by default; only the SVG charts
(made here by matplotlib, which escapes its own text) and the variant bodies
(escaped by :mod:`cpo.reporting.variants_view`) are marked safe.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from cpo import __version__
from cpo.logs import utc_now
from cpo.reporting import charts, context
from cpo.reporting import formatting as fmt
from cpo.reporting.artifacts import RunArtifacts
from cpo.reporting.explain import ExplainResult
from cpo.reporting.guidance import appendix_section, operations_section
from cpo.reporting.variants_view import variants_section

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
MAX_LOG_WARNINGS = 50


def environment() -> Environment:
    """The Jinja2 environment of the report templates (autoescape on)."""
    env = Environment(
        loader=PackageLoader("cpo.reporting", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt.FILTERS)
    return env


def build_context(
    art: RunArtifacts,
    explain: ExplainResult | None,
    *,
    explain_note: str | None = None,
    generated_at: str | None = None,
) -> dict[str, Any]:
    """Everything the template shows, charts included."""
    results = context.results_section(art)
    segments = context.segments_section(art)
    citations = context.citations_section(art)
    explain_view = context.explain_section(art, explain, explain_note)
    return {
        "sections": SECTIONS,
        "meta": _meta(art, generated_at),
        "summary": context.executive_summary(art),
        "design": context.design_section(art),
        "results": results,
        "segments": segments,
        "quality": context.quality_section(art, read_log_warnings(art.run_dir)),
        "safety": context.safety_section(art),
        "citations": citations,
        "explain": explain_view,
        "variants": variants_section(art),
        "operations": operations_section(art, count_rows(art.run_dir / "sends.csv")),
        "appendix": appendix_section(art),
        "charts": {
            "lifts": Markup(_lift_chart(art)),
            "rates": Markup(_rate_chart(art)),
            "segments": Markup(_segment_chart(art)),
            "citations": Markup(_citation_chart(citations)),
            "bins": Markup(_bins_chart(explain)),
            "terms": Markup(_terms_chart(explain)),
        },
    }


def render_html(
    art: RunArtifacts,
    explain: ExplainResult | None,
    *,
    explain_note: str | None = None,
    generated_at: str | None = None,
) -> str:
    """The report as one HTML string."""
    data = build_context(art, explain, explain_note=explain_note, generated_at=generated_at)
    return environment().get_template("report.html.j2").render(**data)


def _meta(art: RunArtifacts, generated_at: str | None) -> dict[str, Any]:
    manifest = art.manifest
    campaign = (manifest.get("config") or {}).get("experiment_config.yaml", {}).get("campaign", {})
    return {
        "title": "Campaign report: "
        + str(campaign.get("name") or art.metrics.get("experiment_name") or "cpo run"),
        "run_id": manifest.get("run_id", ""),
        "created_at": manifest.get("created_at", ""),
        "generated_at": generated_at or utc_now(),
        "cpo_version": __version__,
        "simulated": context.is_simulated(art),
        "source": context.engagement_source(art),
        "primary_metric": context.primary_metric(art),
        "alpha": context.alpha(art),
        "confidence": context.confidence(art),
    }


# --------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------


def _lift_chart(art: RunArtifacts) -> str:
    """Lift with its Newcombe interval per arm, one panel per metric."""
    primary = context.primary_metric(art)
    panels = []
    for metric in context.metric_names(art):
        records = context.lift_records(art.metrics, metric)
        rows = _forest_rows(art, records, lambda _arm, metric=metric: metric == primary)
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
        lower, upper = context.interval_of(context.significance(record).get("confidence_interval"))
        arm = record.get("treatment_arm", "")
        label = f"{arm} ({context.arm_tone(art, arm)})"
        rows.append(
            charts.ForestRow(label, record.get("lift_absolute"), lower, upper, emphasize(arm))
        )
    return tuple(rows)


def _rate_chart(art: RunArtifacts) -> str:
    """The primary metric per arm with Wilson intervals."""
    metric = context.primary_metric(art)
    arms = art.metrics.get("arms") or {}
    names = sorted(arms, key=lambda a: (a != context.CONTROL_ARM, a))
    values = [(arms[a].get("metrics") or {}).get(metric) for a in names]
    intervals = [context.interval_of((arms[a].get("intervals") or {}).get(metric)) for a in names]
    return charts.rate_chart(
        [f"{a} ({context.arm_tone(art, a)})" for a in names],
        values,
        [i[0] for i in intervals],
        [i[1] for i in intervals],
        title=f"{fmt.metric_label(metric)} by arm "
        f"({fmt.pct(context.confidence(art), 0)} Wilson intervals)",
        emphasis=[a != context.CONTROL_ARM for a in names],
    )


def _segment_chart(art: RunArtifacts) -> str:
    """Primary-metric lift per arm within each segment."""
    metric = context.primary_metric(art)
    panels = []
    for entry in art.metrics.get("segment_breakdown") or []:
        best = entry.get("best_performing_arm")
        rows = _forest_rows(
            art, context.lift_records(entry, metric), lambda arm, best=best: arm == best
        )
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


def _bins_chart(result: ExplainResult | None) -> str:
    if result is None:
        return ""
    top = {r.attribute for r in result.ranking[:1]}
    panels = [
        charts.ForestPanel(
            spec.title,
            tuple(
                charts.ForestRow(b.bin, b.lift_absolute, b.lower, b.upper, spec.key in top)
                for b in result.bins_for(spec.key)
            ),
        )
        for spec in result.attributes
    ]
    return charts.forest_chart(
        panels,
        xlabel="treatment − control (pp)",
        description="Lift by bin of each customer attribute, with Newcombe intervals",
    )


def _terms_chart(result: ExplainResult | None) -> str:
    if result is None or not result.regression.fitted:
        return ""
    rows = tuple(
        charts.ForestRow(
            t.term.removeprefix("treated:"), t.estimate, t.lower, t.upper, t.p_value < 0.05
        )
        for t in result.regression.terms
    )
    return charts.forest_chart(
        [charts.ForestPanel("Treatment × attribute interactions (log-odds ratio)", rows)],
        xlabel="change in the treatment log-odds ratio (0 = no moderation)",
        scale=1.0,
        columns=1,
        description="Interaction estimates of the logistic regression with Wald intervals",
    )


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def read_log_warnings(run_dir: Path) -> list[dict[str, Any]]:
    """Warnings from logs/system.log and logs/experiment.log (PII-free by design)."""
    found = []
    for name in ("system.log", "experiment.log"):
        path = run_dir / "logs" / name
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


def count_rows(path: Path) -> int | None:
    """Data rows of a CSV file (None when it does not exist)."""
    if not path.is_file():
        return None
    import pandas as pd

    return len(pd.read_csv(path, usecols=[0]))
