"""The audit page and CSV: the same verification and export as ``cpo audit``."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cpo.cli import cli
from cpo.run_folder import SAFETY_AUDIT

from .web_kit import RUN_ID


def test_verified_chain_and_head_hash_match_cpo_audit_verify(client_for, run_dir) -> None:
    """The page says what `cpo audit verify` says: intact, N entries, the same head hash."""
    result = CliRunner().invoke(cli, ["audit", "verify", str(run_dir)])
    assert result.exit_code == 0, result.output
    head = result.output.split("head hash: ")[1].strip()
    entries = result.output.split(": ")[1].split(" entries")[0]
    page = client_for("reviewer").get(f"/runs/{RUN_ID}/audit").text
    assert "Verified:" in page and f"{entries} entries, chain intact" in page
    assert f'<code id="head-hash">{head}</code>' in page
    assert "matches the run's manifest" in page
    assert page.count('<tr><td class="mono">') == int(entries)


def test_a_tampered_log_fails_verification_in_the_page(client_for, run_dir) -> None:
    """An edited line is reported with its number; its entries are not listed."""
    path = SAFETY_AUDIT.path(run_dir)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace('"pass"', '"block"', 1)
    path.write_text("".join(lines), encoding="utf-8")
    page = client_for("reviewer").get(f"/runs/{RUN_ID}/audit")
    assert page.status_code == 200
    assert "Verification FAILED:</strong> line 3:" in page.text
    assert '<tr><td class="mono">' not in page.text
    csv = client_for("reviewer").get(f"/runs/{RUN_ID}/audit.csv")
    assert csv.status_code == 200 and csv.headers["x-audit-verified"] == "false"


def test_a_truncated_log_fails_against_the_manifest(client_for, run_dir) -> None:
    """Deleting the last entry is caught by the count and head recorded in the manifest."""
    path = SAFETY_AUDIT.path(run_dir)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-1]), encoding="utf-8")
    page = client_for("admin").get(f"/runs/{RUN_ID}/audit").text
    assert "Verification FAILED" in page


def test_csv_download_equals_cpo_audit_export(client_for, run_dir, tmp_path: Path) -> None:
    """The CSV is byte for byte what `cpo audit export --csv` writes."""
    out = tmp_path / "export.csv"
    result = CliRunner().invoke(cli, ["audit", "export", str(run_dir), "--csv", str(out)])
    assert result.exit_code == 0, result.output
    response = client_for("marketer").get(f"/runs/{RUN_ID}/audit.csv")
    assert response.status_code == 200
    assert response.content == out.read_bytes()
    assert response.headers["x-audit-verified"] == "true"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{RUN_ID}-safety_audit.csv"'
    )


def test_a_run_without_an_audit_log_says_so(client_for, run_dir) -> None:
    """Before screening there is nothing to verify or download."""
    SAFETY_AUDIT.path(run_dir).unlink()
    client = client_for("reviewer")
    assert "has no audit log yet" in client.get(f"/runs/{RUN_ID}/audit").text
    assert client.get(f"/runs/{RUN_ID}/audit.csv").status_code == 404
