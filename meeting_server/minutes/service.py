"""Minutes: notes and decisions per agenda item with every revision kept, the
draft -> submitted -> approved -> locked status, and the mapping of the
database onto the PDF's `MinutesData`.

Rendering the PDF (PyMuPDF, pyHanko) is CPU work and runs in the worker
(`archive.jobs.build_minutes`); this module only decides what goes in it and
caches the result by a hash of exactly that.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..core.chain import canonical_json
from ..core.db import iso, utcnow
from ..core.errors import Conflict, NotFound
from ..core.identity import Actor
from . import pdf as minutes_pdf
from .models import Minutes, MinutesItem, MinutesPdf, MinutesRevision

log = logging.getLogger(__name__)

#: The agenda item id under which the meeting's general notes are kept.
GENERAL = 0
#: Statuses in which the text may still change.
EDITABLE = frozenset({"draft"})
#: Statuses whose PDF is final (no draft watermark).
FINAL = frozenset({"approved", "locked"})


# --------------------------------------------------------------------------- status and text


def get_minutes(s: Session, meeting_id: int, *, create: bool = False) -> Minutes | None:
    m = s.get(Minutes, meeting_id)
    if m is None and create:
        m = Minutes(meeting_id=meeting_id, status="draft", saves=0, history=[])
        s.add(m)
        s.flush()
    return m


def status_of(s: Session, meeting_id: int) -> str:
    m = s.get(Minutes, meeting_id)
    return m.status if m is not None else "draft"


def _label(actor: Actor | dict) -> dict[str, Any]:
    return actor.audit_label() if isinstance(actor, Actor) else dict(actor)


def _history(m: Minutes, action: str, actor: Actor | dict, note: str = "") -> dict[str, Any]:
    label = _label(actor)
    entry = {
        "action": action,
        "who": label.get("name", ""),
        "kind": label.get("kind"),
        "id": label.get("id"),
        "role": label.get("role", ""),
        "at": iso(utcnow()),
    }
    if note:
        entry["note"] = note
    m.history = [*(m.history or []), entry]  # a new list: JSON columns do not track in-place changes
    m.updated_at = utcnow()
    return entry


def item_json(it: MinutesItem) -> dict[str, Any]:
    return {
        "agenda_item_id": it.agenda_item_id,
        "title": it.title,
        "notes": it.notes,
        "decisions": list(it.decisions or []),
        "revision": it.revision,
        "updated_at": iso(it.updated_at),
        "updated_by": it.updated_by or None,
    }


def _empty_item(agenda_item_id: int, title: str) -> dict[str, Any]:
    return {
        "agenda_item_id": agenda_item_id,
        "title": title,
        "notes": "",
        "decisions": [],
        "revision": 0,
        "updated_at": None,
        "updated_by": None,
    }


def _items(s: Session, meeting_id: int) -> dict[int, MinutesItem]:
    rows = s.scalars(select(MinutesItem).where(MinutesItem.meeting_id == meeting_id))
    return {r.agenda_item_id: r for r in rows}


def items_in_order(s: Session, meeting_id: int) -> list[dict[str, Any]]:
    """Every agenda item in agenda order with its notes, then the general notes, then notes of deleted items."""
    from ..agenda.service import items as agenda_items

    saved = _items(s, meeting_id)
    out = []
    for a in agenda_items(s, meeting_id):
        it = saved.pop(a.id, None)
        row = item_json(it) if it is not None else _empty_item(a.id, a.title)
        row["title"] = a.title
        row["position"] = a.position
        row["deleted"] = False
        out.append(row)
    general = saved.pop(GENERAL, None)
    out.append(
        {**(item_json(general) if general else _empty_item(GENERAL, "")), "position": None, "deleted": False}
    )
    for it in sorted(saved.values(), key=lambda r: r.agenda_item_id):
        out.append({**item_json(it), "position": None, "deleted": True})
    return out


def content_sha256(items: list[dict[str, Any]]) -> str:
    """A hash of the text of the minutes (what the chair approves)."""
    body = [[i["agenda_item_id"], i["title"], i["notes"], i["decisions"]] for i in items]
    return hashlib.sha256(canonical_json(body)).hexdigest()


def minutes_json(s: Session, meeting: Any) -> dict[str, Any]:
    m = get_minutes(s, meeting.id)
    items = items_in_order(s, meeting.id)
    return {
        "meeting_id": meeting.id,
        "status": m.status if m else "draft",
        "editable": (m.status if m else "draft") in EDITABLE and meeting.status != "archived",
        "saves": m.saves if m else 0,
        "history": list(m.history or []) if m else [],
        "items": items,
        "content_sha256": content_sha256(items),
    }


def summary(s: Session, meeting_id: int) -> dict[str, Any]:
    """The `minutes` event: the status and the approval history."""
    m = get_minutes(s, meeting_id)
    return {
        "meeting_id": meeting_id,
        "status": m.status if m else "draft",
        "saves": m.saves if m else 0,
        "history": list(m.history or []) if m else [],
    }


def revision_json(r: MinutesRevision) -> dict[str, Any]:
    return {
        "agenda_item_id": r.agenda_item_id,
        "revision": r.revision,
        "base_revision": r.base_revision,
        "client_revision_id": r.client_revision_id,
        "notes": r.notes,
        "decisions": list(r.decisions or []),
        "author": r.author,
        "created_at": iso(r.created_at),
    }


def _agenda_title(s: Session, meeting_id: int, agenda_item_id: int) -> str:
    if agenda_item_id == GENERAL:
        return ""
    from ..agenda.models import AgendaItem

    a = s.get(AgendaItem, agenda_item_id)
    if a is None or a.meeting_id != meeting_id:
        raise NotFound("no such agenda item")
    return a.title


def save_item(
    s: Session,
    meeting: Any,
    actor: Actor,
    *,
    agenda_item_id: int,
    notes: str,
    decisions: list[str],
    base_revision: int,
    client_revision_id: str | None,
) -> tuple[MinutesItem, MinutesRevision, bool]:
    """Save one item's notes as a new revision; returns (item, revision, duplicate).

    A resend with a known `client_revision_id` returns the revision it made
    (`duplicate` true) and changes nothing. A `base_revision` that is not the
    item's latest raises 409 `revision_conflict` carrying the latest text, so
    nothing anyone typed is overwritten unseen.
    """
    if client_revision_id:
        old = s.scalar(
            select(MinutesRevision).where(
                MinutesRevision.meeting_id == meeting.id,
                MinutesRevision.client_revision_id == client_revision_id,
            )
        )
        if old is not None:
            if old.agenda_item_id != agenda_item_id:
                raise Conflict(
                    "this client_revision_id was used for another agenda item", code="duplicate_id"
                )
            item = s.scalar(
                select(MinutesItem).where(
                    MinutesItem.meeting_id == meeting.id, MinutesItem.agenda_item_id == agenda_item_id
                )
            )
            assert item is not None
            return item, old, True
    m = get_minutes(s, meeting.id, create=True)
    assert m is not None
    if m.status not in EDITABLE:
        raise Conflict(
            f"the minutes are {m.status}; return them to draft to edit", code=f"minutes_{m.status}"
        )
    title = _agenda_title(s, meeting.id, agenda_item_id)
    item = s.scalar(
        select(MinutesItem).where(
            MinutesItem.meeting_id == meeting.id, MinutesItem.agenda_item_id == agenda_item_id
        )
    )
    current = item.revision if item is not None else 0
    if base_revision != current:
        latest = item_json(item) if item is not None else _empty_item(agenda_item_id, title)
        raise Conflict(
            f"someone saved revision {current} of this item after revision {base_revision}; merge and save again",
            code="revision_conflict",
            latest=latest,
        )
    if item is None:
        item = MinutesItem(
            meeting_id=meeting.id, agenda_item_id=agenda_item_id, revision=0, notes="", decisions=[]
        )
        s.add(item)
    now = utcnow()
    label = _label(actor)
    item.revision = current + 1
    item.title = title or item.title or ""
    item.notes = notes
    item.decisions = list(decisions)
    item.updated_at = now
    item.updated_by = label
    rev = MinutesRevision(
        meeting_id=meeting.id,
        agenda_item_id=agenda_item_id,
        revision=item.revision,
        base_revision=base_revision,
        client_revision_id=client_revision_id,
        notes=notes,
        decisions=list(decisions),
        author=label,
        created_at=now,
    )
    s.add(rev)
    if not m.history:
        _history(m, "drafted", actor)
    m.saves = (m.saves or 0) + 1
    m.updated_at = now
    s.flush()
    return item, rev, False


def revisions(
    s: Session, meeting_id: int, agenda_item_id: int | None, limit: int, before: int | None
) -> list[MinutesRevision]:
    q = select(MinutesRevision).where(MinutesRevision.meeting_id == meeting_id)
    if agenda_item_id is not None:
        q = q.where(MinutesRevision.agenda_item_id == agenda_item_id)
    if before is not None:
        q = q.where(MinutesRevision.id < before)
    return list(s.scalars(q.order_by(MinutesRevision.id.desc()).limit(limit)))


def all_revisions(s: Session, meeting_id: int) -> list[MinutesRevision]:
    q = select(MinutesRevision).where(MinutesRevision.meeting_id == meeting_id).order_by(MinutesRevision.id)
    return list(s.scalars(q))


def submit(s: Session, meeting: Any, actor: Actor) -> Minutes:
    m = get_minutes(s, meeting.id, create=True)
    assert m is not None
    if m.status != "draft":
        raise Conflict(f"the minutes are {m.status}, not a draft", code=f"minutes_{m.status}")
    m.status = "submitted"
    _history(m, "submitted", actor)
    return m


def reopen(s: Session, meeting: Any, actor: Actor, note: str) -> Minutes:
    """Return submitted minutes to the secretary (the chair asks for changes)."""
    m = get_minutes(s, meeting.id, create=True)
    assert m is not None
    if m.status != "submitted":
        raise Conflict(
            f"only submitted minutes can be returned; these are {m.status}", code=f"minutes_{m.status}"
        )
    m.status = "draft"
    _history(m, "rejected", actor, note)
    return m


def approve(s: Session, meeting: Any, actor: Actor) -> Minutes:
    """Approve submitted minutes of an ended meeting; the next archive seals the meeting."""
    m = get_minutes(s, meeting.id, create=True)
    assert m is not None
    if meeting.status not in ("ended", "archived"):
        raise Conflict("minutes are approved after the meeting has ended", code="meeting_not_ended")
    if m.status != "submitted":
        raise Conflict(
            f"only submitted minutes can be approved; these are {m.status}", code=f"minutes_{m.status}"
        )
    m.status = "approved"
    _history(m, "approved", actor)
    return m


def lock(s: Session, meeting_id: int) -> None:
    """The archive was sealed: the minutes never change again.

    Not added to the printed history (the seal is in the audit log): the signed
    PDF of the approved minutes stays the one in the sealed archive.
    """
    m = get_minutes(s, meeting_id, create=True)
    assert m is not None
    m.status = "locked"
    m.updated_at = utcnow()


# --------------------------------------------------------------------------- what the PDF prints

#: Words for the approval record's roles.
ORGANIZER_ROLE = {"zh": "组织者", "en": "Organizer"}
GENERAL_TITLE = {"zh": "其他事项", "en": "Other business"}
DELETED_NOTE = {"zh": "（议程项已删除）", "en": " (agenda item deleted)"}
PROXY_NOTE = {"zh": "代签：{reason}", "en": "Checked in by staff: {reason}"}
OUTCOME = {
    "zh": {
        "adopted": "通过",
        "rejected": "未通过",
        "cancelled": "已取消",
        "open": "表决中",
        "most": "得票最多：{names}（{n} 票）",
        "tie": "得票相同：{names}（各 {n} 票）",
        "none": "无有效票",
    },
    "en": {
        "adopted": "adopted",
        "rejected": "not adopted",
        "cancelled": "cancelled",
        "open": "voting",
        "most": "Most votes: {names} ({n})",
        "tie": "Tie: {names} ({n} each)",
        "none": "no valid votes",
    },
}
#: Poll kinds in the PDF template's words.
PDF_KINDS = {"motion": "yes-no"}
BASES = {
    "zh": {"cast": "实投票数", "present": "出席人数", "eligible": "应投票数"},
    "en": {"cast": "votes cast", "present": "members present", "eligible": "eligible votes"},
}


def _rule_words(rule: dict[str, Any] | None, kind: str, lang: str) -> str:
    if not rule:
        if kind == "motion":
            return "超过实投票数的二分之一" if lang == "zh" else "more than half of the votes cast"
        return "得票最多者当选" if lang == "zh" else "most votes"
    base = str(rule.get("base", "cast"))
    frac = rule.get("fraction") or [1, 2]
    strict = bool(rule.get("strict", True))
    try:
        a, b = int(frac[0]), int(frac[1])
    except (TypeError, ValueError, IndexError):
        return str(rule)
    base_w = BASES[lang].get(base, base)
    if lang == "zh":
        return f"{'超过' if strict else '不少于'}{base_w}的 {a}/{b}"
    return f"{'more than' if strict else 'at least'} {a}/{b} of the {base_w}"


def _motion_adopted(rule: dict[str, Any] | None, yes: float, counts: dict[str, float]) -> bool:
    rule = rule or {}
    base = counts.get(str(rule.get("base", "cast")), counts["cast"]) or 0
    frac = rule.get("fraction") or [1, 2]
    try:
        need = float(base) * int(frac[0]) / int(frac[1])
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        need = float(base) / 2
    return yes > need if rule.get("strict", True) else yes >= need and yes > 0


def attendance_report(s: Session, meeting: Any) -> list[dict[str, Any]]:
    """Every attendee with attendance flags and in/out history (`attendance.service.report`).

    Falls back to the roster's current check-in times when the attendance domain is absent.
    """
    try:
        from ..attendance import service as att
    except ImportError:
        att = None
    if att is not None and hasattr(att, "report"):
        return att.report(s, meeting)
    from ..roster.service import list_attendees

    return [
        {
            "attendee_id": a.id,
            "name": a.name,
            "seat": a.seat,
            "role": a.role,
            "organization": a.organization,
            "checked_in": a.present,
            "checked_in_at": iso(a.checked_in_at),
            "checked_out_at": iso(a.checked_out_at),
            "late": False,
            "left_early": False,
            "proxy": False,
            "counted": a.role != "observer",
            "records": [],
        }
        for a in list_attendees(s, meeting.id)
    ]


def attendance_counts(s: Session, meeting: Any) -> dict[str, Any]:
    try:
        from ..attendance import service as att
    except ImportError:
        att = None
    if att is not None and hasattr(att, "counts"):
        return att.counts(s, meeting)
    rows = [r for r in attendance_report(s, meeting) if r["counted"]]
    return {"present": sum(1 for r in rows if r["checked_in"]), "expected": len(rows)}


def _present_at(s: Session, meeting_id: int, when: Any) -> int:
    """Members (not observers) in the room at `when`, from the attendance history."""
    from ..roster.models import Attendee

    try:
        from ..attendance.models import AttendanceRecord
    except ImportError:  # no history: who is in now
        q = (
            select(func.count())
            .select_from(Attendee)
            .where(
                Attendee.meeting_id == meeting_id,
                Attendee.role != "observer",
                Attendee.deleted.is_(False),
                Attendee.present.is_(True),
            )
        )
        return int(s.scalar(q) or 0)

    q = (
        select(func.count(func.distinct(AttendanceRecord.attendee_id)))
        .join(Attendee, Attendee.id == AttendanceRecord.attendee_id)
        .where(
            AttendanceRecord.meeting_id == meeting_id,
            Attendee.role != "observer",
            Attendee.deleted.is_(False),
            AttendanceRecord.in_at <= when,
            (AttendanceRecord.out_at.is_(None)) | (AttendanceRecord.out_at > when),
        )
    )
    return int(s.scalar(q) or 0)


def _voting_export(s: Session, poll: Any) -> dict[str, Any]:
    """The voting domain's export of one poll (`voting.exports.results_json`), or {} if it has none."""
    try:
        from ..voting import exports
    except ImportError:
        return {}
    fn = getattr(exports, "results_json", None)
    return fn(s, poll) if callable(fn) else {}


