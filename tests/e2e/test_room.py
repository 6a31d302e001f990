"""Three tablets and a console in one meeting: join, check in, follow, browse, vote; offline reading."""

from __future__ import annotations

import pytest

from .conftest import build_room, shot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration]

TABLET = {"width": 1280, "height": 800}  # a 10-inch tablet in landscape
PORTRAIT = {"width": 800, "height": 1280}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def room(server):
    return build_room(server, pages=12, names=("李委员", "张委员", "王委员", "赵委员"))


def sign(page) -> None:
    pad = page.get_by_test_id("signature-pad")
    pad.wait_for()
    box = pad.bounding_box()
    x, y = box["x"] + 40, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 25):
        page.mouse.move(x + i * 12, y + (18 if i % 4 < 2 else -18))
    page.mouse.up()


def join_tablet(open_page, room, i: int, **viewport):
    page = open_page(name=f"tablet{i}", **(viewport or TABLET))
    page.goto(room.seats[i]["join_url"])
    sign(page)
    page.get_by_test_id("checkin-go").click()
    page.locator("[data-testid=checkin-badge][data-state=in]").wait_for()
    assert page.get_by_test_id("who").inner_text().startswith(room.seats[i]["name"])
    return page


def console(open_page, room):
    page = open_page(name="console", width=1366, height=800, token=room.token)
    page.goto(room.console_url())
    page.get_by_test_id("c-doc").last.wait_for()
    return page


def shows(page, doc_id: int, n: int, timeout: float = 5_000) -> None:
    page.locator(f".viewer[data-shown='{doc_id}:{n}']").wait_for(timeout=timeout)


def cached(page, timeout: float = 60_000) -> None:
    page.locator("[data-testid=cache-progress][data-finished=true]").wait_for(timeout=timeout)


def test_three_tablets_follow_browse_and_vote(server, open_page, room):
    doc = room.doc["id"]
    tablets = [
        join_tablet(open_page, room, 0),
        join_tablet(open_page, room, 1, **PORTRAIT),
        join_tablet(open_page, room, 2, **PHONE),
    ]
    for t in tablets:
        cached(t)
        assert "12" in t.get_by_test_id("cache-progress").inner_text()
    con = console(open_page, room)
    con.get_by_test_id("attendance").filter(has_text="3/4").wait_for()
    con.get_by_test_id("start-meeting").click()
    con.get_by_test_id("dlg-ok").click()
    for t in tablets:
        t.get_by_test_id("meeting-status").filter(has_text="进行中").wait_for()

    # Ten flips from the console; every tablet follows each one.
    con.get_by_test_id("c-doc").last.click()
    for t in tablets:
        shows(t, doc, 1)
    for n in range(2, 11):
        con.get_by_test_id("c-next").click()
        for t in tablets:
            shows(t, doc, n)
    for t in tablets:
        assert t.get_by_test_id("follow-state").get_attribute("data-state") == "following"
    shot(tablets[0], "tablet-following")
    shot(tablets[1], "tablet-portrait")
    shot(tablets[2], "tablet-phone")

    # One tablet browses freely; the others keep following; then it goes back to the presenter.
    b = tablets[0]
    b.get_by_test_id("next").click()
    shows(b, doc, 11)
    b.get_by_test_id("thumbs").locator("[data-page='12']").click()
    shows(b, doc, 12)
    assert b.get_by_test_id("follow-state").get_attribute("data-state") == "browsing"
    con.get_by_test_id("c-prev").click()
    for t in tablets[1:]:
        shows(t, doc, 9)
    b.get_by_test_id("follow-state").filter(has_text="9").wait_for()
    assert b.locator(".viewer").get_attribute("data-shown") == f"{doc}:12"
    shot(b, "tablet-browsing")
    con.get_by_test_id("seat").filter(has_text="李委员").filter(
        has_text="12"
    ).wait_for()  # the console sees it browse
    b.get_by_test_id("back-to-presenter").click()
    shows(b, doc, 9)
    assert b.get_by_test_id("follow-state").get_attribute("data-state") == "following"
    shot(con, "console")

    # Everyone votes: choose, confirm, receipt; the console sees progress, closes, results appear.
    con.get_by_test_id("tab-polls").click()
    con.get_by_test_id("poll-open").click()
    choices = [0, 0, 1]
    for t, c in zip(tablets, choices, strict=True):
        t.get_by_test_id("poll-title").wait_for()
        t.get_by_test_id("vote-option").nth(c).click()
        t.get_by_test_id("vote-submit").click()
        t.get_by_test_id("vote-chosen").wait_for()
        t.get_by_test_id("vote-confirm").click()
        t.get_by_test_id("receipt-code").wait_for()
        assert len(t.get_by_test_id("receipt-code").inner_text()) >= 6
    shot(tablets[1], "tablet-receipt")
    con.get_by_test_id("poll-progress").filter(has_text="3").wait_for()
    con.get_by_test_id("poll-close").click()
    con.get_by_test_id("dlg-ok").click()
    for t in tablets:
        t.get_by_test_id("result-dialog").wait_for()
        rows = t.get_by_test_id("result-dialog").get_by_test_id("result-row")
        assert "2" in rows.nth(0).inner_text() and "1" in rows.nth(1).inner_text()
        assert "3" in t.get_by_test_id("result-dialog").get_by_test_id("result-totals").inner_text()
    shot(tablets[0], "tablet-result")
    shot(con, "console-result")
    # Held on screen until dismissed.
    tablets[0].wait_for_timeout(1500)
    assert tablets[0].get_by_test_id("result-dialog").is_visible()
    tablets[0].get_by_test_id("result-close").click()
    assert tablets[0].get_by_test_id("result-dialog").count() == 0
    con.get_by_test_id("poll-dismiss").click()  # the chair takes it off every screen
    for t in tablets[1:]:
        wait_until(lambda t=t: t.get_by_test_id("result-dialog").count() == 0, what="result dismissed")
    for t in [*tablets, con]:
        assert not t.errors, t.errors


