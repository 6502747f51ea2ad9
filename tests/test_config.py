"""Config loading and validation: defaults, `init` copies, and every error shape."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cpo.config import CONFIG_FILES, init_config, load_config
from cpo.errors import ConfigError


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """An editable copy of the default config."""
    target = tmp_path / "config"
    init_config(target)
    return target


def test_defaults_load_with_local_backends():
    config = load_config()
    assert config.services.retrieval.backend == "sqlite_fts"
    assert config.services.generation.backend == "grounded"
    assert config.services.safety.backend == "local"
    assert config.experiment.segmentation.method == "rules"
    assert len(config.experiment.segmentation.rules) >= 3


def test_init_copy_loads_and_hashes_like_the_defaults(config_dir: Path):
    for name in CONFIG_FILES:
        assert (config_dir / name).is_file()
    assert (config_dir / "prompts").is_dir()
    assert load_config(config_dir).sha256() == load_config().sha256()


def test_init_refuses_non_empty_folder(config_dir: Path):
    with pytest.raises(ConfigError, match="not empty"):
        init_config(config_dir)
    assert init_config(config_dir, force=True)


def test_edit_changes_the_loaded_value_and_hash(config_dir: Path):
    path = config_dir / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text())
    data["campaign"]["seed"] = 7
    path.write_text(yaml.safe_dump(data))
    config = load_config(config_dir)
    assert config.experiment.campaign.seed == 7
    assert config.sha256() != load_config().sha256()


@pytest.mark.parametrize("name", list(CONFIG_FILES))
def test_missing_file_is_named(config_dir: Path, name: str):
    (config_dir / name).unlink()
    with pytest.raises(ConfigError) as info:
        load_config(config_dir)
    assert name in str(info.value) and "not found" in str(info.value)


def test_malformed_yaml_names_file_and_line(config_dir: Path):
    path = config_dir / "azure_config.yaml"
    path.write_text("services:\n  generation:\n    backend: [grounded\n")
    with pytest.raises(ConfigError) as info:
        load_config(config_dir)
    message = str(info.value)
    assert "azure_config.yaml" in message and "malformed YAML" in message and "line" in message


def test_unknown_key_names_path_and_allowed_keys(config_dir: Path):
    path = config_dir / "azure_config.yaml"
    data = yaml.safe_load(path.read_text())
    data["services"]["generation"]["temprature"] = 0.2
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(config_dir)
    message = str(info.value)
    assert "services.generation.temprature" in message
    assert "unknown key" in message and "backend" in message


def test_wrong_type_names_expected_and_found(config_dir: Path):
    path = config_dir / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text())
    data["campaign"]["seed"] = "forty-two"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(config_dir)
    message = str(info.value)
    assert "experiment_config.yaml" in message
    assert "campaign.seed" in message
    assert "integer" in message and "'forty-two' (string)" in message


def test_bad_rule_operator_value_is_explained(config_dir: Path):
    path = config_dir / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text())
    data["segmentation"]["rules"][0]["conditions"][0] = {
        "column": "tier",
        "op": "in",
        "value": "Gold",
    }
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"segmentation\.rules\.0\.conditions\.0.*needs a list"):
        load_config(config_dir)


@pytest.mark.parametrize("content", ["", "# only a comment\n"])
def test_empty_file_is_an_error(config_dir: Path, content: str):
    (config_dir / "safety_thresholds.yaml").write_text(content)
    with pytest.raises(ConfigError, match="safety_thresholds.yaml: the file is empty"):
        load_config(config_dir)


def test_top_level_list_is_an_error(config_dir: Path):
    (config_dir / "safety_thresholds.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a YAML mapping.*found list"):
        load_config(config_dir)


def test_missing_folder_and_missing_prompts(tmp_path: Path, config_dir: Path):
    with pytest.raises(ConfigError, match="config folder not found"):
        load_config(tmp_path / "nope")
    for file in (config_dir / "prompts").rglob("*"):
        if file.is_file():
            file.unlink()
    for folder in sorted((config_dir / "prompts").rglob("*"), reverse=True):
        folder.rmdir()
    (config_dir / "prompts").rmdir()
    with pytest.raises(ConfigError, match="prompts folder not found"):
        load_config(config_dir)
