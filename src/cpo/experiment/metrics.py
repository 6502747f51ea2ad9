"""The original specification's functions: ``calculate_metrics`` and ``calculate_lift``.

``calculate_metrics(records, config=None)`` takes per-recipient records (a
list of dicts or a DataFrame with ``experiment_arm, opened, clicked,
converted`` and optionally ``segment, customer_id, variant_id``) and returns
the same dict ``metrics.json`` holds. ``calculate_lift(treatment, control)``
returns the relative lift in percent.

Both are thin: records go through :func:`cpo.experiment.aggregate.aggregate_records`
and :func:`cpo.experiment.analysis.analyze`, exactly as in ``cpo analyze`` and
the pipeline's ``analyze`` stage.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import ValidationError

from cpo import run_folder
from cpo.errors import ConfigError, DataValidationError
from cpo.experiment.aggregate import SufficientStatistics, aggregate_file, aggregate_records
from cpo.experiment.analysis import AnalysisPlan, analyze, plan_from_design
from cpo.experiment.analysis_settings import AnalysisSettings
from cpo.experiment.original_config import Translation, translate
from cpo.experiment.settings import CONTROL_ARM, TREATMENT_PREFIX, treatment_arm_name
from cpo.models import TONES
from cpo.runfiles import unescape_formulas
from cpo.textcsv import read_text_csv

if TYPE_CHECKING:
    from cpo.config import ExperimentConfigFile


def calculate_metrics(
    records: Iterable[Mapping[str, Any]] | pd.DataFrame,
    config: Any = None,
    *,
    design: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Analyse per-recipient records and return the metrics dict (``metrics.json``).

    Args:
        records: Dicts (or a DataFrame) with ``experiment_arm``, ``opened``,
            ``clicked``, ``converted`` (0/1 or booleans) and optionally
            ``segment`` (without it every record is in segment ``"all"``),
            ``customer_id``, ``variant_id``, ``engagement_source``.
        config: A :class:`cpo.config.Config`, the ``experiment_config.yaml``
            model, an :class:`AnalysisSettings`, a dict of either (for example
            ``{"analysis": {"primary_metric": "conversion_rate"}}`` or
            ``{"alpha": 0.01}``), the original specification's
            ``experiment_config`` dict (``{"experiment": {"name": ...},
            "metrics": {"primary": ...}, "statistical_testing": {"alpha": ...}}``;
            keys cpo does not use are listed in a ``config_keys_ignored``
            warning, see :mod:`cpo.experiment.original_config`), or None for
            the packaged defaults.
        design: ``experiment_design.json`` content, for expected shares, tones
            and the planned power (optional).

    Returns:
        The metrics dict; see ``docs/statistics.md``.

    Raises:
        DataValidationError: a record lacks a column or has a non-binary flag.
        ConfigError: ``config`` is not valid.
    """
    plan, warnings = _plan_and_warnings(config, design)
    return analyze(aggregate_records(records), plan, extra_warnings=warnings)


