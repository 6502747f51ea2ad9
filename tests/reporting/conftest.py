"""A complete, synthetic run folder for the report tests.

The folder has the files of a real run folder (docs/architecture.md) and a
metrics.json in the schema the analysis writes. Its statistics are computed with
``cpo.experiment.stats`` from the synthetic engagement, so the numbers are
internally consistent. Segment names are deliberately not the bundled sample's,
and one variant carries markup in its text, so the tests catch hard-coded names
and unescaped output.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cpo.audit import AuditLog
from cpo.config import load_config
from cpo.experiment import stats
from cpo.models import Citation, Grounding, Variant, Verdict
from cpo.reporting import formatting as fmt
from cpo.sample_data.customers import generate_customers

RUN_ID = "fixture0run0id0000000000000000ab"
SEGMENTS = ("Trail Regulars", "Lapsed Campers", "Weekend Starters")
TONES = ("urgent", "informational", "friendly")
METRICS = ("open_rate", "click_rate", "conversion_rate", "click_to_open_rate")
DOCS = {
    "DOC-A": ("Summit Ridge 2 Tent", "https://www.example.com/docs/tent"),
    "DOC-B": ("Rewards <Gold> Program", "https://www.example.com/docs/rewards"),
    "DOC-C": ("Free Returns & Repairs", "https://www.example.com/docs/returns"),
}
#: Planted truth: treatment lifts clicks only for Gold customers.
BASE_CLICK = 0.08
GOLD_CLICK_TREATED = 0.30


def _variants() -> list[Variant]:
    """Control plus one cited variant per segment and tone."""
    control = Variant(
        variant_id="control",
        segment="all",
        tone="control",
        subject="News from Fernleaf",
        body="Hi {first_name},\n\nHere is our seasonal update.\n\nUnsubscribe any time.",
        backend="control",
    )
    result = [control]
    for s_index, segment in enumerate(SEGMENTS):
        for t_index, tone in enumerate(TONES):
            doc_ids = list(DOCS)[(s_index + t_index) % 3 :] + list(DOCS)[: (s_index + t_index) % 3]
            cites = [Citation(d, DOCS[d][0], 1 + (t_index % 2)) for d in doc_ids[:2]]
            markers = " ".join(f"[Source: {c.title}, ¶{c.paragraph_index}]" for c in cites)
            body = (
                f"Hi {{first_name}},\n\nA {tone} note for {segment} <script>alert(1)</script>. "
                f"The tent weighs 1.8 kg {markers}.\n\nUnsubscribe any time."
            )
            result.append(
                Variant(
                    variant_id=f"v{s_index}{t_index}",
                    segment=segment,
                    tone=tone,
                    subject=f"{tone.title()} news for {segment}",
                    body=body,
                    citations=tuple(cites),
                    grounding=Grounding(score=1.0),
                    backend="grounded",
                )
            )
    return result


def _variant_json(variant: Variant) -> dict[str, Any]:
    record = asdict(variant)
    record["body_words"] = len(variant.body.split())
    return record


def _customers(tmp: Path, n: int) -> tuple[Path, pd.DataFrame]:
    frame = generate_customers(n, seed=11)
    path = tmp / "customers.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _segment_of(frame: pd.DataFrame) -> np.ndarray:
    return np.select(
        [frame["last_engagement_days"] >= 90, frame["purchase_frequency"] >= 4],
        [SEGMENTS[1], SEGMENTS[0]],
        default=SEGMENTS[2],
    )


def _engagement(frame: pd.DataFrame, seed: int, block: dict[str, str]) -> pd.DataFrame:
    """Stratified equal allocation; clicks lifted only for treated Gold customers."""
    rng = np.random.default_rng([seed, 77])  # independent of the customer generator's stream
    segments = _segment_of(frame)
    arms = np.empty(len(frame), dtype=object)
    for segment in SEGMENTS:
        idx = np.flatnonzero(segments == segment)
        names = ["control"] + [
            f"treatment_{i}" for i in (1, 2, 3) if block.get(segment) != f"treatment_{i}"
        ]
        arms[rng.permutation(idx)] = np.resize(names, len(idx))
    treated = arms != "control"
    p_click = np.where(
        treated & (frame["tier"].to_numpy() == "Gold"), GOLD_CLICK_TREATED, BASE_CLICK
    )
    clicked = rng.random(len(frame)) < p_click
    opened = clicked | (rng.random(len(frame)) < 0.35)
    converted = clicked & (rng.random(len(frame)) < 0.25)
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"],
            "experiment_arm": arms,
            "segment": segments,
            "opened": opened.astype(int),
            "clicked": clicked.astype(int),
            "converted": converted.astype(int),
        }
    )


def _counts(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    grouped = frame.groupby("experiment_arm")[["opened", "clicked", "converted"]].sum()
    sizes = frame.groupby("experiment_arm").size()
    return {
        arm: {
            "sent": int(sizes[arm]),
            "opened": int(grouped.loc[arm, "opened"]),
            "clicked": int(grouped.loc[arm, "clicked"]),
            "converted": int(grouped.loc[arm, "converted"]),
        }
        for arm in sizes.index
    }


def _successes(counts: dict[str, int], metric: str) -> tuple[int, int]:
    return {
        "open_rate": (counts["opened"], counts["sent"]),
        "click_rate": (counts["clicked"], counts["sent"]),
        "conversion_rate": (counts["converted"], counts["sent"]),
        "click_to_open_rate": (counts["clicked"], counts["opened"]),
    }[metric]


def _arms_block(counts: dict[str, dict[str, int]], tones: dict[str, str]) -> dict[str, Any]:
    arms = {}
    for arm, c in sorted(counts.items()):
        metrics, intervals = {}, {}
        for metric in METRICS:
            x, n = _successes(c, metric)
            ci = stats.wilson_interval(x, n)
            metrics[metric] = x / n if n else None
            intervals[metric] = {"lower": ci.lower, "upper": ci.upper, "method": "wilson"}
        arms[arm] = {
            "arm_name": arm,
            "tone": tones[arm],
            "sample_size": c["sent"],
            "counts": c,
            "metrics": metrics,
            "intervals": intervals,
        }
    return arms


def _lift_records(
    counts: dict[str, dict[str, int]], primary: str, exploratory: bool
) -> list[dict[str, Any]]:
    records = []
    for metric in METRICS:
        family = []
        for arm in sorted(a for a in counts if a != "control"):
            x_t, n_t = _successes(counts[arm], metric)
            x_c, n_c = _successes(counts["control"], metric)
            rate_t, rate_c = x_t / n_t, x_c / n_c
            diff = stats.newcombe_difference_interval(x_t, n_t, x_c, n_c)
            ratio = stats.relative_lift_interval(x_t, n_t, x_c, n_c)
            test = stats.two_proportion_test(x_t, n_t, x_c, n_c)
            bayes = stats.prob_beat_control(x_t, n_t, x_c, n_c)
            lift = stats.lift(rate_t, rate_c)
            family.append(
                {
                    "treatment_arm": arm,
                    "metric": metric,
                    "control_value": rate_c,
                    "treatment_value": rate_t,
                    "lift_absolute": lift.absolute,
                    "lift_percent": lift.percent,
                    "statistical_significance": {
                        "test": test.test,
                        "p_value": test.p_value,
                        "p_value_adjusted": None,
                        "adjustment": None,
                        "significant": None,
                        "alpha": 0.05,
                        "confidence_interval": {
                            "lower": diff.lower,
                            "upper": diff.upper,
                            "method": "newcombe",
                        },
                        "relative_confidence_interval": {
                            "lower": None if ratio.lower is None else 100 * ratio.lower,
                            "upper": None if ratio.upper is None else 100 * ratio.upper,
                            "method": "koopman-score-ratio",
                        },
                    },
                    "bayesian": {
                        "prob_beat_control": bayes.prob_beat_control,
                        "expected_loss": bayes.expected_loss_treatment,
                    },
                }
            )
        use_holm = metric == primary and not exploratory
        adjusted = (stats.holm if use_holm else stats.benjamini_hochberg)(
            [r["statistical_significance"]["p_value"] for r in family]
        )
        for record, p_adj in zip(family, adjusted, strict=True):
            sig = record["statistical_significance"]
            sig["p_value_adjusted"] = p_adj
            sig["adjustment"] = "holm" if use_holm else "benjamini-hochberg"
            sig["significant"] = p_adj is not None and p_adj < 0.05
        records.extend(family)
    return records


def _metrics(engagement: pd.DataFrame, design: dict[str, Any], source: str) -> dict[str, Any]:
    tones = {"control": "control", "treatment_1": "urgent"}
    tones |= {"treatment_2": "informational", "treatment_3": "friendly"}
    counts = _counts(engagement)
    arms = sorted(counts)
    shares = [design["expected_shares"][a] for a in arms]
    srm = stats.srm_check([counts[a]["sent"] for a in arms], shares)
    breakdown = []
    for segment in SEGMENTS:
        part = engagement[engagement["segment"] == segment]
        seg_counts = _counts(part)
        lifts = _lift_records(seg_counts, "click_rate", exploratory=True)
        primary = [r for r in lifts if r["metric"] == "click_rate"]
        best = max(primary, key=lambda r: r["treatment_value"])
        breakdown.append(
            {
                "segment": segment,
                "sample_size": len(part),
                "best_performing_arm": best["treatment_arm"],
                "lift_percent": best["lift_percent"],
                "arms": _arms_block(seg_counts, tones),
                "lift_analysis": lifts,
            }
        )
    return {
        "experiment_id": RUN_ID,
        "experiment_name": "fixture-campaign",
        "computed_at": "2026-01-01T00:00:00Z",
        "engagement_source": source,
        "primary_metric": "click_rate",
        "secondary_metrics": [m for m in METRICS if m != "click_rate"],
        "alpha": 0.05,
        "confidence_level": 0.95,
        "control_arm": "control",
        "total_customers": len(engagement),
        "arms": _arms_block(counts, tones),
        "lift_analysis": _lift_records(counts, "click_rate", exploratory=False),
        "stratified": _stratified(engagement),
        "segment_breakdown": breakdown,
        "srm": {
            "method": srm.method,
            "p_value": srm.p_value,
            "expected": dict(zip(arms, srm.expected, strict=True)),
            "observed": dict(zip(arms, srm.observed, strict=True)),
            "mismatch": srm.mismatch,
        },
        "power": design["power"],
        "warnings": [
            {"code": "simulated", "message": "engagement is simulated"}
            if source == "simulated"
            else {"code": "small_segment", "message": "a segment is small"}
        ],
    }


def _stratified(engagement: pd.DataFrame) -> dict[str, Any]:
    result = {}
    for arm in ("treatment_1", "treatment_2", "treatment_3"):
        strata = []
        for segment in SEGMENTS:
            part = engagement[engagement["segment"] == segment]
            t, c = part[part.experiment_arm == arm], part[part.experiment_arm == "control"]
            strata.append((int(t.clicked.sum()), len(t), int(c.clicked.sum()), len(c)))
        cmh = stats.cochran_mantel_haenszel(strata)
        result[arm] = {
            "treatment_arm": arm,
            "metric": "click_rate",
            "p_value": cmh.p_value,
            "p_value_adjusted": cmh.p_value,
            "adjustment": "holm",
            "risk_difference": cmh.risk_difference,
            "confidence_interval": {"lower": cmh.lower, "upper": cmh.upper, "method": "sato"},
            "method": cmh.method,
        }
    return {"click_rate": result}


def _design(engagement: pd.DataFrame, block: dict[str, str]) -> dict[str, Any]:
    arms = ["control", "treatment_1", "treatment_2", "treatment_3"]
    counts = engagement.groupby("experiment_arm").size().reindex(arms, fill_value=0)
    total = int(counts.sum())
    segments = []
    for segment in SEGMENTS:
        part = engagement[engagement["segment"] == segment]
        available = [a for a in arms if block.get(segment) != a]
        seg_counts = part.groupby("experiment_arm").size().reindex(available, fill_value=0)
        segments.append(
            {
                "segment": segment,
                "customers": len(part),
                "arms_available": available,
                "shares": {a: 1 / len(available) for a in available},
                "variant_ids": {},
                "dropped": {
                    a: {"code": "blocked", "reason": f"{a} variant blocked", "variant_id": "vX"}
                    for a in arms
                    if a not in available
                },
                "expected_counts": {a: int(seg_counts[a]) for a in available},
                "expected_shares": {a: int(seg_counts.get(a, 0)) / len(part) for a in arms},
            }
        )
    mde = {
        metric: {
            "baseline": base,
            "mde_absolute": stats.mde_for_n(total / 4, base, 0.05, 0.8, 3).mde_absolute,
            "mde_relative": stats.mde_for_n(total / 4, base, 0.05, 0.8, 3).mde_relative,
            "reason": None,
            "by_arm": {},
        }
        for metric, base in zip(METRICS, (0.35, BASE_CLICK, 0.02, 0.2), strict=True)
    }
    return {
        "experiment_name": "fixture-campaign",
        "assignment_method": "stratified_block",
        "salt_sha256": "0" * 64,
        "holdout_share": 0.0,
        "tones": list(TONES),
        "arms": [
            {"name": a, "tone": t, "allocation": 0.25}
            for a, t in zip(arms, ("control", *TONES), strict=True)
        ],
        "allocation": dict.fromkeys(arms, 0.25),
        "total_customers": total,
        "expected_counts": {**{a: int(counts[a]) for a in arms}, "holdout": 0},
        "expected_shares": {a: int(counts[a]) / total for a in arms},
        "segments": segments,
        "power": {
            "alpha": 0.05,
            "power": 0.8,
            "n_comparisons": 3,
            "alpha_per_comparison": 0.05 / 3,
            "adjustment": "bonferroni",
            "primary_metric": "click_rate",
            "expected_relative_lift": 0.1,
            "method": "R power.prop.test",
            "metrics": mde,
        },
        "warnings": [{"code": "underpowered", "message": "underpowered: <b>fixture</b>"}],
    }


def _write_audit(run_dir: Path, variants: list[Variant], blocked: set[str]) -> dict[str, Any]:
    log = AuditLog(run_dir / "safety_audit.jsonl")
    entry = None
    for variant in variants:
        status = "block" if variant.variant_id in blocked else "pass"
        reasons = ("violence severity 6 >= block_at 6",) if status == "block" else ()
        verdict = Verdict(
            variant.variant_id,
            status,
            dict.fromkeys(("hate", "violence", "self_harm", "sexual"), 0),
            reasons,
            "local",
        )
        entry = log.record_decision(
            verdict, variant, run_id=RUN_ID, policy_sha256="p" * 64, content_sha256="c" * 64
        )
    n = len(variants)
    return {
        "backend": "local",
        "total": n,
        "passed": n - len(blocked),
        "review": 0,
        "blocked": len(blocked),
        "by_category": {"hate": 0, "violence": len(blocked), "self_harm": 0, "sexual": 0},
        "by_reason": {"violence": len(blocked)} if blocked else {},
        "pass_rate": (n - len(blocked)) / n,
        "coverage": 1.0,
        "variant_ids": [v.variant_id for v in variants],
        "audit": {"entries": n, "head_hash": entry["hash"]},
    }


def _retrieval() -> dict[str, Any]:
    return {
        "backend": "sqlite_fts",
        "segments": [
            {
                "segment": segment,
                "results": [
                    {
                        "document_id": doc,
                        "title": title,
                        "paragraph_index": p,
                        "snippet": f"{title} paragraph {p}.",
                        "score": 10.0,
                        "source_url": url,
                    }
                    for doc, (title, url) in DOCS.items()
                    for p in (1, 2)
                ],
            }
            for segment in SEGMENTS
        ],
    }


def build_run(
    run_dir: Path,
    *,
    source: str = "simulated",
    n: int = 800,
    seed: int = 5,
    with_customers: bool = True,
) -> Path:
    """Write a complete synthetic run folder and return it.

    Args:
        run_dir: Folder to create.
        source: ``simulated`` or ``imported`` engagement.
        n: Customers.
        seed: Seed of the synthetic engagement.
        with_customers: Keep the customer file the manifest names (else delete it after
            the moderator analysis, as if it moved after the run).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    customers_path, customers = _customers(run_dir.parent, n)
    block = {SEGMENTS[2]: "treatment_1"}
    engagement = _engagement(customers, seed, block)
    engagement["engagement_source"] = source
    engagement.to_csv(run_dir / "engagement.csv", index=False)
    assignments = engagement[["customer_id", "segment", "experiment_arm"]].copy()
    tones = dict(zip(("treatment_1", "treatment_2", "treatment_3"), range(3), strict=True))
    assignments["variant_id"] = [
        "control" if arm == "control" else f"v{SEGMENTS.index(seg)}{tones[arm]}"
        for seg, arm in zip(assignments["segment"], assignments["experiment_arm"], strict=True)
    ]
    assignments["assigned_at"] = "2026-01-01T00:00:00Z"
    assignments["assignment_method"] = "stratified_block"
    assignments.to_csv(run_dir / "assignments.csv", index=False)
    variants = _variants()
    (run_dir / "variants.json").write_text(
        json.dumps({"backend": "grounded", "variants": [_variant_json(v) for v in variants]})
    )
    design = _design(engagement, block)
    (run_dir / "experiment_design.json").write_text(json.dumps(design))
    (run_dir / "metrics.json").write_text(json.dumps(_metrics(engagement, design, source)))
    (run_dir / "retrieval.json").write_text(json.dumps(_retrieval()))
    safety = _write_audit(run_dir, variants, blocked={"v20"})
    _write_manifest(run_dir, customers_path, safety)
    _write_moderators(run_dir, engagement, seed)
    if not with_customers:
        customers_path.unlink()
    return run_dir


