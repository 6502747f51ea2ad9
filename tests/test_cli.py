"""The command line as a user meets it: help, version, clean errors, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import nbformat
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from cpo import __version__
from cpo.cli import cli
from cpo.reporting import formatting as fmt


def cpo(
    *args: str, cwd: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-c", "from cpo.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def commands() -> list[str]:
    return sorted(cli.commands)


@pytest.mark.parametrize("command", commands())
def test_every_command_has_help_and_version(command: str):
    runner = CliRunner()
    help_result = runner.invoke(cli, [command, "--help"])
    assert help_result.exit_code == 0
    assert len(help_result.output.split("\n\n")[1].strip()) > 20  # a real description
    version = runner.invoke(cli, [command, "--version"])
    assert version.exit_code == 0 and __version__ in version.output


def test_top_level_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def _bad_customers(tmp_path: Path, customers_csv: Path, kind: str) -> Path:
    frame = pd.read_csv(customers_csv, dtype=str, keep_default_na=False)
    if kind == "missing column":
        frame = frame.drop(columns=["tier"])
    elif kind == "duplicate id":
        frame.loc[5, "customer_id"] = frame.loc[4, "customer_id"]
    elif kind == "rate 1.7":
        frame.loc[5, "historical_click_rate"] = "1.7"
    if kind == "empty file":
        customers_csv.write_text("")
    else:
        frame.to_csv(customers_csv, index=False)
    return customers_csv


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("missing column", "missing required column(s): tier"),
        ("duplicate id", "duplicate id"),
        ("rate 1.7", "out of range, must be [0, 1]"),
        ("empty file", "the file is empty"),
    ],
)
def test_bad_customer_file_exits_1_with_one_clear_message(tmp_path, customers_csv, kind, expected):
    path = _bad_customers(tmp_path, customers_csv, kind)
    result = cpo("run", "--out", str(tmp_path / "run"), "--customers", str(path))
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.count("error:") == 1


def _config(tmp_path: Path) -> Path:
    folder = tmp_path / "cfg"
    assert CliRunner().invoke(cli, ["init", str(folder)]).exit_code == 0
    return folder


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda p: p.joinpath("experiment_config.yaml").write_text("campaign: [1,\n"),
            "malformed YAML",
        ),
        (
            lambda p: p.joinpath("azure_config.yaml").write_text(
                yaml.safe_dump({"services": {"safety": {"backend": "local", "colour": "red"}}})
            ),
            "key 'services.safety.colour': unknown key",
        ),
        (lambda p: p.joinpath("safety_thresholds.yaml").unlink(), "config file not found"),
    ],
)
def test_bad_config_exits_1_without_traceback(tmp_path: Path, edit, expected):
    folder = _config(tmp_path)
    edit(folder)
    result = cpo("run", "--out", str(tmp_path / "run"), "--config", str(folder))
    assert result.returncode == 1
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_debug_env_shows_traceback(tmp_path: Path, customers_csv: Path):
    customers_csv.write_text("")
    result = cpo(
        "run",
        "--out",
        str(tmp_path / "run"),
        "--customers",
        str(customers_csv),
        env={"CPO_DEBUG": "1"},
    )
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_run_refuses_non_empty_out(tmp_path: Path):
    (tmp_path / "x.txt").write_text("x")
    result = CliRunner().invoke(cli, ["run", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "not empty" in result.output


def test_segment_command_prints_profiles_and_writes_csv(tmp_path: Path, customers_csv: Path):
    out = tmp_path / "seg.csv"
    result = CliRunner().invoke(cli, ["segment", str(customers_csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "500 customers, 4 segments (rules)" in result.output
    assert "High-Value Recent" in result.output
    assert len(pd.read_csv(out)) == 500
    kmeans = CliRunner().invoke(cli, ["segment", str(customers_csv), "--method", "kmeans"])
    assert kmeans.exit_code == 0 and "(kmeans)" in kmeans.output


def test_sample_data_command_is_deterministic(tmp_path: Path):
    for name in ("a", "b"):
        result = CliRunner().invoke(
            cli, ["sample-data", "--customers", "50", "--out", str(tmp_path / name), "--seed", "3"]
        )
        assert result.exit_code == 0, result.output
    assert (tmp_path / "a/customers.csv").read_bytes() == (
        tmp_path / "b/customers.csv"
    ).read_bytes()
    assert len(list((tmp_path / "a/content").glob("*.json"))) >= 30


def test_resume_with_engagement_keeps_the_stored_customer_file(tmp_path: Path, customers_csv: Path):
    frame = pd.read_csv(customers_csv, dtype=str, keep_default_na=False).head(300)
    frame.to_csv(customers_csv, index=False)
    run = tmp_path / "run"
    first = CliRunner().invoke(
        cli, ["run", "--out", str(run), "--customers", str(customers_csv), "-q"]
    )
    assert first.exit_code == 0, first.output
    measured = pd.read_csv(run / "engagement.csv")[
        ["customer_id", "opened", "clicked", "converted"]
    ]
    measured["clicked"] = 0  # a real send in which nobody clicked
    measured["converted"] = 0
    events = tmp_path / "measured.csv"
    measured.to_csv(events, index=False)
    resumed = CliRunner().invoke(
        cli, ["run", "--resume", str(run), "--engagement", str(events), "-q"]
    )
    assert resumed.exit_code == 0, resumed.output
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["options"]["customers"] == str(customers_csv.resolve())
    assert manifest["options"]["engagement"] == str(events.resolve())
    assert manifest["inputs"]["customers"]["rows"] == 300
    assert manifest["stages"]["segment"]["status"] == "completed"
    engagement = pd.read_csv(run / "engagement.csv")
    assert len(engagement) == 300 and engagement["clicked"].sum() == 0
    assert set(engagement["engagement_source"]) != {"simulated"}


def assert_one_clean_error(result, exit_code: int, *fragments: str) -> None:
    """The command failed with ``exit_code`` and one message naming ``fragments``, no traceback."""
    assert result.exit_code == exit_code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


def _output_path_cases(tmp_path: Path, customers_csv: Path) -> dict[str, tuple[list[str], str]]:
    """Command line and the expected message for every output-path problem, by case name."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    parent = f"{blocker} is a file, not a folder"
    return {
        "init FILE": (["init", str(blocker)], f"{blocker}: is a file"),
        "init FILE/sub": (["init", str(blocker / "cfg")], parent),
        "sample-data --out FILE": (["sample-data", "--out", str(blocker)], f"{blocker}: is a file"),
        "sample-data --out FILE/sub": (["sample-data", "--out", str(blocker / "s")], parent),
        "audit export --csv DIR": (
            ["audit", "export", str(folder), "--csv", str(folder)],
            f"{folder}: is a folder, but the CSV export must be a file",
        ),
        "audit export --csv FILE/x.csv": (
            ["audit", "export", str(folder), "--csv", str(blocker / "x.csv")],
            parent,
        ),
        "run --out FILE": (["run", "--out", str(blocker)], f"{blocker}: is a file"),
        "run --out FILE/run": (["run", "--out", str(blocker / "run")], parent),
        "run --resume FILE": (["run", "--resume", str(blocker)], "no such run folder"),
        "segment --out DIR": (
            ["segment", str(customers_csv), "--out", str(folder)],
            f"{folder}: is a folder",
        ),
        "segment --out FILE/x.csv": (
            ["segment", str(customers_csv), "--out", str(blocker / "x.csv")],
            parent,
        ),
        "index --db DIR": (["index", str(folder), "--db", str(folder)], f"{folder}: is a folder"),
        "retrieve --db FILE/x.db": (
            ["retrieve", "--query", "tent", "--db", str(blocker / "x.db")],
            parent,
        ),
        "analyze --out FILE/m.json": (
            ["analyze", str(customers_csv), "--out", str(blocker / "m.json")],
            parent,
        ),
    }


