"""LLM backends over the official ``openai`` SDK: ``openai`` and ``azure_openai``.

* ``openai`` talks to any server that speaks the Chat Completions API:
  OpenAI itself (``base_url: null``), vLLM, Ollama, the llama.cpp server, ...
  (``base_url: http://host:port/v1``).
* ``azure_openai`` uses ``AzureOpenAI`` (``azure_endpoint``, ``deployment``,
  ``api_version``); the key comes from ``api_key_env`` or, when that variable
  is unset, from ``DefaultAzureCredential`` (``azure-identity``).

Per request: the prompt is ``prompts/generation_prompt.txt`` filled with the
segment, the tone file's ``llm_guidance``, the retrieved paragraphs and the
constraints. The reply (``Subject: ...`` / ``Body: ...``) is parsed, the footer
appended, and the message validated and grounded like every backend's. When it
breaks a rule, the model gets one repair request listing the exact problems;
a message that still breaks a hard constraint is recorded as ``failed``.

API discipline: the SDK's own retries are off (``max_retries=0``); the shared
:func:`cpo.netclient.call_with_retries` retries connection errors, timeouts,
429 and 5xx with exponential backoff, never 400/401/403. Replies are cached on
disk by (model, prompt sha256): a re-run sends no request and costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import Field

from cpo.citations import format_citation
from cpo.errors import BackendError, ConfigError
from cpo.generation.base import (
    GenerationContext,
    Generator,
    Provenance,
    UsageCounter,
    append_footer,
    failed_variant,
    finish_variant,
    with_error,
)
from cpo.generation.prompts import GENERATION_PROMPT_FILE
from cpo.logs import RunLog
from cpo.models import GenerationRequest, Variant
from cpo.netclient import Failure, RetryPolicy, call_with_retries, status_is_retryable
from cpo.registry import BackendSettings
from cpo.runfiles import atomic_open
from cpo.text import count_words


def _openai() -> Any:
    """The ``openai`` SDK (the ``openai`` extra), imported when an LLM backend is built.

    Loading a config never imports it; a missing SDK is reported by the registry
    with the install hint of the backend's registration.
    """
    import openai

    return openai


STAGE = "generate"
_SUBJECT_LINE = re.compile(r"^\W*subject\W*:\s*(?P<text>.*)$", re.IGNORECASE)
_BODY_LINE = re.compile(r"^\W*body\W*:\s*(?P<text>.*)$", re.IGNORECASE)
_FENCE = re.compile(r"^\s*```[\w-]*\s*$")
#: Margin kept between the word range asked of the model and the hard limits.
_WORD_MARGIN = 10


class ReplyFormatError(ValueError):
    """The model's reply is not ``Subject: ...`` followed by ``Body: ...``."""


@dataclass(frozen=True)
class Completion:
    """One chat completion (from the API or the cache)."""

    content: str
    tokens_prompt: int
    tokens_completion: int
    latency_ms: float
    cached: bool
    cost_usd: float


# ----------------------------------------------------------------------------- prompt


def build_messages(
    request: GenerationRequest, setup: GenerationContext, footer: str
) -> list[dict[str, str]]:
    """The chat messages for one request (system + user) from the prompt files."""
    system, user = setup.prompts.generation_prompt()
    tone = setup.prompts.tone(request.tone)
    constraints = request.constraints
    footer_words = count_words(footer)
    low = max(20, constraints.body_min_words - footer_words + _WORD_MARGIN)
    high = max(low + 10, constraints.body_max_words - footer_words - _WORD_MARGIN)
    verbs = [v.capitalize() for v in setup.generation.cta_verbs[:4]]
    has_links = any(s.source_url for s in request.snippets)
    values = {
        "segment_name": request.segment.name,
        "segment_definition": request.segment.definition or "(no description)",
        "segment_traits": ", ".join(request.segment.traits) or "(none given)",
        "tone": request.tone,
        "tone_guidance": tone.llm_guidance.strip(),
        "snippets": render_snippets(request),
        "subject_max_chars": str(constraints.subject_max_chars),
        "body_min_words": str(low),
        "body_max_words": str(high),
        "min_citations": str(constraints.min_citations),
        "max_citations": str(constraints.max_citations),
        "cta_examples": ", ".join(f"'{v}'" for v in verbs[:-1]) + f" or '{verbs[-1]}'",
        "cta_link": " Include the link of a source you cite in it." if has_links else "",
        "audience_rule": _audience_rule(request),
    }
    return [
        {"role": "system", "content": system.safe_substitute(values)},
        {"role": "user", "content": user.safe_substitute(values)},
    ]


