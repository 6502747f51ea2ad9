"""``cpo users`` and ``cpo serve`` through the real command line."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from cpo.cli import cli
from cpo.web.accounts import authenticate
from cpo.web.db import DB_FILE, MIGRATIONS, open_db


def users(runs: Path, *args: str, stdin: str | None = None):
    """Run ``cpo users ARGS --runs RUNS``."""
    return CliRunner().invoke(cli, ["users", *args, "--runs", str(runs)], input=stdin)


def test_add_list_passwd_remove(tmp_path: Path) -> None:
    """The whole life of a user, with the password from stdin."""
    runs = tmp_path / "runs"
    added = users(
        runs, "add", "maria", "--role", "marketer", "--password-stdin", stdin="s3cret-pass\n"
    )
    assert added.exit_code == 0, added.output
    assert "added maria (marketer)" in added.output
    listed = users(runs, "list")
    assert listed.exit_code == 0 and "maria" in listed.output and "marketer" in listed.output
    with open_db(runs) as conn:
        assert authenticate(conn, "maria", "s3cret-pass") is not None
    changed = users(runs, "passwd", "maria", "--password-stdin", stdin="another-pass\n")
    assert changed.exit_code == 0, changed.output
    with open_db(runs) as conn:
        assert authenticate(conn, "maria", "s3cret-pass") is None
        assert authenticate(conn, "maria", "another-pass") is not None
    removed = users(runs, "remove", "maria")
    assert removed.exit_code == 0 and "removed maria" in removed.output
    assert "no users" in users(runs, "list").output


def test_passwords_are_stored_as_argon2_hashes_only(tmp_path: Path) -> None:
    """The database holds an argon2id hash, never the password."""
    users(tmp_path, "add", "ada", "--role", "admin", "--password-stdin", stdin="correct horse\n")
    with sqlite3.connect(tmp_path / DB_FILE) as conn:
        (stored,) = conn.execute("SELECT password_hash FROM users").fetchone()
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert versions == sorted(version for version, _ in MIGRATIONS)


def test_the_prompt_asks_twice(tmp_path: Path) -> None:
    """Without --password-stdin the password is typed twice, hidden; a mismatch asks again."""
    result = users(
        tmp_path,
        "add",
        "rafael",
        "--role",
        "reviewer",
        stdin="first-pass\nother-pass\nfirst-pass\nfirst-pass\n",
    )
    assert result.exit_code == 0, result.output
    assert "Error: The two entered values do not match." in result.output
    assert "first-pass" not in result.output
    with open_db(tmp_path) as conn:
        assert authenticate(conn, "rafael", "first-pass") is not None


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["add", "ada", "--role", "admin", "--password-stdin"], "\n", "password is empty"),
        (["add", "ada", "--role", "admin", "--password-stdin"], "short\n", "only 5 characters"),
        (["add", "   ", "--role", "admin", "--password-stdin"], "long-enough\n", "user name"),
        (["add", "dup", "--role", "admin", "--password-stdin"], "long-enough\n", "already exists"),
        (["remove", "ghost"], None, "user 'ghost' does not exist"),
        (["passwd", "ghost", "--password-stdin"], "long-enough\n", "user 'ghost' does not exist"),
        (["passwd", "dup", "--password-stdin"], "tiny\n", "only 4 characters"),
    ],
)
def test_mistakes_are_one_clear_error(tmp_path: Path, args, stdin, message) -> None:
    """Weak passwords, duplicates and unknown users: exit 1, the problem and the fix."""
    users(tmp_path, "add", "dup", "--role", "marketer", "--password-stdin", stdin="long-enough\n")
    result = users(tmp_path, *args, stdin=stdin)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and message in result.output
    assert "fix: " in result.output and "Traceback" not in result.output


def test_an_unknown_role_is_a_usage_error(tmp_path: Path) -> None:
    """--role takes only the three roles (exit 2, click's usage message)."""
    result = users(
        tmp_path, "add", "x", "--role", "boss", "--password-stdin", stdin="long-enough\n"
    )
    assert result.exit_code == 2 and "'boss' is not one of" in result.output


def test_a_file_as_runs_directory_is_one_clear_error(tmp_path: Path) -> None:
    """--runs must be a folder (a usage error naming it)."""
    runs = tmp_path / "file"
    runs.write_text("x")
    result = users(runs, "list")
    assert result.exit_code == 2 and "'--runs'" in result.output and "is a file" in result.output


def test_serve_refuses_a_port_in_use(tmp_path: Path) -> None:
    """A busy port is one clear error before the server starts."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--runs", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 1
    assert f"127.0.0.1:{port}: cannot listen there" in result.output and "fix:" in result.output


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen, seconds: float = 60):
    """GET ``url`` once the server answers (fails if the process exits first)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            return urllib.request.urlopen(url, timeout=5)
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def test_cpo_serve_serves_the_login_page(tmp_path: Path) -> None:
    """`cpo serve` in a real process answers on loopback; pages without a session go to /login."""
    runs = tmp_path / "runs"
    users(runs, "add", "ada", "--role", "admin", "--password-stdin", stdin="admin-pass-1\n")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cpo", "serve", "--runs", str(runs), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        login = wait_for(f"http://127.0.0.1:{port}/login", process)
        body = login.read().decode("utf-8")
        assert login.status == 200 and '<form method="post" action="/login"' in body
        assert login.headers["X-Frame-Options"] == "DENY"
        redirected = urllib.request.urlopen(f"http://127.0.0.1:{port}/runs", timeout=5)
        assert redirected.url == f"http://127.0.0.1:{port}/login?next=/runs"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert f"serving {runs} at http://127.0.0.1:{port}/" in output
