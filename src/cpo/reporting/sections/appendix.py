"""Section 11, the appendix: every method by name, the manifest and the configuration."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from cpo.reporting.artifacts import RunArtifacts

#: The config snapshot's key for prompt files (listed, not printed in full).
PROMPTS_KEY = "prompts"
#: libyaml's safe dumper when PyYAML was built with it: the same text as PyYAML's own
#: emitter, about 7x faster (the snapshot was half of building the report's sections).
_SAFE_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
#: Methods named in the appendix: (name, what it is used for, reference).
METHODS: tuple[tuple[str, str, str], ...] = (
    (
        "Wilson score interval",
        "interval of every rate (per arm, per segment, per attribute bin)",
        "Wilson (1927); Newcombe (1998a)",
    ),
    (
        "Newcombe hybrid score interval (method 10)",
        "interval of the absolute lift (difference of two rates)",
        "Newcombe (1998b), Stat Med 17:873–890",
    ),
    (
        "Koopman score ratio interval",
        "interval of the relative lift (ratio of two rates minus 1); "
        "unbounded when control has no events",
        "Koopman (1984); Fagerland, Lydersen & Laake (2015)",
    ),
    (
        "Pearson chi-square test without continuity correction / Fisher's exact test",
        "two-sided p-value of each treatment against control: chi-square when every expected "
        "cell is at least 5, otherwise Fisher's exact test (the test used is shown)",
        "Pearson (1900); Fisher (1935)",
    ),
    (
        "Holm step-down adjustment",
        "family-wise error control across the treatment arms for the primary metric",
        "Holm (1979)",
    ),
    (
        "Benjamini–Hochberg adjustment",
        "false discovery rate across secondary metrics and across segment breakdowns (exploratory)",
        "Benjamini & Hochberg (1995)",
    ),
    (
        "Cochran–Mantel–Haenszel test and Mantel–Haenszel risk difference (Sato variance)",
        "stratified overall estimate, because randomization is within segments",
        "Mantel & Haenszel (1959); Sato (1989)",
    ),
    (
        "Sample-ratio mismatch: chi-square goodness of fit / exact multinomial test",
        "arm sizes against the design (alert at p < 0.001); exact test when expected counts are "
        "below 5; an empty arm is always flagged",
        "Fabijan et al. (2019), KDD",
    ),
    (
        "Beta-binomial posterior, Beta(1, 1) prior",
        "probability each treatment beats control and the expected loss of choosing it",
        "Gelman et al., Bayesian Data Analysis",
    ),
    (
        "Power and minimum detectable effect (two-sample test of proportions)",
        "MDE per metric for the design's arm sizes, alpha split over the comparisons "
        "(Bonferroni); sample size for the next test",
        "R power.prop.test",
    ),
    (
        "Binomial GLM (logistic regression) with treatment × attribute interactions",
        "explainability: numeric attributes standardized, tier as dummies; Wald intervals; "
        "joint Wald test per attribute, Holm-adjusted across attributes",
        "statsmodels GLM; Peduzzi et al. (1996) on events per parameter",
    ),
)


def _prompt_rows(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The prompt files of the snapshot: name, size, sha256 and first line (not the full text)."""
    prompts = config.get(PROMPTS_KEY) or {}
    rows = []
    for name, text in prompts.items():
        text = str(text)
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        rows.append(
            {
                "name": name,
                "chars": len(text),
                "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "first_line": first if len(first) <= 90 else first[:89] + "…",
            }
        )
    return rows


def appendix_section(art: RunArtifacts) -> dict[str, Any]:
    """Methods, the configuration snapshot and a manifest summary."""
    manifest = art.manifest
    stages = [
        {
            "name": name,
            "status": record.get("status", ""),
            "duration": f"{record['duration_s']:.2f} s"
            if record.get("duration_s") is not None
            else "–",
            "summary": record.get("summary", ""),
        }
        for name, record in (manifest.get("stages") or {}).items()
    ]
    inputs = [
        {
            "name": name,
            "path": str(info.get("path", "")),
            "file": Path(str(info.get("path", ""))).name,
            "sha256": str(info.get("sha256", "")),
            "rows": info.get("rows"),
        }
        for name, info in (manifest.get("inputs") or {}).items()
        if isinstance(info, dict)
    ]
    return {
        "methods": [{"name": n, "use": u, "reference": r} for n, u, r in METHODS],
        "prompts": _prompt_rows(manifest.get("config") or {}),
        "config_yaml": yaml.dump(
            {k: v for k, v in (manifest.get("config") or {}).items() if k != PROMPTS_KEY},
            Dumper=_SAFE_DUMPER,
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=None,  # lists and maps of scalars inline: a shorter appendix
            width=120,
        ),
        "manifest": {
            "run_id": manifest.get("run_id", ""),
            "cpo_version": manifest.get("cpo_version", ""),
            "created_at": manifest.get("created_at", ""),
            "status": manifest.get("status", ""),
            "seed": manifest.get("seed"),
            "config_sha256": manifest.get("config_sha256", ""),
            "config_source": manifest.get("config_source", ""),
            "totals": manifest.get("totals") or {},
        },
        "inputs": inputs,
        "stages": stages,
    }
