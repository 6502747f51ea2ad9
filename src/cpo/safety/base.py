"""The screening backend protocol and the factory that builds one from settings.

A backend answers one question: how severe is this text in each harm category
(``hate``, ``violence``, ``self_harm``, ``sexual``; 0-7)? It never decides
pass/review/block: that is the policy's job (:mod:`cpo.safety.policy`), so the
same policy applies whichever backend scored the text.

Like every backend (see :mod:`cpo.registry`), a screening backend class has a
``settings_model`` (its block in ``services.safety``) and is built by
``from_settings(settings, ctx)`` with a :class:`SafetyContext`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from cpo import registry
from cpo.logs import RunLog
from cpo.models import CategoryScores
from cpo.registry import BackendSettings
from cpo.safety.settings import SafetyServiceSettings

KIND = "safety"


@dataclass(frozen=True)
class SafetyContext:
    """What the screen stage gives a backend's ``from_settings``.

    Attributes:
        log: Run log for request logging (network backends).
        base_dir: Folder relative paths in the settings are resolved against
            (the config folder).
    """

    log: RunLog | None = None
    base_dir: Path | None = None

    def resolve(self, value: str) -> Path:
        """A configured path, relative to the config folder (absolute paths unchanged)."""
        return resolve_path(value, self.base_dir)


class SafetyAnalyzer(Protocol):
    """Scores a text for the four harm categories.

    Implementations must be safe to call from several threads at once (the screen
    stage runs up to ``services.safety.concurrency`` calls concurrently) and must
    raise (never return zeros) when they could not screen the text: the caller
    turns any exception into a ``block`` with reason ``screening_error``.

    Attributes:
        name: The registered name.
        settings_model: Its block in ``services.safety`` (validated on load).
    """

    name: str
    settings_model: ClassVar[type[BackendSettings]]

    @classmethod
    def from_settings(cls, settings: Any, ctx: SafetyContext) -> SafetyAnalyzer:
        """Build the backend from its validated ``settings_model`` block."""

    def analyze(self, text: str) -> CategoryScores:
        """Return the severities (0-7) of ``text`` per harm category."""


def build_analyzer(
    settings: SafetyServiceSettings,
    *,
    log: RunLog | None = None,
    base_dir: Path | None = None,
) -> SafetyAnalyzer:
    """Build the backend named by ``settings.backend`` from its block.

    Args:
        settings: ``services.safety`` from azure_config.yaml.
        log: Run log for request logging (network backends).
        base_dir: Folder relative paths in the settings are resolved against
            (the config folder).

    Raises:
        ConfigError: unknown backend name or incomplete settings.
        BackendUnavailable: the backend's optional dependency is not installed.
    """
    block = settings.settings_for(settings.backend)
    analyzer: SafetyAnalyzer = registry.build(
        KIND, settings.backend, block, SafetyContext(log, base_dir)
    )
    return analyzer


def resolve_path(value: str, base_dir: Path | None) -> Path:
    """Resolve a configured path against the config folder (absolute paths unchanged)."""
    path = Path(value).expanduser()
    if path.is_absolute() or base_dir is None:
        return path
    return base_dir / path
