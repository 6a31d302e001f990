"""Helpers shared by the annotation and confidentiality tests: acks, images, payloads, one-line checks."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, events


def ack(client, event: str, payload: Any = None) -> dict:
    return client.emit(event, {} if payload is None else payload, callback=True)


def ok(client, event: str, payload: Any = None) -> dict:
    a = ack(client, event, payload)
    assert a["ok"] is True, f"{event}: {a}"
    return a


def refused(client, event: str, payload: Any, code: str) -> dict:
    a = ack(client, event, payload)
    assert a["ok"] is False and a["error"]["code"] == code, f"{event}: expected {code}, got {a}"
    return a


def got(client, name: str) -> list[Any]:
    """Payloads of `name` events received so far (the others are dropped)."""
    return events(client, name)


def pen(document_id: int, cid: str, page: int = 1, points=None, **kw) -> dict:
    pts = points if points is not None else [[100, 200], [150, 250], [200, 220]]
    return {"document_id": document_id, "id": cid, "page": page, "kind": "pen", "points": pts, **kw}


def image(api: Api, url: str, tries: int = 3):
    """GET a page image, retrying while the seat's watermarked copy is being made (409 + Retry-After)."""
    r = None
    for _ in range(tries):
        r = api.get(url)
        if r.status_code != 409:
            return r
        assert r.get_json()["error"]["code"] == "page_not_ready" and r.headers["Retry-After"]
    return r


def seat_id(room, role: str) -> int:
    return room.seats[role]["id"]
