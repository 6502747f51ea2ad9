"""The ``grounded`` backend: a deterministic composer that quotes approved content.

Every factual sentence of the body is copied verbatim from a paragraph that
retrieval returned for the segment, followed by its ``[Source: Title, ¶N]``
marker. Everything else (subject, greeting, opener, bridges, call to action,
sign-off) comes from the tone file ``prompts/tones/<tone>.yaml`` and the footer
from ``prompts/footer.txt``; a template that would state a fact the cited
sources do not contain is skipped. So every claim is quoted from a source, and
the limits hold by construction:

* paragraphs are chosen by retrieval rank, relevance to the segment (its name,
  traits and definition) and, for offer-led tones, fact density, preferring
  different documents;
* sentences are added (and never cut mid-sentence) until the body reaches the
  tone's target length; the configured word range is a target: short approved
  content gives a shorter message, down to the ``body_floor_words`` floor, and a
  variant fails (with the reason, never broken) only when the content has fewer
  than two quotable sentences or cannot reach the floor;
* a sentence with a relative-time deadline ("48 hours only", "starting Friday")
  and no date is never quoted; urgency wording ("Act fast", "today") is used
  only when a quoted sentence states a date;
* the subject is the first template that fits the character limit and does not
  repeat a word of the title; the call to action suits the ``category`` of the
  first cited document (``category_ctas``) and links to that document; an
  opener that echoes the first quoted paragraph is passed over.

Template choice is seeded by (segment, tone), so the same inputs always give the
same text, and different segments get different wording.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, ClassVar

from cpo.audience import find_mentions
from cpo.citations import (
    SupportIndex,
    extract_codes,
    extract_facts,
    extract_names,
    format_citation,
    states_date,
)
from cpo.generation.base import (
    GenerationContext,
    Generator,
    Provenance,
    UsageCounter,
    failed_variant,
    finish_variant,
    sha256_text,
)
from cpo.generation.prompts import ToneTemplates, fill, placeholders
from cpo.models import GenerationConstraints, GenerationRequest, SegmentProfile, Snippet, Variant
from cpo.registry import BackendSettings, NoSettings
from cpo.text import (
    count_words,
    relative_time_phrases,
    split_sentences,
    terms,
    truncate_words,
    urgency_phrases,
)

COMPOSER_MODEL = "grounded-composer-1"
#: First words that point back to an earlier sentence; such a sentence is quoted
#: only right after the sentence it depends on.
_DANGLING = frozenset(
    "it its this these they them their that those he she his her such also however but and or "
    "so both then plus which otherwise instead likewise additionally furthermore".split()
)
_URL_DIGITS = re.compile(r"\d+")
_TERMINAL = (".", "!", "?", "…", '."', ".”", "!”", "?”")


#: Sort key of a (paragraph, sentence) candidate.
SentenceKey = Callable[[tuple["Paragraph", "Sentence"]], tuple[float, ...]]


class ComposeError(Exception):
    """The content retrieved for a segment cannot make a valid message."""


@dataclass(frozen=True)
class Sentence:
    """A quotable sentence of a retrieved paragraph."""

    text: str
    index: int
    words: int
    relevance: float
    offers: int
    needs_previous: bool


@dataclass
class Paragraph:
    """A retrieved paragraph with its quotable sentences."""

    snippet: Snippet
    rank: int
    sentences: list[Sentence]
    chosen: set[int] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, int]:
        """(document_id, paragraph_index)."""
        return (self.snippet.document_id, self.snippet.paragraph_index)

    def marker(self) -> str:
        """Its citation marker."""
        return format_citation(self.snippet.title, self.snippet.paragraph_index)

    def chosen_text(self) -> str:
        """The chosen sentences in source order."""
        return " ".join(s.text for s in self.sentences if s.index in self.chosen)

    def chosen_words(self) -> int:
        """Words in the chosen sentences."""
        return sum(s.words for s in self.sentences if s.index in self.chosen)


@dataclass(frozen=True)
class Composition:
    """A composed message before validation.

    ``citations`` is the number of paragraphs it cites; it is below the
    configured ``min_citations`` only when no more paragraphs were quotable.
    """

    subject: str
    body: str
    citations: int = 0


class GroundedGenerator:
    """Offline backend: composes each tone from approved sentences (no network, no cost)."""

    backend = "grounded"
    model = COMPOSER_MODEL
    concurrency = 1
    settings_model: ClassVar[type[BackendSettings]] = NoSettings
    usage: UsageCounter | None = None  # no paid API

    def __init__(self, setup: GenerationContext) -> None:
        self.setup = setup

    @classmethod
    def from_settings(cls, settings: NoSettings, ctx: GenerationContext) -> GroundedGenerator:
        """Build the composer (it has no settings of its own)."""
        return cls(ctx)

    def generate(self, request: GenerationRequest) -> Variant:
        """Compose, validate and ground one variant (failed, with a reason, if impossible)."""
        started = time.perf_counter()
        tone = self.setup.prompts.tone(request.tone)
        footer = self.setup.prompts.footer()
        digest = composition_sha256(
            request, self.setup.prompts.tone_source(request.tone), footer, self.setup
        )
        provenance = Provenance(self.backend, self.model, digest)
        try:
            composed = compose(
                request,
                tone,
                footer,
                max_sentence_words=self.setup.generation.max_sentence_words,
            )
        except ComposeError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            return failed_variant(request, _with_latency(provenance, elapsed), str(exc))
        elapsed = (time.perf_counter() - started) * 1000
        if composed.citations < request.constraints.min_citations:
            # Every quotable paragraph is cited: hold the message to what exists.
            fewer = replace(request.constraints, min_citations=composed.citations)
            request = replace(request, constraints=fewer)
        variant, _ = finish_variant(
            request,
            composed.subject,
            composed.body,
            _with_latency(provenance, elapsed),
            self.setup.generation.cta_verbs,
            footer=footer,
        )
        return variant


def _with_latency(provenance: Provenance, latency_ms: float) -> Provenance:
    """Copy of ``provenance`` with its latency set."""
    return Provenance(
        provenance.backend, provenance.model, provenance.prompt_sha256, 0, 0, 0.0, latency_ms
    )


def composition_sha256(
    request: GenerationRequest, tone_source: str, footer: str, setup: GenerationContext
) -> str:
    """Hash of everything that decides the composed text (the composer's "prompt")."""
    payload = {
        "composer": COMPOSER_MODEL,
        "tone": request.tone,
        "tone_file": tone_source,
        "footer": footer,
        "cta_verbs": list(setup.generation.cta_verbs),
        "max_sentence_words": setup.generation.max_sentence_words,
        "constraints": list(vars_of(request.constraints)),
        "segment": [request.segment.name, request.segment.definition, list(request.segment.traits)],
        "snippets": [
            [s.document_id, s.title, s.paragraph_index, s.text, s.source_url]
            for s in request.snippets
        ],
    }
    if request.avoid_mentions:  # only then, so hashes without a tier guard are unchanged
        payload["avoid_mentions"] = [list(request.avoid_mentions), request.avoid_match_case]
    return sha256_text(json.dumps(payload, sort_keys=True, ensure_ascii=False))


def vars_of(record: GenerationConstraints) -> list[object]:
    """Field values of the constraints, in declaration order."""
    return [getattr(record, item.name) for item in fields(record)]


# ----------------------------------------------------------------------------- composer


def compose(
    request: GenerationRequest,
    tone: ToneTemplates,
    footer: str,
    *,
    max_sentence_words: int = 45,
) -> Composition:
    """Write one message for a segment in a tone from the request's snippets.

    Length passes, first success wins: the target range without fillers; the
    target range with fillers while quotes keep ``min_quoted_share`` of the body;
    then a shorter message down to the floor, fillers only to reach the floor.

    Raises:
        ComposeError: the snippets cannot make a message (fewer than two
            quotable sentences, the floor out of reach, every template unusable).
    """
    constraints = request.constraints
    paragraphs = _quotable_paragraphs(
        request, max_sentence_words, tone.style.prefer_short_sentences
    )
    _require_two_sentences(request, paragraphs)
    needed = min(constraints.min_citations, len(paragraphs))
    wanted = max(needed, min(tone.style.citations, constraints.max_citations))
    ranked = _rank_paragraphs(paragraphs, tone.style.sentence_order)
    candidates = _citation_sets(ranked, wanted, constraints.max_citations)
    seed = _seed(request.segment.name, request.tone)
    shortfalls: list[str] = []
    for low, fillers in _length_passes(constraints):
        for chosen in candidates:
            composed, problem = _compose_set(request, tone, footer, chosen, seed, low, fillers)
            if composed is not None:
                return composed
            shortfalls.append(problem)
    reason = shortfalls[-1] if shortfalls else "no paragraph could be cited"
    raise ComposeError(
        f"too little approved content retrieved for segment '{request.segment.name}' "
        f"(tone {request.tone}): {reason}; at least {_floor(constraints)} words needed "
        f"(add content, or lower generation.constraints.body_floor_words)"
    )


def _floor(constraints: GenerationConstraints) -> int:
    """The hard minimum length (``body_floor_words``, never above the target)."""
    return min(constraints.body_floor_words, constraints.body_min_words)


def _length_passes(constraints: GenerationConstraints) -> list[tuple[int, str]]:
    """(lowest word count accepted, filler use) for each length pass, in order."""
    floor = _floor(constraints)
    return [
        (constraints.body_min_words, "none"),
        (constraints.body_min_words, "quoted_share"),
        (floor, "none"),
        (floor, "any"),
    ]


def _require_two_sentences(request: GenerationRequest, paragraphs: list[Paragraph]) -> None:
    """Fail when the quotable content has fewer than two sentences."""
    count = sum(len(p.sentences) for p in paragraphs)
    if count < 2:
        raise ComposeError(
            f"too little approved content retrieved for segment '{request.segment.name}' "
            f"(tone {request.tone}): {count} quotable sentence(s), 2 needed (a sentence of "
            "4 or more words, without a relative-time deadline such as 'this weekend' "
            "unless it states a date); add approved content for this segment"
        )


def _compose_set(
    request: GenerationRequest,
    tone: ToneTemplates,
    footer: str,
    chosen: list[Paragraph],
    seed: int,
    low: int,
    fillers: str,
) -> tuple[Composition | None, str]:
    """Fit one set of paragraphs: (the composition, "") or (None, what fell short).

    Urgency wording is tried only when a cited paragraph states a date, and kept
    only when a quoted sentence does.
    """
    dated = any(states_date(s.text) for p in chosen for s in p.sentences)
    problem = ""
    for urgent in (True, False) if dated else (False,):
        frame = _Frame.build(request, tone, footer, chosen, seed, allow_urgency=urgent)
        problem = _fit(chosen, frame, tone, request.constraints, low, fillers) or ""
        if problem:
            return None, problem
        quoted = " ".join(p.chosen_text() for p in chosen)
        if urgent and frame.has_urgency() and not states_date(quoted):
            continue
        return Composition(frame.subject, frame.render(chosen), len(chosen)), ""
    return None, problem or "urgency wording without a quoted date"


def _fit(
    chosen: list[Paragraph],
    frame: _Frame,
    tone: ToneTemplates,
    constraints: GenerationConstraints,
    low: int,
    fillers: str,
) -> str | None:
    """Fill ``chosen`` to at least ``low`` words; None on success, else what fell short."""
    high = constraints.body_max_words
    total = _fill_sentences(chosen, frame, tone, constraints, low)
    if total is None:
        return f"a cited paragraph has no sentence that fits within {high} words"
    quoted = sum(p.chosen_words() for p in chosen)
    if fillers == "quoted_share":
        total = frame.add_fillers(total, low, high, quoted, tone.style.min_quoted_share)
    elif fillers == "any":
        total = frame.add_fillers(total, low, high)
    if not low <= total <= high:
        return f"the quotable sentences of {len(chosen)} paragraph(s) give {total} words"
    return None


def _citation_sets(ranked: list[Paragraph], wanted: int, most: int) -> list[list[Paragraph]]:
    """Paragraph sets to try: the best ``wanted``, then one more at a time, then the longest."""
    most = min(most, len(ranked))
    sets = [ranked[:n] for n in range(min(wanted, most), most + 1)]
    by_words = sorted(ranked[: max(most * 3, 8)], key=lambda p: -sum(s.words for s in p.sentences))
    longest = sorted(by_words[:most], key=ranked.index)
    if longest not in sets:
        sets.append(longest)
    return sets


def _seed(segment: str, tone: str) -> int:
    """Deterministic seed of a (segment, tone) pair."""
    return int(hashlib.sha256(f"{segment}\x1f{tone}".encode()).hexdigest()[:12], 16)


def _query_weights(segment: SegmentProfile) -> dict[str, float]:
    """Relevance terms of a segment: traits weigh most, then name, then definition."""
    weights: dict[str, float] = {}
    for text, weight in (
        (segment.definition, 0.5),
        (segment.name, 1.5),
        (" ".join(segment.traits), 2.0),
    ):
        for term in terms(text):
            weights[term] = max(weights.get(term, 0.0), weight)
    return weights


def _quotable_paragraphs(
    request: GenerationRequest, max_sentence_words: int, prefer_short: bool
) -> list[Paragraph]:
    """Retrieved paragraphs that have at least one sentence the composer may quote."""
    weights = _query_weights(request.segment)
    seen: set[tuple[str, int]] = set()
    paragraphs: list[Paragraph] = []
    for rank, snippet in enumerate(request.snippets):
        key = (snippet.title.strip().casefold(), snippet.paragraph_index)
        if key in seen or "[" in snippet.title or "]" in snippet.title or not snippet.title.strip():
            continue
        seen.add(key)
        sentences = _quotable_sentences(snippet.text, weights, max_sentence_words, prefer_short)
        if any(not s.needs_previous for s in sentences):
            paragraphs.append(Paragraph(snippet, rank, sentences))
    return paragraphs


def _quotable_sentences(
    text: str, weights: dict[str, float], max_words: int, prefer_short: bool
) -> list[Sentence]:
    """Split a paragraph and keep sentences that can stand in an email."""
    found: list[Sentence] = []
    for index, raw in enumerate(split_sentences(text)):
        sentence = " ".join(raw.split())
        n_words = count_words(sentence)
        if not 4 <= n_words <= max_words or "{" in sentence or "}" in sentence:
            continue
        if "[" in sentence or sentence.endswith(":"):
            continue
        if relative_time_phrases(sentence) and not states_date(sentence):
            continue  # "48 hours only" with no date: the reader cannot place it
        if not sentence.endswith(_TERMINAL):
            sentence += "."
        first = re.sub(r"^[^\w]+", "", sentence).split(" ", 1)[0].lower().strip(",;:")
        relevance = sum(weights.get(t, 0.0) for t in set(terms(sentence)))
        relevance += 0.6 if index == 0 else 0.0
        if prefer_short:
            relevance -= n_words / 30.0
        offers = len(extract_facts(sentence)) + 2 * len(extract_codes(sentence))
        found.append(Sentence(sentence, index, n_words, relevance, offers, first in _DANGLING))
    return found


def _rank_paragraphs(paragraphs: list[Paragraph], order: str) -> list[Paragraph]:
    """Order paragraphs for citation: best first, preferring distinct documents."""

    def base(p: Paragraph) -> float:
        best = max(s.relevance for s in p.sentences)
        offers = min(sum(s.offers for s in p.sentences), 6)
        score = 3.0 / (1 + p.rank) + 0.4 * best + 0.15 * offers
        if order == "offers_first":
            score += 0.65 * offers
        return score

    remaining = sorted(paragraphs, key=lambda p: (-base(p), p.rank))
    ordered: list[Paragraph] = []
    while remaining:
        used = {p.snippet.document_id for p in ordered}
        remaining.sort(
            key=lambda p: (-(base(p) - (2.5 if p.snippet.document_id in used else 0)), p.rank)
        )
        ordered.append(remaining.pop(0))
    return ordered


def _sentence_key(order: str) -> SentenceKey:
    """Sort key of candidate sentences for a tone's ``sentence_order``."""
    if order == "offers_first":
        return lambda ps: (-ps[1].offers, -ps[1].relevance, ps[0].rank, ps[1].index)
    if order == "source":
        return lambda ps: (ps[0].rank, ps[1].index)
    return lambda ps: (-ps[1].relevance, ps[0].rank, ps[1].index)


def _fill_sentences(
    chosen: list[Paragraph],
    frame: _Frame,
    tone: ToneTemplates,
    constraints: GenerationConstraints,
    low: int,
) -> int | None:
    """Choose sentences towards the tone's target length; the body's word count.

    A sentence repeated in two paragraphs is quoted once. Returns None when a
    cited paragraph has no sentence that fits at all.
    """
    for paragraph in chosen:
        paragraph.chosen = set()
    high = constraints.body_max_words
    target = min(max(tone.style.target_words, constraints.body_min_words + 5), high - 5)
    total = frame.fixed_words
    used: set[str] = set()
    for paragraph in chosen:
        lead = _lead_sentence(paragraph, high - total, used)
        if lead is None:
            return None
        paragraph.chosen.add(lead.index)
        used.add(_key_text(lead.text))
        total += lead.words
    key = _sentence_key(tone.style.sentence_order)
    per_source = tone.style.max_sentences_per_source
    total = _add_sentences(chosen, total, target, high, key, per_source, used)
    if total < low:
        total = _add_sentences(chosen, total, low, high, key, 10_000, used)
    return total


def _key_text(text: str) -> str:
    """Comparison form of a sentence (case and spacing ignored)."""
    return " ".join(text.casefold().split())


def _lead_sentence(paragraph: Paragraph, room: int, used: set[str]) -> Sentence | None:
    """The best standalone, not yet quoted sentence of a paragraph that fits in ``room``."""
    fitting = [
        s
        for s in paragraph.sentences
        if not s.needs_previous and s.words <= room and _key_text(s.text) not in used
    ]
    if not fitting:
        return None
    return max(fitting, key=lambda s: (s.relevance + 0.3 * min(s.offers, 3), -s.index))


def _add_sentences(
    chosen: list[Paragraph],
    total: int,
    goal: int,
    high: int,
    key: SentenceKey,
    per_source: int,
    used: set[str],
) -> int:
    """Add the best-ranked sentences that fit until ``goal`` words are reached."""
    changed = True
    while changed and total < goal:
        changed = False
        candidates = sorted(
            ((p, s) for p in chosen for s in p.sentences if s.index not in p.chosen), key=key
        )
        for paragraph, sentence in candidates:
            if len(paragraph.chosen) >= per_source or total + sentence.words > high:
                continue
            if sentence.needs_previous and sentence.index - 1 not in paragraph.chosen:
                continue
            if _key_text(sentence.text) in used:
                continue
            paragraph.chosen.add(sentence.index)
            used.add(_key_text(sentence.text))
            total += sentence.words
            changed = True
            break
    return total


# ----------------------------------------------------------------------------- the frame


@dataclass
class _Frame:
    """The templated parts of a message around the quoted sentences."""

    subject: str
    greeting: str
    opener: str
    intro: str
    bridges: list[str]
    closer: str
    cta: str
    sign_off: str
    footer: str
    layout: str
    filler_options: list[str] = field(default_factory=list)
    fillers: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        request: GenerationRequest,
        tone: ToneTemplates,
        footer: str,
        chosen: list[Paragraph],
        seed: int,
        *,
        allow_urgency: bool = True,
    ) -> _Frame:
        """Pick every template for this (segment, tone) and fill its placeholders.

        Without ``allow_urgency``, lines with urgency wording are skipped.
        """
        picker = _Picker(request, chosen, seed, allow_urgency)
        layout = tone.style.layout
        bridges: list[str] = []
        if layout == "conversational":
            first = tone.lead_bridges or tone.bridges
            bridges = [picker.pick("lead_bridge", first, required=False)]
            bridges += [
                picker.pick("bridge", tone.bridges, required=False, offset=i)
                for i in range(len(chosen) - 1)
            ]
        return cls(
            subject=picker.subject(
                picker.for_category(tone.category_subjects, tone.subjects),
                request.constraints.subject_max_chars,
            ),
            greeting=picker.pick("greeting", tone.greetings),
            opener=picker.pick_in_groups("opener", picker.openers(tone, chosen)),
            intro=picker.pick("intro", tone.fact_intros, required=False)
            if layout == "bullets"
            else "",
            bridges=bridges,
            closer=picker.pick("closer", tone.closers, required=False),
            cta=picker.pick(
                "cta", picker.for_category(tone.category_ctas, tone.ctas), prefer_specific=True
            ),
            sign_off=picker.pick("sign_off", tone.sign_offs),
            footer=footer,
            layout=layout,
            filler_options=picker.usable_all("filler", tone.fillers),
        )

    @property
    def fixed_words(self) -> int:
        """Words outside the quoted sentences."""
        parts = [
            self.greeting,
            self.opener,
            self.intro,
            *self.bridges,
            self.closer,
            self.cta,
            self.sign_off,
            self.footer,
        ]
        return sum(count_words(p) for p in parts)

    def add_fillers(
        self, total: int, low: int, high: int, quoted: int = 0, min_share: float = 0.0
    ) -> int:
        """Add filler lines while the body is under ``low`` words; the new total.

        A filler that would bring the quoted words under ``min_share`` of the
        body is not added.
        """
        self.fillers = []
        for line in self.filler_options:
            if total >= low:
                break
            words = count_words(line)
            if total + words <= high and quoted >= min_share * (total + words):
                self.fillers.append(line)
                total += words
        return total

    def has_urgency(self) -> bool:
        """True when a templated line asks the reader to hurry."""
        lines = [self.subject, self.opener, self.intro, *self.bridges, self.closer]
        lines += [self.cta, self.sign_off, *self.fillers]
        return any(urgency_phrases(line) for line in lines)

    def render(self, chosen: list[Paragraph]) -> str:
        """The body: greeting, opener, cited facts in the tone's layout, CTA, sign-off, footer."""
        facts = [f"{p.chosen_text()} {p.marker()}" for p in chosen]
        blocks = [self.greeting, self.opener]
        if self.layout == "bullets":
            lines = [self.intro] if self.intro else []
            blocks.append("\n".join(lines + [f"- {fact}" for fact in facts]))
        elif self.layout == "conversational":
            for bridge, fact in zip(self.bridges, facts, strict=True):
                blocks.append(f"{bridge} {fact}".strip())
        else:
            blocks.append(" ".join(facts))
        blocks += [" ".join(self.fillers), self.closer, self.cta, self.sign_off, self.footer]
        return "\n\n".join(block for block in blocks if block)