OUTPUT_PATH_CASES = [
    "init FILE",
    "init FILE/sub",
    "sample-data --out FILE",
    "sample-data --out FILE/sub",
    "audit export --csv DIR",
    "audit export --csv FILE/x.csv",
    "run --out FILE",
    "run --out FILE/run",
    "run --resume FILE",
    "segment --out DIR",
    "segment --out FILE/x.csv",
    "index --db DIR",
    "retrieve --db FILE/x.db",
    "analyze --out FILE/m.json",
]


@pytest.mark.parametrize("case", OUTPUT_PATH_CASES)
def test_output_path_problems_exit_1_with_one_message(tmp_path: Path, customers_csv: Path, case):
    args, expected = _output_path_cases(tmp_path, customers_csv)[case]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(cli, args)
    assert_one_clean_error(result, 1, "error: ", expected)
    assert result.output.count("error: ") == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing was written


def test_audit_export_onto_an_existing_folder_keeps_the_folder(tmp_path: Path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "earlier.csv").write_text("kept")
    result = CliRunner().invoke(cli, ["audit", "export", str(tmp_path), "--csv", str(folder)])
    assert_one_clean_error(result, 1, f"{folder}: is a folder")
    assert (folder / "earlier.csv").read_text() == "kept"


SEED_COMMANDS = {
    "run": ["run", "--out", "{tmp}/run"],
    "segment": ["segment", "{customers}"],
    "sample-data": ["sample-data", "--customers", "20", "--out", "{tmp}/sample"],
}


