"""Load-time checks across the config folder: allocation, prompts, ${VAR}, insecure http.

Each problem must be reported when the config is loaded, before any stage
writes a file, with the file, the key and the fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cpo.cli import cli
from cpo.config import init_config, load_config
from cpo.errors import ConfigError


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """An editable copy of the default config."""
    target = tmp_path / "config"
    init_config(target)
    return target


def edit_yaml(path: Path, change) -> None:
    """Load a YAML file, apply ``change`` to the mapping, write it back."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def set_allocation(config_dir: Path, allocation: dict) -> None:
    """Set experiment.allocation in the config copy."""

    def change(data: dict) -> None:
        data["experiment"]["allocation"] = allocation

    edit_yaml(config_dir / "experiment_config.yaml", change)


def run_with(config_dir: Path, out: Path):
    """Run `cpo run` with a config folder through the real CLI."""
    return CliRunner().invoke(cli, ["run", "--out", str(out), "--config", str(config_dir)])


def test_allocation_without_treatment_weight_stops_before_any_stage(config_dir, tmp_path):
    set_allocation(config_dir, {"control": 25})
    out = tmp_path / "run"
    result = run_with(config_dir, out)
    assert result.exit_code == 1
    assert "no treatment arm has a positive weight" in result.output
    assert "experiment.allocation" in result.output
    assert "Traceback" not in result.output
    assert not (out / "segments.csv").exists()


def test_allocation_with_zero_treatment_weights_is_refused(config_dir):
    set_allocation(config_dir, {"control": 1, "treatment_1": 0, "treatment_2": 0})
    with pytest.raises(ConfigError, match="no treatment arm has a positive weight"):
        load_config(config_dir)


def test_allocation_naming_an_unknown_arm_is_refused_at_load(config_dir, tmp_path):
    set_allocation(config_dir, {"control": 1, "treatment_1": 1, "treatment_7": 1})
    result = run_with(config_dir, tmp_path / "run")
    assert result.exit_code == 1
    assert "['treatment_7'] do not exist" in result.output
    assert not (tmp_path / "run" / "segments.csv").exists()


def test_partial_allocation_with_one_treatment_arm_loads(config_dir):
    set_allocation(config_dir, {"control": 2, "treatment_2": 1})
    assert load_config(config_dir).experiment.experiment.allocation == {
        "control": 2,
        "treatment_2": 1,
    }


def test_experiment_tone_not_generated_is_refused(config_dir):
    def change(data: dict) -> None:
        data["experiment"]["tones"] = ["urgent", "playful"]

    edit_yaml(config_dir / "experiment_config.yaml", change)
    with pytest.raises(ConfigError, match=r"\['playful'\] are not written by generation.tones"):
        load_config(config_dir)


def test_empty_prompts_folder_lists_every_missing_file(config_dir, tmp_path):
    for file in sorted((config_dir / "prompts").rglob("*"), reverse=True):
        file.unlink() if file.is_file() else file.rmdir()
    result = run_with(config_dir, tmp_path / "run")
    assert result.exit_code == 1
    for name in ("control_message.txt", "footer.txt", "tones/urgent.yaml", "tones/friendly.yaml"):
        assert name in result.output
    assert "5 prompt file(s) missing" in result.output
    assert not (tmp_path / "run" / "segments.csv").exists()


def test_llm_backend_also_needs_the_generation_prompt(config_dir):
    (config_dir / "prompts" / "generation_prompt.txt").unlink()
    assert load_config(config_dir)  # the offline composer does not use it

    def change(data: dict) -> None:
        data["services"]["generation"]["backend"] = "openai"

    edit_yaml(config_dir / "azure_config.yaml", change)
    with pytest.raises(ConfigError, match="generation_prompt.txt"):
        load_config(config_dir)


def test_broken_control_message_is_reported_at_load(config_dir):
    (config_dir / "prompts" / "control_message.txt").write_text("no subject line\n\nbody\n")
    with pytest.raises(ConfigError, match="Subject:"):
        load_config(config_dir)


def test_env_vars_are_expanded(config_dir, monkeypatch):
    monkeypatch.setenv("CPO_TEST_SEARCH", "https://search.example.net")

    def change(data: dict) -> None:
        data["services"]["retrieval"]["azure_search"]["endpoint"] = "${CPO_TEST_SEARCH}"
        data["services"]["generation"]["openai"]["model"] = "${CPO_TEST_UNSET_MODEL:-gpt-x}"
        data["services"]["generation"]["openai"]["api_key_env"] = "KEY$$1"

    edit_yaml(config_dir / "azure_config.yaml", change)
    services = load_config(config_dir).services
    assert services.retrieval.settings_for("azure_search").endpoint == "https://search.example.net"
    openai = services.generation.settings_for("openai")
    assert openai.model == "gpt-x"
    assert openai.api_key_env == "KEY$1"


def test_unset_env_var_is_named_with_file_and_key(config_dir, monkeypatch, tmp_path):
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)

    def change(data: dict) -> None:
        data["services"]["generation"]["backend"] = "azure_openai"
        data["services"]["generation"]["azure_openai"]["azure_endpoint"] = (
            "${AZURE_OPENAI_ENDPOINT}"
        )
        data["services"]["generation"]["azure_openai"]["deployment"] = "gpt-4o"

    edit_yaml(config_dir / "azure_config.yaml", change)
    result = run_with(config_dir, tmp_path / "run")
    assert result.exit_code == 1
    assert "azure_config.yaml" in result.output
    assert "services.generation.azure_openai.azure_endpoint" in result.output
    assert "AZURE_OPENAI_ENDPOINT, which is not set" in result.output


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://llm.internal.example:8000/v1", True),
        ("http://10.1.2.3:8000/v1", True),
        ("https://llm.internal.example/v1", False),
        ("http://127.0.0.1:8000/v1", False),
        ("http://localhost:11434/v1", False),
        ("http://[::1]:8000/v1", False),
    ],
)
def test_key_over_plain_http_to_another_host_is_refused(config_dir, url, refused):
    def change(data: dict) -> None:
        data["services"]["generation"]["backend"] = "openai"
        data["services"]["generation"]["openai"]["base_url"] = url

    edit_yaml(config_dir / "azure_config.yaml", change)
    if not refused:
        assert load_config(config_dir).services.generation.selected.base_url == url
        return
    with pytest.raises(ConfigError) as info:
        load_config(config_dir)
    message = str(info.value)
    assert "services.generation.openai.base_url" in message
    assert "services.generation.openai.allow_insecure_http: true" in message


def test_allow_insecure_http_lets_it_through(config_dir):
    def change(data: dict) -> None:
        block = data["services"]["safety"]["azure_content_safety"]
        data["services"]["safety"]["backend"] = "azure_content_safety"
        block.update(endpoint="http://safety.lan.example", allow_insecure_http=True)

    edit_yaml(config_dir / "azure_config.yaml", change)
    selected = load_config(config_dir).services.safety.selected
    assert selected.endpoint == "http://safety.lan.example"


def test_offline_backend_ignores_an_unused_http_endpoint(config_dir):
    def change(data: dict) -> None:
        data["services"]["retrieval"]["azure_search"]["endpoint"] = "http://search.lan.example"

    edit_yaml(config_dir / "azure_config.yaml", change)
    assert load_config(config_dir).services.retrieval.backend == "sqlite_fts"
