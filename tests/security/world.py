"""Two meetings, every kind of principal, and helpers that build requests for any command generically.

Meeting A (owned by `organizer`) has one seat per role, an agenda item, a ready document, an open poll,
an annotation export, a speaker request, a service call and an announcement: one object for every id a
command can name. Meeting B (owned by `other_organizer`) has a chair: "another meeting's tablet". Every
user-visible text of A carries `MARKER`, so a leak of A's data into an answer given to B shows.

The world is built once per test module (`world` fixture in conftest.py): refusals must not change
anything, and the tests that send commands which may succeed check that nothing of A changed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from meeting_server.core.identity import ANONYMOUS, Actor
from tests.conftest import Api, add_attendee, create_meeting, login, make_pdf, make_settings, make_user

#: Every principal of the permission matrix, from least to most privileged.
PRINCIPALS = (
    "anonymous",
    "other_tablet",
    "observer",
    "attendee",
    "secretary",
    "presenter",
    "chair",
    "other_organizer",
    "admin",
    "organizer",
)
SEAT_ROLES = ("observer", "attendee", "secretary", "presenter", "chair")
USERS = ("other_organizer", "admin", "organizer")
MARKER = "AAAsecretA7q"


@dataclass
class World:
    app: Any
    api: dict[str, Api]  # principal -> HTTP client (anonymous: no token)
    tokens: dict[str, str | None]
    a: dict[str, Any]  # meeting A's ids: meeting_id, poll_id, document_id, …
    b: dict[str, Any]  # meeting B's ids
    pdf: bytes = b""  # a small valid PDF, for uploads
    actors: dict[str, Actor] = field(default_factory=dict)
    _sockets: dict[str, Any] = field(default_factory=dict)

    # -- Socket.IO --------------------------------------------------------------------------
    def socket(self, principal: str, fresh: bool = False):
        """A connected test client: a console (users, bound to their meeting) or a tablet."""
        from meeting_server.extensions import socketio

        c = self._sockets.get(principal)
        if fresh or c is None or not c.is_connected():
            auth: dict[str, Any] = {"token": self.tokens[principal]}
            if principal in ("organizer", "admin"):
                auth["meeting_id"] = self.a["meeting_id"]
            elif principal == "other_organizer":
                auth["meeting_id"] = self.b["meeting_id"]
            c = socketio.test_client(self.app, auth=auth)
            assert c.is_connected(), f"{principal} could not connect"
            if not fresh:
                self._sockets[principal] = c
        return c

    def actor(self, principal: str, socket: bool = False) -> Actor:
        """The identity the pipeline builds for `principal`; a console (socket) is bound to its meeting."""
        a = self.actors[principal]
        if socket and a.is_user:
            mid = self.b["meeting_id"] if principal == "other_organizer" else self.a["meeting_id"]
            return Actor(a.kind, a.id, a.name, a.role, mid, a.session_id)
        return a


def build_world(tmp_path) -> World:
    from meeting_server import create_app
    from meeting_server.auth.ratelimit import limiter
    from meeting_server.auth.service import actor_for_token
    from meeting_server.core import db
    from meeting_server.core.db import Base
    from meeting_server.extensions import socketio

    app = create_app(make_settings(tmp_path))
    Base.metadata.create_all(db.engine)
    limiter.reset()
    make_user(app, "sec-org", "organizer")
    make_user(app, "sec-org2", "organizer")
    make_user(app, "sec-admin", "admin")
    org = login(app.test_client(), "sec-org")
    org2 = login(app.test_client(), "sec-org2")
    adm = login(app.test_client(), "sec-admin")

    a: dict[str, Any] = {}
    m = create_meeting(org, title=f"会议 {MARKER} meeting")
    mid = a["meeting_id"] = m["id"]
    seats = {}
    for i, role in enumerate(("chair", "presenter", "secretary", "attendee", "observer"), start=1):
        seats[role] = add_attendee(org, mid, f"{MARKER}-{role}", role, f"A{i:02d}")
    a["attendee_id"] = seats["attendee"]["id"]
    a["presenter_id"] = seats["presenter"]["id"]
    a["seat_ids"] = {role: s["id"] for role, s in seats.items()}
    r = org.post(f"/api/v1/meetings/{mid}/agenda", json={"title": f"议程 {MARKER} item"})
    assert r.status_code == 201, r.get_json()
    a["item_id"] = a["agenda_item_id"] = r.get_json()["id"]
    pdf = make_pdf(2)
    r = org.upload(f"/api/v1/meetings/{mid}/documents", pdf, "a.pdf", title=f"材料 {MARKER} doc")
    assert r.status_code == 202, r.get_json()
    a["document_id"] = r.get_json()["id"]
    r = org.post(
        f"/api/v1/meetings/{mid}/polls", json={"title": f"表决 {MARKER} poll", "options": ["赞成", "反对"]}
    )
    assert r.status_code == 201, r.get_json()
    a["poll_id"] = r.get_json()["id"]
    assert org.post(f"/api/v1/meetings/{mid}/start").status_code == 200

    tokens: dict[str, str | None] = {
        "anonymous": None,
        "organizer": org.token,
        "other_organizer": org2.token,
        "admin": adm.token,
    }
    for role in SEAT_ROLES:
        r = app.test_client().post("/api/v1/join", json={"token": seats[role]["join_token"]})
        assert r.status_code == 200, r.get_json()
        tokens[role] = r.get_json()["session_token"]
    r = org.get(f"/api/v1/meetings/{mid}/attendees/{a['attendee_id']}/sessions")
    a["session_id"] = r.get_json()["sessions"][0]["id"]

    # Meeting B, and its chair: "another meeting's tablet".
    mb = create_meeting(org2, title="会议 B")
    b: dict[str, Any] = {"meeting_id": mb["id"]}
    chair_b = add_attendee(org2, mb["id"], "B-chair", "chair", "B01")
    b["attendee_id"] = add_attendee(org2, mb["id"], "B-attendee", "attendee", "B02")["id"]
    b["chair_id"] = chair_b["id"]
    assert org2.post(f"/api/v1/meetings/{mb['id']}/start").status_code == 200
    r = app.test_client().post("/api/v1/join", json={"token": chair_b["join_token"]})
    tokens["other_tablet"] = r.get_json()["session_token"]

    api = {p: Api(app.test_client(), tokens[p]) for p in PRINCIPALS}
    world = World(app, api, tokens, a, b, pdf)
    with db.reader() as s:
        world.actors = {
            p: (ANONYMOUS if tokens[p] is None else actor_for_token(s, tokens[p])) for p in PRINCIPALS
        }

    # The rest of A's objects, made by the people who make them.
    c = socketio.test_client(app, auth={"token": tokens["attendee"]})
    assert c.emit("checkin", {}, callback=True)["ok"]
    a["request_id"] = c.emit("speaker.request", {"note": MARKER}, callback=True)["request_id"]
    a["call_id"] = c.emit("service.call", {"kind": "tea", "note": MARKER}, callback=True)["call"]["id"]
    c.disconnect()
    console = socketio.test_client(app, auth={"token": org.token, "meeting_id": mid})
    ann = console.emit("announce", {"text": f"公告 {MARKER}"}, callback=True)
    assert ann["ok"], ann
    a["announcement_id"] = ann["announcement"]["id"]
    assert console.emit("poll.open", {"poll_id": a["poll_id"]}, callback=True)["ok"]
    console.disconnect()
    r = org.post(
        f"/api/v1/documents/{a['document_id']}/annotations/export", json={"attendee_id": a["attendee_id"]}
    )
    assert r.status_code == 202, r.get_json()
    a["export_id"] = r.get_json()["id"]
    a["n"] = 1
    a["code"] = "NOSUCHRECEIPT"
    return world


# -- requests for any command ------------------------------------------------------------------

_RULE_PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")

#: Payload fields that name an object: which id of the world they take.
ID_FIELDS = (
    "meeting_id",
    "poll_id",
    "document_id",
    "attendee_id",
    "item_id",
    "agenda_item_id",
    "export_id",
    "request_id",
    "call_id",
    "announcement_id",
    "presenter_id",
    "session_id",
)


def http_path(cmd, ids: dict[str, Any]) -> str:
    """The command's URL with every path parameter taken from `ids` (a KeyError names a missing one)."""
    method, rule = cmd.http
    return "/api/v1" + _RULE_PARAM.sub(lambda m: str(ids[m.group(1)]), rule)


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _value(schema: dict, node: dict, name: str, ids: dict[str, Any]) -> Any:
    node = _resolve(schema, node)
    if name in ID_FIELDS and name in ids:
        return ids[name]
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    if "default" in node and node["default"] is not None:
        return node["default"]
    if "anyOf" in node:
        options = [_resolve(schema, o) for o in node["anyOf"]]
        if any(o.get("type") == "null" for o in options):
            return None
        return _value(schema, options[0], name, ids)
    t = node.get("type")
    if t == "integer":
        return max(node.get("minimum", 1), 1) if node.get("maximum", 1) >= 1 else node["maximum"]
    if t == "number":
        lo, hi = node.get("minimum", 0), node.get("maximum", 1)
        return (lo + hi) / 2
    if t == "boolean":
        return False
    if t == "string":
        if node.get("format") == "date-time":
            return "2030-01-01T09:00:00Z"
        return "x" * max(node.get("minLength", 1), 1)
    if t == "array":
        if "prefixItems" in node:
            return [_value(schema, it, name, ids) for it in node["prefixItems"]]
        n = node.get("minItems", 0)
        return [_value(schema, node.get("items", {}), name, ids) for _ in range(n)]
    if t == "object" or "properties" in node:
        return {
            k: _value(schema, v, k, ids)
            for k, v in node.get("properties", {}).items()
            if k in node.get("required", ())
        }
    return None


