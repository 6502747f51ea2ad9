"""Base class for every configuration model.

Kept in its own module so that each stage package can define its settings
section without importing the loader (and without import cycles).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

#: The config folder's files (one home for their names; ``cpo.config.CONFIG_FILES``
#: maps each to its model, and a run's manifest keys its config snapshot by them).
AZURE_CONFIG_FILE = "azure_config.yaml"
SAFETY_CONFIG_FILE = "safety_thresholds.yaml"
EXPERIMENT_CONFIG_FILE = "experiment_config.yaml"


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys and is immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
