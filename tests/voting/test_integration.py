"""500 real tablets vote at once against a real `meeting-server serve`, which is then SIGKILLed and restarted.

Tablets are `clients.eio.SioClient` connections (a light asyncio Socket.IO client), all in this process.
The server process is stopped by pid in a finally block, even when the test fails.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import pytest

from tests.live.server import ORG_PASSWORD, ORG_USER, LiveServer
from tests.voting import crowd

pytestmark = pytest.mark.integration

N = 500
DOUBLE = 50  # tablets that send their ballot twice at the same moment (same ballot_id)


def test_500_tablets_vote_at_once_and_survive_sigkill(tmp_path):
    srv = LiveServer(tmp_path / "vote-data")
    t = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal t
        print(f"\n{name}: {time.perf_counter() - t:.1f} s", end="")
        t = time.perf_counter()

    try:
        srv.prepare().start()
        phase("start")
        token = srv.login(ORG_USER, ORG_PASSWORD)
        room = crowd.setup(srv, N, token, "表决压力 Vote load")
        phase("set-up, join and check in")
        poll_id = srv.ok(
            "POST",
            f"/api/v1/meetings/{room.meeting_id}/polls",
            {"title": "无记名表决 Secret motion", "kind": "motion", "secret": True},
            token,
            201,
        )["id"]
        assert srv.ok("POST", f"/api/v1/polls/{poll_id}/open", {}, token)["eligible"] == N
        bodies = [crowd.ballot(poll_id, i) for i in range(N)]

        async def go():
            clients = await crowd.connect_all(srv.url, room.sessions)
            phase("connect")
            res = await crowd.burst(clients, bodies, [(i, bodies[i]) for i in range(DOUBLE)])
            srv.kill()  # SIGKILL right after the last ack: no chance to flush anything
            await crowd.close_all(clients)
            return res

        res = asyncio.run(go())
        acks = res["acks"]
        assert res["ok"] == N + DOUBLE, Counter(a.get("error", {}).get("code") if a else None for a in acks)
        receipts = [a["receipt"] for a in acks[:N]]
        assert len(set(receipts)) == N  # every tablet got its own receipt
        assert [a["receipt"] for a in acks[N:]] == receipts[:DOUBLE]  # the doubled sends: the same receipt
        print(f"\n{N} tablets (+{DOUBLE} doubled sends): last ack after {res['last_ack_ms']:.0f} ms")

        phase("vote and kill")
        srv.restart()
        phase("restart")
        got = srv.ok("GET", f"/api/v1/polls/{poll_id}", None, token)
        assert got["status"] == "open" and got["voted"] == N  # every acknowledged ballot survived the SIGKILL

        async def after():
            clients = await crowd.connect_all(srv.url, room.sessions[:60])
            resent = await asyncio.gather(
                *(c.call("vote", bodies[i], timeout=30) for i, c in enumerate(clients))
            )
            second = await asyncio.gather(
                *(
                    c.call("vote", crowd.ballot(poll_id, 0, str(uuid.uuid4())), timeout=30)
                    for c in clients[:20]
                )
            )
            await crowd.close_all(clients)
            return resent, second

        resent, second = asyncio.run(after())
        assert [r["receipt"] for r in resent] == receipts[:60]  # resends after the restart: same receipts
        assert {r["error"]["code"] for r in second} == {"already_voted"}
        closed = srv.ok("POST", f"/api/v1/polls/{poll_id}/close", {}, token)
        assert closed["voted"] == N and closed["tally"] == [len(range(k, N, 3)) for k in range(3)]
        listed = srv.ok("GET", f"/api/v1/polls/{poll_id}/results.json", None, token)["ballots"]
        by_receipt = {b["receipt"]: b["choices"] for b in listed}
        assert sorted(by_receipt) == sorted(receipts)
        assert all(by_receipt[r] == [i % 3] for i, r in enumerate(receipts))
    except BaseException:
        print(srv.log())
        raise
    finally:
        srv.stop()
