"""The new-run page: uploads checked before anything starts, then a background job.

Every request goes through the app (``TestClient``); the worker is driven by
hand (``worker.tick()``) where a test needs the run to start.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cpo.run_folder import read_manifest
from cpo.sample_data import bundled_content, bundled_customers
from cpo.web.app import create_app
from cpo.web.auth import database
from cpo.web.jobs import jobs_for_run

from .conftest import RUN_ID, USERS, csrf_of, sign_in
from .web_kit import run_worker_until_idle


def sample_csv(**replace_line: str) -> bytes:
    """The bundled customers as CSV bytes, with numbered lines replaced (``line_3="..."``)."""
    lines = bundled_customers().read_text(encoding="utf-8").splitlines()
    for key, text in replace_line.items():
        lines[int(key.removeprefix("line_")) - 1] = text
    return ("\n".join(lines) + "\n").encode("utf-8")


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in entries.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def post_new_run(client: TestClient, data: dict[str, str] | None = None, files=None):
    token = csrf_of(client.get("/runs/new").text)
    return client.post(
        "/runs/new",
        data={"csrf_token": token, **(data or {})},
        files=files,
        follow_redirects=False,
    )


def test_the_form_is_for_marketers_and_admins(client_for, anonymous):
    page = client_for("marketer").get("/runs/new")
    assert page.status_code == 200
    for field in ("run_name", "customers", "content_zip", "config", "on_invalid"):
        assert f'<label for="{field}"' in page.text
    assert client_for("admin").get("/runs/new").status_code == 200
    assert client_for("reviewer").get("/runs/new").status_code == 403
    response = anonymous.get("/runs/new", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_a_post_without_the_csrf_token_is_refused(client_for, runs_dir):
    client = client_for("marketer")
    response = client.post("/runs/new", data={"run_name": "x"}, follow_redirects=False)
    assert response.status_code == 403
    assert not (runs_dir / "x").exists()


def test_sample_run_is_queued_then_runs_in_a_worker_process(client_for, runs_dir, app):
    client = client_for("marketer")
    response = post_new_run(client, {"run_name": "spring"})
    assert response.status_code == 303
    assert response.headers["location"] == "/runs/spring/progress"
    with database(runs_dir) as conn:
        (job,) = jobs_for_run(conn, "spring")
    assert (job.status, job.kind, job.created_by) == ("queued", "run", USERS["marketer"][0])
    assert job.args[:3] == ("run", "--out", str(runs_dir / "spring"))
    assert "--customers" not in job.args  # the bundled sample
    page = client.get("/runs/spring/progress")
    assert page.status_code == 200 and "queued" in page.text

    run_worker_until_idle(app)
    assert read_manifest(runs_dir / "spring")["status"] == "completed"
    progress = client.get("/api/runs/spring/progress").json()
    assert progress["status"] == "completed" and progress["done"] is True
    assert progress["stages"][0]["name"] == "segment"
    assert {s["status"] for s in progress["stages"]} == {"completed"}


def test_an_invalid_customer_file_is_shown_with_its_line_and_fix(client_for, runs_dir):
    header = bundled_customers().read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",")[3] == "age"
    bad = "C000002,Jana,jana@example.org,250,Boise,Bronze,4.5,69.89,11,0.44,0.06"
    files = {"customers": ("my customers.csv", sample_csv(line_3=bad), "text/csv")}
    response = post_new_run(client_for("marketer"), {"run_name": "bad"}, files)
    assert response.status_code == 422
    text = response.text
    assert "my customers.csv" in text and "age" in text and "line 3" in text
    assert str(runs_dir) not in text  # the server's paths stay private
    assert not (runs_dir / "bad").exists()
    with database(runs_dir) as conn:
        assert jobs_for_run(conn, "bad") == []


def test_an_uploaded_customer_file_and_content_zip_are_used(client_for, runs_dir):
    content = {
        f"content/{path.name}": path.read_bytes() for path in bundled_content().glob("*.json")
    }
    files = {
        "customers": ("crm.csv", sample_csv(), "text/csv"),
        "content_zip": ("content.zip", zip_of(content), "application/zip"),
    }
    response = post_new_run(
        client_for("marketer"), {"run_name": "own", "on_invalid": "skip"}, files
    )
    assert response.status_code == 303, response.text
    with database(runs_dir) as conn:
        (job,) = jobs_for_run(conn, "own")
    args = list(job.args)
    customers = Path(args[args.index("--customers") + 1])
    assert customers.read_bytes() == sample_csv() and customers.suffix == ".csv"
    folder = Path(args[args.index("--content") + 1])
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(
        p.name for p in bundled_content().glob("*.json")
    )
    assert args[args.index("--on-invalid") + 1] == "skip"
    assert not str(customers).startswith(str(runs_dir / "own"))  # inputs live outside the run


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ({"../evil.json": b"{}"}, "leaves the folder"),
        ({"/etc/evil.json": b"{}"}, "absolute path"),
        ({"docs/a.json": b"{not json"}, "a.json"),
    ],
)
def test_unsafe_or_invalid_content_zips_are_refused(client_for, runs_dir, entries, expected):
    files = {"content_zip": ("content.zip", zip_of(entries), "application/zip")}
    response = post_new_run(client_for("marketer"), {"run_name": "zipped"}, files)
    assert response.status_code == 422
    assert expected in response.text
    assert not (runs_dir / "evil.json").exists() and not (runs_dir.parent / "evil.json").exists()
    assert not (runs_dir / "zipped").exists()


def test_uploads_over_the_limit_answer_413(runs_dir):
    app = create_app(runs_dir, max_upload_mb=0.01)  # 10 KB; the sample file is larger
    client = TestClient(app)
    sign_in(client, *USERS["marketer"])
    files = {"customers": ("crm.csv", sample_csv(), "text/csv")}
    response = post_new_run(client, {"run_name": "big"}, files)
    assert response.status_code == 413
    assert "over the limit of 0.01 MB" in response.text, response.text[-1500:]
    declared = {"customers": ("crm.csv", sample_csv() * 4, "text/csv")}  # ~190 KB body
    response = post_new_run(client, {"run_name": "huge"}, declared)
    assert response.status_code == 413  # refused from Content-Length, before the form is read
    assert "new run: the upload is 0.2 MB, over the limit of" in response.text
    bomb = zip_of({"content/huge.json": b" " * 200_000})  # small zipped, 200 KB inflated
    files = {"content_zip": ("content.zip", bomb, "application/zip")}
    response = post_new_run(client, {"run_name": "bomb"}, files)
    assert response.status_code == 413
    for name in ("big", "huge", "bomb"):
        assert not (runs_dir / name).exists()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"run_name": "../escape"}, "cannot be a folder name"),
        ({"run_name": "demo"}, "already exists"),
        ({"run_name": "x", "config": "nope"}, "not a saved config folder"),
    ],
)
def test_bad_settings_are_refused_in_the_page(client_for, runs_dir, data, expected):
    response = post_new_run(client_for("marketer"), data)
    assert response.status_code == 422
    assert expected in response.text
    assert not (runs_dir.parent / "escape").exists()


def test_saved_configs_are_offered_and_validated(client_for, runs_dir):
    from click.testing import CliRunner

    from cpo.cli import cli

    result = CliRunner().invoke(cli, ["init", str(runs_dir / "configs" / "holiday")])
    assert result.exit_code == 0, result.output
    client = client_for("marketer")
    assert '<option value="holiday"' in client.get("/runs/new").text
    response = post_new_run(client, {"run_name": "cfg", "config": "holiday"})
    assert response.status_code == 303
    (runs_dir / "configs" / "holiday" / "experiment_config.yaml").write_text("campaign: [")
    response = post_new_run(client, {"run_name": "cfg2", "config": "holiday"})
    assert response.status_code == 422
    assert "experiment_config.yaml" in response.text


def test_progress_needs_a_login_and_a_known_run(client_for, anonymous):
    api = anonymous.get(f"/api/runs/{RUN_ID}/progress", follow_redirects=False)
    assert api.status_code == 401
    page = anonymous.get(f"/runs/{RUN_ID}/progress", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    client = client_for("reviewer")
    done = client.get(f"/api/runs/{RUN_ID}/progress").json()  # a run made by `cpo run`
    assert (done["status"], done["done"], done["job"]) == ("completed", True, None)
    page = client.get(f"/runs/{RUN_ID}/progress").text
    assert 'id="reload-link"' in page and "http-equiv" not in page  # no meta refresh
    assert '/static/progress.js"' in page
    for run_id in ("nope", "..%2F..", ".cpo_web"):
        assert client.get(f"/api/runs/{run_id}/progress").status_code == 404, run_id
