"""cpo.yamlio parses with libyaml when available, with PyYAML's own results and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import cpo
from cpo.errors import ConfigError
from cpo.yamlio import _FAST_LOADER, read_yaml_mapping

PACKAGED = sorted((Path(cpo.__file__).parent / "data").rglob("*.yaml"))


def test_libyaml_is_used_when_pyyaml_has_it() -> None:
    assert (_FAST_LOADER is not None) == yaml.__with_libyaml__


@pytest.mark.parametrize("path", PACKAGED, ids=lambda p: p.name)
def test_packaged_files_parse_as_the_pure_python_loader_parses_them(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert read_yaml_mapping(path, text, allow_empty=True) == yaml.safe_load(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\n b: 2\n",
        "key: [unclosed\n",
        "a: 1\na: {x: y\n",
        "tab:\n\t- x\n",
        "- just\n- a list\n",
    ],
)
def test_malformed_yaml_reports_the_pure_python_loaders_error(tmp_path: Path, text: str) -> None:
    """With or without libyaml, the message, line and column are PyYAML's own."""
    path = tmp_path / "experiment_config.yaml"
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = exc.problem_mark  # type: ignore[attr-defined]
        expected = f"at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"  # type: ignore[attr-defined]
        with pytest.raises(ConfigError) as raised:
            read_yaml_mapping(path, text)
        assert expected in str(raised.value)
    else:
        with pytest.raises(ConfigError, match="expected a YAML mapping"):
            read_yaml_mapping(path, text)
