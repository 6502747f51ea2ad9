"""Checking that the ``web`` extra (``pip install "cpo[web]"``) is installed."""

from __future__ import annotations

from importlib.util import find_spec

from cpo.errors import CpoError

#: Import name -> distribution name of what ``cpo serve`` and ``cpo users`` need.
WEB_PACKAGES = {
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "jinja2": "jinja2",
    "multipart": "python-multipart",
    "argon2": "argon2-cffi",
}


class WebExtraMissing(CpoError):
    """The web app's optional dependencies are not installed."""


def require_web_extra(*modules: str) -> None:
    """Raise WebExtraMissing naming every package of ``modules`` (default: all) not installed."""
    wanted = modules or tuple(WEB_PACKAGES)
    missing = [WEB_PACKAGES[module] for module in wanted if find_spec(module) is None]
    if missing:
        raise WebExtraMissing(
            f"the web app needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            "not installed",
            hint='install the web extra: pip install "cpo[web]"',
        )
