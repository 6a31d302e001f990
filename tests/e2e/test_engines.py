"""The seat tablet in the other two engine families: Firefox (Gecko) and WebKitGTK (Safari's engine).

Each engine is Debian's own package, driven over the W3C protocol it speaks natively (see
engines.py): the tablet joins by its join link, checks in, follows a flip from the console
(the console is chromium, as in the other tests), and votes. Skipped with the reason where the
browser is absent, except under CI=true (scripts/system-deps.sh installs them).
"""

from __future__ import annotations

import os

import pytest

from .conftest import build_room, wait_until
from .engines import ENGINES, missing

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(params=sorted(ENGINES))
def engine(request, server):
    why = missing(request.param)
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {why}")
        pytest.skip(why)
    drv = ENGINES[request.param]()
    try:
        yield drv
    finally:
        drv.close()


def shown(doc: int, n: int) -> str:
    return f"document.querySelector(\".viewer[data-shown='{doc}:{n}']\") !== null"


def test_tablet_joins_follows_and_votes(server, open_page, engine):
    room = build_room(server, pages=4, names=(f"{engine.name} 委员 <b>x</b>",))
    doc, seat = room.doc["id"], room.seats[0]
    status, _ = server.json("POST", f"/api/v1/meetings/{room.id}/start", token=room.token)
    assert status == 200

    # Join by the seat's link; the check-in dialog opens by itself.
    engine.goto(seat["join_url"])
    engine.wait("location.hash === ''", what="join token out of the address bar")
    engine.click("[data-testid=checkin-go]")
    engine.wait("document.querySelector('[data-testid=checkin-badge][data-state=in]')", what="checked in")
    who = engine.text("[data-testid=who]")
    assert who.startswith(seat["name"]), who  # the name as text: its markup stays inert
    assert engine.js("document.querySelector('[data-testid=who] b') === null")
    assert engine.js("navigator.userAgent").find("Chrome") < 0  # really not chromium
    # The service worker cached the document (4 pages).
    engine.wait(
        "document.querySelector('[data-testid=cache-progress][data-finished=true]')",
        timeout=60,
        what="materials cached",
    )

    # The console presents page 1, then flips; the tablet follows and paints each page.
    con = open_page(name="console", width=1366, height=800, token=room.token)
    con.goto(room.console_url())
    con.get_by_test_id("c-doc").last.click()
    engine.wait(shown(doc, 1), what="page 1")
    con.get_by_test_id("seat").filter(has_text="<b>x</b>").wait_for()  # markup in a name stays text
    assert con.locator("[data-testid=seat] b").count() == 0
    con.get_by_test_id("c-next").click()
    engine.wait(shown(doc, 2), what="page 2")
    painted = engine.js(
        "(() => { const i = document.querySelector('.sheet img'); return i.complete && i.naturalWidth > 0; })()"
    )
    assert painted, f"{engine.name}: page 2 is not painted"
    assert engine.js("document.querySelector('[data-testid=follow-state]').dataset.state") == "following"

    # The console opens the poll; the tablet votes with its confirmation step and gets a receipt.
    con.get_by_test_id("tab-polls").click()
    con.get_by_test_id("poll-open").click()
    engine.wait("document.querySelector('[data-testid=poll-title]')", what="the poll on the tablet")
    engine.click("[data-testid=vote-option]")
    engine.click("[data-testid=vote-submit]")
    engine.click("[data-testid=vote-confirm]")
    receipt = engine.wait(
        "(document.querySelector('[data-testid=receipt-code]') || {}).textContent", what="a receipt"
    )
    assert len(receipt.strip()) >= 6, receipt
    con.get_by_test_id("poll-progress").filter(has_text="1").wait_for()

    # The vote is on the server: closing the poll counts it.
    poll = room.poll["id"]
    status, _ = server.json("POST", f"/api/v1/polls/{poll}/close", {}, room.token)
    assert status == 200

    def counted():
        st, body = server.json("GET", f"/api/v1/polls/{poll}/results.json", token=room.token)
        return st == 200 and body

    body = wait_until(counted, what="results")
    assert body["result"]["cast"] == 1 and body["result"]["tally"][0] == 1, body["result"]
    assert [b["receipt"] for b in body["ballots"]] == [receipt.strip()], body["ballots"]
    assert not con.errors, con.errors