@pytest.mark.parametrize("command", sorted(SEED_COMMANDS))
@pytest.mark.parametrize("seed", ["-1", str(2**32), "1.5", "abc"])
def test_bad_seed_is_a_usage_error_on_every_command(
    tmp_path: Path, customers_csv: Path, command: str, seed: str
):
    args = [a.format(tmp=tmp_path, customers=customers_csv) for a in SEED_COMMANDS[command]]
    result = CliRunner().invoke(cli, [*args, "--seed", seed])
    assert_one_clean_error(result, 2, "Invalid value for '--seed'")
    assert not (tmp_path / "run").exists() and not (tmp_path / "sample").exists()


def test_every_seed_option_has_the_checked_type():
    """A new command with --seed must use cpo.cli.SEED (checked when parsed)."""
    from cpo.cli import SEED

    def options(command):
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                yield from options(sub)
        else:
            yield from ((command.name, p) for p in command.params if "--seed" in p.opts)

    found = list(options(cli))
    assert {name for name, _ in found} >= set(SEED_COMMANDS)
    for name, param in found:
        assert param.type is SEED, name


def test_largest_seed_is_accepted(tmp_path: Path):
    out = tmp_path / "sample"
    result = CliRunner().invoke(
        cli,
        ["sample-data", "--customers", "20", "--out", str(out), "--seed", str(2**32 - 1)],
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out / "customers.csv")) == 20


NOBODY = 65534


