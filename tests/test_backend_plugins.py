"""A backend from another distribution: one module plus one entry point.

The retrieval backend below is the whole of an outside package: one module
holding the class and its settings model. A fake installed distribution (a
``.dist-info`` folder on ``sys.path`` with an ``entry_points.txt``) registers it
in the ``cpo.backends`` group; a config selects it and sets its one option, and
``cpo run`` uses it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cpo import registry
from cpo.cli import cli
from cpo.config import init_config, load_config
from cpo.errors import BackendUnavailable, ConfigError

PLUGIN_MODULE = "cpo_test_keyword_search"

#: The outside package: a keyword-count retriever with one setting.
PLUGIN_SOURCE = '''
"""Keyword-count retrieval: a paragraph scores the query words it contains."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

from cpo.models import Snippet
from cpo.registry import BackendSettings
from cpo.retrieval.base import (
    IndexReport,
    RetrievalContext,
    index_units,
    parse_filters,
    units_fingerprint,
)
from cpo.retrieval.content import Document
from cpo.retrieval.query import parse_query


class KeywordSettings(BackendSettings):
    """services.retrieval.keyword."""

    title_weight: float = 1.0


class KeywordRetriever:
    """Counts query words in each paragraph; a title hit counts title_weight times."""

    name = "keyword"
    settings_model: ClassVar[type[BackendSettings]] = KeywordSettings

    def __init__(self, settings: KeywordSettings) -> None:
        self.title_weight = settings.title_weight
        self.units: list[Any] = []

    @classmethod
    def from_settings(cls, settings: KeywordSettings, ctx: RetrievalContext) -> KeywordRetriever:
        return cls(settings)

    def index(self, documents: Sequence[Document]) -> IndexReport:
        started = time.perf_counter()
        self.units = index_units(documents)
        extra = {"title_weight": self.title_weight}
        return IndexReport(
            built=True,
            documents=len(documents),
            paragraphs=len(self.units),
            fingerprint=units_fingerprint(self.units, extra),
            seconds=time.perf_counter() - started,
            location=f"memory (title_weight={self.title_weight})",
        )

    def search(
        self, query: str, top_k: int, filters: dict[str, Any] | None = None
    ) -> list[Snippet]:
        wanted = parse_filters(filters)
        terms = parse_query(query)
        hits = []
        for unit in self.units:
            if wanted.categories and unit.category.lower() not in wanted.categories:
                continue
            if wanted.audiences and unit.audience.lower() not in wanted.audiences:
                continue
            text, title = unit.text.lower(), unit.title.lower()
            score = sum(text.count(t) + self.title_weight * title.count(t) for t in terms)
            if score > 0:
                hits.append(
                    Snippet(
                        document_id=unit.document_id,
                        title=unit.title,
                        paragraph_index=unit.paragraph_index,
                        text=unit.text,
                        score=float(score),
                        category=unit.category,
                        audience=unit.audience,
                        source_url=unit.source_url,
                    )
                )
        hits.sort(key=lambda s: (-s.score, s.document_id, s.paragraph_index))
        return hits[:top_k]

    def close(self) -> None:
        self.units = []
