"""A realistic demo meeting (Chinese first, English beside it) for `make run`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"
TITLE = "2026年第四季度工作会议 Q4 Work Meeting"

ATTENDEES = [
    ("王建国", "A01", "chair", "办公室 General Office"),
    ("李晓梅", "A02", "presenter", "财务处 Finance"),
    ("张伟", "A03", "attendee", "人事处 Human Resources"),
    ("刘芳", "A04", "attendee", "信息中心 IT Center"),
    ("陈刚", "A05", "attendee", "后勤处 Facilities"),
    ("杨静", "A06", "attendee", "法规处 Legal"),
    ("赵磊", "A07", "attendee", "规划处 Planning"),
    ("Emily Chen", "A08", "attendee", "外事办 International Office"),
    ("孙丽", "B01", "secretary", "办公室 General Office"),
    ("周明", "B02", "observer", "审计处 Audit"),
]
AGENDA = [
    ("审议第三季度工作总结 Review of Q3 work report", 20),
    ("2027年度预算草案 Draft budget for 2027", 30),
    ("无纸化会议系统推广方案 Rolling out paperless meetings", 15),
    ("其他事项 Any other business", 10),
]


def make_demo_pdf(pages: int = 8) -> bytes:
    import pymupdf

    font = pymupdf.Font("cjk")
    doc = pymupdf.open()
    for i in range(1, pages + 1):
        page = doc.new_page(width=595, height=842)
        page.insert_font(fontname="cjk", fontbuffer=font.buffer)
        page.draw_rect(pymupdf.Rect(0, 0, 595, 90), color=None, fill=(0.62, 0.08, 0.08))
        page.insert_text((40, 55), "2027年度预算草案", fontname="cjk", fontsize=26, color=(1, 1, 1))
        page.insert_text((40, 78), "Draft budget for 2027", fontname="cjk", fontsize=13, color=(1, 0.9, 0.9))
        page.insert_text((40, 140), f"第 {i} 部分 Part {i}", fontname="cjk", fontsize=20)
        body = [
            "一、总体目标：坚持勤俭节约，压减一般性支出，保障重点项目。",
            "   Overall goal: spend carefully, cut routine costs, fund key projects.",
            "二、收入预算：预计全年收入 12,800 万元，同比增长 4.2%。",
            "   Revenue: 128 million yuan expected, up 4.2% on last year.",
            "三、支出预算：人员经费 5,200 万元，公用经费 2,100 万元。",
            "   Spending: staff 52 million yuan, operations 21 million yuan.",
            "四、无纸化会议预计每年节约纸张 36 万张。",
            "   Paperless meetings should save 360,000 sheets of paper a year.",
        ]
        for k, line in enumerate(body):
            page.insert_text((40, 190 + 26 * k), line, fontname="cjk", fontsize=12)
        for b in range(6):
            h = 40 + ((i * 37 + b * 53) % 160)
            page.draw_rect(pymupdf.Rect(70 + b * 75, 650 - h, 120 + b * 75, 650), color=None, fill=(0.2, 0.4, 0.7))
        page.insert_text((270, 810), f"— {i} / {pages} —", fontname="cjk", fontsize=10, color=(0.4, 0.4, 0.4))
    doc.subset_fonts()
    return doc.tobytes(garbage=3, deflate=True)


def ensure_demo(settings, force_new: bool = False) -> dict[str, Any]:
    """Create the demo account and meeting (once); returns what to print."""
    from . import models  # noqa: F401
    from .agenda.service import create_item
    from .auth.models import User
    from .auth.service import create_user
    from .core import audit, db, storage, tasks
    from .core.identity import Actor
    from .documents.models import Document
    from .meetings.models import Meeting
    from .roster.models import Attendee
    from .roster.service import add_attendee
    from .voting.models import Poll

    db.configure(settings.database_url)
    storage.configure(settings.data_dir)
    tasks.configure(settings)
    with db.transaction() as s:
        user = s.scalar(select(User).where(User.username == DEMO_USER))
        if user is None:
            user = create_user(s, DEMO_USER, DEMO_PASSWORD, role="admin", display_name="演示管理员 Demo admin")
        meeting = None if force_new else s.scalar(
            select(Meeting).where(Meeting.owner_id == user.id, Meeting.title == TITLE, Meeting.status != "ended"))
        new_doc = None
        if meeting is None:
            actor = Actor("user", user.id, user.username, user.role)
            meeting = Meeting(owner_id=user.id, title=TITLE, location="三楼第一会议室 Room 301",
                              starts_at=dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1),
                              quorum={"kind": "fraction", "value": 0.5}, language="zh")
            s.add(meeting)
            s.flush()
            audit.append(s, meeting, actor, "meetings.create", {"title": TITLE, "demo": True})
            for name, seat, role, org in ATTENDEES:
                add_attendee(s, meeting.id, name=name, seat=seat, role=role, organization=org)
            items = [create_item(s, meeting.id, title=t, duration_minutes=m) for t, m in AGENDA]
            sha = storage.get().put_bytes(make_demo_pdf())
            new_doc = Document(meeting_id=meeting.id, agenda_item_id=items[1].id, title="2027年度预算草案 Draft budget",
                               position=1, status="processing", filename="budget-2027.pdf", kind="pdf",
                               original_sha256=sha, original_size=storage.get().path(sha).stat().st_size)
            s.add(new_doc)
            s.add(Poll(meeting_id=meeting.id, agenda_item_id=items[1].id, kind="motion",
                       title="是否通过2027年度预算草案 Adopt the 2027 draft budget?",
                       options=["赞成 Yes", "反对 No", "弃权 Abstain"], secret=False, max_choices=1,
                       rule={"base": "present", "fraction": [1, 2], "strict": True}))
            s.flush()
            audit.append(s, meeting, actor, "demo.seed", {"attendees": len(ATTENDEES), "agenda": len(AGENDA)})
        seat = s.scalar(select(Attendee).where(Attendee.meeting_id == meeting.id, Attendee.role == "attendee").order_by(Attendee.id))
        info = {"meeting_id": meeting.id, "title": meeting.title, "seat_name": seat.name, "seat": seat.seat,
                "join_token": seat.join_token, "new_doc": (new_doc.id, new_doc.version) if new_doc else None}
    if info["new_doc"]:
        tasks.enqueue("render_document", *info["new_doc"])
    return info


def print_welcome(base: str, info: dict[str, Any]) -> None:
    from .roster.qr import qr_terminal
    from .roster.service import join_url

    link = join_url(base, info["join_token"])
    print(f"""
======================================================================
 无纸化会议系统已启动  Paperless meeting server is running
 演示会议 Demo meeting: {info['title']}

 组织者 Organizer : {base}/organizer/   (user {DEMO_USER} / {DEMO_PASSWORD})
 主持台 Console   : {base}/console/#meeting={info['meeting_id']}
 座位 Seat {info['seat']} ({info['seat_name']}) join link:
                    {link}
======================================================================
扫码入会 Scan to join as {info['seat_name']}:
{qr_terminal(link)}
""", flush=True)