def _audience_rule(request: GenerationRequest) -> str:
    """The prompt's rule against naming tiers not every recipient holds ("" when none)."""
    if not request.avoid_mentions:
        return ""
    names = ", ".join(request.avoid_mentions)
    return (
        f" Do not name these tiers or plans, which not every recipient has, anywhere "
        f"(subject included): {names}."
    )


def render_snippets(request: GenerationRequest) -> str:
    """The retrieved paragraphs as the prompt shows them: marker, link, text."""
    blocks: list[str] = []
    seen: set[tuple[str, int]] = set()
    for snippet in request.snippets:
        key = (snippet.title, snippet.paragraph_index)
        if key in seen:
            continue
        seen.add(key)
        header = format_citation(snippet.title, snippet.paragraph_index)
        if snippet.source_url:
            header += f" (link: {snippet.source_url})"
        blocks.append(f"{header}\n{' '.join(snippet.text.split())}")
    return "\n\n".join(blocks) if blocks else "(no approved content was retrieved)"


def repair_message(problems: list[str]) -> dict[str, str]:
    """The user message asking for one corrected version."""
    listed = "\n".join(f"- {p}" for p in problems)
    return {
        "role": "user",
        "content": (
            "Your email breaks these rules:\n"
            f"{listed}\n\n"
            "Rewrite the whole email so it follows every rule, changing only what is needed. "
            "Reply in exactly the same format:\nSubject: <subject line>\nBody:\n<email body>"
        ),
    }


def request_sha256(model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
    """sha256 of the canonical request (messages and sampling parameters)."""
    payload = {"messages": messages, "params": params}
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_reply(text: str) -> tuple[str, str]:
    """Split a reply into (subject, body).

    Tolerates Markdown emphasis on the labels, code fences, and a body that
    starts on the ``Body:`` line itself. Lines mentioning "unsubscribe" are
    dropped from the body (the configured footer is appended instead).

    Raises:
        ReplyFormatError: no ``Subject:`` line, or no body.
    """
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if not _FENCE.match(line)]
    subject_line = _first_match(_SUBJECT_LINE, lines)
    if subject_line is None:
        raise ReplyFormatError("the reply has no 'Subject:' line")
    subject_at, subject_match = subject_line
    subject = subject_match.group("text")
    subject = subject.strip().strip("*").strip().strip("\"'“”").strip()
    rest = lines[subject_at + 1 :]
    body_line = _first_match(_BODY_LINE, rest)
    if body_line is not None:
        body_at, body_match = body_line
        first = body_match.group("text").strip().strip("*_").strip()
        rest = ([first] if first.strip() else []) + rest[body_at + 1 :]
    body_lines = [line.rstrip() for line in rest if "unsubscribe" not in line.lower()]
    body = "\n".join(body_lines).strip()
    if not body:
        raise ReplyFormatError("the reply has no body after 'Body:'")
    return subject, body


def _first_match(pattern: re.Pattern[str], lines: list[str]) -> tuple[int, re.Match[str]] | None:
    """The index and match of the first line ``pattern`` matches (``None``: no line does)."""
    for index, line in enumerate(lines):
        found = pattern.match(line)
        if found is not None:
            return index, found
    return None


# ----------------------------------------------------------------------------- cache


