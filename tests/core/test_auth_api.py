from tests.conftest import login, make_user


def test_login_and_me(organizer):
    r = organizer.get("/api/v1/auth/me")
    assert r.status_code == 200 and r.get_json()["username"] == "org1"


def test_bad_password(app, client):
    make_user(app, "u1")
    r = client.post("/api/v1/auth/login", json={"username": "u1", "password": "wrong-password"})
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "bad_credentials"


def test_login_validation(client):
    r = client.post("/api/v1/auth/login", json={"username": ""})
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert err["code"] == "invalid" and err["details"]["fields"]
    r = client.post("/api/v1/auth/login", data="not json", content_type="text/plain")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_json"


def test_logout_revokes(organizer):
    assert organizer.post("/api/v1/auth/logout").status_code == 200
    r = organizer.get("/api/v1/auth/me")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "bad_token"


def test_no_token_and_garbage_token(anon):
    assert anon.get("/api/v1/meetings").status_code == 401
    anon.token = "org_garbage"
    assert anon.get("/api/v1/meetings").status_code == 401
    anon.token = "something"
    assert anon.get("/api/v1/meetings").status_code == 401


def test_expired_token(app, organizer):
    from sqlalchemy import update

    from meeting_server.auth.models import ApiToken
    from meeting_server.core import db
    from meeting_server.core.db import utcnow

    with db.transaction() as s:
        s.execute(update(ApiToken).values(expires_at=utcnow()))
    assert organizer.get("/api/v1/auth/me").status_code == 401


def test_login_rate_limited(app, client):
    make_user(app, "u2")
    for _ in range(10):
        client.post("/api/v1/auth/login", json={"username": "u2", "password": "nope-nope"})
    r = client.post("/api/v1/auth/login", json={"username": "u2", "password": "password-123"})
    assert r.status_code == 429 and r.get_json()["error"]["code"] == "rate_limited"
    assert int(r.headers["Retry-After"]) > 0


def test_admin_creates_users(admin, organizer):
    r = admin.post("/api/v1/users", json={"username": "new-org", "password": "long-password"})
    assert r.status_code == 201 and r.get_json()["role"] == "organizer"
    assert admin.post("/api/v1/users", json={"username": "new-org", "password": "long-password"}).status_code == 409
    assert organizer.post("/api/v1/users", json={"username": "x", "password": "long-password"}).status_code == 403
    assert admin.get("/api/v1/users").status_code == 200
    assert login(admin.client, "new-org", "long-password").token


def test_unknown_api_route_is_json(client):
    r = client.get("/api/v1/nope")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    r = client.delete("/api/v1/auth/login")
    assert r.status_code == 405 and r.get_json()["error"]["code"] == "method_not_allowed"
