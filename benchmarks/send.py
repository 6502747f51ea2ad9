"""Benchmark: ``cpo send`` throughput against a local SMTP server, and where the time goes.

Makes one completed run of N generated customers (``cpo run``, not timed), then:

* ``dry run``: ``cpo send --dry-run`` as a subprocess (checks, read the send
  list, build every message; no SMTP, no ledger writes);
* ``send``: ``cpo send`` as a subprocess to an aiosmtpd server on 127.0.0.1 in
  this process (accepts at once), wall time and messages per second, then the
  same run sent again (everyone skipped as already sent: the ledger look-ups);
* per-message parts, in process: building one message
  (:func:`cpo.delivery.message.build_message`), the two ledger commits of one
  recipient (``begin`` + ``finish``, WAL with ``synchronous=FULL``) on this
  disk, and one SMTP transaction (``MAIL``/``RCPT``/``DATA``) on the reused
  connection.

    python benchmarks/send.py                 # 2,000 customers
    python benchmarks/send.py --customers 5000
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "support"))

from _machine import print_machine
from delivery_testkit import config_with_sender, cpo
from smtp_server import RecordingHandler, SmtpServer


def make_run(folder: Path, customers: int) -> Path:
    """A completed run of ``customers`` generated customers, with a sender address."""
    from cpo.sample_data.customers import generate_customers

    path = folder / "customers.csv"
    generate_customers(customers, seed=7).to_csv(path, index=False)
    config = config_with_sender(folder / "config")
    run = folder / "runs" / "run"
    result = cpo("run", "--customers", path, "--config", config, "--out", run, "-q")
    assert result.exit_code == 0, result.output
    return run


def timed_send(run: Path, *args: str) -> tuple[float, dict]:
    """Wall seconds and JSON summary of ``python -m cpo send RUN ARGS --json``."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cpo", "send", str(run), "--json", *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return time.perf_counter() - started, json.loads(done.stdout)


def per_message_parts(run: Path, port: int, samples: int = 300) -> dict[str, float]:
    """Milliseconds per message: build, ledger commits, SMTP transaction."""
    from cpo.delivery.ledger import open_ledger
    from cpo.delivery.message import Sender, build_message
    from cpo.delivery.smtp import SmtpClient, SmtpSettings
    from cpo.run_folder import read_send_list

    rows = next(read_send_list(run).parts()).slice(0, samples).to_pylist()
    sender = Sender("Bench", "news@shop.example.com", "https://shop.example.com/u")
    started = time.perf_counter()
    messages = [build_message(row, sender, "bench") for row in rows]
    build = (time.perf_counter() - started) / len(rows)
    scratch = Path(tempfile.mkdtemp(dir=run.parent))
    with open_ledger(scratch) as ledger:
        started = time.perf_counter()
        for index, message in enumerate(messages):
            ledger.begin(str(index), str(message["Message-ID"]))
            ledger.finish(str(index), "sent", "250 ok")
        commits = (time.perf_counter() - started) / len(rows)
    client = SmtpClient(SmtpSettings("127.0.0.1", port))
    client.connect()
    started = time.perf_counter()
    for row, message in zip(rows, messages, strict=True):
        client.deliver(sender.address, str(row["email"]), message)
    smtp = (time.perf_counter() - started) / len(rows)
    client.close()
    shutil.rmtree(scratch)
    return {"build_ms": build * 1e3, "ledger_ms": commits * 1e3, "smtp_ms": smtp * 1e3}


def main() -> None:
    """Run the benchmark and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    options = parser.parse_args()
    print_machine()
    with tempfile.TemporaryDirectory() as folder:
        run = make_run(Path(folder), options.customers)
        handler = RecordingHandler()
        with SmtpServer(handler) as server:
            port = ["--smtp-host", "127.0.0.1", "--smtp-port", str(server.port)]
            dry_s, dry = timed_send(run, "--dry-run", *port)
            send_s, sent = timed_send(run, *port)
            again_s, again = timed_send(run, *port)
            parts = per_message_parts(run, server.port)
        assert len(handler.messages) == sent["sent"] + 300
    print(f"recipients: {sent['total']:,}")
    print(f"dry run: {dry_s:.2f} s ({dry['sent']:,} messages built)")
    print(f"send: {send_s:.2f} s, {sent['sent'] / send_s:,.0f} messages/s (incl. start-up)")
    print(f"send again (all skipped): {again_s:.2f} s ({again['already_sent']:,} skipped)")
    print("per message: " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()))


if __name__ == "__main__":
    main()
