"""The engagement page: a real send's export, checked in the page, re-analysed by the worker."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from cpo.run_folder import read_assignments, read_manifest
from cpo.web.app import create_app
from cpo.web.auth import database
from cpo.web.jobs import jobs_for_run

from .conftest import RUN_ID, USERS, csrf_of, sign_in
from .web_kit import run_worker_until_idle

PAGE = f"/runs/{RUN_ID}/engagement"


def recipients_csv(run_dir, bad_line: int | None = None) -> bytes:
    """One row per recipient of the run (every third opened); ``bad_line`` gets opened=maybe."""
    assignments = read_assignments(run_dir)
    recipients = assignments.loc[assignments["experiment_arm"] != "holdout", "customer_id"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["customer_id", "opened", "clicked", "converted"])
    for index, customer in enumerate(recipients):
        opened = "maybe" if bad_line == index + 2 else int(index % 3 == 0)
        writer.writerow([customer, opened, int(index % 9 == 0), 0])
    return out.getvalue().encode("utf-8")


def upload(client: TestClient, name: str, data: bytes):
    token = csrf_of(client.get(PAGE).text)
    return client.post(
        PAGE,
        data={"csrf_token": token},
        files={"engagement": (name, data, "text/csv")},
        follow_redirects=False,
    )


def test_the_page_says_where_engagement_comes_from(client_for):
    page = client_for("reviewer").get(PAGE)
    assert page.status_code == 200
    assert "simulated" in page.text
    assert 'name="engagement"' not in page.text  # reviewers do not upload
    assert 'for="engagement"' in client_for("marketer").get(PAGE).text


def test_a_bad_file_is_shown_with_its_line_and_nothing_runs(client_for, run_dir, runs_dir):
    response = upload(client_for("marketer"), "send export.csv", recipients_csv(run_dir, 3))
    assert response.status_code == 422
    assert "send export.csv" in response.text and "opened" in response.text
    assert "line 3" in response.text  # the header is line 1, as the import reports it
    assert str(runs_dir) not in response.text
    with database(runs_dir) as conn:
        assert jobs_for_run(conn, RUN_ID) == []


def test_refusals_role_csrf_suffix_and_size(client_for, run_dir, runs_dir):
    reviewer = client_for("reviewer")
    token = csrf_of(reviewer.get(PAGE).text)
    files = {"engagement": ("e.csv", recipients_csv(run_dir), "text/csv")}
    assert reviewer.post(PAGE, data={"csrf_token": token}, files=files).status_code == 403
    marketer = client_for("marketer")
    assert marketer.post(PAGE, data={"csrf_token": "x"}, files=files).status_code == 403
    wrong = upload(marketer, "export.xlsx", b"PK")
    assert wrong.status_code == 422 and ".xlsx is not read" in wrong.text
    small = TestClient(create_app(runs_dir, max_upload_mb=0.001))
    sign_in(small, *USERS["marketer"])
    assert upload(small, "e.csv", recipients_csv(run_dir)).status_code == 413


def test_a_good_file_is_re_analysed_by_the_worker(client_for, run_dir, runs_dir, app):
    response = upload(client_for("marketer"), "export.csv", recipients_csv(run_dir))
    assert response.status_code == 303
    assert response.headers["location"] == f"/runs/{RUN_ID}/progress"
    with database(runs_dir) as conn:
        (job,) = jobs_for_run(conn, RUN_ID)
    assert (job.kind, job.status) == ("engagement", "queued")
    assert job.args[:3] == ("run", "--resume", str(run_dir))
    assert "--engagement" in job.args
    run_worker_until_idle(app)
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "completed"
    assert manifest["experiment"]["engagement_source"] != "simulated"
    page = client_for("marketer").get(PAGE).text
    assert "Earlier imports" in page and "completed" in page
