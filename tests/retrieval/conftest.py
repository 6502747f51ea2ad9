"""Fixtures for the retrieval tests: content folders, an FTS index, a fake Azure AI Search."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cpo.retrieval.content import LoadedContent, load_content
from cpo.retrieval.settings import ContentSettings
from cpo.retrieval.sqlite_fts import SqliteFtsRetriever
from cpo.sample_data import bundled_content

#: The as-of date of the sample data's tests: FERN-PRM-011 (expiry 2025-12-31) is expired.
AS_OF = date(2026, 11, 26)


def make_record(document_id: str = "DOC-1", **overrides: Any) -> dict[str, Any]:
    """A valid approved-content record; ``overrides`` replace fields (None values kept)."""
    record: dict[str, Any] = {
        "document_id": document_id,
        "title": f"Title of {document_id}",
        "category": "product",
        "content": "First paragraph about tents.\n\nSecond paragraph about boots.",
        "audience": "All",
        "keywords": ["tent", "camping"],
        "approval_date": "2026-01-01",
        "expiry_date": None,
        "source_url": f"https://example.com/{document_id.lower()}",
        "metadata": {"author": "A. Writer", "version": "1.0", "last_updated": "2026-01-01"},
    }
    record.update(overrides)
    return record


def write_record(folder: Path, record: dict[str, Any], name: str | None = None) -> Path:
    """Write a record as ``<name or document_id>.json`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or record['document_id']}.json"
    path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def make_doc():
    """The :func:`make_record` factory."""
    return make_record


@pytest.fixture
def write_doc():
    """The :func:`write_record` helper."""
    return write_record


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    """A small valid content folder: two general documents and one for 'Loyal Fans'."""
    folder = tmp_path / "content"
    write_record(
        folder,
        make_record(
            "GEN-1",
            title="Shipping",
            keywords=["shipping"],
            content="Free shipping on orders over $50.\n\nExpress shipping takes two days.",
        ),
    )
    write_record(
        folder,
        make_record(
            "GEN-2",
            title="Returns",
            category="support",
            keywords=["returns"],
            content="Return unused items within 30 days.",
        ),
    )
    write_record(
        folder,
        make_record(
            "FAN-1",
            title="Loyalty points",
            audience="Loyal Fans",
            category="promotion",
            keywords=["loyalty", "rewards"],
            content="Earn double loyalty points this week.\n\nPoints never expire while you shop.",
        ),
    )
    return folder


@pytest.fixture
def sample_content_dir(tmp_path: Path) -> Path:
    """A writable copy of the bundled approved content."""
    target = tmp_path / "sample_content"
    shutil.copytree(bundled_content(), target)
    return target


@pytest.fixture(scope="session")
def sample_content() -> LoadedContent:
    """The bundled content, loaded as of :data:`AS_OF`."""
    return load_content(bundled_content(), as_of=AS_OF)


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory, sample_content: LoadedContent):
    """An FTS index of the bundled content with the default settings."""
    path = tmp_path_factory.mktemp("index") / "content.sqlite"
    retriever = SqliteFtsRetriever(path, ContentSettings())
    retriever.index(sample_content.documents)
    return retriever


# -- a local Azure AI Search ---------------------------------------------------------------


class FakeAzureSearch:
    """A threaded HTTP server on 127.0.0.1 speaking the Azure AI Search REST calls cpo uses.

    * ``PUT /indexes('NAME')`` (or ``/indexes/NAME``): create or update an index.
    * ``POST /indexes('NAME')/docs/search.index``: upload / mergeOrUpload / delete actions.
    * ``POST /indexes('NAME')/docs/search.post.search``: search with ``search``, ``filter``
      (``eq``/``ne`` on strings, ``and``/``or``, parentheses), ``top``, ``select``,
      ``count``, ``queryType`` and ``semanticConfiguration``.

    Ranking is a stand-in (matched terms weighted by field), not Azure's; semantic queries
    get an ``@search.rerankerScore`` in 0-4. Faults: ``fail(route, *statuses)`` queues
    HTTP errors (``"hang"`` sleeps ``hang_s`` first), ``partial`` makes upload results fail.
    """

    def __init__(self) -> None:
        import threading

        self.indexes: dict[str, dict] = {}
        self.docs: dict[str, dict[str, dict]] = {}
        self.requests: list[dict] = []
        self.faults: dict[str, list] = {"index": [], "docs": [], "search": []}
        self.partial: list[int] = []
        self.hang_s = 1.0
        self.retry_after: str | None = None
        self.lock = threading.Lock()
        self.server = None

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, route: str, *statuses) -> None:
        """Answer the next requests on ``route`` (index, docs, search) with these statuses."""
        self.faults[route].extend(statuses)

    def calls(self, route: str) -> list[dict]:
        return [r for r in self.requests if r["route"] == route]

    # routing ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict, body: bytes):
        import re as _re
        import time as _time

        match = _re.match(r"^/indexes(?:\('([^']+)'\)|/([^/?]+))(/docs/[^?]+)?", path)
        if not match or "api-version=" not in path:
            return 404, {"error": {"code": "NotFound", "message": f"no route {path}"}}
        name = match.group(1) or match.group(2)
        tail = match.group(3) or ""
        route = {
            "": "index",
            "/docs/search.index": "docs",
            "/docs/search.post.search": "search",
        }.get(tail, "unknown")
        payload = json.loads(body) if body else {}
        with self.lock:
            self.requests.append(
                {
                    "method": method,
                    "route": route,
                    "index": name,
                    "path": path,
                    "api_key": headers.get("api-key"),
                    "body": payload,
                }
            )
            fault = self.faults.get(route, []).pop(0) if self.faults.get(route) else None
        if fault == "hang":
            _time.sleep(self.hang_s)
        elif fault is not None:
            return fault, {"error": {"code": "Injected", "message": f"injected HTTP {fault}"}}
        if headers.get("api-key") != "test-key":
            return 403, {"error": {"code": "Forbidden", "message": "bad api-key"}}
        if route == "index" and method == "PUT":
            return self._put_index(name, payload)
        if name not in self.indexes:
            return 404, {"error": {"code": "ResourceNotFound", "message": f"no index {name}"}}
        if route == "docs":
            return self._index_docs(name, payload)
        if route == "search":
            return self._search(name, payload)
        return 404, {"error": {"code": "NotFound", "message": path}}

    def _put_index(self, name: str, schema: dict):
        created = name not in self.indexes
        self.indexes[name] = schema
        self.docs.setdefault(name, {})
        return (201 if created else 200), schema

    def _index_docs(self, name: str, payload: dict):
        store = self.docs[name]
        results = []
        for position, action in enumerate(payload["value"]):
            kind = action.get("@search.action", "upload")
            key = action["id"]
            if position < len(self.partial):
                status = self.partial[position]
                results.append(
                    {"key": key, "status": False, "errorMessage": "busy", "statusCode": status}
                )
                continue
            fields = {k: v for k, v in action.items() if k != "@search.action"}
            if kind == "delete":
                store.pop(key, None)
            elif kind == "merge":
                store[key].update(fields)
            else:
                store[key] = fields
            results.append(
                {
                    "key": key,
                    "status": True,
                    "errorMessage": None,
                    "statusCode": 200 if kind != "upload" else 201,
                }
            )
        self.partial = []
        status = 207 if any(not r["status"] for r in results) else 200
        return status, {"value": results}

    def _search(self, name: str, payload: dict):
        schema = self.indexes[name]
        if payload.get("queryType") == "semantic":
            names = [c["name"] for c in schema.get("semantic", {}).get("configurations", [])]
            if payload.get("semanticConfiguration") not in names:
                return 400, {
                    "error": {
                        "code": "InvalidRequestParameter",
                        "message": "unknown semantic configuration",
                    }
                }
        try:
            test = parse_odata(payload.get("filter") or "")
        except ValueError as exc:
            return 400, {"error": {"code": "InvalidRequestParameter", "message": str(exc)}}
        hits = []
        for doc in self.docs[name].values():
            if not test(doc):
                continue
            score = _fake_score(doc, payload.get("search") or "*")
            if score > 0:
                hits.append((score, doc))
        hits.sort(key=lambda h: (-h[0], h[1]["id"]))
        top = payload.get("top")
        chosen = hits if top is None else hits[:top]
        select = payload.get("select")
        fields = select.split(",") if select else None
        rows = []
        for score, doc in chosen:
            row = {k: v for k, v in doc.items() if fields is None or k in fields}
            row["@search.score"] = score
            if payload.get("queryType") == "semantic":
                row["@search.rerankerScore"] = round(min(4.0, score / 2), 4)
            rows.append(row)
        body = {"value": rows}
        if payload.get("count"):
            body["@odata.count"] = len(hits)
        return 200, body

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeAzureSearch:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, data = fake.handle(self.command, self.path, dict(self.headers), body)
                raw = json.dumps(data).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; odata.metadata=minimal")
                    self.send_header("Content-Length", str(len(raw)))
                    if status == 429 and fake.retry_after is not None:
                        self.send_header("Retry-After", fake.retry_after)
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_PUT = do_POST = do_DELETE = _serve

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _fake_score(doc: dict, search: str) -> float:
    """Stand-in relevance: weighted count of query terms found in title, keywords, content."""
    import re as _re

    if search.strip() == "*":
        return 1.0
    pairs = _re.findall(r'"([^"]+)"|(\S+)', search)
    terms = [(quoted or bare).lower() for quoted, bare in pairs]
    fields = {"title": 3.0, "keywords": 4.0, "content": 1.0}
    score = 0.0
    for field, weight in fields.items():
        value = doc.get(field) or ""
        text = " ".join(value) if isinstance(value, list) else str(value)
        score += weight * sum(1 for t in terms if t in text.lower())
    return score


def parse_odata(text: str):
    """A predicate for the OData subset cpo sends: ``f eq 'v'``, ``ne``, and, or, ( )."""
    import re as _re

    tokens = _re.findall(r"\(|\)|'(?:[^']|'')*'|\w+", text)
    position = 0

    def peek():
        return tokens[position] if position < len(tokens) else None

    def take():
        nonlocal position
        position += 1
        return tokens[position - 1]

    def primary():
        if peek() == "(":
            take()
            inner = disjunction()
            if take() != ")":
                raise ValueError("expected )")
            return inner
        field, op, literal = take(), take(), take()
        if op not in ("eq", "ne") or not literal.startswith("'"):
            raise ValueError(f"unsupported filter near {field} {op} {literal}")
        value = literal[1:-1].replace("''", "'")
        if op == "eq":
            return lambda doc: doc.get(field) == value
        return lambda doc: doc.get(field) != value

    def conjunction():
        left = primary()
        while peek() == "and":
            take()
            right = primary()
            left = (lambda a, b: lambda doc: a(doc) and b(doc))(left, right)
        return left

    def disjunction():
        left = conjunction()
        while peek() == "or":
            take()
            right = conjunction()
            left = (lambda a, b: lambda doc: a(doc) or b(doc))(left, right)
        return left

    if not tokens:
        return lambda doc: True
    predicate = disjunction()
    if position != len(tokens):
        raise ValueError(f"unexpected {tokens[position]!r} in filter")
    return predicate


@pytest.fixture
def azure_search():
    """A running :class:`FakeAzureSearch` (stopped after the test)."""
    fake = FakeAzureSearch().start()
    yield fake
    fake.stop()
