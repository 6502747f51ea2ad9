"""``cpo run --waves N --await-engagement``: adaptive waves sent for real, through the CLI.

Each wave's send list is answered by a generated per-recipient event file (the
generic CSV layout the import reads) whose click rates differ by arm, so the
allocations have something to follow.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from cpo_testkit import config_with_holdout

from cpo.cli import cli
from cpo.experiment.settings import WaveSettings
from cpo.experiment.waves import next_allocation

WAVES = 3
CLICK_RATE = {"control": 0.1, "treatment_1": 0.1, "treatment_2": 0.45, "treatment_3": 0.15}


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args))


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def events_for(send_list: pd.DataFrame, path: Path, seed: int) -> Path:
    """One row per recipient of ``send_list``: opened, clicked, converted (0/1)."""
    rng = np.random.default_rng(seed)
    rate = send_list["experiment_arm"].map(CLICK_RATE).to_numpy(dtype=float)
    clicked = (rng.random(len(send_list)) < rate).astype(int)
    opened = np.maximum(clicked, (rng.random(len(send_list)) < 0.3).astype(int))
    converted = clicked * (rng.random(len(send_list)) < 0.3)
    frame = pd.DataFrame(
        {
            "customer_id": send_list["customer_id"],
            "opened": opened,
            "clicked": clicked,
            "converted": converted,
        }
    )
    frame.to_csv(path, index=False)
    return path


def start(root: Path) -> Path:
    """A new run of the bundled sample in 3 waves sent for real, with a 10% holdout."""
    config = config_with_holdout(root, 0.1)
    run = root / "run"
    result = invoke(
        "run", "--out", str(run), "--config", str(config), "--waves", str(WAVES),
        "--await-engagement", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The whole loop: each wave's pause, send list and event file, and the final run."""
    root = tmp_path_factory.mktemp("waves_imported")
    run = start(root)
    steps = []
    for wave in range(1, WAVES + 1):
        manifest = json.loads((run / "manifest.json").read_text())
        sends = read_csv(run / "sends.csv")
        events = events_for(sends, root / f"wave{wave}_events.csv", seed=wave)
        result = invoke("run", "--resume", str(run), "--engagement", str(events), "-q")
        assert result.exit_code == 0, result.output
        steps.append(
            {
                "status": manifest["status"],
                "sends": sends,
                "events": events,
                "output": result.output,
            }
        )
    return {"run": run, "steps": steps}


