"""Configs written before backends carried their own settings keep working.

Before, each service section was flat (``services.retrieval.endpoint``); now it is
``backend:`` plus one block per backend (``services.retrieval.azure_search.endpoint``).
An old key moves into the blocks that own it on load; a key given both ways is an
error that says which one to keep.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.config import init_config, load_config
from cpo.errors import ConfigError
from cpo.sample_data import bundled_content

#: An azure_config.yaml in the old flat layout, with values that differ from the defaults.
OLD_LAYOUT = """
services:
  retrieval:
    backend: sqlite_fts
    db_path: {db_path}
    endpoint: https://search-eu.example.net
    index_name: acme-bakery-content
    query_type: simple
    timeout_s: 7
  generation:
    backend: grounded
    base_url: http://127.0.0.1:11434/v1
    model: llama3.1
    azure_endpoint: https://acme.openai.azure.com
    deployment: campaign-writer
    temperature: 0.2
    price_per_1k_prompt: 0.0
  safety:
    backend: local
    endpoint: https://acme.cognitiveservices.azure.com
    blocklists: [acme-banned]
    concurrency: 2
    lexicon_dir: lexicon
"""


@pytest.fixture
def old_config(tmp_path: Path) -> Path:
    """A config folder whose azure_config.yaml uses the old flat layout."""
    folder = tmp_path / "config"
    init_config(folder)
    db_path = tmp_path / "shared" / "bakery.sqlite"
    (folder / "azure_config.yaml").write_text(OLD_LAYOUT.format(db_path=db_path), encoding="utf-8")
    return folder


def test_old_keys_land_in_the_blocks_that_own_them(old_config: Path, tmp_path: Path):
    services = load_config(old_config).services
    sqlite = services.retrieval.settings_for("sqlite_fts")
    assert sqlite.db_path == str(tmp_path / "shared" / "bakery.sqlite")
    azure_search = services.retrieval.settings_for("azure_search")
    assert (azure_search.endpoint, azure_search.index_name) == (
        "https://search-eu.example.net",
        "acme-bakery-content",
    )
    assert (azure_search.query_type, azure_search.timeout_s) == ("simple", 7.0)
    openai = services.generation.settings_for("openai")
    azure_openai = services.generation.settings_for("azure_openai")
    assert (openai.base_url, openai.model) == ("http://127.0.0.1:11434/v1", "llama3.1")
    assert (azure_openai.azure_endpoint, azure_openai.deployment) == (
        "https://acme.openai.azure.com",
        "campaign-writer",
    )
    # keys both LLM backends had in common reach both blocks
    assert openai.temperature == azure_openai.temperature == 0.2
    assert openai.price_per_1k_prompt == azure_openai.price_per_1k_prompt == 0.0
    assert services.safety.concurrency == 2  # still a key of the section itself
    assert services.safety.settings_for("local").lexicon_dir == "lexicon"
    content_safety = services.safety.settings_for("azure_content_safety")
    assert content_safety.blocklists == ("acme-banned",)


def test_an_old_config_still_drives_the_commands(old_config: Path, tmp_path: Path):
    result = CliRunner().invoke(cli, ["index", str(bundled_content()), "--config", str(old_config)])
    assert result.exit_code == 0, result.output
    index = tmp_path / "shared" / "bakery.sqlite"  # the old services.retrieval.db_path
    assert str(index) in result.output
    with sqlite3.connect(index) as connection:
        assert connection.execute("SELECT count(*) FROM paragraphs").fetchone()[0] > 0


def test_a_key_given_both_ways_says_which_to_keep(old_config: Path, tmp_path: Path):
    path = old_config / "azure_config.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "    timeout_s: 7\n", "    timeout_s: 7\n    azure_search:\n      timeout_s: 9\n"
    )
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["run", "--out", str(tmp_path / "run"), "--config", str(old_config)]
    )
    assert result.exit_code == 1
    assert "key 'services.retrieval.timeout_s': given twice" in result.output
    assert "keep only azure_search.timeout_s" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run" / "segments.csv").exists()


def test_the_old_generation_backend_check_now_names_the_block(old_config: Path):
    path = old_config / "azure_config.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("backend: grounded", "backend: azure_openai").replace(
        "    deployment: campaign-writer\n", ""
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(old_config)
    message = str(caught.value)
    assert "key 'services.generation.azure_openai.deployment'" in message
    assert "needs the deployment name" in message