@pytest.fixture
def shared_dir():
    """A folder another user can enter (pytest's tmp_path is private to root)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run cpo as an unprivileged user")
    folder = Path(tempfile.mkdtemp(prefix="cpo-readonly-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(folder)


def cpo_as_nobody(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the console entry point as an unprivileged user (root ignores permissions)."""
    setpriv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return subprocess.run(
        [*setpriv, sys.executable, "-c", "from cpo.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "HOME": str(cwd)},
        timeout=300,
    )


READ_ONLY_CASES = {
    "init ro/cfg": ["init", "ro/cfg"],
    "init ro": ["init", "ro"],
    "sample-data --out ro/s": ["sample-data", "--customers", "10", "--out", "ro/s"],
    "run --out ro/run": ["run", "--out", "ro/run"],
    "run --out ro": ["run", "--out", "ro"],
    "run --resume ro-run": ["run", "--resume", "ro-run"],
    "run --force --out ro-run": ["run", "--force", "--out", "ro-run"],
    "audit export --csv ro/x.csv": ["audit", "export", "ro-run", "--csv", "ro/x.csv"],
    "segment --out ro/x.csv": ["segment", "customers.csv", "--out", "ro/x.csv"],
    "report ro-run": ["report", "ro-run", "--no-pdf", "--no-notebook"],
    "approve ro-run": ["approve", "ro-run", "--by", "Dana Reviewer"],
}


@pytest.mark.parametrize("case", sorted(READ_ONLY_CASES))
def test_read_only_folders_exit_1_with_one_message(shared_dir: Path, customers_csv: Path, case):
    (shared_dir / "customers.csv").write_bytes(customers_csv.read_bytes())
    (shared_dir / "ro").mkdir()
    run = shared_dir / "ro-run"
    run.mkdir()
    (run / "manifest.json").write_text('{"run_id": "earlier", "options": {}}\n')
    (run / "safety_audit.jsonl").write_text('{"seq": 1}\n')
    for folder in (shared_dir / "ro", run):
        folder.chmod(0o555)
    before = {p: p.read_bytes() for p in shared_dir.rglob("*") if p.is_file()}
    result = cpo_as_nobody(*READ_ONLY_CASES[case], cwd=shared_dir)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("error: ") == 1
    assert "permission denied" in result.stderr and "fix: " in result.stderr
    after = {p: p.read_bytes() for p in shared_dir.rglob("*") if p.is_file()}
    assert after == before


#: Advice that only imported engagement may give (report.html and the terminal).
DECISIONS = ("Adopt", "do not send", "Do not roll out", "Use the ")


def _strong_effects_config(tmp_path: Path) -> Path:
    """A config whose simulator has large, opposite effects: urgent helps, friendly hurts."""
    folder = tmp_path / "cfg"
    assert CliRunner().invoke(cli, ["init", str(folder)]).exit_code == 0
    path = folder / "experiment_config.yaml"
    data = yaml.safe_load(path.read_text())
    data["simulation"]["effects"] = {
        "urgent": {"open_rate": 0.5, "click_rate": 3.0, "conversion_per_click": 0.0},
        "informational": {"open_rate": 0.0, "click_rate": 0.0, "conversion_per_click": 0.0},
        "friendly": {"open_rate": 0.0, "click_rate": -0.95, "conversion_per_click": 0.0},
    }
    data["simulation"]["segment_effects"] = {}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def simulated_and_imported(tmp_path_factory: pytest.TempPathFactory):
    """One simulated run, then the same run resumed with that engagement imported as real."""
    tmp = tmp_path_factory.mktemp("decisions")
    sample = tmp / "sample"
    made = CliRunner().invoke(
        cli, ["sample-data", "--customers", "480", "--seed", "11", "--out", str(sample)]
    )
    assert made.exit_code == 0, made.output
    config = _strong_effects_config(tmp)
    run = tmp / "run"
    args = ["run", "--out", str(run), "--config", str(config), "-q"]
    args += ["--customers", str(sample / "customers.csv"), "--content", str(sample / "content")]
    simulated = CliRunner().invoke(cli, args)
    assert simulated.exit_code == 0, simulated.output
    sim_html = (run / "report.html").read_text(encoding="utf-8")
    sim_notebook = nbformat.read(run / "report.ipynb", as_version=4)
    report = json.loads((run / "engagement_report.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    measured = pd.read_csv(run / "engagement.csv").drop(columns=["engagement_source"])
    measured.to_csv(tmp / "measured.csv", index=False)
    imported = CliRunner().invoke(
        cli, ["run", "--resume", str(run), "--engagement", str(tmp / "measured.csv"), "-q"]
    )
    assert imported.exit_code == 0, imported.output
    return {
        "run": run,
        "simulated": simulated.output,
        "sim_html": sim_html,
        "sim_notebook": sim_notebook,
        "report": report,
        "metrics": metrics,
        "imported": imported.output,
        "imported_html": (run / "report.html").read_text(encoding="utf-8"),
        "imported_metrics": json.loads((run / "metrics.json").read_text()),
    }


def test_simulated_run_recommends_nothing_and_shows_the_true_effect(simulated_and_imported):
    result = simulated_and_imported
    truth = result["report"]["model"]["true_effects"]["arms"]
    primary = result["metrics"]["primary_metric"]
    records = [r for r in result["metrics"]["lift_analysis"] if r["metric"] == primary]
    assert any(r["statistical_significance"]["significant"] for r in records)  # it would decide
    for text in (result["simulated"], result["sim_html"]):
        for advice in DECISIONS:
            assert advice not in text, advice
        assert "checks the pipeline, not the customers" in text
    for record in records:
        true = truth[record["treatment_arm"]][primary]
        shown = f"{fmt.pp(true['lift_absolute'])} ({fmt.rel(true['lift_relative'])})"
        assert f"true effect is {shown}" in result["simulated"]  # the terminal
        assert f'<td class="n true-effect">{shown}' in result["sim_html"]  # the lift table
        assert f"estimated lift {fmt.pp(record['lift_absolute'])}" in result["simulated"]
    cell = next(c for c in result["sim_notebook"].cells if "interval_contains_truth" in c.source)
    table = cell.outputs[0]["data"]["text/plain"]
    assert "true_lift" in table and "interval_contains_truth" in table
    assert not [o for o in cell.outputs if o.output_type == "error"]


def test_recorded_true_effect_is_the_simulators_expected_rate_difference(simulated_and_imported):
    from cpo.config import load_config
    from cpo.experiment.simulate import expected_rates, true_differences

    run = simulated_and_imported["run"]
    customers = pd.read_csv(run.parent / "sample" / "customers.csv", dtype={"customer_id": str})
    assignments = pd.read_csv(run / "assignments.csv", dtype=str, keep_default_na=False)
    design = json.loads((run / "experiment_design.json").read_text())
    tones = {arm["name"]: arm["tone"] for arm in design["arms"]}
    settings = load_config(run.parent / "cfg").experiment.simulation
    expected = true_differences(expected_rates(customers, assignments, settings, tones))
    recorded = simulated_and_imported["report"]["model"]["true_effects"]["arms"]
    assert set(expected["experiment_arm"]) == set(recorded)
    for row in expected.itertuples(index=False):
        for metric in ("open_rate", "click_rate", "conversion_rate"):
            got = recorded[row.experiment_arm][metric]["lift_absolute"]
            assert got == pytest.approx(getattr(row, metric), abs=1e-12)
    urgent = next(arm for arm, tone in tones.items() if tone == "urgent")
    friendly = next(arm for arm, tone in tones.items() if tone == "friendly")
    assert recorded[urgent]["click_rate"]["lift_absolute"] > 0.05  # the configured +300%
    assert recorded[friendly]["click_rate"]["lift_absolute"] < 0


def test_imported_engagement_still_gets_a_recommendation(simulated_and_imported):
    html = simulated_and_imported["imported_html"]
    metrics = simulated_and_imported["imported_metrics"]
    assert metrics["engagement_source"] != "simulated"
    primary = [r for r in metrics["lift_analysis"] if r["metric"] == metrics["primary_metric"]]
    significant = [r for r in primary if r["statistical_significance"]["significant"]]
    assert any(r["lift_absolute"] > 0 for r in significant)  # the urgent arm's large lift
    assert f"Adopt {max(significant, key=lambda r: r['lift_absolute'])['treatment_arm']}" in html
    assert "Use the urgent variants" in html
    if any(r["lift_absolute"] < 0 for r in significant):
        assert "do not send it" in html
    assert "checks the pipeline, not the customers" not in html
    assert "True lift (simulator)" not in html
    assert "SIMULATED engagement" not in simulated_and_imported["imported"]
