"""Results as CSV and JSON, receipt lists of secret polls, and checking one's receipt."""

from __future__ import annotations

import csv
import io

from tests.voting.conftest import close_poll, make_poll, open_poll, vote


def test_secret_results_and_receipts(hall):
    p = make_poll(hall.room, kind="motion", secret=True, publish_on_close=False)
    open_poll(hall.room, p["id"])
    acks = [vote(t, p["id"], [c]) for t, c in zip(hall.tablets, [0, 0, 1, 2, 0], strict=True)]
    me = hall.room.join("attendee")
    code = acks[0]["receipt"]
    # while open: found, not yet counted, no choice shown
    got = me.get(f"/api/v1/polls/{p['id']}/receipts/{code}").get_json()
    assert got == {"poll_id": p["id"], "receipt": code, "status": "open", "counted": False, "found": True}
    assert (
        hall.org.get(f"/api/v1/polls/{p['id']}/results.json").get_json()["error"]["code"] == "poll_not_closed"
    )
    close_poll(hall.room, p["id"])
    assert "choices" not in me.get(f"/api/v1/polls/{p['id']}/receipts/{code}").get_json()  # not yet published
    hall.org.post(f"/api/v1/polls/{p['id']}/publish")
    # any spelling a person might type: lower case, no dashes, O for 0
    sloppy = code.lower().replace("-", "").replace("0", "o")
    got = me.get(f"/api/v1/polls/{p['id']}/receipts/{sloppy}").get_json()
    assert got["counted"] is True and got["choices"] == [0] and got["receipt"] == code
    assert (
        me.get(f"/api/v1/polls/{p['id']}/receipts/ZZZZ-ZZZZ-ZZZZ-ZZZZ").get_json()["error"]["code"]
        == "receipt_not_found"
    )
    assert me.get(f"/api/v1/polls/{p['id']}/receipts/nonsense").status_code == 404

    body = hall.org.get(f"/api/v1/polls/{p['id']}/results.json").get_json()
    assert body["result"]["tally"] == [3, 1, 1] and body["poll"]["status"] == "closed"
    assert [b["receipt"] for b in body["ballots"]] == sorted(a["receipt"] for a in acks)
    assert all(set(b) == {"receipt", "choices", "labels"} for b in body["ballots"])
    assert len(body["result"]["ballots_sha256"]) == 64

    r = hall.org.get(f"/api/v1/polls/{p['id']}/results.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    text = r.data.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["poll", str(p["id"]), p["title"]]
    assert ["0", "赞成 Yes", "3", "60.0"] in rows
    tail = rows[rows.index(["receipt", "choices", "labels"]) + 1 :]
    assert sorted(x[0] for x in tail) == sorted(a["receipt"] for a in acks)
    assert ["outcome 结果", "通过", "adopted"] in rows


def test_named_results_list_voters(hall):
    p = make_poll(hall.room, options=["甲", "乙", "丙"], kind="multiple", max_choices=2)
    open_poll(hall.room, p["id"])
    for t, ch in zip(hall.tablets, [[0, 1], [2], [1], [0], [0, 2]], strict=True):
        assert vote(t, p["id"], ch)["ok"]
    close_poll(hall.room, p["id"])
    body = hall.org.get(f"/api/v1/polls/{p['id']}/results.json").get_json()
    assert [(b["seat"], b["choices"], b["labels"]) for b in body["ballots"]] == [
        ("M001", [0, 1], "甲; 乙"),
        ("M002", [2], "丙"),
        ("M003", [1], "乙"),
        ("M004", [0], "甲"),
        ("M005", [0, 2], "甲; 丙"),
    ]
    rows = list(
        csv.reader(
            io.StringIO(hall.org.get(f"/api/v1/polls/{p['id']}/results.csv").data.decode().lstrip("\ufeff"))
        )
    )
    i = rows.index(["seat", "name", "choices", "labels", "weight", "receipt", "recorded_by", "reason"])
    assert rows[i + 1][:4] == ["M001", "委员1 Member 1", "0 1", "甲; 乙"]
    code = body["ballots"][0]["receipt"]
    got = hall.org.get(f"/api/v1/polls/{p['id']}/receipts/{code}").get_json()
    assert got["choices"] == [0, 1]
