"""The remaining screens and flows, end to end in chromium.

- tablet: the finger signature of the check-in reaches the server; annotations shared with the
  room and made private again; withdrawn and (at the end of the meeting) confidential materials
  leave the tablet's cache and memory;
- console: a poll's results exported as CSV and JSON, and a revote (a new round);
- organizer: minutes edited, submitted, approved after the meeting, and the archive downloaded
  with progress; user text with markup stays text on every screen involved.
"""

from __future__ import annotations

import json
import zipfile

import pytest

from .conftest import build_room, make_pdf, shot, wait_until
from .test_room import console, join_tablet, shows

pytestmark = [pytest.mark.browser, pytest.mark.integration]

XSS = '<img src=x onerror="window.__xss=1">'


def upload(server, room, title: str, pages: int, **fields) -> dict:
    status, doc = server.upload(
        f"/api/v1/meetings/{room.id}/documents",
        f"{title}.pdf",
        make_pdf(pages, title),
        room.token,
        title=title,
        **fields,
    )
    assert status in (201, 202), doc
    doc = server.wait_document(doc["id"], room.token)
    assert doc["status"] == "ready", doc
    return doc


UNLABELLED = """() => [...document.querySelectorAll('button, input, select, textarea, [role=button], a[href]')]
    .filter((e) => e.getClientRects().length && e.type !== 'hidden')
    .filter((e) => !((e.getAttribute('aria-label') || '').trim() || (e.labels && e.labels.length)
        || (e.getAttribute('aria-labelledby')) || (e.textContent || '').trim() || (e.title || '').trim()))
    .map((e) => e.outerHTML.slice(0, 120))"""


LOW_CONTRAST = r"""() => {
  const parse = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const bg = (el) => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c[3] > 0.5) return c; } return [255, 255, 255, 1]; };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!el.getClientRects().length) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility === 'hidden' || Number(cs.opacity) < 0.5) continue;
    const fg = parse(cs.color); const b = bg(el);
    const L1 = lum(fg), L2 = lum(b);
    const ratio = (Math.max(L1, L2) + 0.05) / (Math.min(L1, L2) + 0.05);
    const large = parseFloat(cs.fontSize) >= 24 || (parseFloat(cs.fontSize) >= 18.66 && Number(cs.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) out.push(`${ratio.toFixed(2)} ${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${cs.color} on ${b}`);
  }
  return out;
}"""


def legible(page) -> None:
    """Text meets WCAG AA contrast against its background (4.5:1, large text 3:1)."""
    bad = page.evaluate(LOW_CONTRAST)
    assert not bad, bad


def labelled(page) -> None:
    """Every visible control has an accessible name (text, a label, aria-label or title)."""
    bad = page.evaluate(UNLABELLED)
    assert not bad, bad


def fits(page) -> None:
    """Nothing sticks out past the right edge (no sideways scrolling); names the elements that do."""
    wide = page.evaluate(
        """() => document.documentElement.scrollWidth <= innerWidth + 1 ? [] : [...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > innerWidth + 1)
            .map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`).slice(0, 12)"""
    )
    assert not wide, wide


CACHED_DOCS = """async () => {
    const keys = await (await caches.open('tablet-pages-v1')).keys();
    const ids = {};
    for (const r of keys) {
        const m = /\\/documents\\/(\\d+)\\/pages\\//.exec(new URL(r.url).pathname);
        if (m) ids[m[1]] = (ids[m[1]] || 0) + 1;
    }
    return ids;
}"""


