"""Schemathesis against /api/v1/openapi.json: no 500s, no answers outside the documented schema.

Runs in-process (WSGI) against an app with one meeting, a seat and a document, authenticated as the
meeting's organizer, so the generated requests reach real handlers, not only the 401 check.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import add_attendee, create_meeting, login, make_pdf, make_settings, make_user

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    from meeting_server import create_app
    from meeting_server.core import db
    from meeting_server.core.db import Base

    app = create_app(make_settings(tmp_path_factory.mktemp("fuzz")))
    Base.metadata.create_all(db.engine)
    make_user(app, "fuzzer", "admin")
    org = login(app.test_client(), "fuzzer")
    m = create_meeting(org, title="模糊测试 Fuzz")
    seat = add_attendee(org, m["id"], "张伟", seat="1", role="chair")
    org.upload(f"/api/v1/meetings/{m['id']}/documents", make_pdf(2), "x.pdf")
    app.config["FUZZ_TOKEN"] = org.token
    r = app.test_client().post("/api/v1/join", json={"token": seat["join_token"]})
    app.config["FUZZ_SEAT_TOKEN"] = r.get_json()["session_token"]
    yield app
    db.engine.dispose()


def test_api_conforms(fuzz_app):
    tried = _fuzz(fuzz_app, fuzz_app.config["FUZZ_TOKEN"], examples=6)
    assert tried > 100
    print(f"\nschemathesis, organizer token: {tried} requests")


def test_api_conforms_as_a_seat(fuzz_app):
    """The same with the chair's tablet token: other branches (403/404 of seats, seat-scoped reads)."""
    tried = _fuzz(fuzz_app, fuzz_app.config["FUZZ_SEAT_TOKEN"], examples=3)
    assert tried > 50
    print(f"\nschemathesis, seat token: {tried} requests")


def _fuzz(fuzz_app, token: str, examples: int) -> int:
    from hypothesis import given

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)
    tried = 0
    problems = []
    for result in schema.get_all_operations():
        op = result.ok()

        @given(case=op.as_strategy())
        @settings(
            max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case):
            nonlocal tried
            tried += 1
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
            response = case.call()
            if response.status_code >= 500:
                problems.append((case.method, case.formatted_path, response.status_code, response.text[:300]))
                return
            if response.status_code >= 400:
                body = response.json()
                if set(body) != {"error"} or not {"code", "message"} <= set(body["error"]):
                    problems.append((case.method, case.formatted_path, "bad error body", body))

        try:
            check()
        except Exception as e:  # name the operation whose cases could not be generated or run
            raise AssertionError(f"{op.method.upper()} {op.path}: {e!r}"[:2000]) from e
    assert not problems, problems[:5]
    return tried