def _write_moderators(run_dir: Path, engagement: pd.DataFrame, seed: int) -> None:
    """moderators.json as the analyze stage writes it (the report only reads it)."""
    from cpo.experiment.moderators import (
        read_customer_attributes,
        run_moderators,
        write_moderators,
    )

    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    customers, note = read_customer_attributes(manifest["inputs"]["customers"])
    frame = engagement.astype({"customer_id": str})
    document = run_moderators(
        frame,
        customers,
        metric="click_rate",
        confidence=0.95,
        alpha=0.05,
        seed=seed,
        unavailable=note,
    )
    write_moderators(run_dir / "moderators.json", document)


def _write_manifest(run_dir: Path, customers_path: Path, safety: dict[str, Any]) -> None:
    from cpo.runfiles import sha256_file

    config = load_config()
    stages = ("segment", "retrieve", "generate", "screen", "assign", "engage", "analyze")
    manifest = {
        "run_id": RUN_ID,
        "cpo_version": "0.1.0",
        "created_at": "2026-01-01T00:00:00.000Z",
        "updated_at": "2026-01-01T00:00:09.000Z",
        "status": "completed",
        "seed": 42,
        "options": {"customers": str(customers_path), "engagement": None, "seed": None},
        "config_source": str(config.source),
        "config_sha256": config.sha256(),
        "config": config.snapshot(),
        "inputs": {
            "customers": {
                "path": str(customers_path),
                "sha256": sha256_file(customers_path),
                "rows": 0,
            }
        },
        "stages": {
            name: {"status": "completed", "duration_s": 0.1, "summary": f"{name} done"}
            for name in stages
        }
        | {"report": {"status": "pending"}},
        "totals": {
            "runtime_s": 1.0,
            "api_calls": 0,
            "tokens_prompt": 0,
            "tokens_completion": 0,
            "cost_usd": 0.0,
        },
        "safety": safety,
        "error": None,
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))


