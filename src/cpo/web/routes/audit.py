"""A run's safety audit: ``GET /runs/{run_id}/audit`` (verification, head hash, entries)
and ``GET /runs/{run_id}/audit.csv`` (the compliance export).

Both use the code of ``cpo audit verify`` and ``cpo audit export``: the chain is
checked line by line and against the entry count and head hash the manifest recorded.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from cpo.audit import csv_rows, export_csv, read_entries
from cpo.decisions import verify_target
from cpo.run_folder import SAFETY_AUDIT, SAFETY_AUDIT_CSV, recorded_audit_head
from cpo.web.auth import User, current_user
from cpo.web.templating import render
from cpo.web.workflow import manifest_run_dir

router = APIRouter()


@router.get("/runs/{run_id}/audit", response_model=None)
def audit_page(
    request: Request, run_id: str, user: Annotated[User, Depends(current_user)]
) -> Response:
    """The chain's verification result, its head hash and every entry as the CSV shows it.

    A damaged log's entries are not listed (they cannot be trusted or even parsed);
    the page says which line failed and why.
    """
    run_dir = manifest_run_dir(request, run_id)
    if not SAFETY_AUDIT.path(run_dir).is_file():
        return render(request, "audit.html", run_id=run_id, result=None, recorded=None, rows=[])
    _, result, manifest = verify_target(run_dir)
    rows = csv_rows(read_entries(SAFETY_AUDIT.path(run_dir))) if result.ok else []
    return render(
        request,
        "audit.html",
        run_id=run_id,
        result=result,
        recorded=recorded_audit_head(manifest or {}),
        rows=rows,
    )


@router.get("/runs/{run_id}/audit.csv", response_model=None)
def audit_csv(
    request: Request, run_id: str, user: Annotated[User, Depends(current_user)]
) -> Response:
    """The audit log as CSV, exactly as ``cpo audit export --csv`` writes it.

    A damaged log is still exported (it is evidence); the ``X-Audit-Verified``
    header then says ``false`` and the audit page shows the failure.
    """
    run_dir = manifest_run_dir(request, run_id)
    if not SAFETY_AUDIT.path(run_dir).is_file():
        raise HTTPException(404, f"run {run_id!r} has no audit log yet")
    _, result, _ = verify_target(run_dir)
    with tempfile.TemporaryDirectory(prefix="cpo-audit-") as scratch:
        target = Path(scratch) / SAFETY_AUDIT_CSV.name
        export_csv(SAFETY_AUDIT.path(run_dir), target)
        body = target.read_bytes()
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{run_id}-{SAFETY_AUDIT_CSV.name}"',
            "X-Audit-Verified": "true" if result.ok else "false",
        },
    )
