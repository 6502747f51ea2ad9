"""``--map``, ``--encoding`` and ``--delimiter``: how a command reads the customer file.

Shared by ``cpo run`` and ``cpo segment``. The values are checked while the
command line is parsed, so a malformed one is a usage error (exit status 2)
naming the value; they are merged over ``customers:`` in experiment_config.yaml
by :func:`cpo.customers.merged_settings`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from cpo.cli import checked_value


def _normalize_encoding(value: str) -> str:
    """:func:`cpo.customer_settings.normalize_encoding`, imported when a value is given.

    The settings module needs pydantic; importing it only here keeps ``--help`` light.
    """
    from cpo.customer_settings import normalize_encoding

    return normalize_encoding(value)


def _normalize_delimiter(value: str) -> str:
    """:func:`cpo.customer_settings.normalize_delimiter`, imported when a value is given."""
    from cpo.customer_settings import normalize_delimiter

    return normalize_delimiter(value)


def parse_column_map(
    ctx: click.Context | None, param: click.Parameter | None, values: tuple[str, ...]
) -> dict[str, str]:
    """``("CustID=customer_id", ...)`` -> ``{"CustID": "customer_id"}``.

    Raises:
        click.BadParameter: a value is not ``THEIRS=OURS``, or two values map
            different columns onto the same name or one column twice.
    """
    mapping: dict[str, str] = {}
    for value in values:
        theirs, sep, ours = value.partition("=")
        theirs, ours = theirs.strip(), ours.strip()
        if not sep or not theirs or not ours:
            raise click.BadParameter(
                f"{value!r} is not THEIRS=OURS (e.g. --map CustID=customer_id)",
                ctx=ctx,
                param=param,
            )
        if theirs in mapping and mapping[theirs] != ours:
            raise click.BadParameter(
                f"{theirs!r} is mapped twice ({theirs}={mapping[theirs]} and {value})",
                ctx=ctx,
                param=param,
            )
        clash = next((t for t, o in mapping.items() if o == ours and t != theirs), None)
        if clash is not None:
            raise click.BadParameter(
                f"{clash!r} and {theirs!r} are both mapped onto {ours!r}", ctx=ctx, param=param
            )
        mapping[theirs] = ours
    return mapping


def customer_file_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--map`` (repeatable), ``--encoding`` and ``--delimiter`` to a command.

    The command receives ``column_map`` (a dict), ``encoding`` and ``delimiter``
    (``None`` when not given).
    """
    options = [
        click.option(
            "--map",
            "column_map",
            multiple=True,
            metavar="THEIRS=OURS",
            callback=parse_column_map,
            help="Rename a column of the customer file, e.g. --map CustID=customer_id "
            "(repeatable; added to customers.columns of the config).",
        ),
        click.option(
            "--encoding",
            callback=checked_value(_normalize_encoding),
            help="Text encoding of a CSV customer file, e.g. latin-1 or cp1252. "
            "Default: customers.encoding, else utf-8.",
        ),
        click.option(
            "--delimiter",
            callback=checked_value(_normalize_delimiter),
            help="Column separator of a CSV customer file: ',', ';', tab or another "
            "character. Default: detected from the header line.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function
