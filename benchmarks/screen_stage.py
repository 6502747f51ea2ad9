"""Benchmark: the end-to-end ``screen`` stage (analysis + policy + fsynced audit writes).

Builds a run folder with N variants (marketing emails made from the bundled
control message with varied sentences, a few with banned phrases or phone
numbers), then runs the real :class:`~cpo.safety.stage.ScreenStage` through
``run_pipeline`` and reports variants per second for:

* ``local``: the default local analyzer + policy + audit log (what ``cpo run`` does);
* ``null analyzer``: a backend that returns zeros instantly, isolating the
  stage's own cost (policy rules, one fsynced audit append per decision, CSV
  export, manifest summary);
* ``policy rules only``, ``local analyzer only``: the CPU parts alone;
* ``audit append`` / ``audit verify``: the log alone (each append takes the file
  lock, writes one line and fsyncs it, so it measures the disk).

Analyzer construction (loading the lexicon) is excluded from the stage timings
and printed separately.

    python benchmarks/screen_stage.py              # 2,000 variants
    python benchmarks/screen_stage.py --variants 500
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import print_machine

from cpo.audit import AuditLog, verify
from cpo.config import load_config
from cpo.decisions import screening_text
from cpo.models import CategoryScores, Variant, Verdict
from cpo.pipeline import run_pipeline
from cpo.runfiles import write_json
from cpo.safety.local import LocalSafetyAnalyzer
from cpo.safety.policy import decide
from cpo.safety.stage import ScreenStage
from cpo.stage_api import StageBase, StageOutcome

EXTRA_SENTENCES = [
    "Our killer deal on winter boots ends Sunday.",
    "Shoot us a message if you need help choosing a size.",
    "This lantern is a blast from the past with a modern battery.",
    "The new trail jacket is bomb-proof in a downpour.",
    "Crush your goals on the next long hike with lighter poles.",
    "Members get free standard shipping on every order.",
    "Warmth guaranteed, or bring it back within 60 days.",
    "Questions? Call our team at 555-010-0199.",
    "Layer up: merino base layers are back in stock.",
    "Pack light, stay dry and enjoy the view from the ridge.",
]


def make_variants(count: int, seed: int = 7) -> list[Variant]:
    """``count`` realistic variants built from the bundled control message."""
    config = load_config()
    subject_line, _, body = config.prompt("control_message.txt").partition("\n\n")
    subject = subject_line.removeprefix("Subject: ")
    rng = random.Random(seed)
    variants = []
    for index in range(count):
        extra = " ".join(rng.sample(EXTRA_SENTENCES, 3))
        head, _, tail = body.partition("\n\n")
        variants.append(
            Variant(
                variant_id=f"v{index:05d}",
                segment=f"segment-{index % 4}",
                tone=("urgent", "informational", "friendly")[index % 3],
                subject=subject,
                body=f"{head}\n\n{extra}\n\n{tail}",
            )
        )
    return variants


class WriteVariants(StageBase):
    """Stands in for ``generate``: writes variants.json."""

    name = "generate"
    description = "Writing variants"
    outputs = ("variants.json",)

    def __init__(self, variants: list[Variant]) -> None:
        self.variants = variants

    def input_files(self, ctx) -> list[Path]:
        return []

    def run(self, ctx) -> StageOutcome:
        write_json(ctx.path("variants.json"), {"variants": [asdict(v) for v in self.variants]})
        return StageOutcome()


class NullAnalyzer:
    """Returns zero severities instantly (isolates the stage's own cost)."""

    name = "null"

    def analyze(self, text: str) -> CategoryScores:
        return CategoryScores()


def time_stage(variants: list[Variant], analyzer, folder: Path) -> tuple[float, dict]:
    """Seconds the screen stage took, and the manifest's safety summary."""
    manifest = run_pipeline(
        folder, load_config(), stages=[WriteVariants(variants), ScreenStage(analyzer)]
    )
    return manifest["stages"]["screen"]["duration_s"], manifest["safety"]


def time_audit(count: int, folder: Path) -> tuple[float, float]:
    """Seconds to append ``count`` decisions one by one, and to verify them."""
    log = AuditLog(folder / "safety_audit.jsonl")
    variant = Variant("v", "s", "friendly", "subject", "body")
    verdict = Verdict("v", "pass", {"hate": 0, "violence": 0, "self_harm": 0, "sexual": 0}, (), "x")
    began = time.perf_counter()
    for _ in range(count):
        log.record_decision(verdict, variant, run_id="r", policy_sha256="p", content_sha256="c")
    appended = time.perf_counter() - began
    began = time.perf_counter()
    assert verify(log.path).ok
    return appended, time.perf_counter() - began


def time_policy(variants: list[Variant]) -> float:
    """Seconds to decide every variant with zero scores (the policy rules alone)."""
    policy = load_config().safety
    began = time.perf_counter()
    for variant in variants:
        decide(CategoryScores(), variant, policy)
    return time.perf_counter() - began


def time_analyzer(variants: list[Variant], analyzer) -> float:
    """Seconds the analyzer alone needs for every variant's text (one thread)."""
    began = time.perf_counter()
    for variant in variants:
        analyzer.analyze(screening_text(variant))
    return time.perf_counter() - began


def main() -> None:
    """Run the cases ``--repeat`` times and print the best and median of each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (best and median)")
    args = parser.parse_args()
    print_machine()
    variants = make_variants(args.variants)
    began = time.perf_counter()
    local = LocalSafetyAnalyzer()
    print(f"local analyzer construction: {time.perf_counter() - began:.2f} s")
    timings: dict[str, list[float]] = {}
    for attempt in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            for label, analyzer in (("local", local), ("null analyzer", NullAnalyzer())):
                folder = Path(tmp) / label.replace(" ", "_")
                seconds, summary = time_stage(variants, analyzer, folder)
                timings.setdefault(f"screen stage, {label}", []).append(seconds)
                if attempt == 0:
                    print(
                        f"  {label}: pass {summary['passed']}, review {summary['review']}, "
                        f"block {summary['blocked']}, coverage {summary['coverage']}"
                    )
            timings.setdefault("policy rules only", []).append(time_policy(variants))
            timings.setdefault("local analyzer only", []).append(time_analyzer(variants, local))
            appended, verified = time_audit(args.variants, Path(tmp))
            timings.setdefault("audit append (fsync each)", []).append(appended)
            timings.setdefault("audit verify", []).append(verified)
    print(f"\n{'case':<30} {'variants':>8} {'best s':>7} {'median s':>8} {'best /s':>9}")
    for label, values in timings.items():
        best, median = min(values), statistics.median(values)
        rate = args.variants / best
        print(f"{label:<30} {args.variants:>8} {best:>7.2f} {median:>8.2f} {rate:>9,.0f}")


if __name__ == "__main__":
    main()
