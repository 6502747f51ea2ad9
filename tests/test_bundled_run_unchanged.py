"""The bundled run's results are unchanged by refactoring.

``tests/data/golden/bundled_run_digests.json`` holds the sha256 of each
artifact of ``cpo run`` on the bundled sample (default seed), normalised by
``tests/support/golden.py`` (timestamps, run id, durations, hash-chain values,
config snapshot and ``schema_version`` removed), recorded at commit 0091fef,
before the architecture refactor. A run today must give the same digests. If a
change is *meant* to change a result, regenerate the file and say why in the
commit message; to see what changed, run ``python tests/support/golden.py A B``
on a run from the recorded commit and one from today.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from golden import COMPARED, digests

from cpo.cli import cli

RECORDED = Path(__file__).parent / "data" / "golden" / "bundled_run_digests.json"


def test_bundled_run_artifacts_match_the_recorded_digests(tmp_path: Path) -> None:
    """Every compared artifact of a fresh bundled run has its recorded digest."""
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--out",
            str(run_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    expected = json.loads(RECORDED.read_text(encoding="utf-8"))["digests"]
    assert set(expected) == set(COMPARED)
    changed = {name for name, digest in digests(run_dir).items() if expected.get(name) != digest}
    assert not changed, f"artifacts changed: {sorted(changed)}"