class _Picker:
    """Deterministic template choice, skipping templates the sources do not support."""

    def __init__(
        self,
        request: GenerationRequest,
        chosen: list[Paragraph],
        seed: int,
        allow_urgency: bool = True,
    ) -> None:
        self.request = request
        self.seed = seed
        self.allow_urgency = allow_urgency
        cited = [p.snippet for p in chosen]
        self.support = SupportIndex.of(cited)
        self.names: set[str] = set()
        for snippet in request.snippets:
            self.names |= extract_names(snippet.text)
        # Title, offer, link and category all come from the first cited document,
        # so the call to action names and links to what the email leads with.
        lead = cited[:1]
        self.category = lead[0].category.strip().lower() if lead else ""
        self.values = {
            "title": lead[0].title.strip() if lead else "",
            "offer": _first_code(lead),
            "url": _safe_url(lead, cited),
        }

    def _order(self, kind: str, options: Sequence[str], offset: int = 0) -> list[str]:
        """Options rotated by a seed of (segment, tone, kind)."""
        if not options:
            return []
        start = (
            int(hashlib.sha256(f"{self.seed}:{kind}".encode()).hexdigest()[:8], 16) + offset
        ) % len(options)
        return list(options[start:]) + list(options[:start])

    def _usable(self, template: str) -> str | None:
        """The filled template, or None when it cannot be used here.

        Unusable: a placeholder without a value, a fact the cited sources do not
        state, a relative-time deadline, urgency wording when not allowed, a
        title that repeats a word of the template ("Your guide to ... Guide"), or
        an audience value not every recipient holds (a title naming a tier).
        """
        needed = placeholders(template) - {"first_name"}
        if any(not self.values.get(name) for name in needed):
            return None
        text = fill(template, self.values)
        if relative_time_phrases(text) or (not self.allow_urgency and urgency_phrases(text)):
            return None
        if "title" in needed and _shares_terms(fill(template, {"title": ""}), self.values["title"]):
            return None
        request = self.request
        if find_mentions(text, request.avoid_mentions, request.avoid_match_case):
            return None
        _, missing = self.support.missing(text, self.names)
        return None if missing else text

    def for_category(self, by_category: dict[str, list[str]], general: Sequence[str]) -> list[str]:
        """The lines for the lead document's category, else the general lines."""
        for key, lines in by_category.items():
            if key.strip().lower() == self.category:
                return list(lines)
        return list(general)

    def pick(
        self,
        kind: str,
        options: Sequence[str],
        required: bool = True,
        offset: int = 0,
        prefer_specific: bool = False,
    ) -> str:
        """The first usable option in seeded order ("" when optional and none fits).

        With ``prefer_specific``, options that fill more placeholders (a link, an
        offer code) come before generic ones.
        """
        ordered = self._order(kind, options, offset)
        if prefer_specific:
            ordered.sort(key=lambda o: -len(placeholders(o) - {"first_name"}))
        for option in ordered:
            text = self._usable(option)
            if text is not None:
                return text
        if required:
            raise ComposeError(
                f"no usable '{kind}' template for tone '{self.request.tone}': each one needs a "
                "value the cited sources lack or states a fact they do not contain"
            )
        return ""

    def usable_all(self, kind: str, options: Sequence[str]) -> list[str]:
        """Every usable option, in seeded order."""
        return [t for t in (self._usable(o) for o in self._order(kind, options)) if t]

    def pick_in_groups(self, kind: str, groups: list[list[str]]) -> str:
        """The first usable option of the first group that has one (the last is required)."""
        for group in groups[:-1]:
            text = self.pick(kind, group, required=False)
            if text:
                return text
        return self.pick(kind, groups[-1] if groups else [])

    def openers(self, tone: ToneTemplates, chosen: list[Paragraph]) -> list[list[str]]:
        """Opener groups to try: those for the segment's traits, then the general ones.

        An opener that echoes a sentence of the first cited paragraph (the first
        quote follows it) is left out, unless every opener does.
        """
        traits = {_norm(t) for t in self.request.segment.traits}
        name = _norm(self.request.segment.name)
        matched: list[str] = []
        for key, lines in tone.trait_openers.items():
            if _norm(key) in traits or _norm(key) in name:
                matched.extend(lines)
        lead = [s.text for s in chosen[0].sentences] if chosen else []
        groups = [
            [o for o in group if not any(_echoes(o, sentence) for sentence in lead)]
            for group in (matched, list(tone.openers))
        ]
        groups = [group for group in groups if group]
        return groups or [list(tone.openers)]

    def subject(self, options: Sequence[str], max_chars: int) -> str:
        """The first subject (in seeded order) that fits, trying shorter title forms.

        A title such as ``"WELCOME15: 15% Off Your First Order"`` may also be
        used as either side of its colon; only when nothing fits is the title
        cut at a word boundary.
        """
        ordered = self._order("subject", options)
        for option in ordered:
            for title in self._title_forms(option):
                text = self._usable_with(option, title)
                if text is not None and len(text) <= max_chars and not _repeats_terms(text):
                    return text
        for option in ordered:
            if "{title}" not in option or self._usable(option) is None:
                continue
            room = max_chars - len(fill(option, {**self.values, "title": ""}))
            short = truncate_words(self._title_forms(option)[0], room)
            if len(short) >= 12:
                return fill(option, {**self.values, "title": short})
        usable = [t for t in (self._usable(o) for o in ordered) if t]
        if usable:
            return truncate_words(usable[0], max_chars)
        raise ComposeError(f"no usable subject template for tone '{self.request.tone}'")

    def _title_forms(self, template: str) -> list[str]:
        """Forms of the title to try: whole, and each side of a colon in it."""
        title = self.values["title"]
        if "{title}" not in template or ":" not in title:
            return [title]
        head, _, tail = (part.strip() for part in title.partition(":"))
        # The part before a colon is often just a code or a label: use it only
        # when it is a phrase of its own.
        sides = [tail] if len(tail.split()) >= 2 else []
        head_forms = [head] if len(head.split()) >= 2 else []
        # A template with its own colon reads badly with a second one from the title.
        own_colon = ":" in template.replace("{title}", "")
        return [*sides, *head_forms, title] if own_colon else [title, *sides, *head_forms]

    def _usable_with(self, template: str, title: str) -> str | None:
        """Like :meth:`_usable`, with a given form of the title."""
        saved = self.values["title"]
        self.values["title"] = title
        try:
            return self._usable(template)
        finally:
            self.values["title"] = saved


