"""End to end in a real browser: Debian's headless Chromium driven by Selenium.

The server under test is ``cpo serve`` (uvicorn) on a free loopback port, in
its own process. The tests sign in, start runs, watch them progress, open the
report and review variants, as a marketing manager and a compliance reviewer
would; a screenshot of each page is saved under the test's tmp folder.

Without Chromium these tests are skipped, except when ``CI`` is set: there
they must run (``.ci/run`` installs ``chromium`` and ``chromium-driver``).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cpo.audit import read_entries
from cpo.cli import cli
from cpo.decisions import pending_review, sendable_variants
from cpo.run_folder import SAFETY_AUDIT
from cpo.web.accounts import add_user
from cpo.web.auth import database

from .review_kit import review_inputs

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MARKETER = ("mona", "marketer-pass-1")
REVIEWER = ("remy", "reviewer-pass-1")
#: Fields that differ between two equal decisions made at different moments and places.
VOLATILE = {"timestamp", "hash", "channel"}
RUN_TIMEOUT_S = 300


def _browser_available() -> bool:
    return Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()


if not _browser_available():
    if os.environ.get("CI"):
        pytest.fail(
            f"CI is set but Chromium is missing ({CHROMIUM}, {CHROMEDRIVER}): "
            "install chromium and chromium-driver (.ci/run does)",
            pytrace=False,
        )
    pytest.skip(
        "Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402  (only when a browser exists)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """A runs directory with two users and a saved config that stops for review."""
    root = tmp_path / "runs"
    root.mkdir()
    with database(root) as conn:
        add_user(conn, MARKETER[0], "marketer", MARKETER[1])
        add_user(conn, REVIEWER[0], "reviewer", REVIEWER[1])
    config, _ = review_inputs(tmp_path / "inputs")
    shutil.copytree(config, root / "configs" / "review-gate")
    return root


@pytest.fixture
def content_zip(tmp_path: Path) -> Path:
    """The review kit's content folder as the zip a marketer uploads."""
    _, content = review_inputs(tmp_path / "zip-inputs")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(content.glob("*.json")):
            bundle.write(path, f"content/{path.name}")
    target = tmp_path / "content.zip"
    target.write_bytes(buffer.getvalue())
    return target


@pytest.fixture
def server(runs: Path, tmp_path: Path) -> Iterator[str]:
    """``cpo serve`` on a free loopback port; yields its base URL."""
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "cpo", "serve", "--runs", str(runs), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/login", timeout=2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail((tmp_path / "server.log").read_text(errors="replace"))
            time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


class Session:
    """The browser on the app, saving a screenshot of each page it visits."""

    def __init__(self, driver: WebDriver, base: str, shots: Path) -> None:
        self.driver, self.base, self.shots = driver, base, shots
        shots.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def shot(self, name: str) -> None:
        self.count += 1
        self.driver.save_screenshot(str(self.shots / f"{self.count:02d}-{name}.png"))

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def wait_text(self, css: str, wanted: set[str], timeout: float = RUN_TIMEOUT_S) -> str:
        WebDriverWait(self.driver, timeout, poll_frequency=0.5).until(
            lambda d: d.find_element(By.CSS_SELECTOR, css).text.strip() in wanted
        )
        return self.find(css).text.strip()

    def wait_status(self, wanted: str, stops: set[str]) -> None:
        """Wait on the progress page until the run's status is ``wanted`` (or another stop)."""
        status = self.wait_text("#run-status", {wanted, *stops})
        assert status == wanted, f"run {status}: {self.find('#job-error').text}"

    def sign_in(self, name: str, password: str) -> None:
        self.open("/login")
        self.find("#name").send_keys(name)
        self.find("#password").send_keys(password)
        self.shot("login")
        self.find("#password").send_keys(Keys.ENTER)
        WebDriverWait(self.driver, 30).until(lambda d: "/login" not in d.current_url)

    def sign_out(self) -> None:
        self.find("form.signout button").click()
        WebDriverWait(self.driver, 30).until(lambda d: "/login" in d.current_url)

    def unlabelled_inputs(self) -> list[str]:
        """Visible form controls without a ``<label for>`` (basic accessibility)."""
        script = (
            "return [...document.querySelectorAll('input, select, textarea')]"
            ".filter(e => e.type !== 'hidden' && !e.labels.length)"
            ".map(e => e.outerHTML);"
        )
        return list(self.driver.execute_script(script))


@pytest.fixture
def session(browser: WebDriver, server: str, tmp_path: Path) -> Session:
    return Session(browser, server, tmp_path / "screenshots")


def start_run(session: Session, name: str, *, config: str = "", content: Path | None = None):
    session.open("/runs/new")
    assert session.unlabelled_inputs() == []
    session.find("#run_name").send_keys(name)
    if content is not None:
        session.find("#content_zip").send_keys(str(content))
    if config:
        session.find(f"#config option[value='{config}']").click()
    session.shot(f"new-run-{name}")
    session.find("form[action='/runs/new'] button[type=submit]").click()
    WebDriverWait(session.driver, 60).until(lambda d: d.current_url.endswith("/progress"))


