"""``cpo send RUN_DIR``: deliver a completed run's send list over SMTP, each recipient once.

A thin layer over :func:`cpo.delivery.send.send_run`: it reads the flags and the
password's environment variable, shows a progress bar on stderr and prints the
summary. See docs/send.md.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from cpo.cli import cli, common_options


@cli.command("send")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--smtp-host", default="localhost", show_default=True, help="SMTP server.")
@click.option(
    "--smtp-port",
    type=click.IntRange(1, 65535),
    help="SMTP port. Default: 465 with --ssl, 587 with --starttls, else 25.",
)
@click.option("--starttls", is_flag=True, help="Upgrade the connection with STARTTLS.")
@click.option("--ssl", "use_ssl", is_flag=True, help="TLS from the first byte (SMTPS).")
@click.option("--user", help="Login user (no login without it).")
@click.option(
    "--password-env",
    metavar="VAR",
    help="Environment variable holding the login password (never a flag: flags are visible).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="At most N messages per second. Default: as fast as the server accepts.",
)
@click.option("--dry-run", is_flag=True, help="Build and count every message; send nothing.")
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="Also send to recipients whose message was in flight when an earlier send "
    "stopped (the server may have accepted it: they may get it twice).",
)
@click.option(
    "--suppressions",
    type=click.Path(path_type=Path),
    help="Suppression list: a folder holding suppressions.sqlite, or the file. "
    "Default: suppressions.sqlite in the run folder's parent folder.",
)
@click.option(
    "--from-address",
    help="Sender address. Default: brand.from_address of the run's config.",
)
@click.option(
    "--max-retries",
    type=click.IntRange(0, 20),
    default=5,
    show_default=True,
    help="Retries per message of a transient failure (4xx, lost connection).",
)
@click.option(
    "--retry-delay",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="First backoff in seconds; doubled on every retry (at most 60 s).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@common_options
def send_command(
    run_dir: Path,
    smtp_host: str,
    smtp_port: int | None,
    starttls: bool,
    use_ssl: bool,
    user: str | None,
    password_env: str | None,
    rate: float | None,
    dry_run: bool,
    resend_unknown: bool,
    suppressions: Path | None,
    from_address: str | None,
    max_retries: int,
    retry_delay: float,
    as_json: bool,
) -> None:
    """Send the send list of the completed run in RUN_DIR over SMTP.

    Every recipient is recorded in the run's send ledger before its message
    leaves and after the server answers, so `cpo send` again after a crash or
    kill sends everyone not yet sent, and nobody twice. A message in flight at
    the crash is reported and not resent unless --resend-unknown. Suppressed
    addresses and customer ids are never sent to, and are counted.
    """
    from cpo.delivery.send import SendOptions, send_run
    from cpo.delivery.smtp import Security, SmtpSettings
    from cpo.suppressions import resolve_suppressions_path

    if starttls and use_ssl:
        raise click.UsageError("--starttls and --ssl exclude each other; pick one")
    security: Security = "ssl" if use_ssl else "starttls" if starttls else "none"
    port = smtp_port or {"ssl": 465, "starttls": 587, "none": 25}[security]
    smtp = SmtpSettings(
        host=smtp_host,
        port=port,
        security=security,
        user=user,
        password=_password(user, password_env),
        max_retries=max_retries,
        backoff_s=retry_delay,
    )
    options = SendOptions(
        smtp=smtp,
        suppressions=resolve_suppressions_path(suppressions, run_dir),
        rate=rate,
        dry_run=dry_run,
        resend_unknown=resend_unknown,
        from_address=from_address,
    )
    with _Progress() as progress:
        summary = send_run(run_dir, options, progress=progress.advance, on_start=progress.start)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        click.echo(_summary_text(summary.as_dict()))


def _password(user: str | None, password_env: str | None) -> str | None:
    """The login password from the environment variable ``password_env``."""
    from cpo.errors import ConfigError

    if password_env is None:
        if user:
            raise click.UsageError("--user needs --password-env VAR (the password's variable)")
        return None
    value = os.environ.get(password_env)
    if not value:
        raise ConfigError(
            f"the environment variable {password_env} (--password-env) is not set or empty",
            hint=f"export {password_env}=... with the SMTP password, then cpo send again",
        )
    return value


class _Progress:
    """A click progress bar on stderr, opened once the row count is known."""

    def __init__(self) -> None:
        self._bar: object | None = None

    def start(self, total: int, in_flight_earlier: int) -> None:
        if in_flight_earlier:
            click.echo(
                f"send: {in_flight_earlier:,} message(s) were in flight when an earlier "
                "send stopped: reported as unknown, not resent without --resend-unknown",
                err=True,
            )
        bar = click.progressbar(length=total, label="sending", file=sys.stderr)
        self._bar = bar.__enter__()

    def advance(self, rows: int) -> None:
        if self._bar is not None:
            self._bar.update(rows)  # type: ignore[attr-defined]

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)  # type: ignore[attr-defined]


_LABELS = (
    ("sent", "sent"),
    ("bounced", "bounced (refused by the server)"),
    ("deferred", "deferred (not delivered; cpo send again retries them)"),
    ("unknown", "unknown (connection lost mid-message; not resent)"),
    ("suppressed", "suppressed (on the suppression list)"),
    ("already_sent", "skipped, already sent"),
    ("already_bounced", "skipped, bounced earlier"),
    ("in_flight_earlier", "skipped, in flight when an earlier send stopped"),
    ("resent_unknown", "of sent: in flight earlier, resent (--resend-unknown)"),
    ("no_address", "skipped, no email address"),
    ("duplicate", "skipped, customer listed twice"),
)


def _summary_text(counts: dict[str, object]) -> str:
    """The human summary: every non-zero count, sent always."""
    head = "dry run: nothing sent" if counts["dry_run"] else "send finished"
    lines = [f"{head}: {counts['total']:,} recipient(s) in the send list"]
    for key, label in _LABELS:
        value = counts[key]
        if value or key == "sent":
            label = "would be sent" if key == "sent" and counts["dry_run"] else label
            lines.append(f"  {label}: {value:,}")
    return "\n".join(lines)
