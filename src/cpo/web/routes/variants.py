"""The variants of a run: ``GET /runs/{run_id}/variants`` and each customer preview.

Each variant is shown beside the exact source paragraphs it cites, its
screening severities and reasons from the audit log, and the customer's copy:
as escaped text in the page, and as the HTML email in a sandboxed frame served
by ``GET /runs/{run_id}/variants/{variant_id}/preview`` under a strict CSP of
its own (no scripts, nothing from outside; the email's inline styles only).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from cpo.models import HARM_CATEGORIES
from cpo.run_folder import read_manifest
from cpo.web.auth import User, current_user
from cpo.web.runs import RunNotFound
from cpo.web.security import security_headers
from cpo.web.templating import render
from cpo.web.variant_views import find_view, preview_html, variant_views
from cpo.web.workflow import manifest_run_dir

router = APIRouter()

#: The preview's policy: the email's inline styles, nothing else; framed only by the app.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox"
)


@router.get("/runs/{run_id}/variants", response_model=None)
def variants_page(
    run_id: str, request: Request, user: Annotated[User, Depends(current_user)]
) -> Response:
    """Every variant with its sources, screening and customer copy."""
    run_dir = manifest_run_dir(request, run_id)
    return render(
        request,
        "variants.html",
        run_id=run_id,
        views=variant_views(run_dir),
        categories=HARM_CATEGORIES,
        heading="Variants",
        review=False,
    )


@router.get("/runs/{run_id}/variants/{variant_id}/preview", response_model=None)
def variant_preview(
    run_id: str,
    variant_id: str,
    request: Request,
    user: Annotated[User, Depends(current_user)],
) -> Response:
    """The HTML email of one variant (framed by the variants and review pages)."""
    run_dir = manifest_run_dir(request, run_id)
    view = find_view(run_dir, variant_id)
    if view is None or view.customer is None:
        raise RunNotFound(
            f"run {run_id!r} has no customer copy of variant {variant_id!r}",
            hint="open the run's variants page to see which variants it has",
        )
    headers = security_headers(csp=PREVIEW_CSP)
    headers["X-Frame-Options"] = "SAMEORIGIN"
    return HTMLResponse(preview_html(view, read_manifest(run_dir)), headers=headers)
