"""The generation backend contract, and the rules every variant is held to.

A backend implements :class:`Generator`: one verb, ``generate(request) ->
Variant``. Whatever the backend, a variant is finished by :func:`finish_variant`,
which appends the unsubscribe footer, validates the hard constraints
(:func:`validate_message`), checks citations and grounding
(:func:`cpo.citations.check_grounding`) and gives the variant its
deterministic id (:func:`variant_id`).

Adding a backend: a new module in this folder with a class that has a
``settings_model`` and ``from_settings(settings, ctx)`` (``ctx`` a
:class:`GenerationContext`), plus one ``register("generation", name,
"module:Class")`` line in ``cpo/generation/__init__.py`` (see :mod:`cpo.registry`).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol

from cpo import registry
from cpo.citations import check_grounding, distinct_citations, strip_citations
from cpo.errors import CpoError
from cpo.generation.prompts import PromptLibrary
from cpo.generation.settings import GenerationServiceSettings, GenerationSettings
from cpo.logs import RunLog, utc_now
from cpo.models import GenerationConstraints, GenerationRequest, Variant
from cpo.registry import BackendSettings
from cpo.text import count_words, split_sentences

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{(\w*)\}")
_CTA_LEAD = re.compile(
    r"^(?:[^\w{]+|please|just|so|now|simply|then|and|go ahead and|why not|don't forget to|"
    r"do not forget to|be sure to|make sure to|feel free to|remember to)\s+",
    re.IGNORECASE,
)
ALLOWED_MERGE_FIELDS = frozenset({"first_name"})


class Generator(Protocol):
    """A generation backend.

    Attributes:
        backend: Backend name recorded on variants (``grounded``, ``openai``, ...).
        model: Model (or composer version) recorded on variants.
        concurrency: How many ``generate`` calls may run at once.
        settings_model: Its block in ``services.generation`` (validated on load).
        usage: API calls, tokens and cost so far (``None`` for a backend that
            calls no paid API); the generate stage adds it to the run totals.
    """

    backend: str
    model: str
    concurrency: int
    settings_model: ClassVar[type[BackendSettings]]

    @property
    def usage(self) -> UsageCounter | None:
        """API use so far, or ``None`` when the backend calls no paid API."""

    @classmethod
    def from_settings(cls, settings: Any, ctx: GenerationContext) -> Generator:
        """Build the backend from its validated ``settings_model`` block."""

    def generate(self, request: GenerationRequest) -> Variant:
        """Write one variant for ``request``; never raises for a bad reply (status failed)."""


@dataclass(frozen=True)
class GenerationContext:
    """What the generate stage gives a backend's ``from_settings``.

    Attributes:
        generation: The ``generation:`` section (tones, constraints, CTA verbs).
        prompts: The prompts folder (tone files, footer, generation prompt).
        log: Run log for API calls (``None`` = in memory only).
        cache_dir: Response cache folder for network backends (``None`` = the
            setting, or the user cache).
    """

    generation: GenerationSettings
    prompts: PromptLibrary
    log: RunLog | None = None
    cache_dir: Path | None = None


@dataclass
class UsageCounter:
    """Thread-safe totals of API use by one backend instance."""

    api_calls: int = 0
    tokens_prompt: int = 0
    tokens_completion: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: Any) -> None:
        """Add to one or more totals."""
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)


def create_generator(
    service: GenerationServiceSettings,
    generation: GenerationSettings,
    prompts: PromptLibrary,
    *,
    log: RunLog | None = None,
    cache_dir: Path | None = None,
) -> Generator:
    """Build the backend named by ``service.backend``.

    Raises:
        ConfigError: unknown backend, or a setting it needs is missing.
        BackendUnavailable: the backend's optional package is not installed.
    """
    ctx = GenerationContext(generation, prompts, log, cache_dir)
    generator: Generator = registry.build("generation", service.backend, service.selected, ctx)
    return generator


def variant_id(segment: str, tone: str, backend: str, model: str, prompt_sha256: str) -> str:
    """Deterministic id of a variant: ``"v-"`` + 12 hex chars of a hash of its inputs."""
    key = "\x1f".join((segment, tone, backend, model, prompt_sha256))
    return "v-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def sha256_text(text: str) -> str:
    """sha256 hex digest of a UTF-8 string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- validation


