"""Settings of the retrieval backend (``services.retrieval`` in azure_config.yaml)."""

from __future__ import annotations

from pydantic import Field

from cpo.settings_base import StrictModel


class RetrievalServiceSettings(StrictModel):
    """Which retrieval backend to use and how to reach it."""

    backend: str = "sqlite_fts"
    endpoint: str | None = None
    index_name: str = "cpo-approved-content"
    api_key_env: str = "AZURE_SEARCH_API_KEY"
    timeout_s: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
