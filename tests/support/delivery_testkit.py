"""Helpers of the ``cpo send`` tests: the CLI runner and a config with a sender."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from cpo.cli import cli

SENDER = "news@shop.example.com"


def cpo(*args: object):
    """Run the real CLI in process."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def config_with_sender(folder: Path) -> Path:
    """A `cpo init` config whose brand sends from :data:`SENDER` (and a mailto)."""
    result = cpo("init", folder)
    assert result.exit_code == 0, result.output
    path = folder / "experiment_config.yaml"
    text = path.read_text()
    text, found = re.subn(r"from_address: null", f"from_address: {SENDER}", text)
    assert found == 1
    text, found = re.subn(
        r"unsubscribe_mailto: null", "unsubscribe_mailto: leave@shop.example.com", text
    )
    assert found == 1
    path.write_text(text)
    return folder
