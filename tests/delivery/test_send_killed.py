"""``cpo send`` killed with SIGKILL at random points, then run again: never twice.

A real SMTP server (slowed down a little, so the window between the ledger's
``sending`` commit and the server's reply is wide) receives from ``python -m
cpo send`` run as a real process. Each chain copies the small completed run and
kills the sender with SIGKILL several times, each after a random number of
delivered messages plus a random fraction of one message's time (or at a random
moment of its start-up, before any message), then runs it to the end. The
server must have received no customer twice, and every customer except those
the final run reports as in flight at a kill. 20 kills in all.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import pytest
from smtp_server import RecordingHandler, SmtpServer

from cpo.run_folder import read_send_list

CHAINS = 5
KILLS_PER_CHAIN = 4  # 20 kills in all


def send_process(run_dir, port, *extra):
    """Start ``python -m cpo send`` against the server on ``port``."""
    command = [
        sys.executable, "-m", "cpo", "send", str(run_dir), "--smtp-host", "127.0.0.1",
        "--smtp-port", str(port), "--retry-delay", "0.01", "--json", *extra,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "CPO_DEBUG"}
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def unknown_in_ledger(run_dir) -> set[str]:
    with sqlite3.connect(run_dir / "send_ledger.sqlite") as db:
        rows = db.execute("SELECT customer_id FROM sends WHERE state = 'unknown'")
        return {customer_id for (customer_id,) in rows}


def kill_at_random_point(process, handler, before, customers, chance, kills_left) -> bool:
    """SIGKILL ``process`` at a random point; True if it had sent some but not all.

    The point is a random moment of start-up (before any message), or after a
    random number of further messages (spread so that ``kills_left`` kills fit
    in what is left to send) plus a random fraction of one message's time.
    """
    sent = len(set(handler.customers()[before:]))
    if chance.random() < 0.2:  # during start-up: before the ledger or SMTP is touched
        time.sleep(chance.uniform(0.1, 1.2))
    else:
        step = max(2, (len(customers) - sent) // kills_left)
        target = sent + chance.randrange(1, step)
        deadline = time.monotonic() + 60
        while len(handler.messages) - before <= target and process.poll() is None:
            assert time.monotonic() < deadline, "the sender made no progress"
            time.sleep(0.002)
        time.sleep(chance.uniform(0.0, 0.05))  # anywhere within the next message
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    now = len(set(handler.customers()[before:]))
    return process.returncode == -signal.SIGKILL and sent < now < len(customers)


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_never_sends_twice(completed_run, tmp_path):
    customers = {
        str(c) for part in read_send_list(completed_run).parts() for c in part["customer_id"]
    }
    chance = random.Random(20261130)
    handler = RecordingHandler(delay_s=0.01)
    killed_mid_send = in_flight_total = 0
    with SmtpServer(handler) as server:
        for chain in range(CHAINS):
            run_dir = tmp_path / f"chain{chain}" / "run"
            shutil.copytree(completed_run, run_dir)
            before = len(handler.messages)
            for kill in range(KILLS_PER_CHAIN):
                process = send_process(run_dir, server.port)
                left = KILLS_PER_CHAIN - kill
                killed_mid_send += kill_at_random_point(
                    process, handler, before, customers, chance, left
                )
                received = Counter(handler.customers()[before:])
                assert [c for c, n in received.items() if n > 1] == [], f"chain {chain}"

            final = send_process(run_dir, server.port)
            out, err = final.communicate(timeout=120)
            assert final.returncode == 0, err
            summary = json.loads(out)
            received = Counter(handler.customers()[before:])
            assert [c for c, n in received.items() if n > 1] == [], f"chain {chain}: twice"
            unknown = unknown_in_ledger(run_dir)
            assert summary["in_flight_earlier"] == len(unknown)
            assert set(received) | unknown == customers
            assert set(received) <= customers
            if unknown:
                assert "in flight when an earlier send stopped" in err
            in_flight_total += len(unknown)
    print(f"kills mid-send: {killed_mid_send}; in flight at a kill: {in_flight_total}")
    # The kills exercised the interesting case: some sent, some not yet.
    assert killed_mid_send >= CHAINS * KILLS_PER_CHAIN // 2
    assert in_flight_total <= CHAINS * KILLS_PER_CHAIN  # at most one in flight per kill