def test_marketer_starts_a_sample_run_and_reads_the_report(session: Session, runs: Path):
    session.sign_in(*MARKETER)
    # keyboard users reach the skip link first
    session.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    active = session.driver.switch_to.active_element
    assert active.get_attribute("class") == "skip-link"
    start_run(session, "sample")
    session.shot("progress-started")
    session.wait_status("completed", {"failed"})
    stages = session.driver.find_elements(By.CSS_SELECTOR, "#stages tbody tr")
    assert len(stages) >= 8  # the page updated itself (no reload) with every stage
    session.shot("progress-completed")
    session.find("#report-link").click()
    WebDriverWait(session.driver, 30).until(lambda d: d.current_url.endswith("/report"))
    assert session.driver.find_elements(By.TAG_NAME, "h1")  # the report itself, in the app
    session.shot("report")
    session.open("/runs/sample/variants")
    assert session.driver.find_elements(By.CSS_SELECTOR, "article.variant blockquote")
    session.shot("variants")
    session.open("/runs/sample")
    session.shot("overview")
    link = session.find("a[href='/runs/sample/files/sends.csv']")
    sends = session.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text()).then(done);",
        link.get_attribute("href"),
    )
    assert sends == (runs / "sample" / "sends.csv").read_text(encoding="utf-8")
    session.sign_out()
    session.shot("signed-out")
    session.open("/runs/sample")
    assert "/login" in session.driver.current_url  # signed out: every page asks to sign in


def test_reviewer_approves_a_variant_held_in_review(
    session: Session, runs: Path, content_zip: Path, tmp_path: Path
):
    session.sign_in(*MARKETER)
    start_run(session, "gated", config="review-gate", content=content_zip)
    session.wait_status("awaiting approval", {"failed", "completed"})
    session.shot("progress-awaiting-approval")
    session.sign_out()

    run_dir = runs / "gated"
    pending = [d.variant_id for d in pending_review(sendable_variants(run_dir))]
    assert pending
    cli_copy = tmp_path / "cli-copy"
    shutil.copytree(run_dir, cli_copy)

    session.sign_in(*REVIEWER)
    session.open("/review")
    session.shot("review-queue")
    session.find("a[href='/runs/gated/review']").click()
    assert session.unlabelled_inputs() == []
    session.shot("review-run")
    decide(session, pending[0], "approve", "claims checked against the approved content")
    assert "approved" in session.find("main").text

    audit = read_entries(SAFETY_AUDIT.path(run_dir))
    web = audit[-1]
    assert (web["kind"], web["variant_id"], web["by"]) == ("approval", pending[0], REVIEWER[0])
    verified = CliRunner().invoke(cli, ["audit", "verify", str(run_dir)])
    assert verified.exit_code == 0, verified.output
    by_cli = CliRunner().invoke(
        cli,
        [
            "approve",
            str(cli_copy),
            "--by",
            REVIEWER[0],
            "--note",
            "claims checked against the approved content",
        ],
    )
    assert by_cli.exit_code == 0, by_cli.output
    twin = next(
        e
        for e in read_entries(SAFETY_AUDIT.path(cli_copy))
        if e.get("kind") == "approval" and e["variant_id"] == pending[0]
    )
    assert (web["channel"], twin["channel"]) == ("web", "cli")
    assert {k: v for k, v in web.items() if k not in VOLATILE} == {
        k: v for k, v in twin.items() if k not in VOLATILE
    }

    for variant in pending[1:]:
        decide(session, variant, "approve", "fine")
    session.shot("review-done")
    session.open("/runs/gated/progress")
    session.wait_status("completed", {"failed"})
    session.shot("progress-resumed-completed")
    verified = CliRunner().invoke(cli, ["audit", "verify", str(run_dir)])
    assert verified.exit_code == 0, verified.output
    session.open("/runs/gated/audit")
    assert session.find("#verification").text.startswith("Verified")
    head = read_entries(SAFETY_AUDIT.path(run_dir))[-1]["hash"]
    assert session.find("#head-hash").text == head
    session.shot("audit")
    session.sign_out()


def decide(session: Session, variant_id: str, decision: str, reason: str) -> None:
    """Fill and submit the decision form of one variant on the run's review page."""
    session.open("/runs/gated/review")
    form = session.find(f"form[action='/runs/gated/review/{variant_id}']")
    form.find_element(By.CSS_SELECTOR, f"#{decision}-{variant_id}").click()
    form.find_element(By.CSS_SELECTOR, f"#reason-{variant_id}").send_keys(reason)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(session.driver, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".flash-success")
    )
