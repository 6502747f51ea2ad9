"""The runs list (filters, status, timings), the run overview and artifact downloads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cpo.run_folder import MANIFEST, SENDS, read_manifest, read_profiles

from .web_kit import RUN_ID


def copy_run(runs_dir: Path, name: str, **manifest_changes) -> Path:
    """A copy of the demo run called ``name``, with top-level manifest keys changed."""
    target = runs_dir / name
    shutil.copytree(runs_dir / RUN_ID, target)
    manifest = read_manifest(target)
    manifest.update(manifest_changes)
    MANIFEST.path(target).write_text(json.dumps(manifest), encoding="utf-8")
    return target


def run_links(page: str) -> list[str]:
    """The run ids linked from the runs table."""
    return [part.split('"')[0] for part in page.split('<td><a href="/runs/')[1:]]


def test_the_list_shows_status_created_engagement_and_stage_timings(client_for, run_dir) -> None:
    """What a marketer scans the list for, straight from the manifest."""
    manifest = read_manifest(run_dir)
    page = client_for("marketer").get("/runs").text
    assert run_links(page) == [RUN_ID]
    assert '<span class="badge status-completed">completed</span>' in page
    assert manifest["created_at"][:10] in page
    assert "SIMULATED" in page
    for stage in manifest["stages"]:
        assert f"<li>{stage}: " in page


def test_filters(client_for, runs_dir) -> None:
    """Status, engagement source and name filters combine; no match says so."""
    copy_run(runs_dir, "spring-failed", status="failed", error={"message": "boom"})
    client = client_for("reviewer")
    assert sorted(run_links(client.get("/runs").text)) == [RUN_ID, "spring-failed"]
    assert run_links(client.get("/runs?status=failed").text) == ["spring-failed"]
    assert run_links(client.get("/runs?status=completed").text) == [RUN_ID]
    assert sorted(run_links(client.get("/runs?engagement=simulated").text)) == [
        RUN_ID,
        "spring-failed",
    ]
    assert run_links(client.get("/runs?q=SPRING").text) == ["spring-failed"]
    empty = client.get("/runs?status=failed&q=demo").text
    assert run_links(empty) == [] and "No run matches these filters (2 runs in all)" in empty
    assert "boom" in client.get("/runs?status=failed").text


def test_a_damaged_manifest_is_listed_not_fatal(client_for, runs_dir) -> None:
    """One unreadable run does not hide the others."""
    broken = runs_dir / "broken"
    broken.mkdir()
    MANIFEST.path(broken).write_text("{not json", encoding="utf-8")
    page = client_for("marketer").get("/runs").text
    assert sorted(run_links(page)) == ["broken", RUN_ID]
    assert "unreadable" in page and "malformed JSON" in page
    overview = client_for("marketer").get("/runs/broken")
    assert overview.status_code == 400 and "malformed JSON" in overview.text


def test_folders_that_are_not_runs_are_not_listed(client_for, runs_dir) -> None:
    """A folder without a manifest, a hidden folder and the app database are not runs."""
    (runs_dir / "notes").mkdir()
    shutil.copytree(runs_dir / RUN_ID, runs_dir / ".hidden")
    assert run_links(client_for("marketer").get("/runs").text) == [RUN_ID]
    assert client_for("marketer").get("/runs/notes").status_code == 404
    assert client_for("marketer").get("/runs/.hidden").status_code == 404


def test_overview_shows_manifest_segments_warnings_and_downloads(client_for, run_dir) -> None:
    """The overview's sections come from the run's own files."""
    manifest = read_manifest(run_dir)
    page = client_for("marketer").get(f"/runs/{RUN_ID}").text
    assert manifest["run_id"] in page and manifest["config_sha256"][:16] in page
    for profile in read_profiles(run_dir):
        assert f'<td>{profile.name}</td><td class="n">{profile.size}</td>' in page
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    for warning in metrics["warnings"]:
        assert warning["message"].replace("'", "&#39;") in page
    assert f'href="/runs/{RUN_ID}/files/{SENDS.name}"' in page
    assert f'href="/runs/{RUN_ID}/files/metrics.json"' in page


def test_a_reviewer_sees_customer_files_listed_without_a_link(client_for) -> None:
    """The overview does not offer what the role may not download."""
    page = client_for("reviewer").get(f"/runs/{RUN_ID}").text
    assert f'href="/runs/{RUN_ID}/files/{SENDS.name}"' not in page
    assert 'sends.csv <span class="small">(customer data: marketers and admins)</span>' in page
    assert f'href="/runs/{RUN_ID}/files/metrics.json"' in page


def test_a_download_is_the_file_as_an_attachment(client_for, run_dir) -> None:
    """The bytes of the run's file, with its name."""
    response = client_for("marketer").get(f"/runs/{RUN_ID}/files/{SENDS.name}")
    assert response.status_code == 200
    assert response.content == SENDS.path(run_dir).read_bytes()
    assert response.headers["content-disposition"] == 'attachment; filename="sends.csv"'
    assert response.headers["content-type"].startswith("text/csv")


@pytest.mark.parametrize(
    "path",
    [
        f"/runs/{RUN_ID}/files/../../cpo_web.sqlite",
        f"/runs/{RUN_ID}/files/..%2f..%2fcpo_web.sqlite",
        f"/runs/{RUN_ID}/files/%2e%2e%2fmanifest.json",
        f"/runs/{RUN_ID}/files/%2e%2e",
        f"/runs/{RUN_ID}/files/%2Fetc%2Fpasswd",
        f"/runs/{RUN_ID}/files//etc/passwd",
        f"/runs/{RUN_ID}/files/logs",
        f"/runs/{RUN_ID}/files/logs%2fsystem.log",
        f"/runs/{RUN_ID}/files/.cpo.lock",
        f"/runs/{RUN_ID}/files/secrets.txt",
        f"/runs/{RUN_ID}/files/manifest.json%00.csv",
        f"/runs/{RUN_ID}/files/rejected.csv",
        "/runs/%2e%2e/files/manifest.json",
        "/runs/..%2f..%2fetc/files/passwd",
        "/runs/nope/files/manifest.json",
    ],
)
def test_anything_but_an_existing_artifact_name_is_404(client_for, path) -> None:
    """Traversal, absolute paths, folders, the lock and unknown or absent names: 404."""
    response = client_for("admin").get(path)
    assert response.status_code == 404
    assert "Not found" in response.text


def test_unknown_run_is_404_page(client_for) -> None:
    """A run id that is not a folder of the runs directory is a 404 page, not a traceback."""
    response = client_for("reviewer").get("/runs/does-not-exist")
    assert response.status_code == 404
    assert "no such run" in response.text


def test_home_goes_to_the_runs_list(client_for) -> None:
    """The start page is the runs list."""
    response = client_for("marketer").get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/runs"


def test_the_list_is_newest_first_by_start_time(client_for, runs_dir) -> None:
    """Ordered by the manifest's created_at, not by which folder changed last."""
    copy_run(runs_dir, "older", created_at="2020-01-01T00:00:00.000Z")
    copy_run(runs_dir, "newer", created_at="2999-01-01T00:00:00.000Z")
    (runs_dir / "older" / "manifest.json").touch()  # changed last, still started first
    assert run_links(client_for("marketer").get("/runs").text) == ["newer", RUN_ID, "older"]
