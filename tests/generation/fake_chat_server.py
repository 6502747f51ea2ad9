"""A local Chat Completions server for the generation tests and benchmark.

Speaks the wire format of ``POST /v1/chat/completions`` (OpenAI and compatible
servers) and ``POST /openai/deployments/{deployment}/chat/completions?api-version=...``
(Azure OpenAI) on 127.0.0.1. Behaviour is scripted per request:

* ``server.script`` - a list of actions consumed one per request, in order; when
  empty, every request gets a valid email built from the prompt's sources;
* actions: ``{"status": 429, "retry_after": "0.1"}``, ``{"status": 500}``,
  ``{"status": 400}``, ``{"hang": 2.0}`` (sleep, then answer - the client should
  time out first), ``{"content": "Subject: ..."}`` (this reply text);
* ``server.latency_s`` - delay before every answer.

It records every request (path, query, headers, JSON body, arrival time) and the
highest number of requests in flight at once.

Loaded by path (tests cannot import each other): see ``conftest.py`` and
``benchmarks/generation.py``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

SOURCE_BLOCK = re.compile(r"^(\[Source: [^\]]+\])(?: \(link: (\S+)\))?\n(.+)$", re.MULTILINE)
AZURE_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions$")


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict[str, Any]
    arrived: float


@dataclass
class ChatServerState:
    """Script, latency and what the server observed."""

    script: list[dict[str, Any]] = field(default_factory=list)
    latency_s: float = 0.0
    requests: list[RecordedRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_action(self) -> dict[str, Any]:
        with self.lock:
            return self.script.pop(0) if self.script else {}


def valid_email(prompt: str) -> str:
    """A reply that meets the default constraints, quoting the prompt's sources."""
    blocks = SOURCE_BLOCK.findall(prompt)[:2]
    parts = ["Hi {first_name},", "Here is a quick update we think you will find useful."]
    words = 0
    for marker, _link, text in blocks:
        sentences = re.split(r"(?<=[.!?])\s+", text.strip())
        chosen: list[str] = []
        for sentence in sentences:
            chosen.append(sentence)
            words += len(sentence.split())
            if words >= 45 * (len(parts) - 1):
                break
        parts.append(" ".join(chosen) + f" {marker}")
    link = next((link for _m, link, _t in blocks if link), "")
    parts.append(f"Shop now: {link}" if link else "Shop now while it is on your mind.")
    parts.append("See you soon,\nThe team")
    return "Subject: A quick update for you\nBody:\n" + "\n\n".join(parts)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        state = self.server.state
        parsed = urlparse(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with state.lock:
            state.requests.append(
                RecordedRequest(
                    parsed.path,
                    parse_qs(parsed.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.perf_counter(),
                )
            )
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        self._counted = True
        try:
            self._answer(state, parsed.path, body)
        finally:
            self._release()

    def _release(self) -> None:
        """Leave the in-flight count once, before the response goes out.

        Releasing before writing matters: the client may send its next request as
        soon as it reads this response, before a ``finally`` here would run.
        """
        if getattr(self, "_counted", False):
            self._counted = False
            with self.server.state.lock:
                self.server.state.in_flight -= 1

    def _answer(self, state: ChatServerState, path: str, body: dict[str, Any]) -> None:
        if path != "/v1/chat/completions" and not AZURE_PATH.match(path):
            self._send(404, {"error": {"message": f"no route {path}", "type": "not_found"}})
            return
        action = state.next_action()
        if state.latency_s:
            time.sleep(state.latency_s)
        if "hang" in action:
            time.sleep(action["hang"])
        status = action.get("status", 200)
        if status != 200:
            headers = {"retry-after": action["retry_after"]} if "retry_after" in action else {}
            error = {"message": f"injected {status}", "type": "injected", "code": str(status)}
            self._send(status, {"error": error}, headers)
            return
        prompt = "\n".join(m.get("content", "") for m in body.get("messages", []))
        content = action.get("content") or valid_email(body["messages"][1]["content"])
        prompt_tokens = len(prompt.split())
        completion_tokens = len(content.split())
        self._send(
            200,
            {
                "id": f"chatcmpl-{len(state.requests)}",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": body.get("model", "deployment"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None):
        data = json.dumps(payload).encode()
        self._release()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); nothing to answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    state: ChatServerState


class ChatServer:
    """Start/stop wrapper: ``with ChatServer() as server: server.url``."""

    def __init__(self) -> None:
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.state = ChatServerState()
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def state(self) -> ChatServerState:
        return self.httpd.state

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ChatServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