def analyze_file(
    path: Path | str,
    *,
    assignments: Path | str | None = None,
    design: Path | str | None = None,
    config: Any = None,
    customers: Path | str | None = None,
) -> dict[str, Any]:
    """Analyse an engagement file, as ``cpo analyze`` does.

    A file of counts per arm (``experiment_arm[, segment], sent, opened,
    clicked, converted``, no ``customer_id``) is validated by
    :func:`cpo.experiment.engagement.import_counts` (against the assignments
    or the design's arms when given) and analysed from its counts directly.
    Otherwise, without ``assignments`` the file must hold per-recipient records with
    ``experiment_arm`` (e.g. a run's ``engagement.csv``); it is streamed, so
    it may be large. With ``assignments`` (a run's ``assignments.csv``) the
    file may be a per-recipient export (``customer_id, opened, clicked,
    converted``) or an event log (``customer_id, event, timestamp``); it is
    validated and joined to the assignments by the engagement import, whose
    warnings are carried into the result.

    Args:
        path: CSV or Parquet engagement file.
        assignments: ``assignments.csv`` to join to (optional).
        design: ``experiment_design.json`` for expected shares, tones and power.
        config: As for :func:`calculate_metrics`.
        customers: Customer file (CSV or Parquet, validated as ``cpo run`` does)
            whose covariate columns the regression adjustment (CUPED) joins by
            ``customer_id``. Default: the run's validated customer copy beside
            ``path``, if there is one. Without customer data the document's
            ``regression_adjustment`` says why nothing was adjusted.

    Raises:
        DataValidationError: a file is missing or invalid.
        ConfigError: the configuration is invalid.
    """
    from cpo.experiment.engagement import import_engagement, is_counts_file

    design_data = _read_design(Path(design)) if design is not None else None
    plan, config_warnings = _plan_and_warnings(config, design_data)
    if assignments is not None and customers is None:
        fast = _analyze_clean_export(Path(path), Path(assignments), plan, config_warnings)
        if fast is not None:
            return fast
    assignment_rows = _read_assignments(Path(assignments)) if assignments is not None else None
    if is_counts_file(path):
        counted = _analyze_counts(Path(path), plan, config_warnings, assignment_rows, design_data)
        return _with_adjustment(counted, plan.settings, None, reason=_COUNTS_REASON)
    if assignment_rows is None:
        statistics = aggregate_file(path)
        _refuse_empty_counts_run(Path(path), statistics)
        metrics = analyze(statistics, plan, extra_warnings=config_warnings)
        table = _customer_covariates(Path(path), customers, plan.settings)
        if table is None:
            return _with_adjustment(metrics, plan.settings, None, reason=_NO_CUSTOMERS_REASON)
        return _with_adjustment(metrics, plan.settings, _recipient_rows(Path(path)), table)
    imported = import_engagement(Path(path), assignment_rows)
    # A per-recipient export gives one row per assignment row it matched (repeated rows
    # are combined, a repeated assignment id matches only its first row): no id can repeat.
    unique_ids = imported.layout == "recipients"
    metrics = analyze(
        aggregate_records(imported.frame, source=str(path), check_duplicates=not unique_ids),
        plan,
        engagement_source=imported.source,
        extra_warnings=[*imported.warnings, *config_warnings],
    )
    table = _customer_covariates(Path(path), customers, plan.settings)
    if table is None:
        return _with_adjustment(metrics, plan.settings, None, reason=_NO_CUSTOMERS_REASON)
    return _with_adjustment(metrics, plan.settings, imported.frame, table)


def _analyze_clean_export(
    path: Path, assignments: Path, plan: AnalysisPlan, config_warnings: list[dict[str, str]]
) -> dict[str, Any] | None:
    """The metrics of a clean per-recipient CSV export joined to assignments.csv, or None.

    :mod:`cpo.experiment.export_join` counts without pandas frames; None (the
    general path decides) when it cannot vouch for the input, or when the run's
    customer copy is beside the export (the regression adjustment needs the rows).
    """
    from cpo.experiment.export_join import import_clean_export

    if run_folder.CUSTOMERS_COPY.path(path.parent).exists():
        return None
    imported = import_clean_export(path, assignments)
    if imported is None:
        return None
    metrics = analyze(
        imported.statistics,
        plan,
        engagement_source=imported.source,
        extra_warnings=[*imported.warnings, *config_warnings],
    )
    return _with_adjustment(metrics, plan.settings, None, reason=_NO_CUSTOMERS_REASON)


_COUNTS_REASON = (
    "the engagement is counts per arm (no per-recipient rows); regression adjustment needs "
    "per-recipient engagement joined to the customers"
)
_NO_CUSTOMERS_REASON = (
    "no customer data: pass --customers FILE (with customer_id and the covariate columns) "
    "to adjust for pre-experiment covariates"
)


def _with_adjustment(
    metrics: dict[str, Any],
    settings: AnalysisSettings,
    records: pd.DataFrame | None,
    customers: pd.DataFrame | None = None,
    *,
    reason: str = "",
) -> dict[str, Any]:
    """The metrics dict with its ``regression_adjustment`` section (:mod:`cpo.experiment.cuped`)."""
    from cpo.experiment import cuped
    from cpo.experiment.results import json_safe

    if records is None or customers is None:
        section = cuped.unavailable(settings.variance_reduction, reason, metrics["primary_metric"])
    elif "customer_id" not in records.columns:
        no_ids = "the engagement has no customer_id column to join the customers' covariates by"
        section = cuped.unavailable(settings.variance_reduction, no_ids, metrics["primary_metric"])
    else:
        columns = cuped.covariate_columns(settings.covariates)
        request = cuped.request_for(metrics, settings.covariates, settings.variance_reduction)
        section = cuped.adjust_metrics(cuped.join_covariates(records, customers, columns), request)
    return {**metrics, "regression_adjustment": json_safe(section.to_dict())}


def _customer_covariates(
    engagement: Path, customers: Path | str | None, settings: AnalysisSettings
) -> pd.DataFrame | None:
    """customer_id and the covariate columns: from ``customers``, else the run's copy beside."""
    from cpo.experiment.cuped import covariate_columns

    columns = ["customer_id", *covariate_columns(settings.covariates)]
    if customers is not None:
        from cpo.customers import load_customers

        frame = load_customers(customers).frame
        frame["customer_id"] = frame["customer_id"].astype(str)
        return frame[[c for c in columns if c in frame.columns]]
    copy = run_folder.read_customer_copy(engagement.parent, columns)
    if copy is None:
        return None
    copy.frame["customer_id"] = copy.frame["customer_id"].astype(str)
    return copy.frame


