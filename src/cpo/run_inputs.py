"""The input files of a run: the customer file, how it is read, the content folder.

Several stages read the run's inputs (segment, retrieve and the experiment
stages read the customers; retrieve reads the content), so the rules for
finding them live here, not in one of those stages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cpo.customer_settings import CustomerSettings
from cpo.customers import load_customers, merged_settings
from cpo.run_folder import customer_copy_source, read_customer_copy
from cpo.runfiles import sha256_file
from cpo.sample_data import bundled_content, bundled_customers
from cpo.stage_api import RunContext

if TYPE_CHECKING:
    import pandas as pd


def customers_path(ctx: RunContext) -> Path:
    """The customer file of this run (the bundled sample unless given)."""
    return Path(ctx.options.customers) if ctx.options.customers else bundled_customers()


def customer_location(ctx: RunContext) -> str:
    """The customer file as given: a local path, or a URI the Spark engine reads.

    ``pathlib`` folds ``s3a://bucket/key`` into ``s3a:/bucket/key``; the ``//``
    of a URI with an authority is restored (``file:/tmp/x`` is a URI as it is).
    """
    text = str(customers_path(ctx))
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)(.*)$", text)
    if match and match.group(1).lower() != "file":
        return f"{match.group(1)}://{match.group(2)}"
    return text


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


def copy_source(ctx: RunContext, sha256: str | None) -> dict[str, Any]:
    """What a copy of the validated customers depends on: the file's hash, the reading, the rule."""
    return {
        "sha256": sha256,
        "settings": customer_settings(ctx).model_dump(mode="json"),
        "on_invalid": ctx.options.on_invalid,
    }


def valid_customer_copy(
    ctx: RunContext, columns: Sequence[str] | None = None
) -> pd.DataFrame | None:
    """The run's columnar copy of the validated customers, or None when it cannot be used.

    The copy (``customers.parquet``, written by the segment stage) is used when
    the customer file's sha256, the way it is read and ``--on-invalid`` are
    unchanged since it was written. ``customer_id`` is always included, as text.
    """
    path = recorded_customers_path(ctx)
    wanted = ["customer_id", *(c for c in columns if c != "customer_id")] if columns else None
    copy = read_customer_copy(ctx.run_dir, wanted)
    # A customer file given as a URI (Spark engine) has no local hash: its copy records none.
    sha256 = sha256_file(path) if path.is_file() else None
    if copy is None or copy.source != copy_source(ctx, sha256):
        return None
    if sha256 is None and not _recorded_uri(ctx):
        return None
    frame = copy.frame
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame


def customer_copy_current(ctx: RunContext) -> bool:
    """Whether the run's customer copy is the one :func:`valid_customer_copy` would use.

    Only the copy's recorded source is read, not its rows.
    """
    path = recorded_customers_path(ctx)
    sha256 = sha256_file(path) if path.is_file() else None
    if customer_copy_source(ctx.run_dir) != copy_source(ctx, sha256):
        return False
    return sha256 is not None or _recorded_uri(ctx)


def _recorded_uri(ctx: RunContext) -> bool:
    """Whether the segment stage read the customers from a URI (no local file to hash)."""
    recorded = (ctx.manifest.get("inputs") or {}).get("customers") or {}
    return recorded.get("sha256") is None and bool(recorded.get("path"))


def load_run_customers(ctx: RunContext, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The run's validated customers (only ``columns`` when given).

    From the columnar copy when it is valid (:func:`valid_customer_copy`);
    otherwise the customer file is read and validated again.
    ``customer_id`` is text, as in every artifact.
    """
    frame = valid_customer_copy(ctx, columns)
    if frame is not None:
        return frame
    frame = load_customers(
        recorded_customers_path(ctx),
        on_invalid=ctx.options.on_invalid,
        settings=customer_settings(ctx),
    ).frame
    if columns:
        frame = frame[["customer_id", *(c for c in columns if c in frame and c != "customer_id")]]
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame
