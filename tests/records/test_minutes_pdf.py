"""Minutes PDF: content, fonts, page breaks and a PAdES signature that validates."""

from __future__ import annotations

import io
import math
import random
import re

import pymupdf
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from meeting_server.archive.keys import load_or_create_keys, make_seal_png, sign_pdf
from meeting_server.minutes.pdf import (
    SEAL_SPOT_KEY,
    AgendaItem,
    Approval,
    Attendee,
    DocumentRef,
    MinutesData,
    Poll,
    build_minutes_pdf,
    format_number,
)

ORG = "某某市人民代表大会常务委员会"
TITLE = "第十六届常务委员会第二十三次会议纪要"

NAMES = [
    "王建国", "李秀英", "张伟", "刘洋", "陈静", "杨帆", "赵敏", "黄磊", "周婷", "吴昊",
    "徐丽", "孙强", "胡军", "朱琳", "高峰", "林晓", "何涛", "郭芳", "马超", "罗兰",
]  # fmt: skip


def scribble(seed: int) -> list[list[list[float]]]:
    """A few cursive pen strokes, like a quickly signed name."""
    rnd = random.Random(seed)
    strokes = []
    x = 0.05
    for _ in range(rnd.randint(2, 4)):
        w = rnd.uniform(0.14, 0.26)
        loops = rnd.randint(2, 4)
        tilt = rnd.uniform(-0.08, 0.08)
        pts = []
        for k in range(60):
            t = k / 59
            a = 2 * math.pi * loops * t
            px = x + w * t + 0.035 * math.cos(a)
            py = 0.55 + tilt * (t - 0.5) - 0.28 * math.sin(a) * (0.6 + 0.4 * math.sin(math.pi * t))
            pts.append([round(px, 4), round(py, 4)])
        strokes.append(pts)
        x += w + rnd.uniform(0.02, 0.06)
    strokes.append([[x - 0.02, 0.85], [x + 0.08, 0.78]])  # the underline flourish
    # fit the name on the pad: tablets report points in 0..1
    lo = min(p[0] for st in strokes for p in st)
    hi = max(p[0] for st in strokes for p in st)
    k = 0.92 / max(hi - lo, 0.92)
    return [[[round(0.04 + (p[0] - lo) * k, 4), round(p[1], 4)] for p in st] for st in strokes]


def sample_minutes(n_attendees: int = 20) -> MinutesData:
    statuses = ["present"] * 14 + ["late", "late", "absent", "absent", "left-early", "present"]
    attendees = []
    for i in range(n_attendees):
        name = NAMES[i % len(NAMES)] + ("" if i < len(NAMES) else str(i))
        status = statuses[i % len(statuses)]
        role = "chair" if i == 0 else "secretary" if i == 1 else "attendee"
        attendees.append(
            Attendee(
                name=name,
                seat=f"A{i + 1:02d}",
                role=role,
                status=status,
                checkin_at=None if status == "absent" else f"2025-03-01T01:{25 + i % 30:02d}:00+00:00",
                checkout_at="2025-03-01T02:40:00Z" if status == "left-early" else None,
                proxy_reason="因公出差，已请假" if status == "absent" else None,
                signature=[] if status == "absent" else scribble(i),
            )
        )
    agenda = [
        AgendaItem(
            title="审议《关于2024年度预算执行情况的报告》",
            presenter="财政局 李秀英",
            duration_minutes=30,
            notes="## 报告要点\n\n- 一般公共预算收入完成 **102.3%**\n- 重点支出保障有力\n"
            "- 部分项目执行进度偏慢\n\n与会人员提出：\n1. 加快项目资金拨付；\n2. 加强绩效评价。",
            decisions=["原则同意该报告。", "请财政局根据审议意见修改完善后报送。"],
        ),
        AgendaItem(
            title="听取城市更新工作进展情况汇报",
            presenter="住建局 张伟",
            duration_minutes=20,
            notes="会议听取了汇报。\n> 老旧小区改造任务已完成 86%。\n\n"
            "| 项目 | 计划 | 完成 |\n| --- | --- | --- |\n| 老旧小区 | 120 | 103 |\n| 背街小巷 | 45 | 40 |",
            decisions=["要求年底前全部完成改造任务。"],
        ),
        AgendaItem(title="人事任免事项", presenter="组织部 陈静", duration_minutes=15, notes=""),
    ]
    named = [(a.name, "赞成" if i % 7 else "反对") for i, a in enumerate(attendees) if a.status != "absent"]
    polls = [
        Poll(
            title="关于2024年度预算执行情况报告的决议（草案）",
            kind="yes-no",
            secret=False,
            rule="赞成票超过应投票数的半数通过",
            eligible=18,
            present=16,
            cast=16,
            options=["赞成", "反对", "弃权"],
            tally=[13, 2, 1],
            outcome="通过",
            named_votes=named,
            closed_at="2025-03-01T02:10:00Z",
        ),
        Poll(
            title="任命王某某为市城市管理局局长",
            kind="yes-no",
            secret=True,
            rule="赞成票超过应投票数的半数通过（加权）",
            eligible=18,
            present=16,
            cast=15.5,
            options=["赞成", "反对", "弃权"],
            tally=[14.5, 0.5, 0.5],
            outcome="通过",
        ),
    ]
    return MinutesData(
        title=TITLE,
        location="市人大常委会第一会议室",
        starts_at="2025-03-01T01:30:00Z",
        started_at="2025-03-01T01:32:00Z",
        ended_at="2025-03-01T03:05:00Z",
        chair="王建国",
        secretary="李秀英",
        attendees=attendees,
        agenda=agenda,
        polls=polls,
        approvals=[
            Approval(who="李秀英", role="秘书长", at="2025-03-02T02:00:00Z", action="submitted"),
            Approval(who="王建国", role="主任", at="2025-03-03T06:30:00Z", action="approved"),
        ],
        documents=[
            DocumentRef(
                title="2024年度预算执行情况的报告", filename="预算执行报告.pdf", pages=42, sha256="ab" * 32
            ),
            DocumentRef(title="城市更新工作进展", filename="城市更新.pptx", pages=18, sha256="cd" * 32),
        ],
        timezone="Asia/Shanghai",
    )


def text_of(pdf: bytes) -> str:
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        return "\n".join(page.get_text() for page in doc)


def squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return load_or_create_keys(tmp_path_factory.mktemp("data"), ORG)


@pytest.fixture(scope="module")
def seal():
    return make_seal_png(ORG)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_minutes_text_fonts_and_layout(lang, seal):
    m = sample_minutes()
    pdf = build_minutes_pdf(m, lang=lang, org_name=ORG, seal_png=seal)
    text = squash(text_of(pdf))
    assert squash(TITLE) in text
    assert squash(ORG) in text
    for a in m.attendees:
        assert a.name in text, a.name
    for p in m.polls:
        for v in p.tally:
            assert format_number(v) in text
    assert "14.5" in text and "0.5" in text
    for label in (
        ["会议纪要", "出席情况", "议程", "表决结果", "审批记录"] if lang == "zh" else ["Attendance", "Votes"]
    ):
        assert label in text
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        assert doc.page_count >= 2
        assert doc[0].rect.width == pytest.approx(595.28, abs=0.5)
        total = doc.page_count
        last = squash(doc[-1].get_text())
        assert (f"第{total}页/共{total}页" if lang == "zh" else f"Page{total}of{total}") in last
        fonts = {f[0]: f for page in doc for f in page.get_fonts()}
        assert any("Droid Sans Fallback" in f[3] for f in fonts.values()), "CJK font missing"
        for xref, ext, _type, basefont, *_ in fonts.values():
            assert ext in ("ttf", "otf", "cff"), f"font {basefont} is not embedded"
            assert re.match(r"^[A-Z]{6}\+", basefont), f"font {basefont} is not subset"
            # the full font is 3.5 MB; the subset holds only the glyphs used
            assert len(doc.extract_font(xref)[3]) < 1_000_000
        # signatures are vector lines in the attendance table, not images
        drawings = [d for page in doc for d in page.get_drawings()]
        strokes = sum(1 for a in m.attendees for _ in a.signature)
        assert len(drawings) >= strokes
        # the seal is stamped on the last page, and its spot is recorded for sign_pdf
        assert doc[-1].get_images()
        assert doc.xref_get_key(int(doc.xref_get_key(-1, "Info")[1].split()[0]), SEAL_SPOT_KEY)[0] == "array"
        assert not [w for page in doc for w in page.widgets()]
    assert len(pdf) < 400_000


def test_attendance_table_breaks_across_pages():
    m = sample_minutes(n_attendees=120)
    pdf = build_minutes_pdf(m, lang="zh", org_name=ORG)
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        pages_with_header = [i for i, page in enumerate(doc) if "签到" in page.get_text()]
        assert len(pages_with_header) >= 3  # the header repeats on every page of the table
        text = squash("".join(page.get_text() for page in doc))
        # no row is lost at a break
        for a in m.attendees:
            assert a.name in text
        for page in doc:  # nothing printed outside the page
            for b in page.get_text("blocks"):
                assert b[3] <= page.rect.height - 20


def test_dict_input_and_plain_notes():
    m = {
        "title": "Board meeting",
        "attendees": [{"name": "Ada", "status": "present"}],
        "agenda": [{"title": "Budget", "notes": "line one\nline two"}],
        "polls": [],
        "draft": True,
        "started_at": "yesterday morning",
    }
    pdf = build_minutes_pdf(m, lang="en", org_name="ACME")
    text = text_of(pdf)
    assert "DRAFT" in text and "yesterday morning" in text
    assert "line one\nline two" in text
    assert "No votes were taken." in text
    with pytest.raises(TypeError):
        MinutesData.from_dict({"title": "x", "nonsense": 1})
    with pytest.raises(ValueError):
        build_minutes_pdf(m, lang="fr")


def test_format_number():
    assert [format_number(x) for x in (3, 3.0, 2.5, 1 / 3, None)] == ["3", "3", "2.5", "0.333", "—"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_signed_minutes_validate(lang, keys, seal):
    pdf = build_minutes_pdf(sample_minutes(), lang=lang, org_name=ORG, seal_png=seal)
    signed = sign_pdf(pdf, keys, seal, reason="会议纪要审批通过", location="市人大常委会")
    r = PdfFileReader(io.BytesIO(signed))
    (sig,) = r.embedded_signatures
    assert sig.field_name == "Seal"
    vc = ValidationContext(trust_roots=[sig.signer_cert])
    status = validate_pdf_signature(sig, vc)
    assert status.intact and status.valid and status.trusted
    assert status.coverage.name == "ENTIRE_FILE"
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    # the text survives signing; the visible signature sits on the recorded seal spot
    assert squash(TITLE) in squash(text_of(signed))
    with pymupdf.open(stream=signed, filetype="pdf") as doc:
        (w,) = doc[-1].widgets()
        assert w.field_type_string == "Signature"
        info = int(doc.xref_get_key(-1, "Info")[1].split()[0])
        spot = [float(v) for v in doc.xref_get_key(info, SEAL_SPOT_KEY)[1].strip("[]").split()]
        h = doc[-1].rect.height
        assert w.rect.x0 == pytest.approx(spot[1], abs=1) and w.rect.y1 == pytest.approx(h - spot[2], abs=1)


def test_sign_pdf_without_a_seal_field(keys, seal):
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "plain")
    signed = sign_pdf(doc.tobytes(), keys, seal, reason="r", location="l")
    (sig,) = PdfFileReader(io.BytesIO(signed)).embedded_signatures
    assert sig.field_name == "Seal"
    # a second signature takes a new field
    twice = sign_pdf(signed, keys, None, reason="r2", location="l")
    assert [s.field_name for s in PdfFileReader(io.BytesIO(twice)).embedded_signatures] == ["Seal", "Seal2"]
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=[sig.signer_cert]))
    assert status.intact and status.valid
