"""Checks across a loaded config folder, run by :func:`cpo.config.load_config`.

Each file is validated on its own by its pydantic model; the checks here need
more than one file or the prompts folder, and run before any stage so that a
problem is reported at once rather than after segmentation, retrieval and
screening have run:

* the experiment's allocation names only arms the tones create, and gives at
  least one treatment arm weight (otherwise there is nothing to compare);
* the experiment's tones are tones the generation section writes;
* every prompt file the run needs exists and parses: the control message, the
  footer, one tone file per tone, and the prompt files the selected generation
  backend reads (its settings model's ``prompt_files``; all missing files are
  listed in one message);
* no selected backend that sends a key is pointed at ``http://`` on a host other
  than loopback (its settings model's ``endpoint_fields``), unless its block says
  ``allow_insecure_http: true``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cpo.errors import ConfigError
from cpo.registry import KINDS

if TYPE_CHECKING:
    from cpo.config import Config


def check_config(config: Config) -> None:
    """Run every cross-file check; raise one ConfigError listing all problems found."""
    problems = [*_allocation_problems(config), *_insecure_endpoints(config)]
    if problems:
        raise ConfigError(
            f"{config.source}: the configuration cannot run ({len(problems)} problem(s))\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    check_prompts(config)


def _allocation_problems(config: Config) -> Iterator[str]:
    """Allocation keys that are not arms, and an allocation without a weighted treatment arm."""
    # Imported here: cpo.config imports this module, and the experiment package imports config.
    from cpo.experiment.design import resolve_tones
    from cpo.experiment.settings import CONTROL_ARM, treatment_arm_name

    experiment = config.experiment.experiment
    generated = config.experiment.generation.tones
    tones = resolve_tones(experiment, generated)
    where = "experiment_config.yaml: key"
    missing = [t for t in tones if t not in generated]
    if missing:
        yield (
            f"{where} 'experiment.tones': {missing} are not written by generation.tones "
            f"{generated}; add them there or remove them here"
        )
    if experiment.allocation is None:
        return
    arms = [CONTROL_ARM, *(treatment_arm_name(i) for i in range(len(tones)))]
    unknown = sorted(set(experiment.allocation) - set(arms))
    if unknown:
        yield (
            f"{where} 'experiment.allocation': arm(s) {unknown} do not exist; with tones "
            f"{tones} the arms are {arms}"
        )
    if not any(experiment.allocation.get(arm, 0) > 0 for arm in arms[1:]):
        yield (
            f"{where} 'experiment.allocation': no treatment arm has a positive weight, so "
            f"everyone would get the control and nothing is compared; give at least one of "
            f"{arms[1:]} a weight (or remove the allocation for equal arms)"
        )


def _insecure_endpoints(config: Config) -> Iterator[str]:
    """Endpoints of the selected backends that send a key over plain http off this machine."""
    for kind in KINDS:
        service = getattr(config.services, kind)
        settings = service.selected
        if getattr(settings, "allow_insecure_http", False):
            continue
        for field in settings.endpoint_fields:
            url = getattr(settings, field)
            if url and _sends_in_clear(url):
                key = f"services.{kind}.{service.backend}"
                yield (
                    f"azure_config.yaml: key '{key}.{field}': {url} is plain http to "
                    f"a host that is not this machine, so the {kind} key would cross the "
                    "network unencrypted; use https://, or set "
                    f"{key}.allow_insecure_http: true if the network is trusted"
                )


def _sends_in_clear(url: str) -> bool:
    """True for an ``http://`` URL whose host is not loopback."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "http":
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def check_prompts(config: Config) -> None:
    """Every prompt file the run needs exists and parses; all missing files are listed."""
    from cpo.generation.prompts import (
        CONTROL_MESSAGE_FILE,
        FOOTER_FILE,
        TONES_DIR,
        PromptLibrary,
    )

    tones = config.experiment.generation.tones
    needed = [CONTROL_MESSAGE_FILE, FOOTER_FILE, *(f"{TONES_DIR}/{t}.yaml" for t in tones)]
    needed.extend(config.services.generation.selected.prompt_files)
    missing = [name for name in needed if not (config.prompts_dir / name).is_file()]
    if missing:
        raise ConfigError(
            f"{config.prompts_dir}: {len(missing)} prompt file(s) missing: {', '.join(missing)}",
            hint="copy them from the defaults: `cpo init NEW_DIR` writes a complete prompts "
            "folder (or remove the tones you do not want from generation.tones)",
        )
    library = PromptLibrary.for_config(config)
    library.control_message()
    library.footer()
    for tone in tones:
        library.tone(tone)
