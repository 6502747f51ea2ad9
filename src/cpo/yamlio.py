"""Reading YAML files and explaining validation errors, for every YAML file cpo reads.

Config files, tone files and the safety lexicon all go through these two
functions, so every malformed file or bad key is reported the same way: the
file, the key path, what was expected and what was found.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from cpo.errors import ConfigError

#: libyaml's safe loader when PyYAML was built with it (about ten times faster).
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)


def _parse(source: str) -> Any:
    """Parse YAML safely: with libyaml when available, else (and for errors) pure Python.

    A document libyaml rejects is parsed again by PyYAML's own loader, so the
    error (message, line and column) is the same with or without libyaml.
    """
    if _FAST_LOADER is not None:
        try:
            return yaml.load(source, Loader=_FAST_LOADER)  # a safe loader (CSafeLoader)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(source)


def read_yaml_mapping(
    path: Path, text: str | None = None, *, allow_empty: bool = False
) -> dict[str, Any] | None:
    """Read a YAML mapping, turning every problem into a located ConfigError.

    Args:
        path: The file (read unless ``text`` is given; always named in errors).
        text: The file's content when the caller already has it.
        allow_empty: Return ``None`` for an empty or comment-only file instead of failing.
    """
    try:
        source = path.read_text(encoding="utf-8") if text is None else text
        data = _parse(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{path}: malformed YAML{where}: {problem}",
            hint="check indentation, colons and quotes around that line; "
            "quote text containing ':' or '{'",
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file", hint="save it as UTF-8") from None
    if data is None:
        if allow_empty:
            return None
        raise ConfigError(
            f"{path}: the file is empty; expected a YAML mapping",
            hint="restore it with `cpo init DIR` or delete the keys you do not need instead",
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a YAML mapping at the top level, found {_type_name(data)}",
        )
    return data


def describe_validation_error(
    path: Path, model: type[BaseModel], exc: ValidationError, what: str = "configuration"
) -> str:
    """Turn pydantic's errors into one message: file, key path, expected, found."""
    lines = [f"{path}: invalid {what} ({exc.error_count()} problem(s))"]
    for error in exc.errors():
        loc = [part for part in error["loc"] if not str(part).startswith("function-")]
        key = ".".join(str(part) for part in loc) or "(top level)"
        found = error.get("input")
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            expected = f"one of: {', '.join(allowed)}" if allowed else "no extra keys"
            lines.append(f"  key '{key}': unknown key; expected {expected}")
            continue
        if error["type"] == "missing":
            lines.append(f"  key '{key}': required key is missing")
            continue
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  key '{key}': {message}; found {_show(found)}")
    return "\n".join(lines)


def _allowed_keys(model: type[BaseModel], loc: list[Any]) -> list[str]:
    """Return the field names allowed at a key path of a model (best effort)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None and hasattr(current, "block_model"):
            current = current.block_model(part)  # a backend's block in a service section
            continue
        current = _model_in(field.annotation) if field else None
    if current is None or not hasattr(current, "model_fields"):
        return []
    if hasattr(current, "config_keys"):
        return list(current.config_keys())  # fields plus the registered backends' blocks
    return list(current.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """Find a pydantic model inside an annotation such as ``list[Rule]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _show(value: Any) -> str:
    """Show a found value briefly, with its YAML type."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({_type_name(value)})"


def _type_name(value: Any) -> str:
    """Name a parsed YAML value's type in YAML's words."""
    names = {dict: "mapping", list: "list", str: "string", int: "integer", float: "number"}
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return names.get(type(value), type(value).__name__)


_ENV_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env_vars(data: Any, path: Path, environ: Mapping[str, str] | None = None) -> Any:
    """Replace ``${NAME}`` (or ``${NAME:-default}``) in every string value from the environment.

    ``$$`` stands for a literal dollar sign. Keys are never expanded, only values.

    Raises:
        ConfigError: a referenced variable is unset and has no default; the message
            names the file, the key path and the variable.
    """
    env = os.environ if environ is None else environ
    return _expand(data, path, env, [])


def _expand(value: Any, path: Path, env: Mapping[str, str], loc: list[str]) -> Any:
    """Walk a parsed YAML value, expanding strings (see :func:`expand_env_vars`)."""
    if isinstance(value, dict):
        return {k: _expand(v, path, env, [*loc, str(k)]) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, path, env, [*loc, str(i)]) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{path}: key '{'.'.join(loc)}' refers to environment variable {name}, "
            "which is not set",
            hint=f"export {name}=... before running cpo, or write ${{{name}:-default}} "
            "to give a default",
        )

    return _ENV_REFERENCE.sub(replace, value)