def _words(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {"zh": str(value.get("zh") or ""), "en": str(value.get("en") or "")}
    return {"zh": str(value or ""), "en": str(value or "")}


def poll_results(s: Session, meeting_id: int) -> list[dict[str, Any]]:
    """Every poll that was opened, with its result: THE adapter to the voting domain.

    Per poll: ``{"id", "title", "kind", "secret", "options", "rule", "status",
    "round", "opened_at", "closed_at", "eligible", "present", "cast", "tally",
    "outcome": code | None, "outcome_text": {"zh", "en"}, "rule_text": {"zh",
    "en"}, "winners": [index], "named": [{"attendee_id", "name", "seat",
    "choices", "labels", "receipt"}], "receipts": [{"receipt", "choices",
    "labels"}], "export": the voting domain's own JSON or None}``.

    The result is the one the voting domain computed once at close
    (`Poll.result` via `voting.exports.results_json`); ballots come from the
    same export (named voters, or receipts for secret polls). When the voting
    domain has no export, counts fall back to `voting.service.counts` and the
    outcome to a simple majority computed here. Fix this one function when the
    voting domain's API changes.
    """
    from ..core.identity import VOTING_ROLES
    from ..roster.models import Attendee
    from ..voting import service as vs

    members = int(
        s.scalar(
            select(func.count())
            .select_from(Attendee)
            .where(
                Attendee.meeting_id == meeting_id,
                Attendee.deleted.is_(False),
                Attendee.role.in_(VOTING_ROLES),
            )
        )
        or 0
    )
    out = []
    for p in vs.list_polls(s, meeting_id):
        if p.status == "draft":
            continue
        x = _voting_export(s, p) if p.status in ("closed", "cancelled") else {}
        res = dict(x.get("result") or getattr(p, "result", None) or {})
        outcome = res.get("outcome") if isinstance(res.get("outcome"), dict) else {}
        c = vs.counts(s, p)
        tally = res.get("tally", c.get("tally"))
        if tally is None and p.status == "closed":
            tally = [0] * len(p.options)
        cast = res.get("cast", c.get("voted"))
        present = res.get("present")
        if present is None:
            present = _present_at(s, meeting_id, p.closed_at or utcnow())
        eligible = res.get("eligible", c.get("eligible")) or present
        code = outcome.get("result")
        winners = list(outcome.get("winners") or [])
        outcome_text = _words(outcome.get("text")) if outcome.get("text") else {"zh": "", "en": ""}
        rule_text = (
            _words(outcome.get("rule_text"))
            if outcome.get("rule_text")
            else {lang: _rule_words(p.rule, p.kind, lang) for lang in ("zh", "en")}
        )
        if not code and p.status == "closed" and tally is not None:
            counts = {
                "cast": float(cast or 0),
                "present": float(present or 0),
                "eligible": float(eligible or 0),
            }
            if p.kind == "motion":
                code = (
                    "adopted"
                    if _motion_adopted(p.rule, float(tally[0] if tally else 0), counts)
                    else "rejected"
                )
            elif tally and max(tally) > 0:
                top = max(tally)
                winners = [i for i, v in enumerate(tally) if v == top]
                code = "most" if len(winners) == 1 else "tie"
            else:
                code = "none"
            outcome_text = {
                lang: _outcome_words(code, p.options, tally, winners, lang) for lang in ("zh", "en")
            }
        elif p.status in ("cancelled", "open"):
            code = p.status
            outcome_text = {lang: OUTCOME[lang][p.status] for lang in ("zh", "en")}
        ballots = list(x.get("ballots") or [])
        out.append(
            {
                "id": p.id,
                "title": p.title,
                "kind": p.kind,
                "secret": p.secret,
                "options": list(p.options),
                "rule": p.rule,
                "status": p.status,
                "round": getattr(p, "round", 1),
                "agenda_item_id": p.agenda_item_id,
                "opened_at": iso(p.opened_at),
                "closed_at": iso(p.closed_at),
                "members": res.get("members", members),
                "eligible": eligible,
                "present": present,
                "cast": cast,
                "tally": list(tally) if tally is not None else None,
                "outcome": code,
                "outcome_text": outcome_text,
                "rule_text": rule_text,
                "winners": winners,
                "named": [] if p.secret else ballots,
                "receipts": ballots if p.secret else [],
                "export": x or None,
            }
        )
    return out


def _outcome_words(code: str, options: list[str], tally: list[Any], winners: list[int], lang: str) -> str:
    words = OUTCOME[lang]
    if code in ("most", "tie"):
        sep = "、" if lang == "zh" else ", "
        top = tally[winners[0]] if winners else 0
        return words[code].format(
            names=sep.join(options[i] for i in winners), n=minutes_pdf.format_number(top)
        )
    return words.get(code, code or "")


def _choice_text(options: list[str], row: dict[str, Any]) -> str:
    if row.get("labels"):
        return str(row["labels"])
    choices = row.get("choices")
    try:
        return "、".join(options[int(i)] for i in choices if i is not None) or "—"
    except (TypeError, ValueError, IndexError):
        return str(choices)


def attendance_rows(s: Session, meeting: Any, lang: str) -> list[minutes_pdf.Attendee]:
    """Attendees with status, first check-in, last check-out and finger signature (adapter to attendance)."""
    try:
        from ..attendance import service as att
    except ImportError:
        att = None
    signatures: dict[int, Any] = {}
    fn = getattr(att, "signatures", None)  # the attendance domain's signatures, once it stores them
    if callable(fn):
        try:
            signatures = dict(fn(s, meeting.id) or {})
        except Exception:  # never let a missing signature stop the minutes
            log.warning("attendance signatures unavailable", exc_info=True)
    out = []
    for r in attendance_report(s, meeting):
        recs = r.get("records") or []
        first_in = recs[0]["in_at"] if recs else r.get("checked_in_at")
        last_out = recs[-1]["out_at"] if recs and not r.get("checked_in") else r.get("checked_out_at")
        if r.get("checked_in"):
            last_out = None
        if not first_in:
            status = "absent"
        elif r.get("left_early"):
            status = "left-early"
        elif r.get("late"):
            status = "late"
        else:
            status = "present"
        proxy = next((x for x in recs if x.get("in_method") == "proxy"), None)
        sig = signatures.get(r["attendee_id"]) or {}
        if isinstance(sig, list):
            sig = {"strokes": sig}
        out.append(
            minutes_pdf.Attendee(
                name=r["name"],
                seat=r.get("seat"),
                role=r.get("role") or "attendee",
                status=status,
                checkin_at=first_in,
                checkout_at=last_out,
                proxy_reason=PROXY_NOTE[lang].format(reason=proxy.get("in_reason") or "—") if proxy else None,
                signature=list(sig.get("strokes") or []),
                signature_aspect=float(sig.get("aspect") or 3.0),
            )
        )
    return out


def minutes_data(s: Session, meeting: Any, lang: str, timezone: str = "UTC") -> minutes_pdf.MinutesData:
    """Everything the minutes print, read from the database (cheap: no rendering)."""
    from ..agenda.service import items as agenda_items
    from ..documents.service import list_documents
    from ..roster.service import list_attendees

    people = list_attendees(s, meeting.id)
    by_id = {a.id: a for a in people}
    join = "、" if lang == "zh" else ", "
    status = status_of(s, meeting.id)
    planned = {a.id: a for a in agenda_items(s, meeting.id)}
    agenda = []
    for row in items_in_order(s, meeting.id):
        aid = row["agenda_item_id"]
        plan = planned.get(aid)
        if aid == GENERAL:
            if not (row["notes"].strip() or row["decisions"]):
                continue
            title = GENERAL_TITLE[lang]
        else:
            title = row["title"] + (DELETED_NOTE[lang] if row["deleted"] else "")
        presenter = by_id.get(plan.presenter_id) if plan is not None and plan.presenter_id else None
        agenda.append(
            minutes_pdf.AgendaItem(
                title=title,
                presenter=presenter.name if presenter is not None else None,
                duration_minutes=plan.duration_minutes if plan is not None else None,
                notes=row["notes"],
                decisions=list(row["decisions"]),
            )
        )
    polls = []
    for r in poll_results(s, meeting.id):
        named = [(n.get("name", ""), _choice_text(r["options"], n)) for n in r["named"]]
        polls.append(
            minutes_pdf.Poll(
                title=r["title"],
                options=r["options"],
                tally=list(r["tally"] or []),
                kind=PDF_KINDS.get(r["kind"], r["kind"]),
                secret=r["secret"],
                rule=r["rule_text"][lang],
                eligible=r["eligible"],
                present=r["present"],
                cast=r["cast"],
                outcome=r["outcome_text"][lang],
                named_votes=named,
                closed_at=r["closed_at"],
            )
        )
    m = get_minutes(s, meeting.id)
    approvals = []
    for h in (m.history if m else []) or []:
        role = h.get("role") or ""
        if h.get("kind") == "user":
            role = ORGANIZER_ROLE[lang]
        else:
            role = minutes_pdf.ROLES[lang].get(role, role)
        approvals.append(
            minutes_pdf.Approval(who=h.get("who", ""), role=role, at=h.get("at"), action=h["action"])
        )
    documents = [
        minutes_pdf.DocumentRef(
            title=d.title, filename=d.filename or None, pages=d.page_count, sha256=d.original_sha256
        )
        for d in list_documents(s, meeting.id)
    ]
    return minutes_pdf.MinutesData(
        title=meeting.title,
        location=meeting.location or "",
        starts_at=iso(meeting.starts_at),
        started_at=iso(meeting.started_at),
        ended_at=iso(meeting.ended_at),
        chair=join.join(a.name for a in people if a.role == "chair"),
        secretary=join.join(a.name for a in people if a.role == "secretary"),
        attendees=attendance_rows(s, meeting, lang),
        agenda=agenda,
        polls=polls,
        approvals=approvals,
        documents=documents,
        timezone=timezone,
        draft=status not in FINAL,
    )


@lru_cache(maxsize=1)
def template_version() -> str:
    """Changes whenever the PDF template (minutes/pdf.py) changes: cached PDFs are then rebuilt."""
    return hashlib.sha256(Path(minutes_pdf.__file__).read_bytes()).hexdigest()[:16]


def input_hash(data: minutes_pdf.MinutesData, lang: str, identity: dict[str, Any]) -> str:
    body = {
        "data": dataclasses.asdict(data),
        "lang": lang,
        "identity": identity,
        "template": template_version(),
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


def state_key(s: Session, meeting: Any, lang: str, identity: dict[str, Any]) -> str:
    """A cheap stand-in for the input hash: the audit head names every recorded change; the counters
    cover what changes without an audit entry (rendering finishing, a poll closed by its timer)."""
    from ..documents.models import Document
    from ..voting.models import Poll

    docs = s.execute(
        select(func.count(), func.max(Document.updated_at), func.sum(Document.page_count)).where(
            Document.meeting_id == meeting.id
        )
    ).one()
    polls = s.execute(
        select(Poll.status, func.count(), func.max(Poll.closed_at))
        .where(Poll.meeting_id == meeting.id)
        .group_by(Poll.status)
    ).all()
    m = s.get(Minutes, meeting.id)
    body = [
        meeting.audit_head,
        meeting.audit_seq,
        lang,
        identity,
        template_version(),
        [docs[0], iso(docs[1]), docs[2]],
        sorted([st, n, iso(at)] for st, n, at in polls),
        [m.status, m.saves, iso(m.updated_at)] if m else None,
    ]
    return hashlib.sha256(canonical_json(body)).hexdigest()


def find_by_state(s: Session, meeting_id: int, lang: str, key: str) -> MinutesPdf | None:
    return s.scalar(
        select(MinutesPdf)
        .where(MinutesPdf.meeting_id == meeting_id, MinutesPdf.lang == lang, MinutesPdf.state_key == key)
        .order_by(MinutesPdf.id.desc())
        .limit(1)
    )


def find_pdf(s: Session, meeting_id: int, lang: str, h: str) -> MinutesPdf | None:
    return s.scalar(
        select(MinutesPdf).where(
            MinutesPdf.meeting_id == meeting_id, MinutesPdf.lang == lang, MinutesPdf.input_hash == h
        )
    )


def pdf_json(row: MinutesPdf) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "lang": row.lang,
        "draft": row.draft,
        "sha256": row.sha256,
        "size": row.size,
        "pages": row.pages,
        "error": row.error,
        "created_at": iso(row.created_at),
        "finished_at": iso(row.finished_at),
    }
