"""Backend registry and the backend contract shared by retrieval, generation and safety.

Every backend is a class with

* ``settings_model``: a :class:`BackendSettings` subclass, its block in
  azure_config.yaml (``services.<kind>.<name>``; a backend without options has
  an empty one);
* ``from_settings(settings, ctx)``: the one way it is built, from its validated
  block and what the stage provides (``ctx``: a ``RetrievalContext``,
  ``GenerationContext`` or ``SafetyContext``, see each stage's ``base`` module).

A service section is ``backend:`` plus one block per registered backend
(:class:`ServiceSettings`); each block is validated against its backend's model.

Registering: ``register(kind, name, "module:Class", extra=...)`` in the stage
package's ``__init__.py``, or, from another distribution, an entry point in the
group :data:`ENTRY_POINT_GROUP` named ``<kind>.<name>`` (an optional ``[extra]``
names the extra of that distribution to suggest when an import fails)::

    [project.entry-points."cpo.backends"]
    "retrieval.my_search" = "my_package.search:MySearchRetriever [search]"

Targets given as strings are imported only when needed, and a backend module
imports its optional SDK only when the backend is built, so a missing SDK is
reported (with the install hint from the registration) only to whoever selects
that backend.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import ConfigDict, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails

from cpo.errors import BackendUnavailable, ConfigError
from cpo.settings_base import StrictModel

#: The stage kinds that have backends.
KINDS = ("retrieval", "generation", "safety")
#: Entry-point group through which other distributions register backends.
ENTRY_POINT_GROUP = "cpo.backends"


class BackendSettings(StrictModel):
    """Base of a backend's settings block (``services.<kind>.<backend>``).

    Class attributes:
        endpoint_fields: Fields holding a URL the backend sends its key to; the
            config check refuses plain ``http://`` to a non-loopback host there
            unless the block has ``allow_insecure_http: true``.
        prompt_files: Files of the prompts folder the backend reads; the config
            check requires them when the backend is selected.
    """

    endpoint_fields: ClassVar[tuple[str, ...]] = ()
    prompt_files: ClassVar[tuple[str, ...]] = ()

    def problems_when_selected(self) -> dict[str, str]:
        """Fields that keep the block from running as the selected backend, with why.

        Blocks of backends that are not selected may stay incomplete (an Azure
        block without an endpoint is fine while an offline backend runs).
        """
        return {}


class NoSettings(BackendSettings):
    """The (empty) settings block of a backend without options."""


@dataclass
class Registration:
    """One registered backend.

    Attributes:
        kind: ``retrieval``, ``generation`` or ``safety``.
        name: The name selected by ``services.<kind>.backend``.
        target: The class, or ``"module:attribute"`` imported on first use.
        extra: The cpo extra that installs its optional dependencies (install hint).
        distribution: The distribution that registered it through an entry point.
    """

    kind: str
    name: str
    target: Any
    extra: str | None = None
    distribution: str | None = None

    @property
    def bundled(self) -> bool:
        """True for cpo's own backends (their blocks are part of the default config)."""
        if self.distribution is not None:
            return False
        module = self.target if isinstance(self.target, str) else self.target.__module__
        return str(module).startswith("cpo.")

    def load(self) -> Any:
        """The backend class (imported on first use)."""
        if isinstance(self.target, str):
            module_name, _, attr = self.target.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                raise self.unavailable(exc) from exc
            self.target = getattr(module, attr)
        return self.target

    def settings_model(self) -> type[BackendSettings]:
        """The backend's settings model."""
        model = getattr(self.load(), "settings_model", None)
        if not (isinstance(model, type) and issubclass(model, BackendSettings)):
            raise ConfigError(
                f"the {self.kind} backend '{self.name}' has no settings_model",
                hint="give the backend class a settings_model (a cpo.registry.BackendSettings "
                "subclass; NoSettings for a backend without options)",
            )
        return model

    def install_hint(self) -> str:
        """How to install what the backend needs (the extra of cpo or of its distribution)."""
        package = self.distribution or "cpo"
        if self.extra:
            return f"pip install '{package}[{self.extra}]'"
        if self.distribution:
            return f"reinstall '{self.distribution}' with its dependencies"
        return "install the package it imports"

    def unavailable(self, exc: ModuleNotFoundError) -> Exception:
        """A missing optional dependency as :class:`BackendUnavailable` (cpo's own: re-raised)."""
        if (exc.name or "").split(".")[0] == "cpo":
            return exc
        return BackendUnavailable(
            f"the {self.kind} backend '{self.name}' needs the package '{exc.name}', "
            "which is not installed",
            hint=self.install_hint(),
        )


