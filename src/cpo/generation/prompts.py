"""The prompts folder: tone files, footer, generation prompt, control message.

These files are data that marketers edit, not code::

    prompts/
      tones/<tone>.yaml        subject lines, greetings, openers, calls to action,
                               sign-offs and layout of one tone (grounded backend),
                               plus ``llm_guidance`` (LLM backends)
      footer.txt               unsubscribe footer appended to every body (control too)
      generation_prompt.txt    LLM prompt: "### SYSTEM" and "### USER" sections with
                               $placeholders
      control_message.txt      "Subject: ..." line, blank line, body

The footer, the control message and the tones' ``sign_offs`` are brand-neutral
templates: ``{brand}``, ``{site_url}``, ``{unsubscribe_url}``, ``{sender_name}``,
``{postal_address}`` and ``{sign_off}`` are filled from the config's ``brand:``
section (:mod:`cpo.brand`) when the library reads them.

Every problem is a :class:`~cpo.errors.ConfigError` naming the file and key.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, ValidationError, field_validator

from cpo.brand import BRAND_PLACEHOLDERS, INIT_COMMAND, BrandSettings
from cpo.errors import ConfigError
from cpo.settings_base import StrictModel
from cpo.yamlio import describe_validation_error, read_yaml_mapping

if TYPE_CHECKING:
    from cpo.config import Config

TONES_DIR = "tones"
FOOTER_FILE = "footer.txt"
GENERATION_PROMPT_FILE = "generation_prompt.txt"
CONTROL_MESSAGE_FILE = "control_message.txt"
_PLACEHOLDER = re.compile(r"\{(\w*)\}")
_SYSTEM_HEADER = "### SYSTEM"
_USER_HEADER = "### USER"

Lines = Annotated[list[str], Field(min_length=1)]

#: Placeholders each kind of template may use.
ALLOWED_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "greetings": frozenset({"first_name"}),
    "subjects": frozenset({"title", "offer"}),
    "category_subjects": frozenset({"title", "offer"}),
    "openers": frozenset({"first_name"}),
    "trait_openers": frozenset({"first_name"}),
    "fact_intros": frozenset({"title", "offer"}),
    "lead_bridges": frozenset({"title", "offer"}),
    "bridges": frozenset({"title", "offer"}),
    "closers": frozenset({"title", "offer"}),
    "fillers": frozenset(),
    "ctas": frozenset({"url", "offer", "title"}),
    "category_ctas": frozenset({"url", "offer", "title"}),
    "sign_offs": BRAND_PLACEHOLDERS,
}
#: Placeholders the footer and control message may use ({first_name} is a merge field
#: the email service fills per recipient).
MESSAGE_PLACEHOLDERS = BRAND_PLACEHOLDERS | {"first_name"}


class ToneStyle(StrictModel):
    """How the grounded composer lays out a tone.

    Attributes:
        citations: Source paragraphs to cite (clipped to the constraints).
        target_words: Body length to aim for (always kept inside the constraints).
        layout: ``paragraph`` (facts in one block), ``bullets`` (one fact per
            line) or ``conversational`` (a bridge line before each source).
        sentence_order: ``offers_first`` (prices, codes, dates lead),
            ``relevance`` (closest to the segment first) or ``source`` (as written).
        max_sentences_per_source: Sentences quoted from one paragraph at most.
        prefer_short_sentences: Favour short sentences (punchy tones).
        min_quoted_share: Quoted sentences must make at least this share of the
            body's words; with less content the variant fails rather than pad.
    """

    citations: int = Field(default=2, ge=1, le=10)
    target_words: int = Field(default=140, ge=20, le=2000)
    layout: Literal["paragraph", "bullets", "conversational"] = "paragraph"
    sentence_order: Literal["offers_first", "relevance", "source"] = "relevance"
    max_sentences_per_source: int = Field(default=3, ge=1, le=20)
    prefer_short_sentences: bool = False
    min_quoted_share: float = Field(default=0.3, ge=0, le=1)


class ToneTemplates(StrictModel):
    """One tone file (``prompts/tones/<tone>.yaml``).

    ``category_subjects`` and ``category_ctas`` map a document ``category``
    (``promotion``, ``product``, ``support``, ...) to the subjects and calls to
    action that suit it; ``subjects`` and ``ctas`` serve every other category.
    """

    description: str = ""
    llm_guidance: Annotated[str, Field(min_length=1)]
    greetings: Lines
    subjects: Lines
    category_subjects: dict[str, Lines] = Field(default_factory=dict)
    openers: Lines
    trait_openers: dict[str, Lines] = Field(default_factory=dict)
    fact_intros: list[str] = Field(default_factory=list)
    lead_bridges: list[str] = Field(default_factory=list)
    bridges: list[str] = Field(default_factory=list)
    closers: list[str] = Field(default_factory=list)
    fillers: list[str] = Field(default_factory=list)
    ctas: Lines
    category_ctas: dict[str, Lines] = Field(default_factory=dict)
    sign_offs: Lines
    style: ToneStyle = Field(default_factory=ToneStyle)

    @field_validator(
        "greetings",
        "subjects",
        "openers",
        "fact_intros",
        "lead_bridges",
        "bridges",
        "closers",
        "fillers",
        "ctas",
        "sign_offs",
    )
    @classmethod
    def _no_blank_lines(cls, lines: list[str]) -> list[str]:
        for line in lines:
            if not isinstance(line, str) or not line.strip():
                raise ValueError("entries must be non-empty text")
        return [line.strip() for line in lines]


class PromptLibrary:
    """Reads and validates the files of one prompts folder (cached, thread-safe).

    Args:
        folder: The prompts folder (``Config.prompts_dir``).
        brand: The brand whose values fill the templates' brand placeholders
            (``None``: a template that uses one is a :class:`ConfigError`).
    """

    def __init__(self, folder: Path, brand: BrandSettings | None = None) -> None:
        self.folder = Path(folder)
        self.brand = brand
        self._values = brand.values() if brand is not None else {}
        self._tones: dict[str, tuple[ToneTemplates, str]] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_config(cls, config: Config) -> PromptLibrary:
        """The prompts folder of a loaded config, filled with its ``brand:`` section."""
        return cls(config.prompts_dir, config.experiment.brand)

    def tone(self, name: str) -> ToneTemplates:
        """The validated templates of a tone (sign-offs filled with the brand)."""
        return self._load_tone(name)[0]

    def tone_source(self, name: str) -> str:
        """A tone file's text with the brand filled in (part of the composer's input hash)."""
        return self._load_tone(name)[1]

    def footer(self) -> str:
        """The unsubscribe footer, brand filled in (must contain the word "unsubscribe")."""
        text = self._fill_brand(FOOTER_FILE, self._read(FOOTER_FILE)).strip()
        if "unsubscribe" not in text.lower():
            raise ConfigError(
                f"{self.folder / FOOTER_FILE}: the footer has no unsubscribe line",
                hint="add a sentence such as 'Unsubscribe: https://...' (screening requires it)",
            )
        return text

    def generation_prompt(self) -> tuple[Template, Template]:
        """The (system, user) templates of the LLM prompt."""
        path = self.folder / GENERATION_PROMPT_FILE
        text = self._read(GENERATION_PROMPT_FILE)
        if _USER_HEADER not in text:
            raise ConfigError(
                f"{path}: missing the '{_USER_HEADER}' section",
                hint=f"start the instructions with '{_SYSTEM_HEADER}' and the data with "
                f"'{_USER_HEADER}' on lines of their own",
            )
        system, _, user = text.partition(_USER_HEADER)
        system = system.replace(_SYSTEM_HEADER, "", 1).strip()
        return Template(system), Template(user.strip())

    def control_message(self) -> tuple[str, str]:
        """The control message as (subject, body), brand filled in, without the footer."""
        path = self.folder / CONTROL_MESSAGE_FILE
        text = self._fill_brand(CONTROL_MESSAGE_FILE, self._read(CONTROL_MESSAGE_FILE))
        lines = text.replace("\r\n", "\n").split("\n")
        first = lines[0].strip() if lines else ""
        if not first.lower().startswith("subject:") or not first[8:].strip():
            raise ConfigError(
                f"{path}: the first line must be 'Subject: <subject line>'",
                hint="write the subject on line 1, a blank line, then the body",
            )
        body = "\n".join(lines[1:]).strip()
        if not body:
            raise ConfigError(f"{path}: the control message has no body after the subject line")
        return first[8:].strip(), body

    def _fill_brand(self, relative: str, template: str) -> str:
        """Fill the brand placeholders of a message template; drop lines left empty.

        Raises:
            ConfigError: an unknown placeholder, or a brand placeholder while no
                brand is configured.
        """
        self._check_brand_placeholders(relative, placeholders(template), MESSAGE_PLACEHOLDERS)
        lines = []
        for line in template.replace("\r\n", "\n").split("\n"):
            filled = fill(line, self._values)
            if filled.strip() or not line.strip():
                lines.append(filled.rstrip())
        return "\n".join(lines)

    def _check_brand_placeholders(
        self, relative: str, used: set[str], allowed: Iterable[str]
    ) -> None:
        """Reject unknown placeholders, and brand placeholders without a brand."""
        path = self.folder / relative
        unknown = used - set(allowed) - {""}
        if unknown:
            names = ", ".join("{" + u + "}" for u in sorted(unknown))
            fine = ", ".join("{" + a + "}" for a in sorted(allowed))
            raise ConfigError(
                f"{path}: unknown placeholder {names}", hint=f"placeholders allowed here: {fine}"
            )
        needed = used & BRAND_PLACEHOLDERS
        if needed and self.brand is None:
            names = ", ".join("{" + u + "}" for u in sorted(needed))
            raise ConfigError(
                f"{path}: uses {names}, but experiment_config.yaml has no brand: section",
                hint="add brand: (name, site_url, unsubscribe_url) to experiment_config.yaml, "
                f"or write a config for your brand with `{INIT_COMMAND}`",
            )

    def _read(self, relative: str) -> str:
        """Read a prompt file, naming it when missing."""
        path = self.folder / relative
        if not path.is_file():
            raise ConfigError(
                f"{path}: prompt file not found",
                hint=f"add '{relative}' to the prompts folder (`cpo init DIR` writes the defaults)",
            )
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a UTF-8 text file", hint="save it as UTF-8") from None

    def _load_tone(self, name: str) -> tuple[ToneTemplates, str]:
        """Parse and validate ``tones/<name>.yaml`` once; fill its sign-offs with the brand."""
        with self._lock:
            if name not in self._tones:
                relative = f"{TONES_DIR}/{name}.yaml"
                source = self._read(relative)
                tone = _parse_tone(self.folder / relative, source)
                used = {p for line in tone.sign_offs for p in placeholders(line)}
                self._check_brand_placeholders(relative, used, ALLOWED_PLACEHOLDERS["sign_offs"])
                filled = [fill(line, self._values) for line in tone.sign_offs]
                tone = tone.model_copy(update={"sign_offs": filled})
                self._tones[name] = (tone, fill(source, self._values))
            return self._tones[name]


def _parse_tone(path: Path, source: str) -> ToneTemplates:
    """Validate a tone file's YAML, naming the key of every problem."""
    data = read_yaml_mapping(path, source)
    try:
        tone = ToneTemplates.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            describe_validation_error(path, ToneTemplates, exc, "tone file")
        ) from None
    _check_placeholders(path, tone)
    return tone


def _check_placeholders(path: Path, tone: ToneTemplates) -> None:
    """Reject placeholders a template kind cannot fill (e.g. ``{url}`` in a subject)."""
    groups: dict[str, list[str]] = {}
    for key in ALLOWED_PLACEHOLDERS:
        value = getattr(tone, key)
        groups[key] = (
            [line for lines in value.values() for line in lines]
            if isinstance(value, dict)
            else list(value)
        )
    for key, lines in groups.items():
        allowed = ALLOWED_PLACEHOLDERS[key]
        for line in lines:
            unknown = set(_PLACEHOLDER.findall(line)) - allowed
            if unknown:
                names = ", ".join("{" + u + "}" for u in sorted(unknown))
                fine = ", ".join("{" + a + "}" for a in sorted(allowed)) or "none"
                raise ConfigError(
                    f"{path}: key '{key}': unknown placeholder {names} in {line!r}",
                    hint=f"placeholders allowed in {key}: {fine}",
                )


def fill(template: str, values: dict[str, str]) -> str:
    """Fill ``{name}`` placeholders present in ``values``; leave the others."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def placeholders(template: str) -> set[str]:
    """The placeholder names a template uses."""
    return set(_PLACEHOLDER.findall(template))
