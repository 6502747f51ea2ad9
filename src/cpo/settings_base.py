"""Base class for every configuration model.

Kept in its own module so that each stage package can define its settings
section without importing the loader (and without import cycles).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys and is immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