_REGISTRY: dict[tuple[str, str], Registration] = {}
_KINDS_LOADED: set[str] = set()


def register(kind: str, name: str, target: Any, *, extra: str | None = None) -> None:
    """Register a backend class (or a lazy ``"module:attr"`` string) under a name.

    Args:
        kind: ``retrieval``, ``generation`` or ``safety``.
        name: The value of ``services.<kind>.backend`` that selects it.
        target: The class or ``"module:attribute"``.
        extra: The cpo extra with its optional dependencies (shown as the install hint).
    """
    _REGISTRY[(kind, name)] = Registration(kind, name, target, extra)


def available(kind: str) -> list[str]:
    """Return the sorted backend names registered for a stage kind."""
    _load_kind(kind)
    return sorted(name for k, name in _REGISTRY if k == kind)


def registration(kind: str, name: str) -> Registration:
    """The registration of ``name``.

    Raises:
        ConfigError: no backend of that name exists.
    """
    _load_kind(kind)
    try:
        return _REGISTRY[(kind, name)]
    except KeyError:
        names = ", ".join(available(kind)) or "(none)"
        raise ConfigError(
            f"unknown {kind} backend '{name}'",
            hint=f"choose one of: {names}",
        ) from None


def get(kind: str, name: str) -> Any:
    """Return the backend class registered as ``name`` for ``kind``.

    Raises:
        ConfigError: no backend of that name exists.
        BackendUnavailable: the backend's module needs a package that is missing.
    """
    return registration(kind, name).load()


def bundled(kind: str) -> list[str]:
    """The names of cpo's own backends of ``kind``, in registration order."""
    _load_kind(kind)
    return [name for (k, name), entry in _REGISTRY.items() if k == kind and entry.bundled]


def build(kind: str, name: str, settings: BackendSettings, ctx: Any) -> Any:
    """Build a backend with ``from_settings(settings, ctx)``.

    Raises:
        ConfigError: unknown backend, or its settings cannot run.
        BackendUnavailable: an optional dependency is missing (hint from the registration).
    """
    entry = registration(kind, name)
    cls = entry.load()
    try:
        return cls.from_settings(settings, ctx)
    except ModuleNotFoundError as exc:
        raise entry.unavailable(exc) from exc


def _load_kind(kind: str) -> None:
    """Import the stage package (its ``register`` lines) and the entry points of ``kind``."""
    if kind in _KINDS_LOADED:
        return
    _KINDS_LOADED.add(kind)
    try:
        importlib.import_module(f"cpo.{kind}")
    except ModuleNotFoundError as exc:
        if exc.name != f"cpo.{kind}":
            raise
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        entry_kind, _, name = entry_point.name.partition(".")
        if entry_kind == kind and name:
            distribution = entry_point.dist.name if entry_point.dist else None
            extra = ",".join(entry_point.extras) or None  # "module:Class [extra]"
            target = f"{entry_point.module}:{entry_point.attr}"
            _REGISTRY.setdefault(
                (kind, name), Registration(kind, name, target, extra, distribution)
            )


# ----------------------------------------------------------------------------- service section


