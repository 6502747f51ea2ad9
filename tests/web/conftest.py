"""Fixtures of the web app's tests: a runs directory with a real run, users, signed-in clients.

The run is made once per session by ``cpo run --out`` on the bundled sample data;
each test gets its own copy of a runs directory holding it (as ``demo``) and an
app database with one user of each role, so tests may change both freely.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from cpo.cli import cli
from cpo.web.accounts import add_user
from cpo.web.app import create_app
from cpo.web.auth import database

from .web_kit import RUN_ID, USERS, csrf_of, sign_in


@pytest.fixture(scope="session")
def bundled_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed ``cpo run --out`` on the bundled sample data (made once; do not change it)."""
    out = tmp_path_factory.mktemp("bundled") / RUN_ID
    result = CliRunner().invoke(cli, ["run", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def template_runs_dir(tmp_path_factory: pytest.TempPathFactory, bundled_run: Path) -> Path:
    """A runs directory with the bundled run and the :data:`USERS` (copied by ``runs_dir``)."""
    root = tmp_path_factory.mktemp("runs-template")
    shutil.copytree(bundled_run, root / RUN_ID)
    with database(root) as conn:
        for role, (name, password) in USERS.items():
            add_user(conn, name, role, password)
    return root


@pytest.fixture
def runs_dir(tmp_path: Path, template_runs_dir: Path) -> Path:
    """This test's own runs directory: the run ``demo`` and one user per role."""
    target = tmp_path / "runs"
    shutil.copytree(template_runs_dir, target)
    return target


@pytest.fixture
def run_dir(runs_dir: Path) -> Path:
    """The run folder ``demo`` inside this test's runs directory."""
    return runs_dir / RUN_ID


@pytest.fixture
def app(runs_dir: Path):
    """The web app over this test's runs directory."""
    return create_app(runs_dir)


@pytest.fixture
def anonymous(app) -> TestClient:
    """A client without a session."""
    return TestClient(app)


@pytest.fixture
def client_for(app) -> Callable[[str], TestClient]:
    """``client_for(role)``: a new client signed in as the :data:`USERS` user of that role."""

    def make(role: str) -> TestClient:
        client = TestClient(app)
        sign_in(client, *USERS[role])
        return client

    return make


@pytest.fixture
def page_token() -> Callable[[TestClient, str], str]:
    """``page_token(client, path)``: the CSRF token of the form on the page at ``path``."""

    def token(client: TestClient, path: str) -> str:
        return csrf_of(client.get(path).text)

    return token