def test_offline_tablet_reads_cached_pages_and_resyncs(server, open_page, room):
    doc = room.doc["id"]
    con = console(open_page, room)
    tab = join_tablet(open_page, room, 3)
    cached(tab)
    con.get_by_test_id("c-doc").last.click()
    con.keyboard.press("Home")
    shows(tab, doc, 1)
    con.keyboard.press("PageDown")  # what a presentation remote sends
    shows(tab, doc, 2)

    # Every page image is in the service worker's cache, which controls the tablet.
    stored = tab.evaluate("""async () => {
        const keys = await (await caches.open('tablet-pages-v1')).keys();
        return {controlled: !!navigator.serviceWorker.controller, pages: keys.filter((r) => r.url.includes('/pages/')).length};
    }""")
    assert stored == {"controlled": True, "pages": 12}, stored

    # Wi-Fi drops: the tablet says so and still flips through cached pages.
    tab.context.set_offline(True)
    tab.get_by_test_id("conn").filter(has_text="离线").wait_for()
    tab.get_by_test_id("banner").wait_for()
    for n in (3, 4, 5):
        tab.get_by_test_id("next").click()
        shows(tab, doc, n)
        ok = tab.evaluate(
            "() => { const i = document.querySelector('.sheet img'); return i.complete && i.naturalWidth > 0; }"
        )
        assert ok, f"page {n} did not paint offline"
    tab.get_by_test_id("thumbs").locator("[data-page='11']").click()
    shows(tab, doc, 11)
    # An annotation made offline waits in the outbox.
    tab.get_by_test_id("ann-toggle").click()
    box = tab.get_by_test_id("ann-canvas").bounding_box()
    tab.mouse.move(box["x"] + 100, box["y"] + 100)
    tab.mouse.down()
    for i in range(10):
        tab.mouse.move(box["x"] + 100 + i * 15, box["y"] + 120 + i * 5)
    tab.mouse.up()
    tab.get_by_test_id("ann-toggle").click()
    assert (
        tab.evaluate(
            "JSON.parse(localStorage.getItem(Object.keys(localStorage).find((k) => k.startsWith('meeting.outbox.')))).length"
        )
        == 1
    )
    shot(tab, "tablet-offline")

    # Meanwhile the presenter moved on; back online the tablet resyncs (after going back to the presenter).
    con.get_by_test_id("c-next").click()
    con.get_by_test_id("c-next").click()
    con.get_by_test_id("c-page-label").filter(has_text="4").wait_for()
    tab.context.set_offline(False)
    tab.get_by_test_id("conn").filter(has_text="在线").wait_for(timeout=20_000)
    tab.get_by_test_id("follow-state").filter(has_text="4").wait_for()
    tab.get_by_test_id("back-to-presenter").click()
    shows(tab, doc, 4)
    con.get_by_test_id("c-next").click()
    shows(tab, doc, 5)

    # The annotation drawn offline reached the server (a stroke in PDF points on page 11).
    seat = room.seats[3]

    def saved():
        status, body = server.json(
            "GET", f"/api/v1/documents/{doc}/annotations?attendee_id={seat['id']}", token=room.token
        )
        return status == 200 and body["annotations"]

    notes = wait_until(saved, what="the offline annotation on the server")
    assert notes[0]["page"] == 11 and notes[0]["kind"] == "pen" and len(notes[0]["points"]) >= 5

    # The card is re-issued: the tablet says so plainly, and the old card no longer joins.
    status, _ = server.json(
        "POST", f"/api/v1/meetings/{room.id}/attendees/{seat['id']}/reissue", token=room.token
    )
    assert status == 200
    tab.get_by_test_id("screen-message").filter(has_text="本设备已退出该座位").wait_for()
    shot(tab, "tablet-revoked")
    tab.get_by_role("button", name="重试").click()
    tab.get_by_test_id("screen-text").filter(has_text="座位卡已失效").wait_for()
    assert not tab.errors, tab.errors
