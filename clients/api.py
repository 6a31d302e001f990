"""Synchronous HTTP helpers to set up a room over the REST contract (contract.md).

Two targets share one interface, ``setup_room(...) -> Room``:

* ``ours``: meeting-server. Login, create a meeting, add attendees, upload a small
  PDF and wait until it is ready, create a poll, start the meeting.
* ``node``: the in-memory reference server in ``clients/node_ref``; one call to its
  own ``POST /bench/setup``.

Standard library only (``http.client``, keep-alive per thread); loopback URLs only.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from clients.eio import require_loopback

__all__ = [
    "Api",
    "ApiError",
    "Room",
    "add_attendees",
    "create_meeting",
    "create_poll",
    "get_poll",
    "join",
    "join_many",
    "login",
    "make_pdf",
    "node_mem",
    "setup_room",
    "start_meeting",
    "upload_document",
    "wait_document_ready",
]


class ApiError(Exception):
    def __init__(self, status: int, body: Any, method: str, path: str):
        err = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.code = err.get("code") if isinstance(err, dict) else None
        self.body = body
        super().__init__(f"{method} {path} -> {status} {self.code or ''} {str(body)[:300]}")


class Api:
    """A tiny JSON client: one keep-alive connection per thread, Bearer token if given."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0):
        require_loopback(base_url)
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError(f"only http:// URLs are supported, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def close(self) -> None:
        """Close every connection this client opened, in any thread."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str | None = None,
        token: str | None = None,
        expect: Iterable[int] = (200, 201, 202),
    ) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        tok = token or self.token
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):  # a keep-alive connection the server closed: retry once on a new one
            conn = self._conn()
            try:
                conn.request(method, self.prefix + path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._drop()
                if attempt == 2:
                    raise
        ctype = resp.getheader("Content-Type", "")
        parsed: Any = payload
        if "json" in ctype and payload:
            parsed = json.loads(payload)
        if resp.status not in tuple(expect):
            raise ApiError(resp.status, parsed, method, path)
        return resp.status, parsed

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)[1]

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request(
            "POST", path, body if body is not None else ({} if "raw" not in kw else None), **kw
        )[1]


@dataclass
class Room:
    """Everything the load generator needs, whatever the target."""

    base_url: str
    target: str
    organizer_token: str
    meeting_id: Any
    join_tokens: list[str]
    poll_id: Any
    document_id: Any
    page_count: int
    setup_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def presenter_auth(self) -> dict[str, Any]:
        return {"token": self.organizer_token, "meeting_id": self.meeting_id}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- meeting-server ("ours") ----------------------------------------------------------


def login(base_url: str, username: str, password: str) -> str:
    with Api(base_url) as api:
        return api.post("/api/v1/auth/login", {"username": username, "password": password})["token"]


def create_meeting(api: Api, title: str) -> Any:
    return api.post("/api/v1/meetings", {"title": title})["id"]


def add_attendees(
    api: Api, meeting_id: Any, count: int, *, threads: int = 4, prefix: str = "Seat"
) -> list[str]:
    """Add ``count`` attendees (seats 1..count); returns their join tokens in seat order."""

    def one(i: int) -> str:
        body = {"name": f"{prefix} {i}", "seat": str(i), "role": "attendee"}
        return api.post(f"/api/v1/meetings/{meeting_id}/attendees", body)["join_token"]

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return list(pool.map(one, range(1, count + 1)))


def make_pdf(pages: int = 5) -> bytes:
    """A small PDF with one big page number per page (PyMuPDF, imported only here)."""
    import pymupdf

    doc = pymupdf.open()
    try:
        for n in range(1, pages + 1):
            page = doc.new_page(width=595, height=842)
            page.insert_text((72, 140), f"Bench page {n}", fontsize=48)
        return doc.tobytes()
    finally:
        doc.close()


def upload_document(api: Api, meeting_id: Any, pdf: bytes, *, title: str = "bench.pdf") -> Any:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n{title}\r\n'.encode(),
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{title}"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + pdf
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return api.post(
        f"/api/v1/meetings/{meeting_id}/documents",
        raw=b"".join(parts),
        content_type=f"multipart/form-data; boundary={boundary}",
    )["id"]


def wait_document_ready(api: Api, document_id: Any, *, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc = api.get(f"/api/v1/documents/{document_id}")
        if doc.get("status") == "ready":
            return doc
        if doc.get("status") == "failed":
            raise RuntimeError(f"document {document_id} failed: {doc}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"document {document_id} not ready after {timeout:.0f} s: {doc}")
        time.sleep(0.2)


def create_poll(api: Api, meeting_id: Any, *, title: str = "Bench motion", secret: bool = True) -> Any:
    body = {"title": title, "options": ["yes", "no", "abstain"], "secret": secret}
    return api.post(f"/api/v1/meetings/{meeting_id}/polls", body)["id"]


def start_meeting(api: Api, meeting_id: Any) -> dict[str, Any]:
    return api.post(f"/api/v1/meetings/{meeting_id}/start")


# -- both targets ---------------------------------------------------------------------


def join(api: Api, join_token: str) -> dict[str, Any]:
    """``POST /api/v1/join`` -> {"session_token", "meeting_id", "attendee"}."""
    return api.post("/api/v1/join", {"token": join_token})


def join_many(base_url: str, join_tokens: list[str], *, threads: int = 8) -> list[dict[str, Any]]:
    """Join every tablet with at most ``threads`` requests in flight; results in token order."""
    with Api(base_url) as api, ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return list(pool.map(lambda tok: join(api, tok), join_tokens))


def get_poll(base_url: str, token: str, poll_id: Any) -> dict[str, Any]:
    with Api(base_url, token) as api:
        return api.get(f"/api/v1/polls/{poll_id}")


def node_mem(base_url: str) -> dict[str, Any]:
    """The Node reference's ``process.memoryUsage()``."""
    with Api(base_url) as api:
        return api.get("/bench/mem")


def setup_room(
    base_url: str,
    seats: int,
    target: str = "ours",
    username: str | None = None,
    password: str | None = None,
    *,
    title: str | None = None,
    pages: int = 5,
    threads: int = 4,
) -> Room:
    """Create a live meeting with ``seats`` attendees, a ready ``pages``-page document and a draft poll."""
    t0 = time.perf_counter()
    title = title or f"Bench {seats} seats {time.strftime('%Y-%m-%d %H:%M:%S')}"
    if target == "node":
        with Api(base_url) as api:
            r = api.post("/bench/setup", {"seats": seats, "title": title, "page_count": pages})
        return Room(
            base_url=base_url,
            target=target,
            organizer_token=r["organizer_token"],
            meeting_id=r["meeting_id"],
            join_tokens=r["join_tokens"],
            poll_id=r["poll_id"],
            document_id=r["document_id"],
            page_count=r["page_count"],
            setup_seconds=time.perf_counter() - t0,
        )
    if target != "ours":
        raise ValueError(f"target must be 'ours' or 'node', got {target!r}")
    if not username or not password:
        raise ValueError("target 'ours' needs an organizer username and password")
    with Api(base_url, login(base_url, username, password)) as api:
        meeting_id = create_meeting(api, title)
        doc_id = upload_document(api, meeting_id, make_pdf(pages))
        tokens = add_attendees(api, meeting_id, seats, threads=threads)
        doc = wait_document_ready(api, doc_id)
        poll_id = create_poll(api, meeting_id)
        start_meeting(api, meeting_id)
    return Room(
        base_url=base_url,
        target=target,
        organizer_token=api.token,
        meeting_id=meeting_id,
        join_tokens=tokens,
        poll_id=poll_id,
        document_id=doc_id,
        page_count=int(doc.get("page_count") or pages),
        setup_seconds=time.perf_counter() - t0,
    )