def test_tablet_signature_sharing_and_purge(server, open_page):
    room = build_room(server, pages=4, names=("钱委员", "孙委员"))
    doc = room.doc["id"]
    secret = upload(server, room, "机密材料", 2, confidential="true")
    dropped = upload(server, room, "撤回材料", 2)
    status, _ = server.json("POST", f"/api/v1/meetings/{room.id}/start", token=room.token)
    assert status == 200

    # Check-in with a finger signature: the server keeps it (the attendance report says `signed`).
    tab = join_tablet(open_page, room, 0)
    seat = room.seats[0]
    kept = tab.evaluate(f"JSON.parse(localStorage.getItem('meeting.signature.{seat['id']}'))")
    assert kept["sent"] is True and kept["signature"]["strokes"], kept
    status, report = server.json("GET", f"/api/v1/meetings/{room.id}/attendance", token=room.token)
    assert status == 200
    row = next(a for a in report["attendees"] if a.get("attendee_id", a.get("id")) == seat["id"])
    assert row["signed"] is True, row
    labelled(tab)
    legible(tab)

    # Every document is cached, the confidential one too (its watermarked pages come on a retry).
    tab.wait_for_function(f"({CACHED_DOCS})().then(ids => ids['{doc}'] === 4 && ids['{secret['id']}'] === 2 && ids['{dropped['id']}'] === 2)", polling=250, timeout=60_000)  # fmt: skip

    tab.locator("[data-testid=cache-progress][data-finished=true]").wait_for(timeout=60_000)
    assert "失败" not in tab.get_by_test_id("cache-progress").inner_text()

    # Annotate the presented page, share it with the room, then make it private again.
    con = console(open_page, room)
    con.get_by_test_id("c-doc").filter(has_text=room.doc["title"]).first.click()
    shows(tab, doc, 1)
    con.get_by_test_id("c-next").click()
    shows(tab, doc, 2)
    tab.get_by_test_id("ann-toggle").click()
    box = tab.get_by_test_id("ann-canvas").bounding_box()
    tab.mouse.move(box["x"] + 80, box["y"] + 90)
    tab.mouse.down()
    for i in range(8):
        tab.mouse.move(box["x"] + 80 + i * 14, box["y"] + 95 + i * 4)
    tab.mouse.up()

    def mine():
        st, body = server.json(
            "GET", f"/api/v1/documents/{doc}/annotations?attendee_id={seat['id']}", token=room.token
        )
        return st == 200 and body["annotations"]

    assert wait_until(mine, what="the stroke on the server")[0]["shared"] == "private"
    assert tab.get_by_test_id("ann-share-state").get_attribute("data-to") == "private"
    tab.get_by_test_id("ann-share").click()
    tab.get_by_test_id("share-room").click()
    tab.locator("[data-testid=ann-share-state][data-to=room]").wait_for()
    assert mine()[0]["shared"] == "room"
    # The other seat (same document) now gets it from the shared list.
    other = open_page(name="tablet2")
    other.goto(room.seats[1]["join_url"])
    other.get_by_test_id("checkin-later").click()
    other.get_by_test_id("who").wait_for()
    other_token = other.evaluate("JSON.parse(localStorage.getItem('meeting.tablet.session')).session_token")
    st, shared = server.json("GET", f"/api/v1/documents/{doc}/annotations/shared", token=other_token)
    assert st == 200 and [a["attendee"]["id"] for a in shared["annotations"]] == [seat["id"]], shared
    # The presenter shows that seat's shared annotations to the room, then stops.
    con.get_by_test_id("c-shared").click()
    con.get_by_test_id("shared-seat").filter(has_text="钱委员").get_by_test_id("shared-show").click()
    con.get_by_test_id("dlg-close").click()
    other.locator("[data-testid=shown-by][data-count='1']").filter(has_text="钱委员").wait_for()
    shot(other, "tablet-annotation-shown")
    con.get_by_test_id("c-shared").click()
    con.get_by_test_id("shared-hide").click()
    other.get_by_test_id("shown-by").wait_for(state="hidden")
    shot(tab, "tablet-annotation-shared")
    labelled(tab)
    labelled(con)
    legible(tab)
    legible(con)
    tab.get_by_test_id("ann-share").click()
    tab.get_by_test_id("share-private").click()
    tab.locator("[data-testid=ann-share-state][data-to=private]").wait_for()
    assert mine()[0]["shared"] == "private"
    st, shared = server.json("GET", f"/api/v1/documents/{doc}/annotations/shared", token=other_token)
    assert st == 200 and shared["annotations"] == [], shared
    tab.get_by_test_id("ann-toggle").click()

    # A withdrawn document leaves the cache at once.
    status, _ = server.json("POST", f"/api/v1/documents/{dropped['id']}/withdraw", token=room.token)
    assert status == 200
    tab.wait_for_function(f"({CACHED_DOCS})().then(ids => !ids['{dropped['id']}'])", polling=250)
    # The tablet views the confidential document, then the meeting ends: it is purged everywhere.
    tab.get_by_test_id("nav-materials").click()
    tab.get_by_test_id("doc-row").filter(has_text="机密材料").get_by_role("button").first.click()
    shows(tab, secret["id"], 1, timeout=15_000)
    assert tab.evaluate(
        "() => { const i = document.querySelector('.sheet img'); return i.complete && i.naturalWidth > 0; }"
    )
    status, _ = server.json("POST", f"/api/v1/meetings/{room.id}/end", token=room.token)
    assert status == 200
    tab.get_by_test_id("banner").wait_for()
    tab.wait_for_function(
        f"({CACHED_DOCS})().then(ids => !ids['{secret['id']}'] && ids['{doc}'] === 4)", polling=250
    )
    left = tab.evaluate(
        f"() => [...document.querySelectorAll('img')].filter((i) => i.src.includes('/documents/{secret['id']}/')).length"
    )
    assert left == 0
    assert tab.get_by_test_id("doc-row").filter(has_text="机密材料").count() == 0
    assert not tab.errors, tab.errors