class ServiceSettings(StrictModel):
    """A service section: ``backend:`` plus one settings block per backend.

    Blocks are kept for cpo's own backends, the selected backend and any other
    registered backend whose block is given; each is validated against its
    backend's ``settings_model`` (a block left out takes that model's defaults).
    Subclasses set :attr:`kind`, the shared keys as fields, and
    :attr:`legacy_keys`: keys of the old flat section (before backends carried
    their own settings) and the blocks they now belong to. An old key is moved
    into those blocks on load (see "Migrating" in docs/configuration.md); giving
    it both ways is an error.
    """

    model_config = ConfigDict(extra="allow", frozen=True, validate_default=True)

    kind: ClassVar[str] = ""
    legacy_keys: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    backend: str

    @classmethod
    def config_keys(cls) -> list[str]:
        """Every key the section accepts: its fields, then the registered backends."""
        return [*cls.model_fields, *available(cls.kind)]

    @classmethod
    def block_model(cls, key: str) -> type[BackendSettings] | None:
        """The settings model of the block ``key`` (None when no backend has that name)."""
        if key not in available(cls.kind):
            return None
        return registration(cls.kind, key).settings_model()

    @model_validator(mode="before")
    @classmethod
    def _validate_blocks(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data, errors = _migrate_legacy(dict(data), cls.legacy_keys)
        names = available(cls.kind)
        errors += [
            {"type": "extra_forbidden", "loc": (key,), "input": data[key]}
            for key in data
            if key not in cls.model_fields and key not in names
        ]
        selected = data.get("backend", cls.model_fields["backend"].default)
        wanted = {*bundled(cls.kind), *(k for k in data if k in names)}
        if selected in names:
            wanted.add(selected)
        result = {key: value for key, value in data.items() if key in cls.model_fields}
        for name in [*bundled(cls.kind), *sorted(wanted - set(bundled(cls.kind)))]:
            block = data.get(name) or {}
            try:
                result[name] = registration(cls.kind, name).settings_model().model_validate(block)
            except ValidationError as exc:
                errors.extend(_prefixed(exc, name))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return result

    @field_validator("backend")
    @classmethod
    def _backend_is_registered(cls, value: str) -> str:
        names = available(cls.kind)
        if value not in names:
            raise ValueError(f"unknown {cls.kind} backend; choose one of: {', '.join(names)}")
        return value

    @model_validator(mode="after")
    def _selected_block_can_run(self) -> ServiceSettings:
        problems = self.selected.problems_when_selected()
        if problems:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    _value_error((self.backend, field), getattr(self.selected, field), message)
                    for field, message in problems.items()
                ],
            )
        return self

    @property
    def selected(self) -> BackendSettings:
        """The settings block of the selected backend."""
        return self.settings_for(self.backend)

    def settings_for(self, name: str) -> BackendSettings:
        """The settings block of the backend ``name`` (its defaults when not given).

        Raises:
            ConfigError: no backend of that name is registered.
        """
        block = (self.__pydantic_extra__ or {}).get(name)
        if isinstance(block, BackendSettings):
            return block
        return registration(self.kind, name).settings_model()()


def _migrate_legacy(
    data: dict[str, Any], legacy: Mapping[str, tuple[str, ...]]
) -> tuple[dict[str, Any], list[InitErrorDetails]]:
    """Move keys of the old flat section into the blocks that own them now.

    Returns:
        The migrated section, and an error for each key given both the old way
        and inside its block.
    """
    errors: list[InitErrorDetails] = []
    for key in [k for k in data if k in legacy]:
        value = data.pop(key)
        for block_name in legacy[key]:
            block = data.get(block_name) or {}
            if not isinstance(block, Mapping):
                continue  # reported as the block's own type error
            if key in block:
                message = (
                    f"given twice: here (the old layout) and as {block_name}.{key}; "
                    f"keep only {block_name}.{key}"
                )
                errors.append(_value_error((key,), value, message))
                continue
            data[block_name] = {**block, key: value}
    return data, errors


def _value_error(loc: tuple[str, ...], value: Any, message: str) -> InitErrorDetails:
    """A pydantic error detail for ``message`` at ``loc``."""
    return {
        "type": "value_error",
        "loc": loc,
        "input": value,
        "ctx": {"error": ValueError(message)},
    }


def _prefixed(exc: ValidationError, name: str) -> list[InitErrorDetails]:
    """The errors of one block, located under the block's key."""
    details: list[InitErrorDetails] = []
    for error in exc.errors():
        detail: InitErrorDetails = {
            "type": error["type"],
            "loc": (name, *error["loc"]),
            "input": error.get("input"),
        }
        if "ctx" in error:
            detail["ctx"] = error["ctx"]
        details.append(detail)
    return details
