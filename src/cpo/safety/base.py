"""The screening backend protocol and the factory that builds one from settings.

A backend answers one question: how severe is this text in each harm category
(``hate``, ``violence``, ``self_harm``, ``sexual``; 0-7)? It never decides
pass/review/block: that is the policy's job (:mod:`cpo.safety.policy`), so the
same policy applies whichever backend scored the text.

Backends that need settings (endpoint, key, timeouts) define a classmethod
``from_settings(settings, *, log=None, base_dir=None)``; backends without one are
built with no arguments (plus ``lexicon_dir`` when it is configured).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from cpo import registry
from cpo.logs import RunLog
from cpo.models import CategoryScores
from cpo.safety.settings import SafetyServiceSettings

KIND = "safety"


@runtime_checkable
class SafetyAnalyzer(Protocol):
    """Scores a text for the four harm categories.

    Implementations must be safe to call from several threads at once (the screen
    stage runs up to ``services.safety.concurrency`` calls concurrently) and must
    raise (never return zeros) when they could not screen the text: the caller
    turns any exception into a ``block`` with reason ``screening_error``.
    """

    def analyze(self, text: str) -> CategoryScores:
        """Return the severities (0-7) of ``text`` per harm category."""
        ...


def build_analyzer(
    settings: SafetyServiceSettings,
    *,
    log: RunLog | None = None,
    base_dir: Path | None = None,
) -> SafetyAnalyzer:
    """Build the backend named by ``settings.backend``.

    Args:
        settings: ``services.safety`` from azure_config.yaml.
        log: Run log for request logging (network backends).
        base_dir: Folder relative paths in the settings are resolved against
            (the config folder).

    Raises:
        ConfigError: unknown backend name or incomplete settings.
        BackendUnavailable: the backend's optional dependency is not installed.
    """
    backend_class = registry.get(KIND, settings.backend)
    from_settings = getattr(backend_class, "from_settings", None)
    if callable(from_settings):
        return from_settings(settings, log=log, base_dir=base_dir)
    if settings.lexicon_dir:
        return backend_class(lexicon_dir=resolve_path(settings.lexicon_dir, base_dir))
    return backend_class()


def resolve_path(value: str, base_dir: Path | None) -> Path:
    """Resolve a configured path against the config folder (absolute paths unchanged)."""
    path = Path(value).expanduser()
    if path.is_absolute() or base_dir is None:
        return path
    return base_dir / path
