"""The guard against sending another brand's text in the bundled sample brand's name.

:func:`check_brand_for_content` stops a run (before anything is generated)
whose approved content is not the bundled sample's while the config's
``brand:`` section or prompts still speak for the sample brand. It needs the
loaded config, so it lives apart from :mod:`cpo.brand` (which the config
models import).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from cpo.brand import INIT_COMMAND
from cpo.config import ExperimentConfigFile, default_config_dir, load_file
from cpo.errors import ConfigError
from cpo.generation.prompts import CONTROL_MESSAGE_FILE, FOOTER_FILE, TONES_DIR
from cpo.settings_base import EXPERIMENT_CONFIG_FILE

if TYPE_CHECKING:
    from cpo.config import Config

_SCAN_LIMIT_BYTES = 5_000_000  # per content file: enough for any approved document


def check_brand_for_content(config: Config, content: Path | None) -> None:
    """Refuse to write emails for other content in the bundled sample brand's name.

    Args:
        config: The loaded configuration.
        content: The approved-content folder of the run (``None`` = the bundled sample).

    Raises:
        ConfigError: the content is not the sample brand's, but the brand section
            or the prompts still carry the sample brand's name or site. One
            message names every such file and the ``cpo init --brand`` command.
    """
    markers = sample_brand_markers()
    found = sample_brand_locations(config, markers)
    if not found or content is None or not Path(content).is_dir():
        return  # the sample content, or a missing folder the retrieve stage reports
    if _is_sample_brand_content(Path(content), markers):
        return
    raise ConfigError(
        f"{content}: this approved content is not the bundled sample brand's, but the config "
        f"{config.source} still writes as the sample brand ({markers[0]}) in: "
        + "; ".join(found)
        + ". Every email (control and variants) would go out under another brand's name",
        hint=f"write a config for your brand with `{INIT_COMMAND}` and run with "
        "--config NEW_DIR (or edit the files named above)",
    )


def sample_brand_locations(config: Config, markers: Iterable[str]) -> list[str]:
    """Where the config carries the sample brand: ``"<file> (<what>)"`` entries."""
    found: list[str] = []
    brand = config.experiment.brand
    if brand is not None:
        keys = [k for k, v in brand.model_dump().items() if v and _mentions(str(v), markers)]
        if keys:
            found.append("experiment_config.yaml (" + ", ".join(f"brand.{k}" for k in keys) + ")")
    files = [CONTROL_MESSAGE_FILE, FOOTER_FILE]
    files += [f"{TONES_DIR}/{tone}.yaml" for tone in config.experiment.generation.tones]
    for relative in files:
        path = config.prompts_dir / relative
        if path.is_file() and _mentions(
            path.read_text(encoding="utf-8", errors="replace"), markers
        ):
            found.append(f"prompts/{relative}")
    return found


@lru_cache(maxsize=1)
def sample_brand_markers() -> tuple[str, ...]:
    """Words that identify the bundled sample brand (from the packaged ``brand:`` section).

    The brand name, its first word and the site's host name (without ``www.``),
    longest first; the full name comes first.
    """
    packaged = load_file(default_config_dir() / EXPERIMENT_CONFIG_FILE, ExperimentConfigFile)
    brand = packaged.brand
    if brand is None:
        return ()
    markers = {brand.name}
    first_word = brand.name.split()[0].strip(".,")
    if len(first_word) >= 4:
        markers.add(first_word)
    for url in (brand.site_url, brand.unsubscribe_url):
        host = urlparse(url).hostname or ""
        markers.add(host.removeprefix("www."))
    ordered = sorted(markers - {""}, key=len, reverse=True)
    ordered.remove(brand.name)
    return (brand.name, *ordered)


def _mentions(text: str, markers: Iterable[str]) -> bool:
    """Whether ``text`` contains any marker (case-insensitive)."""
    lowered = text.lower()
    return any(marker.lower() in lowered for marker in markers)


def _is_sample_brand_content(folder: Path, markers: tuple[str, ...]) -> bool:
    """The bundled sample content, or a folder whose documents name the sample brand.

    A trimmed or edited copy of the sample content still belongs to the sample
    brand, so its documents mentioning the brand (or its site) count too.
    """
    from cpo.runfiles import sha256_path
    from cpo.sample_data import bundled_content

    if sha256_path(folder) == _bundled_content_sha256(str(bundled_content())):
        return True
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with path.open("rb") as handle:
            text = handle.read(_SCAN_LIMIT_BYTES).decode("utf-8", errors="replace")
        if _mentions(text, markers):
            return True
    return False


@lru_cache(maxsize=2)
def _bundled_content_sha256(folder: str) -> str:
    """sha256 of the bundled content folder (computed once per process)."""
    from cpo.runfiles import sha256_path

    return sha256_path(Path(folder))