@pytest.fixture(scope="session")
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete synthetic run with simulated engagement (built once per session)."""
    return build_run(tmp_path_factory.mktemp("sim") / "run", source="simulated")


@pytest.fixture(scope="session")
def imported_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete synthetic run with imported (real) engagement."""
    return build_run(tmp_path_factory.mktemp("imp") / "run", source="imported", seed=9)


@pytest.fixture
def make_run(tmp_path: Path):
    """Build a fresh fixture run with options (for tests that change files)."""

    def make(**options: Any) -> Path:
        return build_run(tmp_path / "run", **options)

    return make


@pytest.fixture(scope="session")
def sim_report(fixture_run: Path):
    """The three reports of the simulated fixture run (rendered once per session)."""
    from cpo.reporting.render import render_report

    return render_report(fixture_run)


@pytest.fixture(scope="session")
def pdf_text():
    """Text of each page of a PDF, extracted once per file and session (pypdf is slow)."""
    from pypdf import PdfReader

    cache: dict[Path, list[str]] = {}

    def pages(path: Path) -> list[str]:
        if path not in cache:
            cache[path] = [page.extract_text() or "" for page in PdfReader(str(path)).pages]
        return cache[path]

    return pages


@pytest.fixture(scope="session")
def imported_report(imported_run: Path):
    """HTML and PDF of the imported-engagement fixture run (no notebook: it is slow)."""
    from cpo.reporting.render import render_report

    return render_report(imported_run, notebook=False)