def test_console_export_and_revote(server, open_page):
    room = build_room(server, pages=2, names=("周委员",))
    status, _ = server.json("POST", f"/api/v1/meetings/{room.id}/start", token=room.token)
    assert status == 200
    con = console(open_page, room)
    con.get_by_test_id("tab-polls").click()
    card = con.locator(f"[data-testid=poll-card][data-poll='{room.poll['id']}']")
    card.get_by_test_id("poll-open").click()
    card.get_by_test_id("poll-close").click()
    con.get_by_test_id("dlg-ok").click()
    card.locator("[data-testid=poll-export-csv]").wait_for()
    with con.expect_download() as dl:
        card.get_by_test_id("poll-export-csv").click()
    csv = dl.value.path().read_bytes().decode("utf-8-sig")
    assert room.poll["title"] in csv
    with con.expect_download() as dl:
        card.get_by_test_id("poll-export-json").click()
    data = json.loads(dl.value.path().read_text("utf-8"))
    assert data["poll"]["id"] == room.poll["id"] and data["result"]["cast"] == 0

    card.get_by_test_id("poll-revote").click()
    con.get_by_test_id("dlg-ok").click()
    con.locator("[data-testid=poll-card][data-status=draft]").wait_for()
    status, polls = server.json("GET", f"/api/v1/meetings/{room.id}/polls", token=room.token)
    assert status == 200
    rounds = sorted((p.get("round"), p.get("previous_id")) for p in polls["polls"])
    assert rounds == [(1, None), (2, room.poll["id"])], rounds
    labelled(con)
    assert not con.errors, con.errors

    # The organizer's poll list offers the same exports for the closed round.
    org = open_page(name="organizer", width=1366, height=900, token=room.token)
    org.goto(f"{server.url}/organizer/#/m/{room.id}/polls")
    with org.expect_download() as dl:
        org.get_by_test_id("org-poll-export-csv").click()
    assert room.poll["title"] in dl.value.path().read_bytes().decode("utf-8-sig")
    assert org.get_by_test_id("poll-row").count() == 2
    assert not org.errors, org.errors


