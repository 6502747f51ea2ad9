"""``cpo serve``: the web app for marketers and reviewers, served by uvicorn."""

from __future__ import annotations

import socket
from pathlib import Path

import click

from cpo.cli import cli, common_options
from cpo.errors import CpoError
from cpo.web.uploads import DEFAULT_MAX_UPLOAD_MB

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ServeError(CpoError):
    """The web app cannot be started as asked."""


@cli.command("serve", short_help="Serve the web app (runs, review, audit) in a browser.")
@click.option(
    "--runs",
    "runs_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("runs"),
    show_default=True,
    help="Folder of run folders; the app keeps its users in RUNS/cpo_web.sqlite.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="TCP port."
)
@click.option(
    "--secure-cookies",
    is_flag=True,
    help="Mark the session cookie Secure: use it when a TLS reverse proxy serves the app.",
)
@click.option(
    "--forwarded-allow-ips",
    default=None,
    help="Proxy addresses trusted for X-Forwarded-For/-Proto (comma-separated; default "
    "127.0.0.1). The login rate limit counts the forwarded client address.",
)
@click.option(
    "--require-distinct-approver/--allow-same-approver",
    default=None,
    help="Whether whoever started a run may approve its variants (stored; default: keep "
    "the stored setting, initially allowed).",
)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(min=0.001),
    default=DEFAULT_MAX_UPLOAD_MB,
    show_default=True,
    help="Largest upload (customer file, content zip once extracted, engagement file), in MB.",
)
@click.option(
    "--max-parallel-runs",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Most runs executing at once in background processes (one per run folder).",
)
@common_options
def serve_command(
    runs_dir: Path,
    host: str,
    port: int,
    secure_cookies: bool,
    forwarded_allow_ips: str | None,
    require_distinct_approver: bool | None,
    max_upload_mb: float,
    max_parallel_runs: int,
) -> None:
    """Serve the web app over the run folders in --runs, until Ctrl+C.

    Every page needs a sign-in: add the first user with
    `cpo users add NAME --role admin`. The app listens on loopback by default;
    to reach it from other machines put it behind a reverse proxy with TLS
    (see docs/web.md) and pass --secure-cookies.
    """
    from cpo.web.extra import require_web_extra

    require_web_extra()
    import uvicorn

    from cpo.web.accounts import list_users
    from cpo.web.app import create_app
    from cpo.web.db import open_db

    check_port_free(host, port)
    app = create_app(
        runs_dir,
        secure_cookies=secure_cookies,
        require_distinct_approver=require_distinct_approver,
        max_upload_mb=max_upload_mb,
        max_parallel_runs=max_parallel_runs,
    )
    with open_db(runs_dir) as conn:
        if not list_users(conn):
            click.echo(
                f"no users yet: add one with `cpo users add NAME --role admin --runs {runs_dir}`"
            )
    if host not in LOOPBACK and not secure_cookies:
        click.echo(
            f"warning: listening on {host} without --secure-cookies; serve it behind TLS",
            err=True,
        )
    click.echo(f"serving {runs_dir} at http://{host}:{port}/ (Ctrl+C to stop)")
    uvicorn.run(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        log_level="info",
    )


def check_port_free(host: str, port: int) -> None:
    """Raise ServeError when ``host:port`` cannot be listened on (in use, bad address)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ServeError(
            f"--host {host}: not an address of this machine ({exc.strerror})",
            hint="use 127.0.0.1 (the default) or an address of this machine",
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ServeError(
                f"{host}:{port}: cannot listen there ({exc.strerror})",
                hint="choose another --port, or stop the program using it",
            ) from None
