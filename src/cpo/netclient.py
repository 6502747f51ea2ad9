"""The client discipline every network backend shares.

* Retries with exponential backoff (and jitter from a seeded generator) on
  connection errors, timeouts, HTTP 429 and 5xx only; never on 400/401/403 or
  other client errors. SDK-level retries are switched off by the backends so
  this one policy applies everywhere and every attempt is logged.
* A request log with latency per attempt (no payloads, no secrets, no PII).
* A ``Retry-After`` header (seconds) from a 429 is honoured up to ``max_backoff_s``.

Backends pass a ``classify`` function that maps their SDK's exceptions to a
:class:`Failure` (retryable or not, with the HTTP status when known).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from cpo.errors import BackendError
from cpo.logs import RunLog

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Failure:
    """How a backend classifies an exception from its SDK.

    Attributes:
        retryable: Whether another attempt may succeed.
        status: HTTP status code when there was a response.
        retry_after_s: Server-suggested wait (from ``Retry-After``), if any.
        reason: Short text for the log and the final error.
    """

    retryable: bool
    status: int | None = None
    retry_after_s: float | None = None
    reason: str = ""


def status_is_retryable(status: int | None) -> bool:
    """True for 408, 429 and 5xx; False for every other status."""
    return status is not None and (status in RETRYABLE_STATUS or 500 <= status < 600)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and backoff: wait ``base * 2**attempt`` (capped), times jitter in [0.5, 1]."""

    max_retries: int = 3
    backoff_base_s: float = 0.5
    max_backoff_s: float = 8.0

    def delay(self, attempt: int, failure: Failure, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if failure.retry_after_s is not None:
            return min(max(failure.retry_after_s, 0.0), self.max_backoff_s)
        base = min(self.backoff_base_s * (2**attempt), self.max_backoff_s)
        return base * (0.5 + 0.5 * rng.random())


def call_with_retries(
    operation: Callable[[], T],
    *,
    classify: Callable[[BaseException], Failure],
    policy: RetryPolicy,
    log: RunLog | None,
    stage: str,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Call ``operation`` with the shared retry policy; log every attempt.

    Raises:
        BackendError: the last attempt failed, or the failure is not retryable.
    """
    rng = rng or random.Random(0)
    attempt = 0
    while True:
        started = time.perf_counter()
        try:
            result = operation()
        except Exception as exc:  # classified below; unknown errors are not retried
            failure = classify(exc)
            latency = round((time.perf_counter() - started) * 1000, 1)
            _log_attempt(log, stage, what, attempt, latency, failure)
            if not failure.retryable or attempt >= policy.max_retries:
                raise _final_error(what, attempt, failure) from exc
            sleep(policy.delay(attempt, failure, rng))
            attempt += 1
            continue
        latency = round((time.perf_counter() - started) * 1000, 1)
        if log is not None:
            log.info(
                stage, "api_call", target=what, attempt=attempt + 1, latency_ms=latency, ok=True
            )
        return result


def _log_attempt(
    log: RunLog | None, stage: str, what: str, attempt: int, latency: float, failure: Failure
) -> None:
    """Log a failed attempt with its status and reason."""
    if log is None:
        return
    log.warning(
        stage,
        "api_call_failed",
        target=what,
        attempt=attempt + 1,
        latency_ms=latency,
        status=failure.status,
        retryable=failure.retryable,
        message=f"{what}: attempt {attempt + 1} failed ({failure.reason or failure.status})",
    )


def _final_error(what: str, attempt: int, failure: Failure) -> BackendError:
    """The error raised when no more attempts will be made."""
    status = f"HTTP {failure.status}" if failure.status else "no response"
    tried = f"after {attempt + 1} attempt(s)"
    hint = None
    if failure.status in (401, 403):
        hint = "check the API key environment variable and the endpoint in azure_config.yaml"
    elif failure.status == 400:
        hint = "the request was rejected as invalid; check the model/deployment name and settings"
    elif failure.retryable:
        hint = "the service is unavailable or slow; retry later or raise timeout_s / max_retries"
    return BackendError(f"{what} failed {tried}: {status}: {failure.reason}", hint=hint)