def _recipient_rows(path: Path) -> pd.DataFrame:
    """The per-recipient columns the regression adjustment reads (CSV or Parquet)."""
    wanted = ("customer_id", "experiment_arm", "opened", "clicked", "converted")
    if path.is_dir():  # a run's engagement dataset (engagement.parquet/)
        frame = run_folder.read_dataset(path, wanted)
    elif path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        names = pq.ParquetFile(path).schema_arrow.names
        frame = pd.read_parquet(path, columns=[c for c in wanted if c in names])
    else:
        frame = pd.read_csv(
            path,
            usecols=lambda column: column in wanted,
            dtype={"customer_id": str, "experiment_arm": str},
            keep_default_na=False,
        )
    return frame.assign(experiment_arm=frame["experiment_arm"].astype(str).str.strip())


def _refuse_empty_counts_run(path: Path, statistics: SufficientStatistics) -> None:
    """A run's engagement.csv has no rows after a counts import: point at the counts."""

    counts = path.parent / run_folder.ENGAGEMENT_COUNTS.name
    if statistics.records == 0 and counts.is_file():
        raise DataValidationError(
            f"{path}: has no rows: this run's engagement was imported as counts per arm",
            hint=f"analyse the counts: `cpo analyze {counts}`",
        )


def _analyze_counts(
    path: Path,
    plan: AnalysisPlan,
    config_warnings: list[dict[str, str]],
    assignments: pd.DataFrame | None,
    design: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Analyse a counts file: validated, then straight to sufficient statistics."""
    from cpo.experiment.engagement import import_counts

    arms = None
    if assignments is None and design is not None and design.get("arms"):
        arms = [str(arm["name"]) for arm in design["arms"] if "name" in arm]
    imported = import_counts(path, assignments, arms=arms)
    return analyze(
        imported.statistics(),
        plan,
        engagement_source=imported.source,
        extra_warnings=[*imported.warnings, *config_warnings],
    )


def _read_design(path: Path) -> dict[str, Any]:
    """experiment_design.json, with a clear error when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataValidationError(f"{path}: design file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path}: not a valid JSON design file: {exc}") from None


def _read_assignments(path: Path) -> pd.DataFrame:
    """assignments.csv (or a run's assignments dataset) as text; it must name arm and segment."""
    if path.is_dir():  # assignments.parquet/ written by the Spark engine
        from cpo.run_folder import read_dataset

        frame = read_dataset(path)
        frame = frame.astype({column: str for column in frame.columns})
    elif not path.is_file():
        raise DataValidationError(f"{path}: assignments file not found")
    else:
        frame = unescape_formulas(read_text_csv(path))
    missing = [c for c in ("customer_id", "experiment_arm", "segment") if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{path}: missing column(s) {', '.join(missing)}",
            hint="pass the assignments.csv written by `cpo run`",
        )
    return frame


def calculate_lift(treatment: float, control: float) -> float:
    """Relative lift of ``treatment`` over ``control`` in percent.

    Args:
        treatment: Treatment rate.
        control: Control rate.

    Returns:
        ``(treatment - control) / control * 100``; NaN when ``control`` is 0
        (or either value is not a finite number).
    """
    try:
        t, c = float(treatment), float(control)
    except (TypeError, ValueError):
        return math.nan
    if c == 0 or not (math.isfinite(t) and math.isfinite(c)):
        return math.nan
    return (t - c) / c * 100.0


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


def plan_from_config(
    config: Any = None, *, design: Mapping[str, Any] | None = None
) -> AnalysisPlan:
    """An analysis plan from a configuration (and, when given, a design).

    Without a design the arms are the ones found in the records plus
    ``control``; when ``experiment.tones`` or ``experiment.allocation`` is set
    explicitly the configured arms are expected too (one missing is flagged).
    Expected shares are ``experiment.allocation`` (default equal). A dict in
    the original specification's shape is translated first
    (:mod:`cpo.experiment.original_config`); without a design its name,
    experiment id and ``sample_allocation`` (arms and expected shares) apply.
    """
    translation = translate(config) if isinstance(config, Mapping) else None
    experiment = experiment_config(translation.config if translation else config)
    if translation is not None and translation.is_original and design is None:
        return _original_plan(_plan(experiment, design), translation)
    return _plan(experiment, design)


def _plan(experiment: ExperimentConfigFile, design: Mapping[str, Any] | None) -> AnalysisPlan:
    """The plan of a validated ``experiment_config.yaml`` model (and a design)."""
    settings = experiment.analysis
    lift = experiment.experiment.power.expected_relative_lift
    if design is not None:
        return plan_from_design(design, settings, default_relative_lift=lift)
    tones = _configured_tones(experiment)
    arm_tones = {treatment_arm_name(i): tone for i, tone in enumerate(tones)}
    explicit = experiment.experiment.tones is not None or experiment.experiment.allocation
    arms = (CONTROL_ARM, *arm_tones) if explicit else ()
    allocation = experiment.experiment.allocation
    name = experiment.campaign.name
    return AnalysisPlan(
        settings=settings,
        experiment_id=_slug(name),
        experiment_name=name,
        arms=arms,
        tones={CONTROL_ARM: "control", **arm_tones},
        allocation=dict(allocation) if allocation else None,
        expected_from="experiment.allocation" if allocation else "equal allocation",
        expected_relative_lift=lift,
    )


def _original_plan(plan: AnalysisPlan, translation: Translation) -> AnalysisPlan:
    """Apply the original's name, experiment id and sample allocation to a plan.

    Only without a design: a run's experiment_design.json names its own arms and shares.
    """
    changes: dict[str, Any] = {}
    if translation.name is not None:
        changes["experiment_name"] = translation.name
        changes["experiment_id"] = _slug(translation.name)
    if translation.experiment_id is not None:
        changes["experiment_id"] = translation.experiment_id
    if translation.allocation is not None:
        arms = sorted(translation.allocation, key=_arm_order)
        changes.update(
            arms=tuple(arms),
            allocation=translation.allocation,
            expected_from="sample_allocation",
        )
    return replace(plan, **changes)


def _plan_and_warnings(
    config: Any, design: Mapping[str, Any] | None
) -> tuple[AnalysisPlan, list[dict[str, str]]]:
    """The plan, plus the ``config_keys_ignored`` warning of an original config dict."""
    plan = plan_from_config(config, design=design)
    warning = translate(config).warning() if isinstance(config, Mapping) else None
    return plan, [warning] if warning else []


def _arm_order(arm: str) -> tuple[int, int]:
    """Control first, then treatment_1, treatment_2, ..., treatment_10 in number order."""
    return (0, 0) if arm == CONTROL_ARM else (1, int(arm.removeprefix(TREATMENT_PREFIX)))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "experiment"


def _configured_tones(experiment: ExperimentConfigFile) -> list[str]:
    """experiment.tones, else the generation tones, else the default tones."""
    if experiment.experiment.tones is not None:
        return list(experiment.experiment.tones)
    generation = getattr(experiment, "generation", None)
    tones = getattr(generation, "tones", None)
    return list(tones) if tones else list(TONES)


@functools.cache
def _packaged_experiment_config() -> ExperimentConfigFile:
    """The packaged experiment_config.yaml, parsed once per process (the model is frozen)."""
    from cpo.config import load_config

    return load_config().experiment


def experiment_config(config: Any = None) -> ExperimentConfigFile:
    """Resolve the accepted config forms to the ``experiment_config.yaml`` model.

    Raises:
        ConfigError: a dict does not validate, or ``config`` is of another type.
    """
    from cpo.config import Config, ExperimentConfigFile

    if config is None:
        return _packaged_experiment_config()
    if isinstance(config, Config):
        return config.experiment
    if isinstance(config, ExperimentConfigFile):
        return config
    if isinstance(config, AnalysisSettings):
        return ExperimentConfigFile(analysis=config)
    if isinstance(config, Mapping):
        sections = set(ExperimentConfigFile.model_fields)
        model = ExperimentConfigFile if set(config) & sections else AnalysisSettings
        try:
            validated = model.model_validate(dict(config))
        except ValidationError as exc:
            raise ConfigError(
                _describe(model.__name__, exc),
                hint="use experiment_config.yaml sections (campaign, experiment, analysis, ...), "
                "analysis keys (alpha, primary_metric, ...) or the original specification's "
                "experiment / metrics / statistical_testing keys; see docs/api.md",
            ) from None
        if isinstance(validated, AnalysisSettings):
            return ExperimentConfigFile(analysis=validated)
        return validated
    raise ConfigError(
        f"calculate_metrics: config must be a Config, AnalysisSettings, dict or None, "
        f"got {type(config).__name__}",
        hint="pass cpo.config.load_config(DIR) or a dict like {'analysis': {'alpha': 0.01}}",
    )


def _describe(model: str, exc: ValidationError) -> str:
    """One line per problem: the key path, what is wrong and what was found."""
    lines = [f"invalid {model} passed as config ({exc.error_count()} problem(s))"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  key '{key}': {message}; found {error.get('input')!r}")
    return "\n".join(lines)
