"""Load and validate a configuration folder.

A config folder holds one YAML file per concern plus a ``prompts/`` folder::

    azure_config.yaml        services: which backend each stage uses, endpoints, timeouts
    safety_thresholds.yaml   the screening policy
    experiment_config.yaml   campaign, segmentation, content, experiment, report sections
    prompts/                 generation prompt, tone files, control message

The package ships defaults (``cpo/data/config``); ``cpo init DIR`` copies them
for editing. Each file maps to one pydantic model in :data:`CONFIG_FILES`; each
section of a file is a model owned by its stage package (``cpo/<stage>/settings.py``).
Adding a section is one field on a file model plus its YAML in the defaults.

Every problem becomes one :class:`~cpo.errors.ConfigError` naming the file, the
key path, what was expected and what was found.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, ValidationError

from cpo.brand import BrandSettings, apply_brand
from cpo.compute.settings import ComputeSettings
from cpo.configcheck import check_config
from cpo.customer_settings import CustomerSettings
from cpo.errors import ConfigError
from cpo.experiment.analysis_settings import AnalysisSettings
from cpo.experiment.settings import ExperimentSettings, SimulationSettings
from cpo.generation.settings import GenerationServiceSettings, GenerationSettings
from cpo.retrieval.settings import ContentSettings, RetrievalServiceSettings
from cpo.runfiles import sha256_json
from cpo.safety.settings import SafetyPolicySettings, SafetyServiceSettings
from cpo.segmentation.settings import SegmentationSettings
from cpo.settings_base import (
    AZURE_CONFIG_FILE,
    EXPERIMENT_CONFIG_FILE,
    SAFETY_CONFIG_FILE,
    StrictModel,
)
from cpo.yamlio import describe_validation_error, expand_env_vars, read_yaml_mapping


class ServicesSettings(StrictModel):
    """The ``services`` section: backend selection and settings per stage."""

    retrieval: RetrievalServiceSettings = Field(default_factory=RetrievalServiceSettings)
    generation: GenerationServiceSettings = Field(default_factory=GenerationServiceSettings)
    safety: SafetyServiceSettings = Field(default_factory=SafetyServiceSettings)


class AzureConfigFile(StrictModel):
    """azure_config.yaml."""

    services: ServicesSettings = Field(default_factory=ServicesSettings)


class CampaignSettings(StrictModel):
    """Campaign identity and the default random seed."""

    name: str = "cpo-campaign"
    seed: int = Field(default=42, ge=0, le=2**32 - 1)  # numpy seeds are 32-bit
    as_of: date | None = None  # content expiry is judged on this date; null = today


class ExperimentConfigFile(StrictModel):
    """experiment_config.yaml."""

    campaign: CampaignSettings = Field(default_factory=CampaignSettings)
    brand: BrandSettings | None = None  # who the emails are from; null = prompts name no brand
    customers: CustomerSettings = Field(default_factory=CustomerSettings)
    segmentation: SegmentationSettings = Field(default_factory=SegmentationSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    content: ContentSettings = Field(default_factory=ContentSettings)
    experiment: ExperimentSettings = Field(default_factory=ExperimentSettings)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    simulation: SimulationSettings = Field(default_factory=SimulationSettings)
    compute: ComputeSettings = Field(default_factory=ComputeSettings)


#: Each config file and the model that validates it.
CONFIG_FILES: dict[str, type[StrictModel]] = {
    AZURE_CONFIG_FILE: AzureConfigFile,
    SAFETY_CONFIG_FILE: SafetyPolicySettings,
    EXPERIMENT_CONFIG_FILE: ExperimentConfigFile,
}
PROMPTS_DIR = "prompts"


@dataclass(frozen=True)
class Config:
    """A loaded, validated configuration folder.

    Attributes:
        source: The folder it was loaded from.
        services: The ``services`` section of azure_config.yaml
            (``config.services.retrieval``, ``.generation``, ``.safety``).
        safety: safety_thresholds.yaml.
        experiment: experiment_config.yaml.
        prompts_dir: The prompts folder.
    """

    source: Path
    services: ServicesSettings
    safety: SafetyPolicySettings
    experiment: ExperimentConfigFile
    prompts_dir: Path

    def snapshot(self) -> dict[str, Any]:
        """Return the effective configuration as a JSON-ready dict (prompts included)."""
        return {
            AZURE_CONFIG_FILE: {"services": self.services.model_dump(mode="json")},
            SAFETY_CONFIG_FILE: self.safety.model_dump(mode="json"),
            EXPERIMENT_CONFIG_FILE: self.experiment.model_dump(mode="json"),
            "prompts": {
                p.relative_to(self.prompts_dir).as_posix(): p.read_text(encoding="utf-8")
                for p in sorted(self.prompts_dir.rglob("*"))
                if p.is_file()
            },
        }

    def sha256(self) -> str:
        """Return the sha256 of the canonical JSON snapshot."""
        return sha256_json(self.snapshot())

    def prompt(self, relative: str) -> str:
        """Read a prompt file, naming it clearly when it is missing."""
        path = self.prompts_dir / relative
        if not path.is_file():
            raise ConfigError(
                f"{path}: prompt file not found",
                hint=f"add '{relative}' to the prompts folder (cpo init DIR writes the defaults)",
            )
        return path.read_text(encoding="utf-8")


def default_config_dir() -> Path:
    """Return the folder of the configuration shipped inside the package."""
    return Path(str(resources.files("cpo") / "data" / "config"))


def load_config(config_dir: Path | str | None = None) -> Config:
    """Load and validate a config folder (the packaged defaults when ``None``).

    Raises:
        ConfigError: a file is missing, malformed, has an unknown key or a bad value.
    """
    folder = Path(config_dir) if config_dir is not None else default_config_dir()
    if not folder.is_dir():
        raise ConfigError(
            f"{folder}: config folder not found",
            hint="pass an existing folder to --config, or create one with `cpo init DIR`",
        )
    # One call per file (in CONFIG_FILES order), so each result has its model's type.
    azure = load_file(folder / AZURE_CONFIG_FILE, AzureConfigFile)
    safety = load_file(folder / SAFETY_CONFIG_FILE, SafetyPolicySettings)
    experiment = load_file(folder / EXPERIMENT_CONFIG_FILE, ExperimentConfigFile)
    prompts = folder / PROMPTS_DIR
    if not prompts.is_dir():
        raise ConfigError(
            f"{prompts}: prompts folder not found",
            hint="copy it from the defaults with `cpo init DIR`",
        )
    config = Config(
        source=folder.resolve(),
        services=azure.services,
        safety=safety,
        experiment=experiment,
        prompts_dir=prompts.resolve(),
    )
    check_config(config)
    return config


ModelT = TypeVar("ModelT", bound=StrictModel)


def load_file(path: Path, model: type[ModelT]) -> ModelT:
    """Parse one YAML file and validate it against ``model``."""
    if not path.is_file():
        raise ConfigError(
            f"{path}: config file not found",
            hint=f"every config folder needs {', '.join(CONFIG_FILES)}; "
            "`cpo init DIR` writes a complete one",
        )
    data = expand_env_vars(read_yaml_mapping(path), path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(path, model, exc)) from None


def init_config(
    target: Path | str, force: bool = False, brand: BrandSettings | None = None
) -> list[Path]:
    """Copy the packaged default config folder to ``target`` for editing.

    Args:
        target: The folder to write.
        force: Overwrite config files in a non-empty folder.
        brand: Write this brand's ``brand:`` section (and a campaign name from
            it) into experiment_config.yaml; ``None`` keeps the sample brand.

    Raises:
        ConfigError: ``target`` exists and is not empty, and ``force`` is false.
    """
    destination = Path(target)
    if destination.exists() and any(destination.iterdir()) and not force:
        raise ConfigError(
            f"{destination}: folder exists and is not empty",
            hint="choose a new folder or pass --force to overwrite the config files in it",
        )
    source = default_config_dir()
    written: list[Path] = []
    for file in sorted(source.rglob("*")):
        if file.is_file() and "__pycache__" not in file.parts:
            out = destination / file.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, out)
            written.append(out)
    if brand is not None:
        path = destination / EXPERIMENT_CONFIG_FILE
        path.write_text(apply_brand(path.read_text(encoding="utf-8"), brand), encoding="utf-8")
        load_file(path, ExperimentConfigFile)  # the rewritten file must still validate
    return written
