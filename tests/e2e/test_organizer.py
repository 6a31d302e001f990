"""The organizer builds a meeting from scratch through the UI."""

from __future__ import annotations

import pytest

from .conftest import PASSWORD, make_pdf, shot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_organizer_builds_a_meeting(server, open_page, tmp_path):
    page = open_page(name="organizer", width=1366, height=900)
    page.goto(server.url + "/organizer/")
    page.get_by_test_id("login-user").fill("admin")
    page.get_by_test_id("login-pass").fill("wrong-password")
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("login-error").filter(
        has_text="用户名或密码错误"
    ).wait_for()  # JSON error shown clearly
    shot(page, "organizer-login")
    page.get_by_test_id("login-pass").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()

    # A new meeting; a title with markup stays text (escape by construction).
    page.get_by_test_id("new-title").fill("预算审议会 <b>2026</b>")
    page.get_by_test_id("new-location").fill("二号会议室")
    page.get_by_test_id("create-meeting").click()
    heading = page.get_by_test_id("meeting-heading")
    heading.wait_for()
    assert heading.inner_text() == "预算审议会 <b>2026</b>"
    assert page.locator("h1 b").count() == 0

    # Agenda: three items, then drag the last to the top.
    page.get_by_test_id("tab-agenda").click()
    for title in ("开幕", "审议预算", "表决"):
        page.get_by_test_id("agenda-new-title").fill(title)
        page.get_by_test_id("agenda-new-minutes").fill("10")
        page.get_by_test_id("agenda-add").click()
        page.get_by_test_id("agenda-row").filter(has=page.locator(f"input[value='{title}']")).wait_for()
    rows = page.get_by_test_id("agenda-row")
    rows.nth(2).drag_to(rows.nth(0), target_position={"x": 40, "y": 5})
    wait_until(
        lambda: page.get_by_test_id("agenda-row").nth(0).locator("input[type=text]").input_value() == "表决",
        what="drag and drop reorder",
    )
    order = [
        page.get_by_test_id("agenda-row").nth(i).locator("input[type=text]").input_value() for i in range(3)
    ]
    assert order == ["表决", "开幕", "审议预算"]
    shot(page, "organizer-agenda")

    # Attendees: two by hand, one from CSV.
    page.get_by_test_id("tab-attendees").click()
    for name, seat, role in (("王主席", "A01", "chair"), ("李委员", "A02", "attendee")):
        page.get_by_test_id("att-name").fill(name)
        page.get_by_test_id("att-seat").fill(seat)
        page.get_by_test_id("att-new-role").select_option(role)
        page.get_by_test_id("att-add").click()
        page.get_by_test_id("attendee-row").filter(has=page.locator(f"input[value='{name}']")).wait_for()
    csv = tmp_path / "people.csv"
    csv.write_text("姓名,座位,角色\n张委员,A03,委员\n", encoding="utf-8")
    page.get_by_test_id("csv-file").set_input_files(str(csv))
    page.get_by_test_id("csv-import").click()
    wait_until(lambda: page.get_by_test_id("attendee-row").count() == 3, what="CSV import")
    links = [page.get_by_test_id("join-url").nth(i).input_value() for i in range(3)]
    assert all("/tablet/#join=" in x for x in links)
    shot(page, "organizer-attendees")

    # Materials: upload a PDF; upload and rendering progress end at ready.
    page.get_by_test_id("tab-documents").click()
    pdf = tmp_path / "预算报告.pdf"
    pdf.write_bytes(make_pdf(6, "预算报告 Budget"))
    page.get_by_test_id("doc-file").set_input_files(str(pdf))
    page.get_by_test_id("doc-title").fill("预算报告")
    page.get_by_test_id("upload").click()
    page.locator("[data-testid=upload-row][data-state=ready]").wait_for(timeout=60_000)
    assert "6" in page.get_by_test_id("upload-row").inner_text()
    page.get_by_test_id("doc-row").first.wait_for()
    # Confidentiality: view-only and only for the chair.
    page.get_by_test_id("doc-access").first.click()
    page.get_by_test_id("acc-confidential").check()
    page.get_by_test_id("acc-role-chair").check()
    page.get_by_test_id("acc-save").click()
    page.get_by_test_id("doc-access-summary").filter(has_text="保密").wait_for()
    shot(page, "organizer-documents")

    # A poll of each kind the builder offers; the motion comes with its three options.
    page.get_by_test_id("tab-polls").click()
    page.get_by_test_id("poll-title").fill("关于预算方案的表决")
    page.get_by_test_id("poll-secret").check()
    page.get_by_test_id("poll-create").click()
    page.get_by_test_id("poll-row").first.wait_for()
    page.get_by_test_id("poll-kind").select_option("election")
    page.get_by_test_id("poll-title").fill("选举理事")
    opts = page.get_by_test_id("poll-option")
    opts.nth(0).fill("候选人甲")
    opts.nth(1).fill("候选人乙")
    page.get_by_test_id("poll-add-option").click()
    page.get_by_test_id("poll-option").nth(2).fill("候选人丙")
    page.get_by_test_id("poll-seats").fill("2")
    page.get_by_test_id("poll-create").click()
    wait_until(lambda: page.get_by_test_id("poll-row").count() == 2, what="second poll")
    assert "赞成" in page.get_by_test_id("poll-row").first.inner_text()
    shot(page, "organizer-polls")

    # The server has it all.
    mid = int(page.url.split("/m/")[1].split("/")[0])
    token = server.login("admin", PASSWORD)
    status, m = server.json("GET", f"/api/v1/meetings/{mid}", token=token)
    assert status == 200
    assert [it["title"] for it in sorted(m["agenda"], key=lambda x: x["position"])] == [
        "表决",
        "开幕",
        "审议预算",
    ]
    assert sorted(a["name"] for a in m["attendees"]) == sorted(["王主席", "李委员", "张委员"])
    assert m["documents"][0]["confidential"] is True and m["documents"][0]["audience"]["roles"] == ["chair"]
    assert {p["kind"] for p in m["polls"]} == {"motion", "election"}
    assert not page.errors, page.errors