#: Payloads the generic builder cannot guess (cross-field rules); keep this list short.
SAMPLES: dict[str, dict[str, Any]] = {
    "annotation.save": {"kind": "pen", "page": 1, "id": "a1", "points": [[0.1, 0.1], [0.2, 0.2]]},
    "annotation.delete": {"ids": ["a1"]},
    "annotation.share": {"to": "presenter", "page": 1},
    "annotation.show": {"ids": ["a1"]},
    "announce": {"text": "通知 notice"},
    "auth.login": {"username": "nobody", "password": "wrong-password"},
    "join": {"token": "not-a-valid-join-token"},
    "users.create": {"username": "made-by-test", "password": "long-password-1"},
    "vote": {"choices": [0]},
    "poll.vote_for": {"choices": [0], "reason": "平板故障"},
    "polls.create": {"title": "新表决", "options": ["是", "否"]},
    "ink": {"stroke_id": "s1", "points": [[0.1, 0.1], [0.2, 0.2]]},
    "present": {"page": 1},
    "quorum.set": {"rule": {"kind": "count", "value": 1}},
    "speaker.order": {"order": []},
    "agenda.reorder": {"order": []},
    "service.call": {"kind": "tea"},
    "checkin.proxy": {"reason": "平板故障"},
}


def payload_for(cmd, ids: dict[str, Any]) -> dict[str, Any]:
    """A payload that passes `cmd`'s schema, naming the objects of `ids`."""
    if cmd.schema is None:
        return {}
    schema = cmd.schema.model_json_schema()
    out = _value(schema, schema, "", ids) or {}
    for k in schema.get("properties", {}):
        if k in ID_FIELDS and k in ids:
            out[k] = ids[k]  # optional ids too: name the object, or the pipeline falls back to the actor's
    out.update(SAMPLES.get(cmd.name, {}))
    return out


# -- snapshots ---------------------------------------------------------------------------------


def snapshot() -> dict[str, tuple[int, str]]:
    """Every table: (row count, digest of its rows). Meetings carry the audit head, so it is in here."""
    from sqlalchemy import select

    from meeting_server.core import db
    from meeting_server.core.db import Base

    out = {}
    with db.reader() as s:
        for t in Base.metadata.sorted_tables:
            rows = sorted(repr(tuple(r)) for r in s.execute(select(t)))
            out[t.name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16])
    return out


def table_rows() -> dict[str, set[tuple]]:
    """Every row of every table as (column, value) tuples: to tell which rows changed."""
    from sqlalchemy import select

    from meeting_server.core import db
    from meeting_server.core.db import Base

    out = {}
    with db.reader() as s:
        for t in Base.metadata.sorted_tables:
            cols = [c.name for c in t.columns]
            out[t.name] = {tuple(zip(cols, (repr(v) for v in r), strict=True)) for r in s.execute(select(t))}
    return out
