"""The packaged config files and the config models' defaults are one source.

Each packaged YAML file (what ``cpo init`` writes and what a run without
``--config`` uses) must load to exactly its model's defaults, so a key left out
of a user's config means what the packaged file says. Exceptions are listed
here with the reason.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from cpo.config import CONFIG_FILES, load_file

PACKAGED = Path(str(resources.files("cpo") / "data" / "config"))

#: Keys (dotted paths) where the packaged file deliberately differs from the model default.
EXCEPTIONS: dict[str, dict[str, str]] = {
    "experiment_config.yaml": {
        # The packaged file names the bundled sample brand so the sample run has a
        # sender; a config without brand: names no brand rather than a fictional one.
        "brand": "sample brand in the packaged file; default: no brand",
    },
}


def _without(data: dict[str, Any], dotted: str) -> None:
    """Remove the key at a dotted path from nested mappings (if present)."""
    *parents, last = dotted.split(".")
    for key in parents:
        data = data.get(key, {})
    data.pop(last, None)


def _differences(model: Any, packaged: Any, path: str = "") -> list[str]:
    """Dotted paths where two nested JSON-like values differ, with both values."""
    if isinstance(model, dict) and isinstance(packaged, dict):
        return [
            difference
            for key in sorted(set(model) | set(packaged), key=str)
            for difference in _differences(
                model.get(key, "<missing>"), packaged.get(key, "<missing>"), f"{path}.{key}"
            )
        ]
    if model != packaged:
        return [f"{path.lstrip('.')}: model default {model!r}, packaged {packaged!r}"]
    return []


def _dotted_keys(data: Any, path: str = "") -> set[str]:
    """Every dotted key path of nested mappings."""
    if not isinstance(data, dict):
        return set()
    keys: set[str] = set()
    for key, value in data.items():
        keys |= {f"{path}{key}"} | _dotted_keys(value, f"{path}{key}.")
    return keys


@pytest.mark.parametrize("name", sorted(CONFIG_FILES))
def test_packaged_file_equals_its_models_defaults(name: str) -> None:
    model = CONFIG_FILES[name]
    defaults = model().model_dump(mode="json")
    packaged = load_file(PACKAGED / name, model).model_dump(mode="json")
    for dotted in EXCEPTIONS.get(name, {}):
        _without(defaults, dotted)
        _without(packaged, dotted)
    assert _differences(defaults, packaged) == []


@pytest.mark.parametrize("name", sorted(CONFIG_FILES))
def test_packaged_file_shows_every_setting(name: str) -> None:
    defaults = CONFIG_FILES[name]().model_dump(mode="json", exclude_none=True)
    written = yaml.safe_load((PACKAGED / name).read_text(encoding="utf-8"))
    assert sorted(_dotted_keys(defaults) - _dotted_keys(written)) == []


def test_exceptions_name_keys_that_exist() -> None:
    for name, keys in EXCEPTIONS.items():
        fields = _dotted_keys(yaml.safe_load((PACKAGED / name).read_text(encoding="utf-8")))
        assert set(keys) <= fields, name


def test_the_comparison_sees_a_changed_default(tmp_path: Path) -> None:
    name = "experiment_config.yaml"
    text = (PACKAGED / name).read_text(encoding="utf-8")
    changed = tmp_path / name
    changed.write_text(text.replace("seed: 42", "seed: 43", 1), encoding="utf-8")
    model = CONFIG_FILES[name]
    packaged = load_file(changed, model).model_dump(mode="json")
    defaults = model().model_dump(mode="json")
    assert _differences(defaults["campaign"], packaged["campaign"]) == [
        "seed: model default 42, packaged 43"
    ]