def has_call_to_action(body: str, cta_verbs: Sequence[str]) -> bool:
    """True when a sentence starts with a call-to-action verb, or a line has a link.

    Unsubscribe lines are ignored: their link is not a call to action.
    """
    verbs = sorted({v.lower().strip() for v in cta_verbs if v.strip()}, key=len, reverse=True)
    for line in strip_citations(body).splitlines():
        if not line.strip() or "unsubscribe" in line.lower():
            continue
        if _URL.search(line):
            return True
        for sentence in split_sentences(line):
            lead = sentence.lower()
            previous = None
            while previous != lead:
                previous, lead = lead, _CTA_LEAD.sub("", lead, count=1)
            if any(
                lead == v or lead.startswith(v + " ") or lead.startswith(v + ",") for v in verbs
            ):
                return True
    return False


def body_floor(constraints: GenerationConstraints) -> int:
    """The fewest words a body may have: ``body_floor_words``, never above the target."""
    return min(constraints.body_floor_words, constraints.body_min_words)


def validate_message(
    subject: str,
    body: str,
    constraints: GenerationConstraints,
    cta_verbs: Sequence[str],
) -> list[str]:
    """Check a message against the hard constraints.

    Args:
        subject: Subject line.
        body: Body including citation markers and footer.
        constraints: Limits (subject length, word range, citation range).
        cta_verbs: Verbs that open a call to action.

    Returns:
        One specific, fixable problem per broken rule (empty when it passes).
    """
    problems: list[str] = []
    subject_text = subject.strip()
    if not subject_text:
        problems.append("the subject line is empty")
    elif "\n" in subject_text:
        problems.append("the subject must be a single line")
    elif len(subject_text) > constraints.subject_max_chars:
        problems.append(
            f"the subject has {len(subject_text)} characters; "
            f"the limit is {constraints.subject_max_chars}"
        )
    words = count_words(strip_citations(body))
    # body_min_words is a target; the hard range is the floor..body_max_words.
    floor = body_floor(constraints)
    if not floor <= words <= constraints.body_max_words:
        problems.append(
            f"the body has {words} words (citation markers excluded); it must have "
            f"{floor}-{constraints.body_max_words} (aim for "
            f"{constraints.body_min_words}-{constraints.body_max_words})"
        )
    cited = len(distinct_citations(body))
    if not constraints.min_citations <= cited <= constraints.max_citations:
        problems.append(
            f"the body cites {cited} distinct source paragraph(s); it must cite "
            f"{constraints.min_citations}-{constraints.max_citations} as [Source: Title, ¶N]"
        )
    if not has_call_to_action(body, cta_verbs):
        problems.append(
            "the body has no call to action: add a sentence that starts with a verb such as "
            + ", ".join(f"'{v.capitalize()}'" for v in list(cta_verbs)[:4])
            + " (or a link)"
        )
    unknown = sorted({p for p in _PLACEHOLDER.findall(subject + body)} - ALLOWED_MERGE_FIELDS)
    if unknown:
        problems.append(
            "unfilled placeholder(s) "
            + ", ".join("{" + p + "}" for p in unknown)
            + "; only {first_name} is allowed (in the greeting)"
        )
    return problems


# ----------------------------------------------------------------------------- variants


def append_footer(body: str, footer: str) -> str:
    """Append the unsubscribe footer after a blank line (once)."""
    body = body.rstrip()
    footer = footer.strip()
    if not footer or body.endswith(footer):
        return body
    return f"{body}\n\n{footer}"


def without_footer(body: str, footer: str) -> str:
    """``body`` without the footer :func:`append_footer` put at its end."""
    footer = footer.strip()
    trimmed = body.rstrip()
    if footer and trimmed.endswith(footer):
        return trimmed[: -len(footer)].rstrip()
    return body


@dataclass(frozen=True)
class Provenance:
    """How a message was produced (recorded on the variant)."""

    backend: str
    model: str
    prompt_sha256: str
    tokens_prompt: int = 0
    tokens_completion: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    cached: bool = False


