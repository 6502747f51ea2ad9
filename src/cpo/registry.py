"""Backend registry: one place that maps (stage kind, backend name) to a class.

Adding a backend is one new module in the stage's folder plus one ``register``
line in that folder's ``__init__.py``. Targets may be given as a class or as a
``"module:attribute"`` string; strings are imported only when the backend is
chosen, so optional dependencies (the Azure SDKs, ``openai``) are needed only
by the users who select those backends.
"""

from __future__ import annotations

import importlib
from typing import Any

from cpo.errors import BackendUnavailable, ConfigError

_REGISTRY: dict[tuple[str, str], Any] = {}
_KINDS_LOADED: set[str] = set()

#: Which extra to install for a backend that needs an optional dependency.
_EXTRA_FOR_MODULE = {
    "openai": "openai",
    "azure": "azure",
}


def register(kind: str, name: str, target: Any) -> None:
    """Register a backend class (or a lazy ``"module:attr"`` string) under a name."""
    _REGISTRY[(kind, name)] = target


def available(kind: str) -> list[str]:
    """Return the sorted backend names registered for a stage kind."""
    _load_kind(kind)
    return sorted(name for k, name in _REGISTRY if k == kind)


def get(kind: str, name: str) -> Any:
    """Return the backend class registered as ``name`` for ``kind``.

    Raises:
        ConfigError: no backend of that name exists.
        BackendUnavailable: the backend's optional dependency is missing.
    """
    _load_kind(kind)
    try:
        target = _REGISTRY[(kind, name)]
    except KeyError:
        names = ", ".join(available(kind)) or "(none)"
        raise ConfigError(
            f"unknown {kind} backend '{name}'",
            hint=f"choose one of: {names}",
        ) from None
    if isinstance(target, str):
        target = _import_target(kind, name, target)
        _REGISTRY[(kind, name)] = target
    return target


def _load_kind(kind: str) -> None:
    """Import the stage package so its ``register`` lines run."""
    if kind in _KINDS_LOADED:
        return
    _KINDS_LOADED.add(kind)
    try:
        importlib.import_module(f"cpo.{kind}")
    except ModuleNotFoundError as exc:
        if exc.name != f"cpo.{kind}":
            raise


def _import_target(kind: str, name: str, target: str) -> Any:
    """Import a ``"module:attr"`` target, explaining a missing optional dependency."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing.startswith("cpo"):
            raise
        extra = _EXTRA_FOR_MODULE.get(missing, "azure")
        raise BackendUnavailable(
            f"the {kind} backend '{name}' needs the package '{exc.name}', which is not installed",
            hint=f"pip install 'cpo[{extra}]'",
        ) from exc
    return getattr(module, attr)
