"""Azure AI Content Safety as a screening backend (official ``azure-ai-contentsafety`` SDK).

One ``text:analyze`` call per text (``POST {endpoint}/contentsafety/text:analyze``)
with ``outputType: EightSeverityLevels``, the four categories and the configured
custom blocklists (``haltOnBlocklistHit: false``, so severities are always
returned). Severities map one to one onto :class:`~cpo.models.CategoryScores`
(Hate -> hate, Violence -> violence, SelfHarm -> self_harm, Sexual -> sexual);
``blocklistsMatch`` becomes ``blocklist_hits``.

Client discipline, as in every network backend: SDK retries are off (``retry_total=0``)
so :func:`cpo.netclient.call_with_retries` is the only retry policy (connection
errors, timeouts, 408/429/5xx; never 400/401/403); connection and read timeouts
come from ``services.safety.azure_content_safety``; the key is read from the environment variable
named by ``api_key_env`` and never logged. Texts longer than the service limit
(10,000 characters) are split at whitespace and the highest severity per
category is kept. A response without all four severities is an error, so the
caller fails closed.

Note on TLS: azure-core (1.41) enforces https only for bearer-token credentials;
a key credential (``AzureKeyCredential``) works over plain http, which is what the
tests use against a local server on 127.0.0.1. ``connection_verify`` accepts a CA
bundle path for a private endpoint with its own certificate.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator

from cpo.errors import BackendError, ConfigError
from cpo.logs import RunLog
from cpo.models import HARM_CATEGORIES, CategoryScores
from cpo.netclient import Failure, RetryPolicy, call_with_retries, status_is_retryable
from cpo.registry import BackendSettings
from cpo.safety.base import SafetyAnalyzer, SafetyContext

#: The service's maximum text length per request (characters).
MAX_TEXT_CHARS = 10_000
#: Azure's category names and ours.
CATEGORY_NAMES = {
    "Hate": "hate",
    "Violence": "violence",
    "SelfHarm": "self_harm",
    "Sexual": "sexual",
}
BACKEND_NAME = "azure_content_safety"


def _sdk() -> Any:
    """Import the SDK lazily (the ``azure`` extra; the registry explains a missing one)."""
    from azure.ai import contentsafety
    from azure.ai.contentsafety import models
    from azure.core import credentials, exceptions

    return contentsafety, models, credentials, exceptions


class AzureContentSafetySettings(BackendSettings):
    """``services.safety.azure_content_safety``: how to reach Azure AI Content Safety.

    Attributes:
        endpoint: ``https://<name>.cognitiveservices.azure.com`` (required when selected).
        api_key_env: Environment variable holding the key (never the key itself).
        api_version: REST API version sent as ``api-version``.
        blocklists: Names of custom blocklists to apply.
        timeout_s: Read timeout of one request, in seconds.
        connect_timeout_s: Connection timeout of one request, in seconds.
        max_retries: Retries after the first attempt (connection errors, timeouts, 408/429/5xx).
        allow_insecure_http: Allow a plain ``http://`` endpoint on a host other than
            loopback (the key then crosses the network unencrypted).
    """

    endpoint_fields = ("endpoint",)

    endpoint: str | None = None
    api_key_env: str = "AZURE_CONTENT_SAFETY_KEY"
    api_version: str = "2023-10-01"
    blocklists: tuple[str, ...] = ()
    timeout_s: float = Field(default=10.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
    allow_insecure_http: bool = False

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(
                "expected an http(s) URL such as https://<name>.cognitiveservices.azure.com"
            )
        return value.rstrip("/") if value else value


class AzureContentSafetyAnalyzer:
    """Screens text with Azure AI Content Safety (EightSeverityLevels).

    Args:
        endpoint: ``https://<name>.cognitiveservices.azure.com``.
        api_key: The resource key (read from the environment by :meth:`from_settings`).
        blocklists: Custom blocklist names to apply.
        timeout_s: Read timeout per request.
        connect_timeout_s: Connection timeout per request.
        max_retries: Retries after the first attempt (retryable failures only).
        api_version: REST ``api-version``.
        log: Run log for the request log (attempts and latency; no text, no key).
        connection_verify: TLS verification: ``True``, ``False`` or a CA bundle path.
        backoff_base_s: First retry delay (doubles per retry, capped at 8 s).
        sleep: Sleep function between retries (tests pass a fast one).
    """

    name = BACKEND_NAME

    def __init__(
        self,
        endpoint: str,
        api_key: str,
        *,
        blocklists: tuple[str, ...] = (),
        timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        max_retries: int = 3,
        api_version: str = "2023-10-01",
        log: RunLog | None = None,
        connection_verify: bool | str = True,
        backoff_base_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        contentsafety, self._models, credentials, self._errors = _sdk()
        self.blocklists = tuple(blocklists)
        self.log = log
        self.sleep = sleep
        self.retry_policy = RetryPolicy(max_retries=max_retries, backoff_base_s=backoff_base_s)
        self._timeouts = {"connection_timeout": connect_timeout_s, "read_timeout": timeout_s}
        self._client = contentsafety.ContentSafetyClient(
            endpoint,
            credentials.AzureKeyCredential(api_key),
            api_version=api_version,
            retry_total=0,  # netclient's policy is the only retry policy
            connection_verify=connection_verify,
            **self._timeouts,
        )
        self._rng = random.Random(0)

    settings_model: ClassVar[type[BackendSettings]] = AzureContentSafetySettings

    @classmethod
    def from_settings(
        cls, settings: AzureContentSafetySettings, ctx: SafetyContext
    ) -> AzureContentSafetyAnalyzer:
        """Build from its block; the key comes from ``settings.api_key_env``.

        Raises:
            ConfigError: no endpoint, or the key's environment variable is not set.
        """
        where = f"services.safety.{BACKEND_NAME}"
        if not settings.endpoint:
            raise ConfigError(
                f"azure_config.yaml: key '{where}.endpoint' is required for the "
                f"'{BACKEND_NAME}' backend",
                hint="set it to https://<name>.cognitiveservices.azure.com",
            )
        key = os.environ.get(settings.api_key_env, "")
        if not key:
            raise ConfigError(
                f"the environment variable {settings.api_key_env} ({where}.api_key_env) is not set",
                hint=f"export {settings.api_key_env}=<your Content Safety key>",
            )
        return cls(
            settings.endpoint,
            key,
            blocklists=settings.blocklists,
            timeout_s=settings.timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
            max_retries=settings.max_retries,
            api_version=settings.api_version,
            log=ctx.log,
        )

    def analyze(self, text: str) -> CategoryScores:
        """Screen ``text`` (split when over the limit; the highest severity wins).

        Raises:
            BackendError: the service failed after retries, refused the request,
                or answered without all four severities.
        """
        chunks = split_text(text, MAX_TEXT_CHARS)
        if not chunks:
            return CategoryScores()
        results = [
            self._analyze_chunk(chunk, index, len(chunks)) for index, chunk in enumerate(chunks)
        ]
        severities = {c: max(r.severities()[c] for r in results) for c in HARM_CATEGORIES}
        return CategoryScores(
            **severities,
            matches=tuple(dict.fromkeys(m for r in results for m in r.matches)),
            blocklist_hits=tuple(sorted({h for r in results for h in r.blocklist_hits})),
        )

    def _analyze_chunk(self, chunk: str, index: int, total: int) -> CategoryScores:
        """One ``text:analyze`` call with the shared retry policy."""
        options = self._models.AnalyzeTextOptions(
            text=chunk,
            categories=list(CATEGORY_NAMES),
            output_type="EightSeverityLevels",
            blocklist_names=list(self.blocklists) or None,
            halt_on_blocklist_hit=False,
        )
        result = call_with_retries(
            lambda: self._client.analyze_text(options, **self._timeouts),
            classify=self.classify,
            policy=self.retry_policy,
            log=self.log,
            stage="screen",
            what=f"{BACKEND_NAME} text:analyze"
            + (f" (part {index + 1}/{total})" if total > 1 else ""),
            sleep=self.sleep,
            rng=self._rng,
        )
        return scores_from_result(result)

    def classify(self, exc: BaseException) -> Failure:
        """Map azure-core exceptions to retryable or not (with the HTTP status)."""
        errors = self._errors
        if isinstance(exc, errors.DecodeError):
            return Failure(retryable=False, reason="the response was not valid JSON")
        if isinstance(exc, errors.HttpResponseError):
            status = getattr(exc, "status_code", None)
            return Failure(
                retryable=status_is_retryable(status),
                status=status,
                retry_after_s=_retry_after(exc),
                reason=_service_message(exc),
            )
        if isinstance(exc, (errors.ServiceRequestError, errors.ServiceResponseError)):
            kind = "timeout" if "timeout" in type(exc).__name__.lower() else "connection error"
            return Failure(retryable=True, reason=f"{kind}: {_first_line(exc)}")
        return Failure(retryable=False, reason=f"{type(exc).__name__}: {_first_line(exc)}")

    def close(self) -> None:
        """Close the underlying HTTP session."""
        self._client.close()


def scores_from_result(result: Any) -> CategoryScores:
    """Map an ``AnalyzeTextResult`` to CategoryScores, insisting on all four severities.

    Raises:
        BackendError: a category is missing or its severity is not 0-7.
    """
    severities: dict[str, int] = {}
    for item in result.categories_analysis or ():
        ours = CATEGORY_NAMES.get(str(getattr(item.category, "value", item.category)))
        if ours is None:
            continue
        severity = item.severity
        if not isinstance(severity, int) or not 0 <= severity <= 7:
            raise BackendError(
                f"{BACKEND_NAME}: severity {severity!r} for {item.category} is not 0-7",
                hint="check that output_type EightSeverityLevels is supported by the api_version",
            )
        severities[ours] = severity
    missing = [c for c in HARM_CATEGORIES if c not in severities]
    if missing:
        raise BackendError(
            f"{BACKEND_NAME}: the response has no severity for {', '.join(missing)}",
            hint="the service answered incompletely; the text is blocked (fail closed)",
        )
    matches = tuple(
        f"blocklist {m.blocklist_name}: {m.blocklist_item_text}"
        for m in result.blocklists_match or ()
    )
    hits = tuple(sorted({m.blocklist_name for m in result.blocklists_match or ()}))
    return CategoryScores(**severities, matches=matches, blocklist_hits=hits)


def split_text(text: str, limit: int = MAX_TEXT_CHARS, overlap: int = 200) -> list[str]:
    """Split text into pieces of at most ``limit`` characters, at whitespace when possible.

    Consecutive pieces overlap by up to ``overlap`` characters (starting at a word),
    so a phrase cut by a piece boundary is still seen whole in one piece; the
    caller takes the highest severity over all pieces. Whitespace-only text gives
    no pieces (nothing to screen).
    """
    if not text.strip():
        return []
    overlap = min(overlap, limit // 4)
    pieces, start = [], 0
    while True:
        end = min(start + limit, len(text))
        if end < len(text):
            gap = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            end = gap if gap > start + limit // 2 else end
        pieces.append(text[start:end])
        if end >= len(text):
            break
        word = text.find(" ", end - overlap, end)
        start = word + 1 if word != -1 else end
    return [piece for piece in pieces if piece.strip()]


def _retry_after(exc: Any) -> float | None:
    """Seconds from a ``Retry-After`` header, when the service sent one."""
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _service_message(exc: Any) -> str:
    """The service's error code and message (no request data, no key)."""
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "code", None):
        return f"{error.code}: {_first_line(error.message or '')}"
    return _first_line(getattr(exc, "reason", None) or exc)


def _first_line(value: Any) -> str:
    text = str(value).strip().splitlines()[0] if str(value).strip() else ""
    return re.sub(r"\s+", " ", text)[:200]


if TYPE_CHECKING:
    _conforms: type[SafetyAnalyzer] = AzureContentSafetyAnalyzer
