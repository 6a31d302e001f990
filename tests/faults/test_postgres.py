"""PostgreSQL is briefly unavailable: clear 503 errors meanwhile, then recovery without a restart.

A real `meeting-server serve` on a throwaway PostgreSQL database. The database is made unavailable the
way a restart or failover looks to the server: new connections are refused
(`ALTER DATABASE … ALLOW_CONNECTIONS false`) and every existing one is terminated. Meanwhile HTTP answers
503 `unavailable` with Retry-After, socket commands get an `unavailable` error ack, new Socket.IO
connections are refused with that code; afterwards the same process serves again (`pool_pre_ping`
replaces the dead connections) and nothing acknowledged before the outage is lost.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import need
from tests.live.server import ORG_PASSWORD, ORG_USER, LiveServer, Tablet
from tests.pg import PG_ADMIN_URL, pg_available, temp_database

pytestmark = pytest.mark.integration


def _admin(sql: str, *args) -> None:
    import psycopg2

    con = psycopg2.connect(PG_ADMIN_URL)
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute(sql, args)
    finally:
        con.close()


def _block(name: str) -> None:
    _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    _admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        name,
    )


def _unblock(name: str) -> None:
    _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_database_briefly_unavailable(tmp_path):
    need(pg_available(), "PostgreSQL is not reachable at " + PG_ADMIN_URL)
    with temp_database() as url:
        name = url.rsplit("/", 1)[1]
        srv = LiveServer(tmp_path / "pg-data", env={"MEETING_DATABASE_URL": url})
        tablet = None
        try:
            srv.prepare().start()
            token = srv.login(ORG_USER, ORG_PASSWORD)
            mid = srv.ok("POST", "/api/v1/meetings", {"title": "数据库中断 DB outage"}, token, 201)["id"]
            seat = srv.ok(
                "POST", f"/api/v1/meetings/{mid}/attendees", {"name": "李娜", "seat": "01"}, token, 201
            )
            srv.ok("POST", f"/api/v1/meetings/{mid}/start", None, token)
            session = srv.ok("POST", "/api/v1/join", {"token": seat["join_token"]})["session_token"]
            tablet = Tablet(srv.url, session, name="tablet").connect()
            assert tablet.call("state.get")["ok"]

            _block(name)
            try:
                status, headers, body = srv.request("GET", "/api/v1/meetings", token=token)
                assert status == 503, body
                assert b'"unavailable"' in body and int(headers["Retry-After"]) > 0
                status, _, body = srv.request("POST", f"/api/v1/meetings/{mid}/agenda", {"title": "x"}, token)
                assert status == 503, body
                ack = tablet.call("checkin")
                assert ack["ok"] is False and ack["error"]["code"] == "unavailable", ack
                late = Tablet(srv.url, session, name="late")
                why: list = []
                late.sio.on("connect_error", why.append)
                with pytest.raises(Exception):  # noqa: B017 - python-socketio's ConnectionError
                    late.sio.connect(srv.url, auth=late.auth, transports=["websocket"], wait_timeout=10)
                assert why and why[0]["data"]["code"] == "unavailable", why  # a reason a tablet can act on
                assert srv.request("GET", "/healthz")[0] == 200  # the process itself is fine
            finally:
                _unblock(name)

            deadline = time.monotonic() + 15
            while srv.request("GET", "/api/v1/meetings", token=token)[0] != 200:
                assert time.monotonic() < deadline, "no recovery without a restart"
                time.sleep(0.2)
            assert [m["id"] for m in srv.ok("GET", "/api/v1/meetings", None, token)["meetings"]] == [mid]
            srv.ok("POST", f"/api/v1/meetings/{mid}/agenda", {"title": "恢复后 after"}, token, 201)
            ack = tablet.call("checkin")  # the same socket, still connected
            assert ack["ok"], ack
            assert srv.ok("GET", f"/api/v1/meetings/{mid}/audit/verify", None, token)["ok"] is True
            assert srv.proc.poll() is None  # never restarted
        except BaseException:
            print(srv.log())
            raise
        finally:
            if tablet is not None:
                tablet.sio.reconnection = False
                tablet.disconnect()
            srv.stop()