@pytest.mark.slow
def test_the_run_pauses_after_each_wave_with_the_next_commands(loop: dict[str, Any]) -> None:
    steps, run = loop["steps"], loop["run"]
    assert [s["status"] for s in steps] == ["awaiting_engagement"] * WAVES
    for wave, step in enumerate(steps[:-1], start=2):
        assert f"wave {wave} of {WAVES} is in the send list (sends.csv)" in step["output"]
        assert f"cpo run --resume {run} --engagement FILE" in step["output"]
        assert f"cpo send {run}" in step["output"]
    assert "completed" in steps[-1]["output"] and "send list" not in steps[-1]["output"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed"


@pytest.mark.slow
def test_each_allocation_follows_the_imported_responses(loop: dict[str, Any]) -> None:
    run = loop["run"]
    waves = json.loads((run / "waves.json").read_text())
    seed = json.loads((run / "manifest.json").read_text())["seed"]
    assert waves["engagement_source"] == "imported"
    assert [a["method"] for a in waves["allocations"]] == ["design"] + ["top_two_thompson"] * 2
    settings = WaveSettings(
        count=WAVES,
        min_share=waves["min_share"],
        top_two_beta=waves["top_two_beta"],
        posterior_draws=waves["posterior_draws"],
    )
    totals = {arm: [0, 0] for arm in CLICK_RATE}
    for step, allocation in zip(loop["steps"], waves["allocations"], strict=True):
        if allocation["wave"] > 1:  # the library function on the responses imported so far
            expected = next_allocation(
                allocation["wave"],
                {arm: (x, n) for arm, (x, n) in totals.items()},
                waves["control_share"],
                settings,
                seed,
            )
            assert allocation["shares"] == pytest.approx(expected.shares, abs=1e-9)
            assert allocation["observed"] == {a: list(v) for a, v in totals.items()}
        # The wave's responses are the clicks of its event file, per arm.
        events = read_csv(step["events"]).merge(step["sends"][["customer_id", "experiment_arm"]])
        clicks = events.groupby("experiment_arm")["clicked"].agg(lambda s: int(s.astype(int).sum()))
        sizes = events["experiment_arm"].value_counts()
        for arm in CLICK_RATE:
            observed = [int(clicks.get(arm, 0)), int(sizes.get(arm, 0))]
            assert allocation["responses"][arm] == observed
            totals[arm] = [totals[arm][0] + observed[0], totals[arm][1] + observed[1]]
    last = waves["allocations"][-1]["shares"]
    assert max(last, key=last.get) == "treatment_2"  # the best arm gets the most of wave 3


@pytest.mark.slow
def test_send_lists_hold_one_wave_each_and_never_the_holdout(loop: dict[str, Any]) -> None:
    run = loop["run"]
    assignments = read_csv(run / "assignments.csv")
    assert len(assignments) == 500  # every wave allocated by the end
    held = set(assignments.loc[assignments["experiment_arm"] == "holdout", "customer_id"])
    seen: set[str] = set()
    for wave, step in enumerate(loop["steps"], start=1):
        sent = set(step["sends"]["customer_id"])
        assert sent.isdisjoint(seen) and sent.isdisjoint(held)
        in_wave = assignments.loc[
            (assignments["wave"] == str(wave)) & (assignments["experiment_arm"] != "holdout")
        ]
        assert sent == set(in_wave["customer_id"])
        seen |= sent
    engagement = read_csv(run / "engagement.csv")
    assert set(engagement["customer_id"]) == seen  # every wave's recipients, once each
    assert len(engagement) == len(seen)


@pytest.mark.slow
def test_the_final_analysis_is_wave_stratified(loop: dict[str, Any]) -> None:
    run = loop["run"]
    metrics = json.loads((run / "metrics.json").read_text())
    section = metrics["waves"]
    assert section["count"] == WAVES
    assert [c["arm"] for c in section["comparisons"]] == [
        "treatment_1",
        "treatment_2",
        "treatment_3",
    ]
    decided = json.loads((run / "manifest.json").read_text())["analysis"]["results"]
    assert {r["estimate"] for r in decided} == {"wave_stratified"}
    assert [r["lift_absolute"] for r in decided] == [
        c["difference"] for c in section["comparisons"]
    ]
    assert metrics["engagement_source"] == "imported"
    # No email service measures the holdout's conversions: the program lift says so.
    assert section["holdout"]["difference"] is None
    report = json.loads((run / "engagement_report.json").read_text())
    assert report["layout"] == "waves" and sorted(report["waves"]) == ["1", "2", "3"]


@pytest.mark.slow
def test_a_new_event_file_after_the_last_wave_is_refused(
    loop: dict[str, Any], tmp_path: Path
) -> None:
    run = loop["run"]
    extra = events_for(loop["steps"][0]["sends"], tmp_path / "late.csv", seed=99)
    result = invoke("run", "--resume", str(run), "--engagement", str(extra), "-q")
    assert result.exit_code == 1
    assert "all 3 waves" in result.output and "no wave left to import" in result.output
    assert "Traceback" not in result.output
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_wrong_wave_file_and_changed_wave_count_are_refused(tmp_path: Path) -> None:
    run = start(tmp_path)
    wave1 = read_csv(run / "sends.csv")
    first = events_for(wave1, tmp_path / "wave1.csv", seed=1)
    assert invoke("run", "--resume", str(run), "--engagement", str(first)).exit_code == 0
    wave2 = read_csv(run / "sends.csv")
    mixed = pd.concat([wave2, wave1.head(3)], ignore_index=True)
    result = invoke(
        "run", "--resume", str(run), "--engagement",
        str(events_for(mixed, tmp_path / "mixed.csv", seed=2)), "-q",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "3 customer(s) in the file are not recipients of wave 2 of 3" in result.output
    assert "Traceback" not in result.output
    assert read_csv(run / "sends.csv").equals(wave2)  # nothing was imported or allocated
    waves = json.loads((run / "waves.json").read_text())
    assert len(waves["allocations"]) == 2 and waves["allocations"][1]["responses"] is None
    result = invoke("run", "--resume", str(run), "--waves", "4", "-q")
    assert result.exit_code == 1
    assert "the run is sending 3 waves (waves.json), not 4" in result.output
    # The same wave's file again changes nothing; the right file continues the loop.
    again = invoke("run", "--resume", str(run), "--engagement", str(first), "-q")
    assert again.exit_code == 0, again.output
    assert json.loads((run / "waves.json").read_text()) == waves
    second = events_for(wave2, tmp_path / "wave2.csv", seed=2)
    result = invoke("run", "--resume", str(run), "--engagement", str(second), "-q")
    assert result.exit_code == 0, result.output
    assert "wave 3 of 3 is in the send list" in result.output
    # A corrected file of wave 2 replaces wave 2 only; wave 3, maybe sent, stays as dealt.
    before = json.loads((run / "waves.json").read_text())
    assignments = read_csv(run / "assignments.csv")
    held = assignments.loc[
        (assignments["wave"] == "2") & (assignments["experiment_arm"] == "holdout")
    ]
    corrected = events_for(
        pd.concat([wave2, held.head(2)], ignore_index=True), tmp_path / "wave2b.csv", seed=7
    )
    result = invoke("run", "--resume", str(run), "--engagement", str(corrected), "-q")
    assert result.exit_code == 0, result.output
    assert "2 holdout customer(s) have engagement" in result.output  # excluded, as one wave
    after = json.loads((run / "waves.json").read_text())
    assert after["allocations"][2] == before["allocations"][2]
    assert after["allocations"][0] == before["allocations"][0]
    rows = read_csv(corrected).merge(wave2[["customer_id", "experiment_arm"]])
    clicks = rows.groupby("experiment_arm")["clicked"].agg(lambda c: int(c.astype(int).sum()))
    assert after["allocations"][1]["responses"] == {
        arm: [int(clicks.get(arm, 0)), int((rows["experiment_arm"] == arm).sum())]
        for arm in CLICK_RATE
    }
    engagement = read_csv(run / "engagement.csv").set_index("customer_id")
    assert engagement.loc[rows["customer_id"], "clicked"].tolist() == rows["clicked"].tolist()
    assert set(engagement.index).isdisjoint(held["customer_id"])
    assert len(engagement) == len(wave1) + len(wave2)


def test_await_engagement_needs_more_than_one_wave(tmp_path: Path) -> None:
    result = invoke("run", "--out", str(tmp_path / "run"), "--await-engagement")
    assert result.exit_code == 1
    assert "--await-engagement: the run has one wave" in result.output
    assert not (tmp_path / "run" / "segments.csv").exists()
    resumed = invoke("run", "--resume", str(tmp_path / "run"), "--await-engagement")
    assert resumed.exit_code == 2  # a usage error: a resumed run keeps how it was started
    assert "--await-engagement starts a new run" in resumed.output


def sendgrid_events(send_list: pd.DataFrame, clicked: set[str]) -> list[dict[str, Any]]:
    """SendGrid Event Webhook posts for a wave: delivered to all, opened and clicked by some."""
    at = int(time.time()) + 3600  # after the wave's assignment
    events: list[dict[str, Any]] = []
    for n, row in enumerate(send_list.itertuples(index=False)):
        kinds = ["delivered"] + (["open", "click"] if row.customer_id in clicked else [])
        for kind in kinds:  # a human opens an hour after delivery (not a machine open)
            events.append(
                {"email": row.email, "timestamp": at + n + (0 if kind == "delivered" else 3600),
                 "event": kind,
                 "sg_event_id": f"{row.customer_id}-{kind}", "sg_message_id": f"m-{n}",
                 "useragent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0"}
            )  # fmt: skip
    return events


@pytest.mark.slow
def test_sendgrid_events_are_matched_to_their_wave(tmp_path: Path) -> None:
    run = start(tmp_path)
    wave1 = read_csv(run / "sends.csv")
    clicked = set(wave1.loc[wave1["experiment_arm"] == "treatment_2", "customer_id"].head(12))
    first = tmp_path / "wave1.json"
    first.write_text(json.dumps(sendgrid_events(wave1, clicked)))
    result = invoke("run", "--resume", str(run), "--engagement", str(first), "-q")
    assert result.exit_code == 0, result.output
    waves = json.loads((run / "waves.json").read_text())
    assert waves["allocations"][0]["responses"]["treatment_2"][0] == len(clicked)
    assert waves["allocations"][0]["import"]["layout"] == "events"
    # A wave 2 export that also holds two wave 1 recipients' events: refused with the count.
    wave2 = read_csv(run / "sends.csv")
    mixed = tmp_path / "wave2_mixed.json"
    mixed.write_text(json.dumps(sendgrid_events(pd.concat([wave2, wave1.head(2)]), set())))
    result = invoke("run", "--resume", str(run), "--engagement", str(mixed), "-q")
    assert result.exit_code == 1
    assert "2 customer(s) in the file are not recipients of wave 2 of 3" in result.output
    second = tmp_path / "wave2.json"
    second.write_text(json.dumps(sendgrid_events(wave2, set())))
    result = invoke("run", "--resume", str(run), "--engagement", str(second), "-q")
    assert result.exit_code == 0, result.output
    assert "wave 3 of 3 is in the send list" in result.output
