"""Results of one poll as JSON and CSV: the totals, then every ballot.

Named polls list each voter with the choice; secret polls list receipts with
choices, sorted by receipt (an order that says nothing about who or when).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Ballot, NamedVote, Poll
from .service import poll_json, result_payload


def _labels(p: Poll, choices: list) -> str:
    if p.kind == "rating":
        return "; ".join(f"{p.options[i]}={c}" for i, c in enumerate(choices) if c is not None)
    return "; ".join(p.options[i] for i in choices)


def ballot_rows(s: Session, p: Poll) -> list[dict[str, Any]]:
    if p.secret:
        rows = s.execute(select(Ballot.receipt, Ballot.choices).where(Ballot.poll_id == p.id)).all()
        return [{"receipt": r, "choices": c, "labels": _labels(p, c)} for r, c in sorted(rows)]
    from ..roster.models import Attendee

    q = (
        select(NamedVote, Attendee)
        .join(Attendee, Attendee.id == NamedVote.attendee_id)
        .where(NamedVote.poll_id == p.id)
        .order_by(Attendee.seat, Attendee.name, Attendee.id)
    )
    out = []
    for nv, a in s.execute(q):
        row = {
            "attendee_id": a.id,
            "name": a.name,
            "seat": a.seat,
            "choices": nv.choices,
            "labels": _labels(p, nv.choices),
            "weight": nv.weight,
            "receipt": nv.receipt,
        }
        if nv.recorded_by:
            row["recorded_by"] = nv.recorded_by.get("name")
            row["reason"] = nv.reason
        out.append(row)
    return out


def results_json(s: Session, p: Poll) -> dict[str, Any]:
    return {"poll": poll_json(p, s=s, reveal=True), "result": result_payload(p), "ballots": ballot_rows(s, p)}


def results_csv(s: Session, p: Poll) -> str:
    """UTF-8 CSV (with BOM, so spreadsheet programs read the Chinese right): totals, a blank line, ballots."""
    r = p.result or {}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["poll", p.id, p.title])
    w.writerow(["kind", p.kind, "secret" if p.secret else "named", f"round {p.round}"])
    snap = r.get("snapshot", {})
    w.writerow(
        [
            "members 全体",
            snap.get("members"),
            "present 出席/应投",
            snap.get("present"),
            "cast 实投",
            r.get("cast"),
        ]
    )
    outcome = r.get("outcome", {})
    w.writerow(["rule 规则", outcome.get("rule_text", {}).get("zh"), outcome.get("rule_text", {}).get("en")])
    w.writerow(["outcome 结果", outcome.get("text", {}).get("zh"), outcome.get("text", {}).get("en")])
    w.writerow([])
    if p.kind == "rating":
        head = ["option", "text", "score_sum", "count", "mean"]
        if p.drop_extremes:
            head += ["trimmed_mean"]
        w.writerow(head)
        for i, (opt, sc) in enumerate(zip(p.options, r.get("scores", []), strict=False)):
            row = [i, opt, sc.get("sum"), sc.get("count"), sc.get("mean")]
            if p.drop_extremes:
                row.append(sc.get("trimmed_mean"))
            w.writerow(row)
    else:
        head = ["option", "text", "votes", "percent"] + (["weighted"] if p.weighted else [])
        w.writerow(head)
        for i, opt in enumerate(p.options):
            row = [
                i,
                opt,
                r.get("tally", [None] * len(p.options))[i],
                r.get("percent", [None] * len(p.options))[i],
            ]
            if p.weighted:
                row.append(r.get("weighted_tally", [None] * len(p.options))[i])
            w.writerow(row)
    w.writerow([])
    rows = ballot_rows(s, p)
    if p.secret:
        w.writerow(["receipt", "choices", "labels"])
        for b in rows:
            w.writerow(
                [b["receipt"], " ".join("" if c is None else str(c) for c in b["choices"]), b["labels"]]
            )
    else:
        w.writerow(["seat", "name", "choices", "labels", "weight", "receipt", "recorded_by", "reason"])
        for b in rows:
            w.writerow(
                [
                    b["seat"],
                    b["name"],
                    " ".join("" if c is None else str(c) for c in b["choices"]),
                    b["labels"],
                    b["weight"],
                    b["receipt"],
                    b.get("recorded_by", ""),
                    b.get("reason", ""),
                ]
            )
    return "\ufeff" + buf.getvalue()