'''


def install_fake_distribution(site: Path, entry_point: str) -> None:
    """Write the plugin module and a dist-info folder registering ``entry_point``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE, encoding="utf-8")
    info = site / "cpo_test_keyword_search-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cpo-test-keyword-search\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[cpo.backends]\n{entry_point}\n", encoding="utf-8")


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install a fake distribution for one test; the registry forgets it afterwards."""

    def install(entry_point: str) -> Path:
        site = tmp_path / "site"
        install_fake_distribution(site, entry_point)
        monkeypatch.syspath_prepend(str(site))
        return site

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_KINDS_LOADED", set())
    yield install
    sys.modules.pop(PLUGIN_MODULE, None)


def config_selecting(folder: Path, retrieval: dict) -> Path:
    """An editable default config whose services.retrieval is updated with ``retrieval``."""
    init_config(folder)
    path = folder / "azure_config.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["services"]["retrieval"].update(retrieval)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return folder


def test_an_entry_point_backend_with_a_setting_runs_through_cpo_run(tmp_path, plugin_site):
    plugin_site(f"retrieval.keyword = {PLUGIN_MODULE}:KeywordRetriever")
    config_dir = config_selecting(
        tmp_path / "config", {"backend": "keyword", "keyword": {"title_weight": 2.5}}
    )
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "--out", str(run_dir), "--config", str(config_dir)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "completed"
    facts = manifest["stages"]["retrieve"]["facts"]
    assert facts["backend"] == "keyword"
    assert facts["index_location"] == "memory (title_weight=2.5)"  # the option reached it
    retrieval = json.loads((run_dir / "retrieval.json").read_text(encoding="utf-8"))
    assert retrieval["backend"] == "keyword"
    assert all(entry["results"] for entry in retrieval["segments"])
    assert not (run_dir / "content_index.sqlite").exists()


def test_the_plugin_block_is_validated_against_its_settings_model(tmp_path, plugin_site):
    plugin_site(f"retrieval.keyword = {PLUGIN_MODULE}:KeywordRetriever")
    config_dir = config_selecting(
        tmp_path / "config", {"backend": "keyword", "keyword": {"title_weight": "heavy"}}
    )
    result = CliRunner().invoke(
        cli, ["run", "--out", str(tmp_path / "r"), "--config", str(config_dir)]
    )
    assert result.exit_code == 1
    assert "key 'services.retrieval.keyword.title_weight'" in result.output
    assert "'heavy' (string)" in result.output
    assert "Traceback" not in result.output


def test_the_plugin_is_listed_and_its_defaults_apply_when_its_block_is_left_out(
    tmp_path, plugin_site
):
    plugin_site(f"retrieval.keyword = {PLUGIN_MODULE}:KeywordRetriever")
    assert "keyword" in registry.available("retrieval")
    assert "keyword" not in registry.bundled("retrieval")  # not part of the default config
    config = load_config(config_selecting(tmp_path / "config", {"backend": "keyword"}))
    assert config.services.retrieval.selected.title_weight == 1.0
    assert "keyword" not in load_config().services.retrieval.model_dump()


def test_a_plugin_whose_dependency_is_missing_names_it_and_its_distribution(tmp_path, plugin_site):
    site = plugin_site(f"retrieval.broken = {PLUGIN_MODULE}_broken:Retriever [gpu]")
    (site / f"{PLUGIN_MODULE}_broken.py").write_text(
        "import cpo_test_no_such_package\n", encoding="utf-8"
    )
    config_dir = config_selecting(tmp_path / "config", {"backend": "broken"})
    with pytest.raises(BackendUnavailable) as caught:
        load_config(config_dir)
    assert "'cpo_test_no_such_package', which is not installed" in str(caught.value)
    assert caught.value.hint == "pip install 'cpo-test-keyword-search[gpu]'"
    # a config that does not select it is not affected
    assert load_config().services.retrieval.backend == "sqlite_fts"
    sys.modules.pop(f"{PLUGIN_MODULE}_broken", None)


def test_a_block_for_an_unknown_backend_lists_the_known_ones(tmp_path):
    config_dir = config_selecting(tmp_path / "config", {"elastic": {"url": "x"}})
    result = CliRunner().invoke(
        cli, ["run", "--out", str(tmp_path / "r"), "--config", str(config_dir)]
    )
    assert result.exit_code == 1
    assert "key 'services.retrieval.elastic': unknown key" in result.output
    assert "expected one of: backend, azure_search, sqlite_fts" in result.output


def test_selecting_an_unknown_backend_lists_the_known_ones(tmp_path):
    config_dir = config_selecting(tmp_path / "config", {"backend": "elastic"})
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir)
    message = str(caught.value)
    assert "key 'services.retrieval.backend': unknown retrieval backend" in message
    assert "choose one of: azure_search, sqlite_fts" in message
    assert "found 'elastic' (string)" in message


def test_loading_a_config_imports_no_backend_sdk():
    """Every block is validated on load, yet no SDK is imported until a backend is built."""
    code = (
        "import sys; from cpo.config import load_config; load_config(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openai', 'azure')))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert shown.stdout.strip() == "[]"


def test_an_unknown_key_inside_a_block_lists_that_backends_keys(tmp_path):
    config_dir = config_selecting(tmp_path / "config", {"sqlite_fts": {"db_file": "x.sqlite"}})
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir)
    message = str(caught.value)
    assert "key 'services.retrieval.sqlite_fts.db_file': unknown key" in message
    assert "expected one of: db_path" in message


def test_azure_rules_apply_only_to_the_azure_block(tmp_path):
    """An index name Azure would refuse is an error in the azure_search block only."""
    config_dir = config_selecting(
        tmp_path / "config", {"azure_search": {"index_name": "Bakery Content"}}
    )
    with pytest.raises(ConfigError, match=r"services\.retrieval\.azure_search\.index_name"):
        load_config(config_dir)
    plugin_free = config_selecting(
        tmp_path / "other", {"sqlite_fts": {"db_path": str(tmp_path / "Bakery Content.sqlite")}}
    )
    assert load_config(plugin_free).services.retrieval.selected.db_path.endswith(
        "Bakery Content.sqlite"
    )