class ResponseCache:
    """Replies on disk, one JSON file per (model, prompt sha256).

    Args:
        folder: Cache folder (created on first write).
        log: Where to report unreadable cache files (treated as misses).
    """

    def __init__(self, folder: Path, log: RunLog | None = None) -> None:
        self.folder = folder
        self.log = log

    def _path(self, model: str, prompt_sha256: str) -> Path:
        key = hashlib.sha256(f"{model}\x1f{prompt_sha256}".encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.json"

    def get(self, model: str, prompt_sha256: str) -> dict[str, Any] | None:
        """The cached reply, or None."""
        path = self._path(model, prompt_sha256)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("model") == model and data.get("prompt_sha256") == prompt_sha256:
                return data
        except (OSError, ValueError):
            pass
        if self.log is not None:
            self.log.warning(STAGE, "cache_entry_ignored", path=str(path))
        return None

    def put(self, model: str, prompt_sha256: str, reply: dict[str, Any]) -> None:
        """Store a reply atomically."""
        path = self._path(model, prompt_sha256)
        with atomic_open(path) as handle:
            json.dump({"model": model, "prompt_sha256": prompt_sha256, **reply}, handle)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cpo/generation`` (or ``~/.cache/cpo/generation``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cpo" / "generation"


# ----------------------------------------------------------------------------- backend


class ChatSettings(BackendSettings):
    """What every Chat Completions backend shares (its block has these keys too).

    Attributes:
        api_key_env: Environment variable holding the API key (never the key itself).
        concurrency: Requests in flight at once.
        timeout_s: Per-request timeout in seconds.
        max_retries: Retries after the first attempt on connection errors,
            timeouts, 429 and 5xx (so 2 means up to 3 attempts).
        backoff_base_s: First backoff wait; doubles on every retry (with jitter).
        temperature: Sampling temperature.
        max_tokens: Completion token limit per request.
        price_per_1k_prompt: USD per 1,000 prompt tokens (cost accounting).
        price_per_1k_completion: USD per 1,000 completion tokens.
        cache_dir: Response cache folder; ``None`` = the user cache
            (``$XDG_CACHE_HOME/cpo/generation`` or ``~/.cache/cpo/generation``).
        allow_insecure_http: Allow a plain ``http://`` endpoint on a host other than
            loopback (the key then crosses the network unencrypted).
    """

    prompt_files = (GENERATION_PROMPT_FILE,)

    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(default=8, ge=1, le=256)
    timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_base_s: float = Field(default=0.5, ge=0)
    temperature: float = Field(default=0.4, ge=0, le=2)
    max_tokens: int = Field(default=700, ge=64, le=16_000)
    price_per_1k_prompt: float = Field(default=0.00015, ge=0)
    price_per_1k_completion: float = Field(default=0.0006, ge=0)
    cache_dir: str | None = None
    allow_insecure_http: bool = False


class OpenAISettings(ChatSettings):
    """``services.generation.openai``: any OpenAI-compatible Chat Completions server.

    Attributes:
        base_url: Endpoint, e.g. ``http://127.0.0.1:8000/v1`` (``None`` = api.openai.com).
        model: Model name sent to the server; recorded on variants.
    """

    endpoint_fields = ("base_url",)

    base_url: str | None = None
    model: str = "gpt-4o-mini"


class AzureOpenAISettings(ChatSettings):
    """``services.generation.azure_openai``: a deployment on Azure OpenAI.

    Attributes:
        azure_endpoint: ``https://<name>.openai.azure.com`` (required when selected).
        deployment: Deployment name, recorded as the model (required when selected).
        api_version: Azure OpenAI REST API version.
    """

    endpoint_fields = ("azure_endpoint",)

    azure_endpoint: str | None = None
    deployment: str | None = None
    api_version: str = "2024-10-21"

    def problems_when_selected(self) -> dict[str, str]:
        """Azure routes by endpoint and deployment: both are needed."""
        problems = {}
        if not self.azure_endpoint:
            problems["azure_endpoint"] = (
                "backend 'azure_openai' needs it (https://<name>.openai.azure.com)"
            )
        if not self.deployment:
            problems["deployment"] = "backend 'azure_openai' needs the deployment name"
        return problems


SettingsT = TypeVar("SettingsT", bound=ChatSettings)


class ChatGenerator(Generic[SettingsT]):
    """Generation over a Chat Completions endpoint (the shared part of both backends).

    Args:
        settings: The backend's block of ``services.generation``.
        setup: What the stage provides (prompts, generation section, log, cache folder).
    """

    backend = ""

    def __init__(self, settings: SettingsT, setup: GenerationContext) -> None:
        self.sdk = _openai()
        self.setup = setup
        self.settings = settings
        self.model = self._model_name()
        self.concurrency = settings.concurrency
        self.usage = UsageCounter()
        self.policy = RetryPolicy(
            max_retries=settings.max_retries, backoff_base_s=settings.backoff_base_s
        )
        folder = setup.cache_dir or (
            Path(settings.cache_dir).expanduser() if settings.cache_dir else None
        )
        self.cache = ResponseCache(folder or default_cache_dir(), setup.log)
        self.client = self._client()

    def _model_name(self) -> str:
        """The model sent with each request."""
        raise NotImplementedError

    def _client(self) -> Any:
        """The SDK client (retries off; timeout from settings)."""
        raise NotImplementedError

    # -- one variant ----------------------------------------------------------------

    def generate(self, request: GenerationRequest) -> Variant:
        """Ask the model for one variant; repair once; never raises for a bad reply."""
        footer = self.setup.prompts.footer()
        messages = build_messages(request, self.setup, footer)
        params = self._params()
        prompt_sha = request_sha256(self.model, messages, params)
        what = f"{self.backend} {self.model} ({request.segment.name} / {request.tone})"
        spent: list[Completion] = []
        try:
            first = self._complete(messages, params, what)
            spent.append(first)
            variant, problems = self._finish(request, first.content, footer, prompt_sha, spent)
            if not problems:
                return variant
            repair = [
                *messages,
                {"role": "assistant", "content": first.content},
                repair_message(problems),
            ]
            second = self._complete(repair, params, what + " repair")
            spent.append(second)
            repaired, still = self._finish(request, second.content, footer, prompt_sha, spent)
        except BackendError as exc:
            return failed_variant(request, self._provenance(prompt_sha, spent), str(exc))
        best = _better(variant, problems, repaired, still)
        if best.status == "failed":
            return with_error(best, f"still invalid after one repair attempt: {best.error}")
        return best

    def _params(self) -> dict[str, Any]:
        """Sampling parameters sent with (and hashed into) every request."""
        return {
            "model": self.model,
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
        }

    def _finish(
        self,
        request: GenerationRequest,
        content: str,
        footer: str,
        prompt_sha: str,
        spent: list[Completion],
    ) -> tuple[Variant, list[str]]:
        """Parse, append the footer, validate and ground one reply."""
        provenance = self._provenance(prompt_sha, spent)
        try:
            subject, body = parse_reply(content)
        except ReplyFormatError as exc:
            problem = f"{exc}; reply as 'Subject: ...' then 'Body:' and the email"
            return failed_variant(request, provenance, problem), [problem]
        return finish_variant(
            request,
            subject,
            append_footer(body, footer),
            provenance,
            self.setup.generation.cta_verbs,
            footer=footer,
        )

    def _provenance(self, prompt_sha: str, spent: list[Completion]) -> Provenance:
        """Tokens, cost and latency summed over the completions of one variant."""
        return Provenance(
            backend=self.backend,
            model=self.model,
            prompt_sha256=prompt_sha,
            tokens_prompt=sum(c.tokens_prompt for c in spent),
            tokens_completion=sum(c.tokens_completion for c in spent),
            cost_usd=sum(c.cost_usd for c in spent),
            latency_ms=sum(c.latency_ms for c in spent),
            cached=bool(spent) and all(c.cached for c in spent),
        )

    # -- one completion ---------------------------------------------------------------

    def _complete(
        self, messages: list[dict[str, str]], params: dict[str, Any], what: str
    ) -> Completion:
        """A completion from the cache, or from the API with the shared retry policy."""
        digest = request_sha256(self.model, messages, params)
        started = time.perf_counter()
        hit = self.cache.get(self.model, digest)
        if hit is not None:
            self.usage.add(cache_hits=1)
            latency = (time.perf_counter() - started) * 1000
            return Completion(hit["content"], 0, 0, latency, True, 0.0)

        def call() -> Any:
            self.usage.add(api_calls=1)
            return self.client.chat.completions.create(messages=messages, **params)

        response = call_with_retries(
            call,
            classify=classify_error,
            policy=self.policy,
            log=self.setup.log,
            stage=STAGE,
            what=what,
        )
        latency = (time.perf_counter() - started) * 1000
        content = _content_of(response, what)
        usage = getattr(response, "usage", None)
        tokens_prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        tokens_completion = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = (
            tokens_prompt / 1000 * self.settings.price_per_1k_prompt
            + tokens_completion / 1000 * self.settings.price_per_1k_completion
        )
        self.usage.add(
            tokens_prompt=tokens_prompt, tokens_completion=tokens_completion, cost_usd=cost
        )
        self.cache.put(
            self.model,
            digest,
            {
                "content": content,
                "tokens_prompt": tokens_prompt,
                "tokens_completion": tokens_completion,
            },
        )
        return Completion(content, tokens_prompt, tokens_completion, latency, False, cost)


class OpenAIGenerator(ChatGenerator[OpenAISettings]):
    """Generation over an OpenAI-compatible Chat Completions endpoint."""

    backend = "openai"
    settings_model: ClassVar[type[BackendSettings]] = OpenAISettings

    @classmethod
    def from_settings(cls, settings: OpenAISettings, ctx: GenerationContext) -> OpenAIGenerator:
        """Build from ``services.generation.openai``."""
        return cls(settings, ctx)

    def _model_name(self) -> str:
        """The model sent with each request."""
        return self.settings.model

    def _client(self) -> Any:
        """The SDK client (retries off; timeout from settings)."""
        key = os.environ.get(self.settings.api_key_env)
        if not key:
            if self.settings.base_url is None:
                raise ConfigError(
                    f"backend 'openai' needs an API key in the environment variable "
                    f"{self.settings.api_key_env}, which is not set",
                    hint=f"export {self.settings.api_key_env}=... , or set services.generation."
                    "openai.base_url to a local server (vLLM, Ollama, llama.cpp) in "
                    "azure_config.yaml",
                )
            key = "not-needed"  # local OpenAI-compatible servers ignore the key
        return self.sdk.OpenAI(
            api_key=key,
            base_url=self.settings.base_url,
            timeout=self.settings.timeout_s,
            max_retries=0,
        )


class AzureOpenAIGenerator(ChatGenerator[AzureOpenAISettings]):
    """Generation over Azure OpenAI (a deployment of a chat model)."""

    backend = "azure_openai"
    settings_model: ClassVar[type[BackendSettings]] = AzureOpenAISettings

    @classmethod
    def from_settings(
        cls, settings: AzureOpenAISettings, ctx: GenerationContext
    ) -> AzureOpenAIGenerator:
        """Build from ``services.generation.azure_openai``.

        Raises:
            ConfigError: the endpoint or the deployment is not set.
        """
        for field, problem in settings.problems_when_selected().items():
            raise ConfigError(
                f"azure_config.yaml: key 'services.generation.azure_openai.{field}': {problem}"
            )
        return cls(settings, ctx)

    def _model_name(self) -> str:
        """Azure routes by deployment; record the deployment as the model."""
        return self.settings.deployment or ""

    def _client(self) -> Any:
        """``AzureOpenAI`` with a key from the environment, or Entra ID when unset."""
        options: dict[str, Any] = {
            "azure_endpoint": self.settings.azure_endpoint,
            "api_version": self.settings.api_version,
            "timeout": self.settings.timeout_s,
            "max_retries": 0,
        }
        key = os.environ.get(self.settings.api_key_env)
        if key:
            options["api_key"] = key
        else:
            options["azure_ad_token_provider"] = _entra_token_provider(self.settings.api_key_env)
        return self.sdk.AzureOpenAI(**options)


def _entra_token_provider(api_key_env: str) -> Any:
    """A bearer-token provider from DefaultAzureCredential (managed identity, az login)."""
    try:
        from azure.identity import DefaultAzureCredential, get_bearer_token_provider
    except ModuleNotFoundError:
        raise ConfigError(
            f"backend 'azure_openai' needs an API key in {api_key_env}, which is not set "
            "(and azure-identity, for keyless sign-in, is not installed)",
            hint=f"export {api_key_env}=... , or pip install 'cpo[azure]' and sign in with "
            "`az login` or a managed identity",
        ) from None
    return get_bearer_token_provider(
        DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default"
    )


def classify_error(exc: BaseException) -> Failure:
    """Map ``openai`` SDK exceptions to the shared retry policy's :class:`Failure`."""
    openai = _openai()
    if isinstance(exc, openai.APITimeoutError):
        return Failure(retryable=True, reason="request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return Failure(retryable=True, reason=f"connection error: {exc}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry_after = _retry_after(exc.response.headers.get("retry-after"))
        message = str(getattr(exc, "message", "") or exc)[:200]
        return Failure(status_is_retryable(status), status, retry_after, message)
    return Failure(retryable=False, reason=f"{type(exc).__name__}: {str(exc)[:200]}")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (None when absent or not a number)."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _content_of(response: Any, what: str) -> str:
    """The message text of the first choice."""
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        content = None
    if not content:
        raise BackendError(f"{what}: the reply has no message content")
    return str(content)


def _better(
    first: Variant, first_problems: list[str], second: Variant, second_problems: list[str]
) -> Variant:
    """The better of the original and the repaired variant.

    A variant meeting the hard constraints beats one that does not; between two
    that do (or two that do not), the one with fewer problems wins, the repair
    on a tie. The repair's usage is always carried over.
    """

    def rank(variant: Variant, problems: list[str]) -> tuple[int, int]:
        return (0 if variant.status == "generated" else 1, len(problems))

    if rank(first, first_problems) < rank(second, second_problems):
        return replace(
            first,
            tokens_prompt=second.tokens_prompt,
            tokens_completion=second.tokens_completion,
            cost_usd=second.cost_usd,
            latency_ms=second.latency_ms,
            cached=second.cached,
        )
    return second


if TYPE_CHECKING:
    _openai_conforms: type[Generator] = OpenAIGenerator
    _azure_conforms: type[Generator] = AzureOpenAIGenerator
