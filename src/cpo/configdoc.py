"""Generate the key reference of docs/configuration.md from the config models.

The reference is derived from the same pydantic models that validate the files
(for the service sections: the settings model of each of cpo's own registered
backends), so it cannot drift: a test regenerates it and compares it with the docs.
Run ``python -m cpo.configdoc`` to print it.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from cpo import registry
from cpo.config import CONFIG_FILES
from cpo.registry import ServiceSettings

BEGIN = "<!-- BEGIN GENERATED KEY REFERENCE -->"
END = "<!-- END GENERATED KEY REFERENCE -->"
MAX_DEFAULT = 60


def reference_markdown() -> str:
    """One table per config file: key path, type, default."""
    parts = [BEGIN]
    for file_name, model in CONFIG_FILES.items():
        parts.append(f"\n### `{file_name}`\n")
        parts.append("| key | type | default |")
        parts.append("| --- | --- | --- |")
        parts.extend(_rows(model, prefix=""))
    parts.append("\n" + END)
    return "\n".join(parts)


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    """Table rows for every field of ``model``, recursing into nested models."""
    rows: list[str] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = _nested_model(field.annotation)
        if nested is not None and not _is_container(field.annotation):
            rows.extend(_rows(nested, prefix=f"{key}."))
            continue
        default = field.get_default(call_default_factory=True)
        rows.append(f"| `{key}` | {_type_text(field.annotation)} | {_default_text(default)} |")
    if isinstance(model, type) and issubclass(model, ServiceSettings):
        rows.extend(_backend_rows(model, prefix))
    return rows


def _backend_rows(service: type[ServiceSettings], prefix: str) -> list[str]:
    """Rows for each of cpo's own backends' block (from its ``settings_model``)."""
    rows: list[str] = []
    for name in registry.bundled(service.kind):
        block = registry.registration(service.kind, name).settings_model()
        if block.model_fields:
            rows.extend(_rows(block, prefix=f"{prefix}{name}."))
        else:
            rows.append(f"| `{prefix}{name}` | mapping (no settings) | `{{}}` |")
    return rows


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _is_container(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (list, dict, tuple)


def _type_text(annotation: Any) -> str:
    """A short, readable type name (``list[Rule]``, ``float | null``, ``one of a, b``)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is typing.Annotated:
        return _type_text(args[0])
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_text(a) for a in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return f"list[{_type_text(args[0])}]"
    if origin is not None:
        inner = ", ".join(_type_text(a) for a in args)
        return f"{origin.__name__}[{inner}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _default_text(default: Any) -> str:
    """The default as compact JSON, shortened when long."""
    # Models at any depth (a list of rules, a dict of dicts of overrides) as their JSON form.
    text = json.dumps(to_jsonable_python(default), default=str, ensure_ascii=False)
    if len(text) > MAX_DEFAULT:
        text = text[: MAX_DEFAULT - 3] + "..."
    return f"`{text}`".replace("|", "\\|")


if __name__ == "__main__":
    print(reference_markdown())
