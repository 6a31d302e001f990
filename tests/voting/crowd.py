"""Many real tablets against a real server: set-up over REST, `clients.eio` connections, a vote burst.

Shared by the integration test (tests/voting/test_integration.py) and the benchmark
(tests/bench/bench_vote.py). Loopback only; every phase is bounded in time.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from clients import api
from clients.eio import SioClient, calibrate_clock

#: Events the tablets count but never decode (they are not what is measured).
QUIET = frozenset({"attendance", "seat.checkin", "poll.progress", "poll", "state", "seat.joined", "meeting"})


@dataclass
class Crowd:
    url: str
    org_token: str
    meeting_id: int
    attendee_ids: list[int]
    sessions: list[str]


def setup(srv: Any, n: int, org_token: str, title: str = "表决 Vote") -> Crowd:
    """A live meeting with `n` attendees (one CSV import), all joined and checked in, nobody connected yet."""
    mid = srv.ok("POST", "/api/v1/meetings", {"title": title}, org_token, 201)["id"]
    rows = ["姓名,座位,角色"] + [f"代表{i:04d},{i:04d},代表" for i in range(1, n + 1)]
    status, body = srv.upload(
        f"/api/v1/meetings/{mid}/attendees/import", "list.csv", "\n".join(rows).encode(), org_token
    )
    assert status == 201 and body["imported"] == n, body
    srv.ok("POST", f"/api/v1/meetings/{mid}/start", None, org_token)
    ids = [a["id"] for a in body["attendees"]]
    joined = api.join_many(srv.url, [a["join_token"] for a in body["attendees"]], threads=8)
    crowd = Crowd(srv.url, org_token, mid, ids, [j["session_token"] for j in joined])
    checkin_by_staff(crowd)
    return crowd


def checkin_by_staff(crowd: Crowd, threads: int = 8) -> None:
    """Check every seat in over HTTP (`checkin.proxy`) before any tablet connects: no broadcast storm."""
    with api.Api(crowd.url, crowd.org_token) as http, ThreadPoolExecutor(threads) as pool:

        def one(aid: int) -> None:
            http.post(f"/api/v1/meetings/{crowd.meeting_id}/attendees/{aid}/checkin", {"reason": "load test"})

        list(pool.map(one, crowd.attendee_ids))


async def connect_all(url: str, tokens: list[str], concurrency: int = 50, extra: dict | None = None) -> list:
    sem = asyncio.Semaphore(concurrency)
    clients = [SioClient(lambda *a: None, ignore=QUIET) for _ in tokens]

    async def one(c: SioClient, tok: str) -> None:
        async with sem:
            await c.connect(url, auth={"token": tok, **(extra or {})}, timeout=60)

    await asyncio.gather(*(one(c, t) for c, t in zip(clients, tokens, strict=True)))
    return clients


async def close_all(clients: list) -> None:
    await asyncio.gather(*(c.disconnect(timeout=2) for c in clients), return_exceptions=True)


def ballot(poll_id: Any, i: int, ballot_id: str | None = None) -> dict:
    """Tablet i votes option i % 3."""
    return {"poll_id": poll_id, "choices": [i % 3], "ballot_id": ballot_id or str(uuid.uuid4())}


async def burst(clients: list, bodies: list[dict], extra: list[tuple[int, dict]] = ()) -> dict:
    """Every client sends its body at once (plus `extra` (client index, body) sends); times to the last ack.

    Times are on the perf_counter clock; an ack's time is the kernel receive time of its bytes.
    """
    calibrate_clock()
    t0 = time.perf_counter()
    calls = [c.call_timed("vote", b, timeout=120) for c, b in zip(clients, bodies, strict=True)]
    calls += [clients[i].call_timed("vote", b, timeout=120) for i, b in extra]
    results = await asyncio.gather(*calls, return_exceptions=True)
    acks: list[Any] = []
    lat: list[float] = []
    errors: dict[str, int] = {}
    last = t0
    for r in results:
        if isinstance(r, BaseException):
            errors[type(r).__name__] = errors.get(type(r).__name__, 0) + 1
            acks.append(None)
            continue
        ack, t_sent, t_ack = r
        acks.append(ack)
        if isinstance(ack, dict) and ack.get("ok"):
            lat.append(t_ack - t_sent)
            last = max(last, t_ack)
        else:
            code = ack.get("error", {}).get("code", "?") if isinstance(ack, dict) else "?"
            errors[code] = errors.get(code, 0) + 1
    lat.sort()

    def pct(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000, 1) if lat else None

    return {
        "acks": acks,
        "ok": len(lat),
        "errors": errors,
        "last_ack_ms": round((last - t0) * 1000, 1),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
    }