def _norm(text: str) -> str:
    """Lower-case, hyphens and underscores as spaces, single-spaced."""
    return " ".join(text.lower().replace("-", " ").replace("_", " ").split())


def _shares_terms(template_text: str, title: str) -> bool:
    """True when the title repeats a content word of the template around it."""
    return bool(set(terms(template_text)) & set(terms(title)))


def _repeats_terms(text: str) -> bool:
    """True when a content word (or offer code) appears twice ("Guide ... Guide")."""
    found = terms(text)
    return len(found) != len(set(found))


def _echoes(opener: str, sentence: str) -> bool:
    """True when an opener says what a quoted sentence says.

    Echo: the same first content word ("Welcome ..." / "Welcome to ..."), or
    half the opener's (or the sentence's) content words in common.
    """
    mine, theirs = terms(opener), terms(sentence)
    if not mine or not theirs:
        return False
    if mine[0] == theirs[0]:
        return True
    common = set(mine) & set(theirs)
    return len(common) >= 0.5 * min(len(set(mine)), len(set(theirs)))


def _first_code(snippets: Sequence[Snippet]) -> str:
    """The first offer code in the cited paragraphs ("" when none)."""
    for snippet in snippets:
        codes = sorted(extract_codes(snippet.text), key=snippet.text.find)
        if codes:
            return codes[0]
    return ""


def _safe_url(linked: Sequence[Snippet], cited: Sequence[Snippet]) -> str:
    """The first URL of ``linked`` whose digits all appear in the cited text ("" if none).

    A link such as ``/offers/spring-2031`` would otherwise put a number in the
    body that no cited paragraph states.
    """
    cited_text = " ".join(s.text for s in cited)
    for snippet in linked:
        url = snippet.source_url.strip()
        if not url.lower().startswith(("http://", "https://")) or " " in url:
            continue
        if all(d in cited_text for d in _URL_DIGITS.findall(url)):
            return url
    return ""


if TYPE_CHECKING:
    _conforms: type[Generator] = GroundedGenerator
