"""Render ``report.pdf`` from the report's HTML with WeasyPrint.

The HTML's print stylesheet does the layout work (A4 pages, smaller table text,
page numbers, the SIMULATED DATA band in every page's top margin). WeasyPrint
fetches nothing: the HTML is self-contained (the tests check it), and the URL
fetcher refuses every URL that is not an inline ``data:`` URL, so rendering
never touches the network or the file system even if a reference slipped in.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from cpo.errors import StageError
from cpo.runfiles import atomic_open

#: The largest report.pdf written; a bigger one is an error (the HTML report is complete).
MAX_PDF_BYTES = 10 * 1024 * 1024


def offline_fetcher() -> Any:
    """A WeasyPrint URL fetcher that only resolves inline ``data:`` URLs.

    Any other URL (http, https, file, relative) raises ``ValueError``; WeasyPrint
    then skips the resource, so rendering never touches the network or disk.
    """
    try:
        from weasyprint.urls import URLFetcher  # WeasyPrint >= 66
    except ImportError:  # older WeasyPrint: a plain function fetcher
        from weasyprint.urls import default_url_fetcher

        def fetch(url: str, *args: Any, **kwargs: Any) -> Any:
            if url.startswith("data:"):
                return default_url_fetcher(url, *args, **kwargs)
            raise ValueError(f"refusing to fetch {url!r}: the report must be self-contained")

        return fetch
    return URLFetcher(allowed_protocols={"data"}, timeout=1)


def render_pdf(html: str, target: Path) -> int:
    """Write the PDF for ``html`` to ``target`` and return its size in bytes.

    Raises:
        StageError: the PDF is larger than :data:`MAX_PDF_BYTES`.
    """
    with warnings.catch_warnings():
        # WeasyPrint warns at import when the system lacks libharfbuzz-subset; it then
        # subsets fonts with fontTools, which works (slower). Not the user's concern here.
        warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
        from weasyprint import HTML

    # WeasyPrint logs every CSS property it ignores at WARNING; they are not errors here.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    document = HTML(string=html, base_url=str(target.parent), url_fetcher=offline_fetcher())
    data = document.write_pdf()
    if len(data) > MAX_PDF_BYTES:
        raise StageError(
            "report",
            f"{target}: the PDF would be {len(data) / 1e6:.1f} MB, over the 10 MB limit",
            hint="report an issue with the run's size; the HTML report is complete",
        )
    with atomic_open(target, "wb") as handle:
        handle.write(data)
    return len(data)
