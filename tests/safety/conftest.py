"""Fixtures for the safety tests: a marker analyzer, run folders, a fake Content Safety server.

Texts steer the fake backends with markers such as ``[violence:6]`` (severity 6 for
violence) or ``[error]`` (the backend raises), so each test states its expected
scores in the text itself.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from cpo_testkit import FOOTER, MarkerAnalyzer, VariantsStage, marker_scores, write_variants

from cpo.config import init_config, load_config
from cpo.models import Grounding, Variant
from cpo.pipeline import run_pipeline
from cpo.safety.stage import ScreenStage

AZURE_NAMES = {"hate": "Hate", "violence": "Violence", "self_harm": "SelfHarm", "sexual": "Sexual"}


def make_variant(
    variant_id: str,
    text: str = "A calm note about our new tents.",
    *,
    segment: str = "Standard",
    tone: str = "friendly",
    subject: str = "New tents are in",
    footer: bool = True,
    status: str = "generated",
    grounding: Grounding | None = None,
) -> Variant:
    """A variant whose body is ``text`` plus (by default) the unsubscribe footer."""
    body = f"Hi {{first_name}},\n\n{text}\n\n{FOOTER}" if footer else text
    return Variant(
        variant_id=variant_id,
        segment=segment,
        tone=tone,
        subject=subject,
        body=body,
        grounding=grounding or Grounding(score=1.0),
        backend="test",
        status=status,
        error="model returned nothing" if status == "failed" else None,
    )


def control_variant() -> Variant:
    """The control message as the generation stage writes it."""
    return make_variant("control", "Browse the latest gear.", segment="all", tone="control")


def edit_config(folder: Path, filename: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``edit`` to one YAML file of a config folder."""
    path = folder / filename
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """An editable copy of the default config using the marker backend."""
    folder = tmp_path / "config"
    init_config(folder)
    edit_config(
        folder,
        "azure_config.yaml",
        lambda d: d["services"]["safety"].update(backend="marker"),
    )
    return folder


@pytest.fixture
def approval_config_dir(config_dir: Path) -> Path:
    """The marker config with ``experiment.require_approval: true``."""
    edit_config(
        config_dir,
        "experiment_config.yaml",
        lambda d: d.setdefault("experiment", {}).update(require_approval=True),
    )
    return config_dir


@dataclass
class ScreenRun:
    """Runs the screen stage on a run folder with chosen variants."""

    run_dir: Path
    config_dir: Path
    analyzer: MarkerAnalyzer = field(default_factory=MarkerAnalyzer)

    def run(self, variants: list[Variant], **kwargs: Any) -> dict[str, Any]:
        stages = [VariantsStage(variants), ScreenStage(self.analyzer)]
        return run_pipeline(self.run_dir, load_config(self.config_dir), stages=stages, **kwargs)

    def resume(self, variants: list[Variant]) -> dict[str, Any]:
        stages = [VariantsStage(variants), ScreenStage(self.analyzer)]
        return run_pipeline(self.run_dir, resume=True, stages=stages)

    @property
    def audit(self) -> Path:
        return self.run_dir / "safety_audit.jsonl"

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def screen_run(tmp_path: Path, config_dir: Path) -> ScreenRun:
    """A screen-stage runner on a fresh run folder (require_approval off)."""
    return ScreenRun(tmp_path / "run", config_dir)


@pytest.fixture
def approval_run(tmp_path: Path, approval_config_dir: Path) -> ScreenRun:
    """A screen-stage runner on a fresh run folder with require_approval on."""
    return ScreenRun(tmp_path / "run", approval_config_dir)


class Kit:
    """Helpers for tests (test modules cannot import conftest under importlib mode)."""

    MarkerAnalyzer = MarkerAnalyzer
    VariantsStage = VariantsStage
    FOOTER = FOOTER
    make_variant = staticmethod(make_variant)
    control_variant = staticmethod(control_variant)
    write_variants = staticmethod(write_variants)
    edit_config = staticmethod(edit_config)
    marker_scores = staticmethod(marker_scores)


@pytest.fixture
def kit() -> type[Kit]:
    """The helper namespace."""
    return Kit


# --- a local Azure AI Content Safety server -------------------------------------------


@dataclass
class ContentSafetyServer:
    """State of the fake service: scripted failures, blocklists and a request log.

    ``script`` is consumed one item per request: ``"ok"``, an HTTP status (429,
    500, 400, 401, ...) or ``"hang"`` (no answer for ``hang_s`` seconds).
    """

    key: str = "test-key-123"
    script: list[Any] = field(default_factory=list)
    blocklists: dict[str, list[str]] = field(default_factory=dict)
    hang_s: float = 3.0
    retry_after: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    stop: threading.Event = field(default_factory=threading.Event)

    def next_action(self) -> Any:
        return self.script.pop(0) if self.script else "ok"

    def analyze(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The service's answer to a valid request."""
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return 400, _error("InvalidRequestBody", "text is required")
        if len(text) > 10_000:
            return 400, _error("InvalidRequestBody", "text is longer than 10000 characters")
        eight = body.get("outputType") == "EightSeverityLevels"
        scores = marker_scores(text)
        analysis = [
            {"category": AZURE_NAMES[c], "severity": s if eight else (s // 2) * 2}
            for c, s in scores.items()
            if AZURE_NAMES[c] in body.get("categories", list(AZURE_NAMES.values()))
        ]
        matches = [
            {"blocklistName": name, "blocklistItemId": f"{name}-{i}", "blocklistItemText": term}
            for name in body.get("blocklistNames") or []
            for i, term in enumerate(self.blocklists.get(name, []))
            if term.lower() in text.lower()
        ]
        return 200, {"blocklistsMatch": matches, "categoriesAnalysis": analysis}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _handler(state: ContentSafetyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            body = json.loads(raw or b"{}")
            state.requests.append(
                {
                    "path": url.path,
                    "query": parse_qs(url.query),
                    "key": self.headers.get("Ocp-Apim-Subscription-Key"),
                    "body": body,
                }
            )
            action = state.next_action()
            if action == "hang":
                state.stop.wait(state.hang_s)
                return
            if url.path != "/contentsafety/text:analyze" or "api-version" not in parse_qs(
                url.query
            ):
                return self._send(404, _error("NotFound", "no such operation"))
            if state.key != self.headers.get("Ocp-Apim-Subscription-Key"):
                return self._send(401, _error("Unauthorized", "invalid subscription key"))
            if isinstance(action, int):
                return self._send(action, _error(f"Http{action}", f"injected {action}"))
            self._send(*state.analyze(body))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429 and state.retry_after is not None:
                self.send_header("Retry-After", state.retry_after)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def content_safety_server() -> Iterator[ContentSafetyServer]:
    """A threaded fake Content Safety service on 127.0.0.1 (plain http)."""
    state = ContentSafetyServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()
