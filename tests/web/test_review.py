"""The review queue: reviewers decide, the audit records it as ``cpo approve`` does.

A run paused for review is made once per module by ``cpo run`` with the
approval gate on and content whose claims make guarantees (see review_kit).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from cpo.audit import read_entries
from cpo.cli import cli
from cpo.decisions import pending_review, sendable_variants
from cpo.run_folder import SAFETY_AUDIT, read_manifest
from cpo.web.app import create_app
from cpo.web.auth import database
from cpo.web.jobs import enqueue, jobs_for_run

from .conftest import USERS, csrf_of, sign_in
from .review_kit import REVIEW_PHRASE, review_inputs
from .web_kit import run_worker_until_idle

PAUSED = "paused"
#: Fields that differ between two equal decisions made at different moments and places.
VOLATILE = {"timestamp", "hash", "channel"}


@pytest.fixture(scope="module")
def paused_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run stopped at the approval gate (made once; copied per test)."""
    folder = tmp_path_factory.mktemp("review")
    config, content = review_inputs(folder)
    out = folder / PAUSED
    result = CliRunner().invoke(
        cli, ["run", "--out", str(out), "--config", str(config), "--content", str(content)]
    )
    assert result.exit_code == 0, result.output
    assert read_manifest(out)["status"] == "awaiting_approval"
    return out


@pytest.fixture
def paused(runs_dir: Path, paused_template: Path) -> Path:
    target = runs_dir / PAUSED
    shutil.copytree(paused_template, target)
    return target


def waiting(run_dir: Path) -> list[str]:
    return [d.variant_id for d in pending_review(sendable_variants(run_dir))]


def decide(client: TestClient, variant_id: str, decision: str, reason: str, token=None):
    token = token if token is not None else csrf_of(client.get(f"/runs/{PAUSED}/review").text)
    return client.post(
        f"/runs/{PAUSED}/review/{variant_id}",
        data={"csrf_token": token, "decision": decision, "reason": reason},
        follow_redirects=False,
    )


def test_the_queue_lists_runs_in_review_for_reviewers_only(paused, client_for, anonymous):
    page = client_for("reviewer").get("/review")
    assert page.status_code == 200
    assert f'href="/runs/{PAUSED}/review"' in page.text
    assert 'href="/runs/demo/review"' not in page.text  # the completed run waits for nothing
    assert client_for("marketer").get("/review").status_code == 403
    assert client_for("marketer").get(f"/runs/{PAUSED}/review").status_code == 403
    assert anonymous.get("/review", follow_redirects=False).status_code == 303


def test_the_run_page_shows_what_the_reviewer_needs(paused, client_for):
    first = waiting(paused)[0]
    text = client_for("reviewer").get(f"/runs/{PAUSED}/review").text
    assert f"banned phrase: {REVIEW_PHRASE}" in text  # the screening reason
    assert "Cited source paragraphs" in text and "<blockquote>" in text
    assert f'src="/runs/{PAUSED}/variants/{first}/preview"' in text
    assert text.count('name="decision" value="approve"') == len(waiting(paused))


def test_an_approval_is_audited_exactly_as_cpo_approve_does(paused, client_for, tmp_path):
    cli_copy = tmp_path / "cli-copy"
    shutil.copytree(paused, cli_copy)
    variant = waiting(paused)[0]
    response = decide(client_for("reviewer"), variant, "approve", "claims checked with legal")
    assert response.status_code == 303
    assert sendable_variants(paused)[variant].status == "approved"
    assert variant not in waiting(paused)
    verified = CliRunner().invoke(cli, ["audit", "verify", str(paused)])
    assert verified.exit_code == 0, verified.output

    name = USERS["reviewer"][0]
    result = CliRunner().invoke(
        cli, ["approve", str(cli_copy), "--by", name, "--note", "claims checked with legal"]
    )
    assert result.exit_code == 0, result.output
    web = read_entries(SAFETY_AUDIT.path(paused))[-1]
    by_cli = next(
        e
        for e in read_entries(SAFETY_AUDIT.path(cli_copy))
        if e.get("kind") == "approval" and e["variant_id"] == variant
    )
    assert (web["channel"], by_cli["channel"]) == ("web", "cli")
    assert {k: v for k, v in web.items() if k not in VOLATILE} == {
        k: v for k, v in by_cli.items() if k not in VOLATILE
    }


def test_a_rejection_needs_a_reason_and_is_final(paused, client_for):
    client = client_for("reviewer")
    variant = waiting(paused)[0]
    before = len(read_entries(SAFETY_AUDIT.path(paused)))
    refused = decide(client, variant, "reject", "   ")
    assert refused.status_code == 422
    assert "a reason is required" in refused.text
    assert len(read_entries(SAFETY_AUDIT.path(paused))) == before
    assert decide(client, variant, "reject", "overpromises").status_code == 303
    assert sendable_variants(paused)[variant].status == "rejected"
    entry = read_entries(SAFETY_AUDIT.path(paused))[-1]
    assert (entry["kind"], entry["note"], entry["channel"]) == ("rejection", "overpromises", "web")
    again = decide(client, variant, "approve", "changed my mind")
    assert again.status_code == 409
    assert "not awaiting review" in again.text


def test_decisions_need_the_role_and_the_csrf_token(paused, client_for):
    variant = waiting(paused)[0]
    marketer = client_for("marketer")
    token = csrf_of(marketer.get("/runs/new").text)
    assert decide(marketer, variant, "approve", "ok", token=token).status_code == 403
    reviewer = client_for("reviewer")
    assert decide(reviewer, variant, "approve", "ok", token="forged").status_code == 403
    assert variant in waiting(paused)


def test_distinct_approver_refuses_whoever_started_the_run(paused, runs_dir):
    app = create_app(runs_dir, require_distinct_approver=True)
    admin = USERS["admin"][0]
    with database(runs_dir) as conn:
        job = enqueue(conn, PAUSED, "run", ["run", "--out", str(paused)], admin)
        conn.execute("UPDATE jobs SET status = 'awaiting_approval' WHERE id = ?", (job.id,))
    starter = TestClient(app)
    sign_in(starter, *USERS["admin"])
    page = starter.get(f"/runs/{PAUSED}/review").text
    assert "requires a different person" in page and 'name="decision"' not in page
    variant = waiting(paused)[0]
    token = csrf_of(starter.get("/runs/new").text)
    assert decide(starter, variant, "approve", "mine", token=token).status_code == 403
    other = TestClient(app)
    sign_in(other, *USERS["reviewer"])
    assert decide(other, variant, "approve", "looks fine").status_code == 303


def test_the_run_resumes_when_nothing_is_left_in_review(paused, client_for, app, runs_dir):
    client = client_for("reviewer")
    pending = waiting(paused)
    for variant in pending[:-1]:
        assert decide(client, variant, "approve", "fine").status_code == 303
    with database(runs_dir) as conn:
        assert jobs_for_run(conn, PAUSED) == []  # one is still waiting
    response = decide(client, pending[-1], "reject", "too strong")
    assert response.status_code == 303
    assert "continues in the background" in client.get(f"/runs/{PAUSED}/review").text
    with database(runs_dir) as conn:
        (job,) = jobs_for_run(conn, PAUSED)
    assert (job.kind, job.status) == ("resume", "queued")
    assert job.args[:3] == ("run", "--resume", str(paused))
    run_worker_until_idle(app)
    assert read_manifest(paused)["status"] == "completed"
    assert CliRunner().invoke(cli, ["audit", "verify", str(paused)]).exit_code == 0
