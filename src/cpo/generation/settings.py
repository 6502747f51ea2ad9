"""Settings of the generation backend (``services.generation`` in azure_config.yaml)."""

from __future__ import annotations

from pydantic import Field

from cpo.settings_base import StrictModel


class GenerationServiceSettings(StrictModel):
    """Which generation backend to use and how to reach it."""

    backend: str = "grounded"
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(default=8, ge=1, le=256)
    timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
