"""Test doubles shared by several test areas (importable: ``tests/support`` is on pytest's path).

Texts steer the fake safety backend with markers: ``[violence:6]`` scores violence 6,
``[error]`` makes the backend raise, ``[slow]`` makes it sleep, so a test states each
variant's fate in its own text.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cpo import registry
from cpo.models import HARM_CATEGORIES, CategoryScores, Variant
from cpo.registry import NoSettings
from cpo.runfiles import write_json
from cpo.sample_data.customers import COLUMNS
from cpo.stage_api import RunContext, StageBase, StageOutcome

#: A behavioural-only customer export, as a warehouse gives it (no names, no emails).
BEHAVIOUR_COLUMNS = [c for c in COLUMNS if c not in ("first_name", "email")]
FOOTER = "You are receiving this email because you subscribed. Unsubscribe: https://x.example/u"
MARKER = re.compile(r"\[(hate|violence|self_harm|sexual):(\d)\]")


def marker_scores(text: str) -> dict[str, int]:
    """Severities named by ``[category:n]`` markers in a text (highest wins)."""
    scores = dict.fromkeys(HARM_CATEGORIES, 0)
    for category, value in MARKER.findall(text):
        scores[category] = max(scores[category], int(value))
    return scores


class MarkerAnalyzer:
    """A thread-safe backend scoring markers; ``[error]`` raises, ``[slow]`` sleeps.

    Counts calls and the highest number of calls in flight at the same time.
    """

    name = "marker"
    settings_model = NoSettings

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: NoSettings, ctx: object) -> MarkerAnalyzer:
        """Built like any backend when a config selects ``marker``."""
        return cls()

    def analyze(self, text: str) -> CategoryScores:
        """Score the markers in ``text``."""
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s or "[slow]" in text:
                time.sleep(self.delay_s or 0.05)
            if "[error]" in text:
                raise ConnectionError("backend unreachable")
            return CategoryScores(**marker_scores(text))
        finally:
            with self._lock:
                self.in_flight -= 1


registry.register("safety", "marker", MarkerAnalyzer)


def write_variants(path: Path, variants: list[Variant]) -> Path:
    """Write variants.json as the generation stage does."""
    write_json(path, {"variants": [asdict(v) for v in variants]})
    return path


@dataclass
class VariantsStage(StageBase):
    """Stands in for ``generate``: writes the given variants to variants.json."""

    variants: list[Variant]
    name: str = "generate"
    description: str = "Writing test variants"
    outputs: tuple[str, ...] = ("variants.json",)

    def input_files(self, ctx: RunContext) -> list[Path]:
        """A copy of the variants beside the run folder, so a resume sees changes."""
        source = ctx.run_dir.parent / f"{ctx.run_dir.name}.variants-source.json"
        write_variants(source, self.variants)
        return [source]

    def run(self, ctx: RunContext) -> StageOutcome:
        """Write variants.json."""
        write_variants(ctx.path("variants.json"), self.variants)
        return StageOutcome(summary=f"{len(self.variants)} variants")


def init_config(root: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """``cpo init ROOT/config``, its experiment_config.yaml changed by ``edit``; the folder."""
    import yaml
    from click.testing import CliRunner

    from cpo.cli import cli

    config = root / "config"
    result = CliRunner().invoke(cli, ["init", str(config)])
    assert result.exit_code == 0, result.output
    path = config / "experiment_config.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return config


def config_with_holdout(root: Path, share: float) -> Path:
    """``cpo init ROOT/config`` with ``experiment.holdout_share`` set; returns the folder."""
    return init_config(root, lambda document: document["experiment"].update(holdout_share=share))
