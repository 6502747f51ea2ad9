"""The prompts folder: tone files, footer, generation prompt and control message."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cpo.config import default_config_dir, init_config, load_config
from cpo.errors import ConfigError
from cpo.generation.prompts import PromptLibrary
from cpo.generation.service import control_variant


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An editable copy of the packaged prompts folder."""
    target = tmp_path / "prompts"
    shutil.copytree(default_config_dir() / "prompts", target)
    return target


def test_packaged_prompts_load(prompts):
    for tone in ("urgent", "informational", "friendly"):
        templates = prompts.tone(tone)
        assert templates.subjects and templates.ctas and templates.llm_guidance
    assert "unsubscribe" in prompts.footer().lower()
    system, user = prompts.generation_prompt()
    assert "$snippets" in user.template and "$segment_name" in user.template
    assert "[Source: Document Title, ¶N]" in system.template


def test_tones_have_distinct_layouts(prompts):
    layouts = {prompts.tone(t).style.layout for t in ("urgent", "informational", "friendly")}
    assert layouts == {"paragraph", "bullets", "conversational"}


def test_control_message_is_one_variant_for_all_segments(prompts):
    variant = control_variant(prompts)
    assert (variant.variant_id, variant.segment, variant.tone, variant.backend) == (
        "control",
        "all",
        "control",
        "control",
    )
    assert variant.subject == "A few favorites from Fernleaf Outdoor Co."
    assert variant.body.startswith("Hi {first_name},")
    assert variant.body.endswith("\n\n" + prompts.footer())
    assert variant.citations == () and variant.grounding.score == 1.0
    assert len(variant.prompt_sha256) == 64


def test_missing_tone_file_names_the_file(folder):
    (folder / "tones" / "urgent.yaml").unlink()
    with pytest.raises(ConfigError, match=r"tones/urgent\.yaml: prompt file not found"):
        PromptLibrary(folder).tone("urgent")


def test_bad_tone_file_names_the_key(folder):
    path = folder / "tones" / "friendly.yaml"
    path.write_text(path.read_text().replace("ctas:", "calls:"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        PromptLibrary(folder).tone("friendly")
    message = str(caught.value)
    assert "friendly.yaml" in message and "ctas" in message and "calls" in message


def test_unknown_placeholder_names_the_key_and_the_allowed_ones(folder):
    path = folder / "tones" / "urgent.yaml"
    text = re.sub(
        r"^subjects:.*\n", 'subjects:\n  - "Act fast: {url}"\n', path.read_text(), flags=re.M
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"key 'subjects': unknown placeholder \{url\}") as caught:
        PromptLibrary(folder).tone("urgent")
    assert "{offer}, {title}" in str(caught.value)


def test_malformed_tone_yaml(folder):
    (folder / "tones" / "urgent.yaml").write_text("subjects: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="malformed YAML at line"):
        PromptLibrary(folder).tone("urgent")


def test_footer_needs_an_unsubscribe_line(folder):
    (folder / "footer.txt").write_text("Thanks for reading.\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no unsubscribe line"):
        PromptLibrary(folder).footer()


def test_control_message_needs_a_subject_line(folder):
    (folder / "control_message.txt").write_text("Hello there\n\nBody.", encoding="utf-8")
    with pytest.raises(ConfigError, match="first line must be 'Subject:"):
        PromptLibrary(folder).control_message()


def test_generation_prompt_needs_a_user_section(folder):
    (folder / "generation_prompt.txt").write_text("Write an email.", encoding="utf-8")
    with pytest.raises(ConfigError, match="### USER"):
        PromptLibrary(folder).generation_prompt()


def test_generation_section_errors_name_file_and_key(tmp_path):
    config_dir = tmp_path / "config"
    init_config(config_dir)
    path = config_dir / "experiment_config.yaml"
    text = path.read_text().replace("    body_min_words: 100", "    body_min_words: 300")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir)
    message = str(caught.value)
    assert "experiment_config.yaml" in message and "generation.constraints" in message


def test_services_generation_errors_name_the_key(tmp_path):
    config_dir = tmp_path / "config"
    init_config(config_dir)
    path = config_dir / "azure_config.yaml"
    text = path.read_text().replace("backend: grounded ", "backend: gpt ")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="services.generation.backend"):
        load_config(config_dir)


def test_a_tone_without_a_file_fails_before_generating(tmp_path):
    from cpo.generation.service import open_generator

    config_dir = tmp_path / "config"
    init_config(config_dir)
    path = config_dir / "experiment_config.yaml"
    text = path.read_text().replace(
        "tones: [urgent, informational, friendly]", "tones: [urgent, playful]"
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tones/playful\.yaml"):
        open_generator(load_config(config_dir))