def finish_variant(
    request: GenerationRequest,
    subject: str,
    body: str,
    provenance: Provenance,
    cta_verbs: Sequence[str],
    footer: str = "",
) -> tuple[Variant, list[str]]:
    """Validate and ground a finished message, and build its :class:`Variant`.

    A message that breaks a hard constraint becomes a variant with status
    ``failed`` and the problems in ``error``; grounding problems are recorded
    in ``grounding`` (the safety stage blocks on them), not failed here. The
    ``footer`` ending the body is the brand's boilerplate (unsubscribe link,
    postal address), not a claim, so grounding leaves it out.

    Returns:
        The variant and the list of problems (constraints first, then grounding),
        so a backend can ask for a repair.
    """
    subject = " ".join(subject.split())
    constraint_problems = validate_message(subject, body, request.constraints, cta_verbs)
    report = check_grounding(without_footer(body, footer), request.snippets, subject=subject)
    variant = Variant(
        subject=subject,
        body=body,
        citations=report.citations,
        grounding=report.grounding,
        **_provenance_fields(request, provenance),
        status="failed" if constraint_problems else "generated",
        error="; ".join(constraint_problems) if constraint_problems else None,
    )
    return variant, constraint_problems + report.problems()


def _provenance_fields(request: GenerationRequest, provenance: Provenance) -> dict[str, Any]:
    """The Variant fields that say who wrote it, from what, and at what cost."""
    return {
        "variant_id": _request_variant_id(request, provenance),
        "segment": request.segment.name,
        "tone": request.tone,
        "backend": provenance.backend,
        "model": provenance.model,
        "prompt_sha256": provenance.prompt_sha256,
        "retrieved_document_ids": retrieved_document_ids(request),
        "tokens_prompt": provenance.tokens_prompt,
        "tokens_completion": provenance.tokens_completion,
        "cost_usd": round(provenance.cost_usd, 8),
        "latency_ms": round(provenance.latency_ms, 1),
        "generated_at": utc_now(),
        "cached": provenance.cached,
    }


def _request_variant_id(request: GenerationRequest, provenance: Provenance) -> str:
    """The deterministic id of the variant a request and its provenance produce."""
    return variant_id(
        request.segment.name,
        request.tone,
        provenance.backend,
        provenance.model,
        provenance.prompt_sha256,
    )


def failed_variant(request: GenerationRequest, provenance: Provenance, reason: str) -> Variant:
    """A variant that could not be written (no text; ``error`` says why)."""
    return Variant(
        subject="",
        body="",
        grounding=check_grounding("", request.snippets).grounding,
        **_provenance_fields(request, provenance),
        status="failed",
        error=reason,
    )


def retrieved_document_ids(request: GenerationRequest) -> tuple[str, ...]:
    """Distinct document ids of the request's snippets, in retrieval order."""
    return tuple(dict.fromkeys(s.document_id for s in request.snippets))


def generate_many(
    generator: Generator,
    requests: Sequence[GenerationRequest],
    *,
    on_done: Callable[[int, int, Variant], None] | None = None,
) -> list[Variant]:
    """Run every request, up to ``generator.concurrency`` at a time.

    A :class:`~cpo.errors.CpoError` from one request becomes a failed variant so
    the others go on; any other exception is a bug and propagates.

    Args:
        generator: The backend.
        requests: One request per segment x tone.
        on_done: Called in the calling thread as ``(completed, total, variant)``.

    Returns:
        The variants, in the order of ``requests``.
    """
    results: list[Variant | None] = [None] * len(requests)
    workers = max(1, min(generator.concurrency, len(requests) or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cpo-generate") as pool:
        futures = {pool.submit(_generate_one, generator, r): i for i, r in enumerate(requests)}
        for done, future in enumerate(as_completed(futures), start=1):
            variant = future.result()
            results[futures[future]] = variant
            if on_done is not None:
                on_done(done, len(requests), variant)
    return [r for r in results if r is not None]


def _generate_one(generator: Generator, request: GenerationRequest) -> Variant:
    """Call the backend, turning a user-facing error into a failed variant."""
    try:
        return generator.generate(request)
    except CpoError as exc:
        provenance = Provenance(generator.backend, generator.model, "")
        return failed_variant(request, provenance, str(exc))


def with_error(variant: Variant, reason: str) -> Variant:
    """Return ``variant`` marked failed with ``reason``."""
    return replace(variant, status="failed", error=reason)