# --------------------------------------------------------------------------
# Checking a rendered report.html (shared by the HTML and integration tests)
# --------------------------------------------------------------------------


RESOURCE_ATTRIBUTES = ("src", "href", "data", "poster", "srcset", "xlink:href", "action")


class Page(HTMLParser):
    """Collects every tag with its attributes, the ids, and the text of data-key elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.ids: list[str] = []
        self.values: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if attributes.get("id"):
            self.ids.append(attributes["id"])
        if "data-key" in attributes:
            record = {"key": attributes["data-key"], "value": attributes["data-value"], "text": ""}
            self.values.append(record)
            self._open.append(record)
        elif self._open:
            self._open.append({})  # nested element inside a value span

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for record in self._open:
            if "text" in record:
                record["text"] += data


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


# --------------------------------------------------------------------------
# Resolving data-key locations in metrics.json
# --------------------------------------------------------------------------


def _dig(record: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        record = record[part]
    return record


def resolve(metrics: dict[str, Any], key: str) -> Any:
    """The metrics.json value a data-key names (see cpo.reporting.sections.common.cell)."""
    block = metrics
    parts = key.split(":")
    if parts[0] == "segment":
        block = next(s for s in metrics["segment_breakdown"] if s["segment"] == parts[1])
        parts = parts[2:]
        if len(parts) == 1:
            return block[parts[0]]
    kind = parts[0]
    if kind == "lift":
        arm, metric, field = parts[1], parts[2], parts[3]
        record = next(
            r for r in block["lift_analysis"] if r["treatment_arm"] == arm and r["metric"] == metric
        )
        return _dig(record, field)
    if kind == "arm":
        return _dig(block["arms"][parts[1]], parts[2])
    if kind == "srm":
        return metrics["srm"][parts[1]]
    return metrics[key]


def expected_text(key: str, value: Any) -> str:
    """How the report must print a value found at ``key``."""
    field = key.split(":")[-1]
    if field.startswith("counts.") or field in ("sample_size", "total_customers"):
        return fmt.num(value)
    if field.startswith("metrics.") or field in ("control_value", "treatment_value"):
        return fmt.pct(value)
    if field == "lift_absolute":
        return fmt.pp(value)
    if field == "lift_percent":
        return fmt.signed_pct(value)
    if field.endswith("p_value") or field.endswith("p_value_adjusted"):
        return fmt.pval(value)
    if field == "bayesian.prob_beat_control":
        return fmt.prob(value)
    if field == "bayesian.expected_loss":
        return fmt.loss(value)
    raise AssertionError(f"no rule for {key}")


def check_numbers(html_path: Path, metrics: dict[str, Any]) -> set[str]:
    """Assert every data-key value and text in the HTML equals metrics.json; return the keys."""
    checked = set()
    for record in parse(html_path).values:
        value = resolve(metrics, record["key"])
        assert record["value"] == fmt.raw(value), record["key"]
        assert record["text"].strip() == expected_text(record["key"], value), record["key"]
        checked.add(record["key"])
    return checked


@pytest.fixture(scope="session")
def report_checks():
    """Helpers to parse report.html and check its numbers against metrics.json."""
    from types import SimpleNamespace

    return SimpleNamespace(
        parse=parse,
        resolve=resolve,
        expected_text=expected_text,
        check_numbers=check_numbers,
        resource_attributes=RESOURCE_ATTRIBUTES,
    )
