"""Settings of the screening backend (``services.safety`` in azure_config.yaml)."""

from __future__ import annotations

from pydantic import Field

from cpo.settings_base import StrictModel


class SafetyServiceSettings(StrictModel):
    """Which screening backend to use and how to reach it."""

    backend: str = "local"
    endpoint: str | None = None
    api_key_env: str = "AZURE_CONTENT_SAFETY_KEY"
    timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)


class CategoryPolicy(StrictModel):
    """Severity thresholds for one harm category (severities are 0-7)."""

    review_at: int = Field(default=4, ge=0, le=8)
    block_at: int = Field(default=6, ge=0, le=8)


class SafetyPolicySettings(StrictModel):
    """The whole of safety_thresholds.yaml: what each severity means for sending."""

    categories: dict[str, CategoryPolicy] = Field(
        default_factory=lambda: {
            c: CategoryPolicy() for c in ("hate", "violence", "self_harm", "sexual")
        }
    )
