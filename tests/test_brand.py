"""The brand: section, `cpo init --brand`, and the guard against the sample brand's text.

A small software company's content (6 documents, the bundled JSON format) stands
in for "your own data": nothing in it comes from the sample brand.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cpo.brand import BrandSettings, apply_brand, slugify
from cpo.cli import cli
from cpo.config import default_config_dir, init_config, load_config
from cpo.errors import ConfigError
from cpo.generation.prompts import PromptLibrary
from cpo.generation.service import control_variant
from cpo.sample_data import bundled_content

SITE = "https://www.brightlane.example"
UNSUBSCRIBE = "https://www.brightlane.example/email/unsubscribe"
ADDRESS = "Brightlane Software Ltd., 12 Harbour Street, Leeds LS1 4AB, UK"
FOOTER = (
    "You are receiving this email because you subscribed to Brightlane Cloud updates. "
    f"Unsubscribe: {UNSUBSCRIBE}\n{ADDRESS}"
)
INIT_FLAGS = [
    "--brand",
    "Brightlane Cloud",
    "--site",
    SITE,
    "--unsubscribe-url",
    UNSUBSCRIBE,
    "--postal-address",
    ADDRESS,
]

# (title, category, audience, keywords, paragraphs)
SOFTWARE_DOCS: dict[str, tuple[str, str, str, list[str], list[str]]] = {
    "BL-001": (
        "Brightlane Team Plan",
        "product",
        "All",
        ["plan", "pricing", "value", "everyday", "seasonal"],
        [
            "The Brightlane Team plan costs $12 per user per month when billed yearly. "
            "Every Team workspace includes unlimited projects, 100 GB of file storage and "
            "shared dashboards for the whole company.",
            "Team admins can invite guests at no extra cost and remove access in one click. "
            "Single sign-on with Google and Microsoft accounts is included in the Team plan.",
            "You can switch between monthly and yearly billing at any time from the billing "
            "page. Yearly billing saves two months compared with paying monthly.",
        ],
    ),
    "BL-002": (
        "Priority Support for Enterprise Customers",
        "service",
        "High-Value Recent",
        ["premium", "loyalty", "vip", "exclusive", "support"],
        [
            "Enterprise customers get a named success manager and a four-hour response time "
            "on every support ticket. Priority support is available around the clock, every "
            "day of the year.",
            "Enterprise workspaces receive early access to new features before general "
            "release. Our loyalty program gives long-standing customers one free month for "
            "every year they renew.",
            "Exclusive quarterly roadmap briefings let Enterprise admins shape what the "
            "product team builds next.",
        ],
    ),
    "BL-003": (
        "Welcome Back: What Changed Since Your Last Visit",
        "promotion",
        "At-Risk",
        ["win-back", "re-engagement", "lapsed", "welcome back", "come back"],
        [
            "Since your last visit we rebuilt the editor so large documents open twice as "
            "fast. Returning customers can reactivate a paused workspace with code RETURN30 "
            "for 30% off the first three months.",
            "Code RETURN30 is valid until 30 June 2027 and can be used once per workspace. "
            "Your old projects, files and comments are kept for 12 months after a workspace "
            "is paused.",
            "Come back and see the new timeline view, which shows every project deadline on "
            "one screen.",
        ],
    ),
    "BL-004": (
        "Getting Started with Brightlane",
        "guide",
        "New Customer",
        ["welcome", "onboarding", "getting started", "first purchase", "beginner"],
        [
            "New customers can import projects from spreadsheets in a few minutes with the "
            "guided setup. The getting started checklist walks every new workspace through "
            "inviting teammates, creating a first project and connecting calendars.",
            "Free onboarding webinars run every Tuesday and Thursday for new admins. Each "
            "webinar lasts 45 minutes and ends with live questions.",
            "New workspaces get a 14-day trial of every Enterprise feature with no card required.",
        ],
    ),
    "BL-005": (
        "Security and Data Protection",
        "policy",
        "All",
        ["security", "support", "warranty", "value"],
        [
            "Brightlane encrypts every file at rest and in transit. Daily backups are kept "
            "for 30 days and can be restored by any workspace admin.",
            "Brightlane data centers are certified to ISO 27001 and workspace admins can "
            "export all data at any time. Our support team answers security questions within "
            "one business day.",
        ],
    ),
    "BL-006": (
        "Integrations and Automation",
        "product",
        "All",
        ["integrations", "automation", "new arrivals", "what's new", "savings"],
        [
            "Brightlane connects with Slack, GitHub and Google Drive out of the box. "
            "Automation rules move tasks, notify owners and update statuses without manual "
            "work.",
            "The new integrations gallery lists more than 80 connectors, and every plan "
            "includes 1,000 automation runs per month. Teams that automate weekly reports "
            "save about three hours a week.",
        ],
    ),
}


def write_software_content(folder: Path) -> Path:
    """The six documents as JSON files in the bundled format."""
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, (title, category, audience, keywords, paragraphs) in SOFTWARE_DOCS.items():
        record = {
            "document_id": doc_id,
            "title": title,
            "category": category,
            "content": "\n\n".join(paragraphs),
            "audience": audience,
            "keywords": keywords,
            "approval_date": "2026-01-15",
            "expiry_date": None,
            "source_url": f"{SITE}/docs/{doc_id.lower()}",
            "metadata": {"author": "Content Team", "version": "1.0"},
        }
        (folder / f"{doc_id}.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return folder


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def software_content(tmp_path_factory) -> Path:
    return write_software_content(tmp_path_factory.mktemp("software") / "content")


@pytest.fixture(scope="module")
def brand_run(tmp_path_factory, software_content) -> Path:
    """`cpo init --brand` then `cpo run` on the software content (200 customers)."""
    root = tmp_path_factory.mktemp("brand-run")
    made = invoke("sample-data", "--customers", "200", "--out", str(root / "data"), "--no-content")
    assert made.exit_code == 0, made.output
    customers = root / "data" / "customers.csv"
    result = invoke("init", str(root / "config"), *INIT_FLAGS)
    assert result.exit_code == 0, result.output
    result = invoke(
        "run",
        "--out",
        str(root / "run"),
        "--config",
        str(root / "config"),
        "--content",
        str(software_content),
        "--customers",
        str(customers),
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    return root / "run"


# ----------------------------------------------------------------------------- placeholders


def _brand(**extra) -> BrandSettings:
    return BrandSettings(
        name="Brightlane Cloud", site_url=SITE, unsubscribe_url=UNSUBSCRIBE, **extra
    )


def test_the_brand_fills_the_control_message_footer_and_sign_offs():
    brand = _brand(
        postal_address=ADDRESS, sender_name="Ada at Brightlane", sign_off="{sender_name}"
    )
    library = PromptLibrary(default_config_dir() / "prompts", brand)
    assert library.footer() == FOOTER
    control = control_variant(library)
    assert "Brightlane Cloud" in control.subject
    assert control.body.startswith("Hi {first_name},")  # the merge field is left for the send
    assert f"See what is new at {SITE}" in control.body
    assert control.body.endswith("Best regards,\nAda at Brightlane\n\n" + FOOTER)
    for tone in ("urgent", "informational", "friendly"):
        sign_offs = library.tone(tone).sign_offs
        assert sign_offs and all(s.endswith("\nAda at Brightlane") for s in sign_offs)
        assert "Brightlane" in library.tone_source(tone)  # a new brand changes the hash
    for text in [control.subject, control.body, *library.tone("friendly").sign_offs]:
        assert "{" not in text.replace("{first_name}", "")
        assert "fernleaf" not in text.lower()


def test_without_a_postal_address_the_footer_has_no_empty_line():
    footer = PromptLibrary(default_config_dir() / "prompts", _brand()).footer()
    assert footer == FOOTER.split("\n")[0]


def test_default_sign_off_names_the_brand():
    library = PromptLibrary(default_config_dir() / "prompts", _brand())
    assert library.tone("informational").sign_offs[0] == "Best regards,\nThe Brightlane Cloud team"


def test_brand_placeholders_without_a_brand_section_name_the_file(tmp_path):
    folder = tmp_path / "prompts"
    shutil.copytree(default_config_dir() / "prompts", folder)
    with pytest.raises(ConfigError, match=r"footer\.txt: uses \{brand\}, \{postal_address\}"):
        PromptLibrary(folder).footer()
    with pytest.raises(ConfigError, match=r"tones/urgent\.yaml: uses \{sign_off\}") as caught:
        PromptLibrary(folder).tone("urgent")
    assert "cpo init NEW_DIR --brand NAME" in str(caught.value)


def test_an_unknown_placeholder_in_the_footer_is_named(tmp_path):
    folder = tmp_path / "prompts"
    shutil.copytree(default_config_dir() / "prompts", folder)
    (folder / "footer.txt").write_text("Unsubscribe: {unsubscribe_link}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"footer\.txt: unknown placeholder \{unsubscribe_link\}"):
        PromptLibrary(folder, _brand()).footer()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("site_url", "www.brightlane.example", "not an http(s) URL"),
        ("unsubscribe_url", "mailto:optout@brightlane.example", "not an http(s) URL"),
        ("name", "  ", "must not be blank"),
        ("sign_off", "Cheers, {first_name}", "unknown placeholder {first_name}"),
    ],
)
def test_bad_brand_values_in_the_config_name_the_key(tmp_path, field, value, message):
    init_config(tmp_path / "config")
    path = tmp_path / "config" / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["brand"][field] = value
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "config")
    assert f"brand.{field}" in str(caught.value) and message in str(caught.value)


# ----------------------------------------------------------------------------- cpo init


def test_packaged_campaign_name_is_neutral():
    config = load_config()
    assert config.experiment.campaign.name == "cpo-campaign"
    assert config.experiment.brand is not None  # the sample brand, for the sample run


def test_init_with_a_brand_writes_the_brand_and_campaign_name(tmp_path):
    result = invoke("init", str(tmp_path / "config"), *INIT_FLAGS, "--sender", "Brightlane News")
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "config")
    assert config.experiment.brand == BrandSettings(
        name="Brightlane Cloud",
        site_url=SITE,
        unsubscribe_url=UNSUBSCRIBE,
        sender_name="Brightlane News",
        postal_address=ADDRESS,
    )
    assert config.experiment.campaign.name == "brightlane-cloud-campaign"
    text = (tmp_path / "config" / "experiment_config.yaml").read_text(encoding="utf-8")
    assert "fernleaf" not in text.lower()
    assert "# Campaign, segmentation and experiment settings." in text  # comments kept


def test_init_without_a_brand_copies_the_defaults(tmp_path):
    result = invoke("init", str(tmp_path / "config"))
    assert result.exit_code == 0, result.output
    for path in default_config_dir().rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            copy = tmp_path / "config" / path.relative_to(default_config_dir())
            assert copy.read_bytes() == path.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--brand", "X", "--site", "ftp://x.example", "--unsubscribe-url", UNSUBSCRIBE], "--site"),
        (
            ["--brand", "X", "--site", SITE, "--unsubscribe-url", "brightlane/unsub"],
            "--unsubscribe-url",
        ),
        (["--brand", "X", "--site", SITE], "--brand needs --unsubscribe-url"),
        (["--site", SITE], "--site: only with --brand NAME"),
        (
            ["--brand", "X", "--site", SITE, "--unsubscribe-url", UNSUBSCRIBE, "--sender", " "],
            "--sender",
        ),
    ],
)
def test_init_flag_errors_are_usage_errors(tmp_path, args, message):
    result = invoke("init", str(tmp_path / "config"), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "config").exists()


def test_apply_brand_quotes_awkward_names():
    name = 'Café "Ünïcode" & Co.: #1'
    text = (default_config_dir() / "experiment_config.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(apply_brand(text, _brand().model_copy(update={"name": name})))
    assert data["brand"]["name"] == name
    assert data["campaign"]["name"] == f"{slugify(name)}-campaign" == "cafe-unicode-co-1-campaign"


# ----------------------------------------------------------------------------- runs


def _sends(run: Path) -> list[dict[str, str]]:
    with (run / "sends.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_run_for_another_brand_sends_only_that_brands_text(brand_run):
    sends = _sends(brand_run)
    assert sends
    text_columns = [c for c in sends[0] if c in {"subject", "body", "body_text", "preheader"}]
    assert "subject" in text_columns
    for row in sends:
        for column in text_columns:
            assert "fernleaf" not in row[column].lower(), (column, row[column])
    arms = {row["experiment_arm"] for row in sends}
    assert "control" in arms and len(arms) > 1


def test_the_control_and_every_variant_end_with_the_brands_footer(brand_run):
    variants = json.loads((brand_run / "variants.json").read_text(encoding="utf-8"))["variants"]
    generated = [v for v in variants if v["status"] == "generated"]
    assert generated[0]["variant_id"] == "control" and len(generated) > 1
    for variant in generated:
        assert variant["body"].endswith("\n\n" + FOOTER), variant["variant_id"]
        assert "fernleaf" not in (variant["subject"] + variant["body"]).lower()
    manifest = json.loads((brand_run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "completed"


def test_the_sample_brand_on_other_content_stops_before_generation(tmp_path, software_content):
    assert invoke("init", str(tmp_path / "config")).exit_code == 0  # no --brand: the sample's
    result = invoke(
        "run",
        "--out",
        str(tmp_path / "run"),
        "--config",
        str(tmp_path / "config"),
        "--content",
        str(software_content),
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "not the bundled sample brand's" in errors[0]
    assert "experiment_config.yaml (brand.name, brand.site_url, brand.unsubscribe_url)" in (
        result.output
    )
    assert "cpo init NEW_DIR --brand NAME --site URL --unsubscribe-url URL" in result.output
    assert not (tmp_path / "run" / "segments.csv").exists()
    assert not (tmp_path / "run" / "variants.json").exists()


def test_a_hard_coded_sample_footer_is_named_even_with_a_new_brand(tmp_path, software_content):
    assert invoke("init", str(tmp_path / "config"), *INIT_FLAGS).exit_code == 0
    footer = tmp_path / "config" / "prompts" / "footer.txt"
    footer.write_text(
        "Unsubscribe: https://www.fernleaf.example.com/unsubscribe\n", encoding="utf-8"
    )
    result = invoke(
        "run",
        "--out",
        str(tmp_path / "run"),
        "--config",
        str(tmp_path / "config"),
        "--content",
        str(software_content),
    )
    assert result.exit_code == 1
    assert "prompts/footer.txt" in result.output
    assert "experiment_config.yaml" not in result.output.split("fix:")[0].split("in: ")[1]


def test_a_trimmed_copy_of_the_sample_content_keeps_the_sample_brand(tmp_path):
    from cpo.brand_guard import check_brand_for_content

    trimmed = tmp_path / "content"
    trimmed.mkdir()
    for path in sorted(bundled_content().glob("*.json"))[:5]:
        shutil.copy(path, trimmed / path.name)
    check_brand_for_content(load_config(), trimmed)  # the sample brand's own documents
    check_brand_for_content(load_config(), None)  # the bundled content itself


def test_the_bundled_default_run_still_works(tmp_path):
    result = invoke("run", "--out", str(tmp_path / "run"), "--quiet")
    assert result.exit_code == 0, result.output
    variants = json.loads((tmp_path / "run" / "variants.json").read_text(encoding="utf-8"))
    control = variants["variants"][0]
    assert control["variant_id"] == "control"
    assert control["body"].endswith(
        "\n\nYou are receiving this email because you subscribed to Fernleaf Outdoor Co. "
        "updates. Unsubscribe: https://www.fernleaf.example.com/unsubscribe"
    )
    assert _sends(tmp_path / "run")