def test_organizer_minutes_review_approval_and_archive(server, open_page):
    room = build_room(server, pages=2, names=("吴委员",))
    status, _ = server.json("POST", f"/api/v1/meetings/{room.id}/start", token=room.token)
    assert status == 200
    page = open_page(name="organizer", width=1366, height=900, token=room.token)
    page.goto(f"{server.url}/organizer/#/m/{room.id}/after")
    review = page.get_by_test_id("minutes-review")
    review.locator("[data-testid=minutes-status][data-status=draft]").wait_for()

    # Write the first item's notes and decisions; markup stays text.
    item = review.get_by_test_id("minutes-item").first
    item.get_by_test_id("minutes-edit").click()
    item.get_by_test_id("minutes-notes-input").fill(f"审议通过年度报告 {XSS}")
    item.get_by_test_id("minutes-decisions-input").fill("通过年度工作报告\n<b>批准预算</b>")
    item.get_by_test_id("minutes-save").click()
    review.get_by_test_id("minutes-decision").nth(1).wait_for()
    assert review.get_by_test_id("minutes-notes").first.inner_text() == f"审议通过年度报告 {XSS}"
    assert review.get_by_test_id("minutes-decision").nth(1).inner_text() == "<b>批准预算</b>"
    assert page.evaluate("window.__xss") is None and review.locator("b, img").count() == 0

    # Submit; approval waits for the end of the meeting; return it once, then approve.
    review.get_by_test_id("minutes-submit").click()
    review.locator("[data-testid=minutes-status][data-status=submitted]").wait_for()
    assert review.get_by_test_id("minutes-approve").is_disabled()
    review.get_by_test_id("minutes-reopen").click()
    page.get_by_test_id("minutes-reopen-note").fill("请补充表决结果")
    page.get_by_test_id("dlg-ok").click()
    review.locator("[data-testid=minutes-status][data-status=draft]").wait_for()
    review.get_by_test_id("minutes-submit").click()
    review.locator("[data-testid=minutes-status][data-status=submitted]").wait_for()
    status, _ = server.json("POST", f"/api/v1/meetings/{room.id}/end", token=room.token)
    assert status == 200
    page.reload()
    review = page.get_by_test_id("minutes-review")
    review.get_by_test_id("minutes-approve").click()
    page.get_by_test_id("dlg-ok").click()
    review.locator(
        "[data-testid=minutes-status][data-status=approved], [data-testid=minutes-status][data-status=locked]"
    ).wait_for()
    history = " ".join(review.get_by_test_id("minutes-history").all_text_contents())
    assert "请补充表决结果" in history
    # The same screen in English.
    page.get_by_test_id("lang-switch").click()
    page.get_by_test_id("minutes-review").get_by_test_id("minutes-status").filter(has_text="Approved").or_(
        page.get_by_test_id("minutes-review").get_by_test_id("minutes-status").filter(has_text="Sealed")
    ).wait_for()
    assert page.get_by_test_id("archive").inner_text() == "Download archive"
    review = page.get_by_test_id("minutes-review")
    shot(page, "organizer-minutes")
    labelled(page)
    legible(page)
    # A phone: the review fits the width (no sideways scrolling).
    page.set_viewport_size({"width": 390, "height": 844})
    fits(page)
    shot(page, "organizer-minutes-phone")
    page.set_viewport_size({"width": 1366, "height": 900})

    # The archive: built in the worker with progress, then downloaded with progress.
    with page.expect_download(timeout=120_000) as dl:
        page.get_by_test_id("archive").click()
    path = dl.value.path()
    page.locator("[data-testid=archive-progress][data-status=downloaded]").wait_for()
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
    assert {"manifest.json", "minutes.pdf", "audit.jsonl"} <= names, sorted(names)[:20]
    shot(page, "organizer-archive")
    assert not page.errors, page.errors


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_tablet_fits_a_phone(server, open_page, lang):
    """Every panel of the seat tablet fits a phone's width, in both languages."""
    room = build_room(server, pages=2, names=("Alexandra Featherstonehaugh-Wolfeschlegelstein",))
    tab = open_page(name="phone", width=360, height=740, lang=lang)
    tab.goto(room.seats[0]["join_url"])
    tab.get_by_test_id("checkin-go").wait_for()
    fits(tab)
    tab.get_by_test_id("checkin-later").click()
    for panel in ("reader", "materials", "agenda", "vote", "speak", "service", "notices"):
        tab.get_by_test_id("nav-" + panel).click()
        fits(tab)
    shot(tab, f"tablet-phone-{lang}")
    assert not tab.errors, tab.errors
