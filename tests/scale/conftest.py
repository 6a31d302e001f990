"""Fixtures of the scale suite: one production-shaped cluster per module, a room on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import need
from tests.scale.cluster import ORGANIZER, Cluster, missing

SEATS = 36


def need_cluster() -> None:
    gaps = missing()
    need(not gaps, "scale tests need PostgreSQL, Redis and nginx: " + "; ".join(gaps))


@pytest.fixture(scope="module")
def cluster():
    need_cluster()
    c = Cluster(procs=3, workers=1)
    try:
        c.start()
        yield c
    except BaseException:
        print(c.logs())
        raise
    finally:
        c.stop()


@dataclass
class ScaleRoom:
    room: Any  #: clients.api.Room
    sessions: list[dict]  #: POST /api/v1/join answers, one per seat

    @property
    def meeting_id(self) -> int:
        return self.room.meeting_id

    def organizer_auth(self) -> dict:
        return self.room.presenter_auth()


@pytest.fixture(scope="module")
def room(cluster) -> ScaleRoom:
    from clients import api

    r = api.setup_room(cluster.url, SEATS, "ours", *ORGANIZER, title="规模 Scale room", pages=6)
    sessions = api.join_many(cluster.url, r.join_tokens, threads=8)
    return ScaleRoom(r, sessions)
