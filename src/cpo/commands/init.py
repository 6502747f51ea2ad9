"""``cpo init DIR``: write an editable copy of the default configuration."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from cpo.cli import checked_value, cli, common_options
from cpo.commands.output_paths import output_folder

if TYPE_CHECKING:
    from cpo.brand import BrandSettings


def _check_http_url(text: str) -> str:
    """:func:`cpo.brand.check_http_url`, imported when a URL is given (keeps ``--help`` light)."""
    from cpo.brand import check_http_url

    return check_http_url(text)


_FLAG_OF = {
    "name": "--brand",
    "site_url": "--site",
    "unsubscribe_url": "--unsubscribe-url",
    "sender_name": "--sender",
    "postal_address": "--postal-address",
}


def _brand(
    name: str | None,
    site: str | None,
    unsubscribe_url: str | None,
    sender: str | None,
    postal_address: str | None,
) -> BrandSettings | None:
    """The brand the flags describe (``None`` without --brand), or a usage error."""
    if name is None:
        given = [flag for flag, _ in _brand_flags(site, unsubscribe_url, sender, postal_address)]
        if given:
            raise click.UsageError(f"{', '.join(given)}: only with --brand NAME")
        return None
    missing = [
        flag
        for flag, value in (("--site", site), ("--unsubscribe-url", unsubscribe_url))
        if not value
    ]
    if missing or site is None or unsubscribe_url is None:  # (the None tests narrow the types)
        raise click.UsageError(f"--brand needs {' and '.join(missing)} (http or https URLs)")
    if not name.strip():
        raise click.BadParameter("the brand name must not be blank", param_hint="--brand")
    from pydantic import ValidationError

    from cpo.brand import BrandSettings

    try:
        return BrandSettings(
            name=name,
            site_url=site,
            unsubscribe_url=unsubscribe_url,
            sender_name=sender,
            postal_address=postal_address,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{_FLAG_OF.get(str(error['loc'][0]), error['loc'][0])}: "
            + error["msg"].removeprefix("Value error, ")
            for error in exc.errors()
        )
        raise click.UsageError(problems) from None


def _brand_flags(*values: str | None) -> list[tuple[str, str]]:
    """The brand flags given (other than --brand), as (flag, value)."""
    flags = ("--site", "--unsubscribe-url", "--sender", "--postal-address")
    return [(flag, value) for flag, value in zip(flags, values, strict=True) if value is not None]


@cli.command("init")
@click.argument(
    "directory", type=click.Path(path_type=Path), callback=output_folder("config folder")
)
@click.option("--force", is_flag=True, help="Overwrite config files in a non-empty folder.")
@click.option("--brand", "brand_name", help="Your brand's name: writes the brand: section.")
@click.option(
    "--site",
    callback=checked_value(_check_http_url),
    help="Your brand's website (http or https URL).",
)
@click.option(
    "--unsubscribe-url",
    callback=checked_value(_check_http_url),
    help="The footer's unsubscribe link (http or https).",
)
@click.option("--sender", help="The sender's display name. Default: the brand name.")
@click.option("--postal-address", help="Postal address printed in every footer (CAN-SPAM).")
@common_options
def init_command(
    directory: Path,
    force: bool,
    brand_name: str | None,
    site: str | None,
    unsubscribe_url: str | None,
    sender: str | None,
    postal_address: str | None,
) -> None:
    """Write the default config folder to DIRECTORY for editing.

    The folder holds azure_config.yaml (backends), safety_thresholds.yaml
    (screening policy), experiment_config.yaml (campaign, brand, segmentation,
    experiment) and prompts/. With --brand (and --site, --unsubscribe-url),
    the brand: section and the campaign name are your brand's, so the control
    message, footer and sign-offs speak for it. Use the folder with
    `cpo run --config DIRECTORY`.
    """
    from cpo.config import init_config

    brand = _brand(brand_name, site, unsubscribe_url, sender, postal_address)
    written = init_config(directory, force=force, brand=brand)
    click.echo(f"wrote {len(written)} files to {directory}")
    if brand is not None:
        click.echo(f"brand: {brand.name} (campaign name and brand: in experiment_config.yaml)")
    for path in written:
        click.echo(f"  {path.relative_to(directory)}")
