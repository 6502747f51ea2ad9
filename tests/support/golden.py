"""Normalised artifacts of a run folder, to prove a refactor changed no result.

Two runs on the same inputs and seed differ only in fields that are meant to
change (timestamps, today's date as the content's ``as_of``, run id, durations,
hash-chain values that cover timestamps, config snapshot and fingerprints,
``schema_version``). :func:`normalized` drops
those and returns each artifact's remaining content as canonical text, so
``tests/test_bundled_run_unchanged.py`` can compare a fresh run with the
digests recorded before the refactor.

Run ``python tests/support/golden.py RUN_A RUN_B`` to print a unified diff of
the normalised artifacts of two run folders.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

#: Artifacts whose content must not change (reports and the PDF are rendered
#: from these; their layout may change with the report code).
COMPARED = (
    "segments.csv",
    "segment_profiles.json",
    "retrieval.json",
    "variants.json",
    "safety_audit.jsonl",
    "safety_audit.csv",
    "experiment_design.json",
    "assignments.csv",
    "sends.csv",
    "withheld.csv",
    "engagement.csv",
    "engagement_report.json",
    "metrics.json",
)

#: Keys (JSON) and columns (CSV) whose values differ between identical runs.
VOLATILE = {
    "as_of",  # the date content eligibility is judged on: today, unless --as-of is given
    "assigned_at",
    "computed_at",
    "config",
    "config_sha256",
    "config_source",
    "cpo_version",
    "created_at",
    "duration_seconds",
    "ended_at",
    "finished_at",
    "fingerprint",
    "generated_at",
    "hash",
    "head_hash",
    "prev_hash",
    "run_id",
    "schema_version",
    "screened_at",
    "seconds",
    "started_at",
    "timestamp",
    "updated_at",
    "latency_ms",
    "values_sha256",
}


def _strip(value: Any) -> Any:
    """Drop volatile keys from nested JSON data."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _canonical_json(value: Any) -> str:
    return json.dumps(_strip(value), sort_keys=True, indent=1, ensure_ascii=False)


def _normalize_csv(text: str) -> str:
    rows = list(csv.DictReader(io.StringIO(text)))
    kept = [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]
    return "\n".join(json.dumps(row, sort_keys=True, ensure_ascii=False) for row in kept)


def normalize_artifact(path: Path) -> str:
    """Return an artifact's content without its volatile fields."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        return _normalize_csv(text)
    if path.suffix == ".jsonl":
        return "\n".join(_canonical_json(json.loads(line)) for line in text.splitlines() if line)
    return _canonical_json(json.loads(text))


def normalized(run_dir: Path) -> dict[str, str]:
    """Normalised text of every compared artifact present in ``run_dir``."""
    return {
        name: normalize_artifact(run_dir / name) for name in COMPARED if (run_dir / name).is_file()
    }


def digests(run_dir: Path) -> dict[str, str]:
    """sha256 of each normalised artifact."""
    return {
        name: hashlib.sha256(text.encode("utf-8")).hexdigest()
        for name, text in normalized(run_dir).items()
    }


def main(argv: list[str]) -> int:
    """Print the diff of two run folders' normalised artifacts."""
    first, second = (normalized(Path(arg)) for arg in argv[:2])
    status = 0
    for name in sorted(set(first) | set(second)):
        a, b = first.get(name, ""), second.get(name, "")
        if a != b:
            status = 1
            sys.stdout.writelines(
                difflib.unified_diff(
                    a.splitlines(True), b.splitlines(True), f"a/{name}", f"b/{name}", n=1
                )
            )
            print()
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
