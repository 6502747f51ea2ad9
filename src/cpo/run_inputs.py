"""The input files of a run: the customer file, how it is read, the content folder.

Several stages read the run's inputs (segment, retrieve and the experiment
stages read the customers; retrieve reads the content), so the rules for
finding them live here, not in one of those stages.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cpo.customer_settings import CustomerSettings
from cpo.customers import load_customers, merged_settings
from cpo.sample_data import bundled_content, bundled_customers
from cpo.stage_api import RunContext

if TYPE_CHECKING:
    import pandas as pd


def customers_path(ctx: RunContext) -> Path:
    """The customer file of this run (the bundled sample unless given)."""
    return Path(ctx.options.customers) if ctx.options.customers else bundled_customers()


def recorded_customers_path(ctx: RunContext) -> Path:
    """The customer file the segment stage read (recorded in the manifest)."""
    recorded = (ctx.manifest.get("inputs") or {}).get("customers") or {}
    return Path(recorded["path"]) if recorded.get("path") else customers_path(ctx)


def customer_settings(ctx: RunContext) -> CustomerSettings:
    """How this run reads its customer file: the config's ``customers:`` plus the flags."""
    options = ctx.options
    return merged_settings(
        ctx.config.experiment.customers,
        columns=dict(options.column_map),
        encoding=options.encoding,
        delimiter=options.delimiter,
    )


def content_path(ctx: RunContext) -> Path:
    """The approved-content folder of this run (the bundled sample unless given)."""
    return Path(ctx.options.content) if ctx.options.content else bundled_content()


def load_run_customers(ctx: RunContext) -> pd.DataFrame:
    """The run's validated customers, reloaded from the file the segment stage read.

    ``customer_id`` is text, as in every artifact.
    """
    frame = load_customers(
        recorded_customers_path(ctx),
        on_invalid=ctx.options.on_invalid,
        settings=customer_settings(ctx),
    ).frame
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame
