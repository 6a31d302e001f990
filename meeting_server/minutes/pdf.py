"""Minutes of a meeting as a printable A4 PDF.

Pure: plain dataclasses in, PDF bytes out; no Flask, no database. The core
app maps its models onto :class:`MinutesData` (or a dict of the same shape,
see :meth:`MinutesData.from_dict`) and calls :func:`build_minutes_pdf`.

All text is set in the CJK font bundled with PyMuPDF (``pymupdf.Font("cjk")``,
Droid Sans Fallback, which has Latin glyphs too), embedded and subset, so the
file prints the same on any machine. Layout is done here, line by line, so
that tables break across pages with their header repeated and finger
signatures can be drawn as vector lines inside the attendance table.

The seal spot after the approval record is recorded in the document
information dictionary (``SEAL_SPOT_KEY``);
:func:`meeting_server.archive.keys.sign_pdf` puts the PAdES signature there,
with the seal image as its appearance.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pymupdf
from markdown_it import MarkdownIt

__all__ = [
    "AgendaItem",
    "Approval",
    "Attendee",
    "DocumentRef",
    "MinutesData",
    "Poll",
    "SEAL_SPOT_KEY",
    "build_minutes_pdf",
    "format_number",
]

#: Key in the PDF's document information dictionary that records the seal
#: spot: ``[page_index x0 y0 x1 y1]`` in PDF user space (origin bottom left).
SEAL_SPOT_KEY = "MeetingServerSealSpot"

Stroke = list[list[float]]
When = datetime | str | None


# --------------------------------------------------------------------------- data


@dataclass
class Attendee:
    name: str
    seat: str | None = None
    #: attendee | chair | presenter | secretary | observer (other text is shown as is)
    role: str = "attendee"
    #: present | late | absent | left-early
    status: str = "present"
    checkin_at: When = None
    checkout_at: When = None
    #: why the person is absent or represented (shown under the status)
    proxy_reason: str | None = None
    #: finger signature: strokes, each a list of [x, y] in 0..1 of the signing pad
    signature: list[Stroke] = field(default_factory=list)
    #: width / height of the signing pad, so strokes keep their shape
    signature_aspect: float = 3.0


@dataclass
class AgendaItem:
    title: str
    presenter: str | None = None
    duration_minutes: int | None = None
    #: Markdown or plain text (a newline is a line break)
    notes: str = ""
    decisions: list[str] = field(default_factory=list)


@dataclass
class Poll:
    title: str
    options: list[str] = field(default_factory=list)
    #: votes (or weights) per option, in option order
    tally: list[float] = field(default_factory=list)
    #: single | multiple | yes-no | election | scoring ... (other text is shown as is)
    kind: str = "single"
    secret: bool = False
    #: the majority / quorum rule in words, e.g. "过半数通过 / simple majority"
    rule: str = ""
    eligible: float | None = None
    present: float | None = None
    cast: float | None = None
    #: e.g. "通过 / adopted"
    outcome: str = ""
    #: roll-call (named) votes: [name, choice text]
    named_votes: list[tuple[str, str]] = field(default_factory=list)
    closed_at: When = None


@dataclass
class Approval:
    who: str
    role: str = ""
    at: When = None
    #: drafted | submitted | reviewed | approved | rejected | signed (other text as is)
    action: str = "approved"


@dataclass
class DocumentRef:
    title: str
    filename: str | None = None
    pages: int | None = None
    sha256: str | None = None


@dataclass
class MinutesData:
    title: str
    location: str = ""
    starts_at: When = None
    started_at: When = None
    ended_at: When = None
    chair: str = ""
    secretary: str = ""
    attendees: list[Attendee] = field(default_factory=list)
    agenda: list[AgendaItem] = field(default_factory=list)
    polls: list[Poll] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    documents: list[DocumentRef] = field(default_factory=list)
    #: IANA zone the times are printed in (stored times are UTC)
    timezone: str = "UTC"
    #: prints a "draft" watermark on every page
    draft: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MinutesData:
        """Build from plain dicts/lists (e.g. JSON); unknown keys are refused."""
        nested = {
            "attendees": Attendee,
            "agenda": AgendaItem,
            "polls": Poll,
            "approvals": Approval,
            "documents": DocumentRef,
        }
        kw: dict[str, Any] = {}
        for k, v in d.items():
            if k in nested:
                kw[k] = [x if isinstance(x, nested[k]) else _from_dict(nested[k], x) for x in v or []]
            else:
                kw[k] = v
        return _from_dict(cls, kw)


def _from_dict(cls: type, d: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise TypeError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
    return cls(**d)


# --------------------------------------------------------------------------- words

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "minutes": "会议纪要",
        "details": "基本信息",
        "attendance": "出席情况",
        "agenda": "议程与议定事项",
        "polls": "表决结果",
        "documents": "会议材料",
        "approval": "审批记录",
        "scheduled": "会议时间",
        "held": "实际时间",
        "location": "会议地点",
        "chair": "主持人",
        "secretary": "记录人",
        "summary": "出席统计",
        "summary_fmt": "应到 {expected} 人，实到 {present} 人（其中迟到 {late} 人，早退 {left} 人），缺席 {absent} 人",
        "observers_fmt": "；列席 {n} 人",
        "no": "序号",
        "name": "姓名",
        "seat": "席位",
        "role": "身份",
        "status": "状态",
        "checkin": "签到",
        "checkout": "签退",
        "signature": "签名",
        "presenter": "汇报人",
        "duration": "时长",
        "minutes_unit": "{n} 分钟",
        "decisions": "议定事项",
        "no_agenda": "本次会议无议程记录。",
        "no_polls": "本次会议未进行表决。",
        "no_documents": "本次会议无书面材料。",
        "no_approval": "尚未审批。",
        "named": "记名表决",
        "secret": "无记名表决",
        "secret_note": "无记名表决：选票不与投票人关联，仅记录总数。",
        "rule": "规则",
        "eligible": "应投",
        "present_n": "出席",
        "cast": "实投",
        "option": "选项",
        "votes": "票数",
        "share": "占实投比例",
        "outcome": "表决结果",
        "named_votes": "记名表决明细",
        "choice": "表决意见",
        "doc_title": "材料名称",
        "pages": "页数",
        "sha256": "SHA-256",
        "who": "姓名",
        "job": "职务",
        "action": "操作",
        "at": "时间",
        "draft": "草 稿",
        "page_fmt": "第 {n} 页 / 共 {total} 页",
        "tz_fmt": "（{tz}）",
        "to": " 至 ",
        "held_fmt": "{start}{to}{end}（历时 {dur}）",
        "dur_fmt_h": "{h} 小时 {m} 分钟",
        "dur_fmt_m": "{m} 分钟",
        "sep": "，",
        "colon": "：",
    },
    "en": {
        "minutes": "Minutes",
        "details": "Meeting details",
        "attendance": "Attendance",
        "agenda": "Agenda and decisions",
        "polls": "Votes",
        "documents": "Documents",
        "approval": "Approval record",
        "scheduled": "Scheduled",
        "held": "Held",
        "location": "Location",
        "chair": "Chair",
        "secretary": "Secretary",
        "summary": "Attendance",
        "summary_fmt": "{expected} expected, {present} present ({late} late, {left} left early), {absent} absent",
        "observers_fmt": "; {n} observers",
        "no": "No.",
        "name": "Name",
        "seat": "Seat",
        "role": "Role",
        "status": "Status",
        "checkin": "In",
        "checkout": "Out",
        "signature": "Signature",
        "presenter": "Presenter",
        "duration": "Duration",
        "minutes_unit": "{n} min",
        "decisions": "Decisions",
        "no_agenda": "No agenda was recorded.",
        "no_polls": "No votes were taken.",
        "no_documents": "No documents were distributed.",
        "no_approval": "Not yet approved.",
        "named": "Roll-call vote",
        "secret": "Secret ballot",
        "secret_note": "Secret ballot: ballots are not linked to voters; only totals are kept.",
        "rule": "Rule",
        "eligible": "Eligible",
        "present_n": "Present",
        "cast": "Cast",
        "option": "Option",
        "votes": "Votes",
        "share": "Share of cast",
        "outcome": "Result",
        "named_votes": "Roll call",
        "choice": "Vote",
        "doc_title": "Title",
        "pages": "Pages",
        "sha256": "SHA-256",
        "who": "Name",
        "job": "Role",
        "action": "Action",
        "at": "Time",
        "draft": "DRAFT",
        "page_fmt": "Page {n} of {total}",
        "tz_fmt": " ({tz})",
        "to": " – ",
        "held_fmt": "{start}{to}{end} ({dur})",
        "dur_fmt_h": "{h} h {m} min",
        "dur_fmt_m": "{m} min",
        "sep": ", ",
        "colon": ": ",
    },
}

ROLES = {
    "zh": {
        "attendee": "成员",
        "chair": "主持人",
        "presenter": "汇报人",
        "secretary": "记录人",
        "observer": "列席",
    },
    "en": {
        "attendee": "Member",
        "chair": "Chair",
        "presenter": "Presenter",
        "secretary": "Secretary",
        "observer": "Observer",
    },
}
STATUSES = {
    "zh": {"present": "出席", "late": "迟到", "absent": "缺席", "left-early": "早退"},
    "en": {"present": "Present", "late": "Late", "absent": "Absent", "left-early": "Left early"},
}
KINDS = {
    "zh": {
        "single": "单选",
        "multiple": "多选",
        "yes-no": "赞成/反对/弃权",
        "yes_no": "赞成/反对/弃权",
        "election": "选举",
        "scoring": "评分",
        "rating": "评议",
    },
    "en": {
        "single": "single choice",
        "multiple": "multiple choice",
        "yes-no": "yes / no / abstain",
        "yes_no": "yes / no / abstain",
        "election": "election",
        "scoring": "scoring",
        "rating": "rating",
    },
}
ACTIONS = {
    "zh": {
        "drafted": "起草",
        "submitted": "提交",
        "reviewed": "审核",
        "approved": "批准",
        "rejected": "退回",
        "signed": "签发",
    },
    "en": {
        "drafted": "Drafted",
        "submitted": "Submitted",
        "reviewed": "Reviewed",
        "approved": "Approved",
        "rejected": "Returned",
        "signed": "Signed",
    },
}
ZH_NUMERALS = "零一二三四五六七八九十"
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def _zh_number(n: int) -> str:
    if n <= 10:
        return ZH_NUMERALS[n]
    if n < 20:
        return "十" + ZH_NUMERALS[n - 10]
    if n < 100:
        return ZH_NUMERALS[n // 10] + "十" + (ZH_NUMERALS[n % 10] if n % 10 else "")
    return str(n)


def format_number(x: float | int | None) -> str:
    """How a count or a weighted tally is printed: 12, 12.5, 0.333."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        x = int(x)
    if isinstance(x, int) or float(x).is_integer():
        return str(int(x))
    return f"{float(x):.3f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- look

PAGE_W, PAGE_H = pymupdf.paper_size("a4")
MARGIN_L = 56.0
MARGIN_R = 56.0
MARGIN_T = 62.0
MARGIN_B = 60.0
CONTENT_W = PAGE_W - MARGIN_L - MARGIN_R

INK = (0.11, 0.11, 0.13)
MUTED = (0.42, 0.42, 0.46)
RED = (0.78, 0.06, 0.06)
RULE = (0.72, 0.72, 0.76)
HEAD_FILL = (0.93, 0.94, 0.96)
ZEBRA = (0.975, 0.978, 0.985)
PEN = (0.05, 0.16, 0.48)
BAR = (0.72, 0.80, 0.92)
ABSENT = (0.62, 0.16, 0.16)

BODY = 10.0
SMALL = 8.5
LEADING = 1.55

_CJK = r"\u2e80-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef\U00020000-\U0002fa1f"
_TOKEN = re.compile(rf"\n|[ \t\r\f\v]+|[{_CJK}]|[^\s{_CJK}]+")
#: characters that must not start a line (they stay on the previous one)
_NO_LINE_START = set("，。、；：？！）」』》〉】”’,.;:?!)]%")


@lru_cache(maxsize=1)
def _font() -> pymupdf.Font:
    return pymupdf.Font("cjk")


@lru_cache(maxsize=8192)
def _advance(ch: str) -> float:
    return _font().text_length(ch, fontsize=1.0)


def _width(text: str, size: float) -> float:
    # per-character advances, cached: TextWriter sets glyphs without kerning
    return sum(map(_advance, text)) * size


Run = tuple[str, bool]  # text, bold


@dataclass
class _Line:
    runs: list[Run]
    width: float


def _wrap(runs: Sequence[Run], size: float, width: float) -> list[_Line]:
    """Greedy line filling: Latin words stay whole, CJK breaks between characters."""
    lines: list[_Line] = []
    cur: list[Run] = []
    cur_w = 0.0

    def push(text: str, bold: bool, w: float) -> None:
        nonlocal cur_w
        if cur and cur[-1][1] == bold:
            cur[-1] = (cur[-1][0] + text, bold)
        else:
            cur.append((text, bold))
        cur_w += w

    def flush() -> None:
        nonlocal cur, cur_w
        # trailing spaces take no room
        while cur and not cur[-1][0].strip():
            cur.pop()
        if cur:
            cur[-1] = (cur[-1][0].rstrip(), cur[-1][1])
        lines.append(_Line(cur, sum(_width(t, size) for t, _ in cur)))
        cur, cur_w = [], 0.0

    for text, bold in runs:
        for tok in _TOKEN.findall(text):
            if tok == "\n":
                flush()
                continue
            w = _width(tok, size)
            if tok.isspace():
                if cur and cur_w + w <= width:
                    push(tok, bold, w)
                continue
            if cur_w + w <= width or (tok in _NO_LINE_START and cur):
                push(tok, bold, w)
                continue
            if cur:
                flush()
            if w <= width:
                push(tok, bold, w)
                continue
            # a word longer than the line (a hash, a URL): break it anywhere
            for ch in tok:
                cw = _width(ch, size)
                if cur and cur_w + cw > width:
                    flush()
                push(ch, bold, cw)
    if cur or not lines:
        flush()
    return lines


def _runs(text: str, bold: bool = False) -> list[Run]:
    return [(text, bold)]


# --------------------------------------------------------------------------- times


def _tz(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _as_dt(value: When) -> datetime | None:
    """A datetime in UTC if none is given; None for empty or unparseable values."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _fmt_dt(value: When, tz: ZoneInfo, lang: str, style: str = "datetime") -> str:
    dt = _as_dt(value)
    if dt is None:
        if isinstance(value, str) and value.strip():
            return value.strip()  # not ISO 8601: print what was given rather than fail
        return "—" if style != "datetime" else ""
    dt = dt.astimezone(tz)
    if style == "time":
        return dt.strftime("%H:%M")
    if lang == "zh":
        date = f"{dt.year}年{dt.month}月{dt.day}日"
    else:
        date = f"{dt.day} {MONTHS[dt.month - 1]} {dt.year}"  # not %b: that follows the locale
    if style == "date":
        return date
    if style == "short":
        return dt.strftime("%Y-%m-%d %H:%M")
    return f"{date} {dt.strftime('%H:%M')}"


def _utc_offset(tz: ZoneInfo, at: When) -> str:
    dt = _as_dt(at) or datetime.now(UTC)
    off = dt.astimezone(tz).utcoffset() or timedelta(0)
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    mins = abs(mins)
    return f"UTC{sign}{mins // 60:02d}:{mins % 60:02d}"


# --------------------------------------------------------------------------- canvas


@dataclass
class _Cell:
    text: str = ""
    bold: bool = False
    color: tuple[float, float, float] = INK
    size: float = 9.0
    align: str = "left"
    #: extra smaller line under the text (e.g. a reason)
    note: str = ""
    #: custom drawing inside the cell rect (signatures, bars)
    draw: Callable[[_Canvas, pymupdf.Rect], None] | None = None


@dataclass
class _Col:
    title: str
    width: float
    align: str = "left"


class _Canvas:
    """A flowing A4 document: a cursor `y`, page breaks, batched text and lines."""

    def __init__(self, lang: str, org_name: str, title: str, draft: bool) -> None:
        self.lang = lang
        self.L = LABELS[lang]
        self.org_name = org_name
        self.title = title
        self.draft = draft
        self.doc = pymupdf.open()
        self.page: pymupdf.Page | None = None
        self.shape: pymupdf.Shape | None = None
        #: text in drawing order, one writer per run of the same colour (reading order)
        self._writers: list[tuple[tuple[float, ...], bool, pymupdf.TextWriter]] = []
        self.y = 0.0
        self.top = MARGIN_T
        self.bottom = PAGE_H - MARGIN_B

    # pages ---------------------------------------------------------------
    def new_page(self) -> None:
        self._flush()
        self.page = self.doc.new_page(width=PAGE_W, height=PAGE_H)
        self.shape = self.page.new_shape()
        self.y = self.top
        if self.doc.page_count > 1:
            self._running_header()

    def _flush(self) -> None:
        if self.page is None:
            return
        assert self.shape is not None
        self.shape.commit()
        for color, bold, tw in self._writers:
            tw.write_text(self.page, color=color, render_mode=2 if bold else 0)
        self._writers = []

    def finish(self) -> pymupdf.Document:
        self._flush()
        total = self.doc.page_count
        for i, page in enumerate(self.doc):
            self.page = page
            self.shape = page.new_shape()
            if self.draft:
                self._watermark()
            text = self.L["page_fmt"].format(n=i + 1, total=total)
            self.text_at(PAGE_W / 2, PAGE_H - 34, text, SMALL, MUTED, align="center")
            self._flush()
        self.page = None
        return self.doc

    def _running_header(self) -> None:
        y = MARGIN_T - 22
        self.text_at(MARGIN_L, y, self.org_name, SMALL, MUTED)
        title = self.title
        room = CONTENT_W - _width(self.org_name, SMALL) - 24
        while title and _width(title, SMALL) > room:
            title = title[:-2] + "…"
        self.text_at(PAGE_W - MARGIN_R, y, title, SMALL, MUTED, align="right")
        self.hline(y + 6, RULE, 0.5)

    def _watermark(self) -> None:
        assert self.page is not None
        size = 96
        text = self.L["draft"]
        w = _width(text, size)
        tw = pymupdf.TextWriter(self.page.rect, opacity=0.08)
        c = pymupdf.Point(PAGE_W / 2, PAGE_H / 2)
        tw.append((c.x - w / 2, c.y + size * 0.35), text, font=_font(), fontsize=size)
        tw.write_text(self.page, color=RED, morph=(c, pymupdf.Matrix(-35)))

    # primitives ----------------------------------------------------------
    def text_at(
        self,
        x: float,
        baseline: float,
        text: str,
        size: float = BODY,
        color: tuple[float, float, float] = INK,
        bold: bool = False,
        align: str = "left",
    ) -> float:
        if not text:
            return 0.0
        w = _width(text, size)
        if align == "center":
            x -= w / 2
        elif align == "right":
            x -= w
        key = (tuple(color), bold)
        if self._writers and self._writers[-1][:2] == key:
            tw = self._writers[-1][2]
        else:
            assert self.page is not None
            tw = pymupdf.TextWriter(self.page.rect)
            self._writers.append((*key, tw))
        tw.append((x, baseline), text, font=_font(), fontsize=size)
        return w

    def draw_line(self, x: float, y: float, runs: Sequence[Run], size: float, color) -> None:
        for text, bold in runs:
            x += self.text_at(x, y, text, size, color, bold)

    def hline(self, y: float, color=RULE, width: float = 0.6, x0=MARGIN_L, x1=PAGE_W - MARGIN_R) -> None:
        assert self.shape is not None
        self.shape.draw_line((x0, y), (x1, y))
        self.shape.finish(color=color, width=width)

    def rect(self, r: pymupdf.Rect, fill=None, color=None, width: float = 0.5) -> None:
        assert self.shape is not None
        self.shape.draw_rect(r)
        self.shape.finish(color=color, fill=fill, width=width if color else 0)

    def raw(self, ops: Iterable[str]) -> None:
        """Append PDF path operators (PDF space) in drawing order.

        Shape.draw_polyline costs ~80 us a point in Python; a hundred finger
        signatures of a few hundred points each would take seconds.
        """
        assert self.shape is not None
        self.shape.totalcont += "".join(ops)

    def ensure(self, h: float) -> None:
        if self.page is None or self.y + h > self.bottom:
            self.new_page()

    def space(self, h: float) -> None:
        self.y += h

    # flow ----------------------------------------------------------------
    def paragraph(
        self,
        runs: Sequence[Run],
        size: float = BODY,
        color=INK,
        indent: float = 0.0,
        first_prefix: str = "",
        align: str = "left",
        leading: float = LEADING,
        after: float = 4.0,
    ) -> None:
        """Wrapped text; a prefix (bullet, number) hangs to the left of the indent."""
        lh = size * leading
        x = MARGIN_L + indent
        lines = _wrap(runs, size, CONTENT_W - indent)
        for i, line in enumerate(lines):
            self.ensure(lh)
            base = self.y + lh * 0.5 + size * 0.36
            if i == 0 and first_prefix:
                self.text_at(x - 3, base, first_prefix, size, color, align="right")
            lx = x
            if align == "center":
                lx = MARGIN_L + (CONTENT_W - line.width) / 2
            elif align == "right":
                lx = PAGE_W - MARGIN_R - line.width
            self.draw_line(lx, base, line.runs, size, color)
            self.y += lh
        self.y += after

    def heading(self, text: str) -> None:
        """A section heading: kept with at least a few lines of what follows."""
        size = 13.0
        self.ensure(size * 2 + 60)
        self.y += 10
        base = self.y + size
        self.rect(pymupdf.Rect(MARGIN_L, self.y + 1.5, MARGIN_L + 3.5, base + 3), fill=RED)
        self.text_at(MARGIN_L + 10, base, text, size, INK, bold=True)
        self.y = base + 9

    def subheading(self, text: str, meta: str = "") -> None:
        size = 11.0
        self.ensure(size * 2 + 40)
        self.y += 4
        lines = _wrap(_runs(text, True), size, CONTENT_W)
        for line in lines:
            self.ensure(size * 1.5)
            self.draw_line(MARGIN_L, self.y + size, line.runs, size, INK)
            self.y += size * 1.5
        if meta:
            self.paragraph(_runs(meta), SMALL, MUTED, after=2)

    def key_values(self, rows: Iterable[tuple[str, str]], key_w: float = 76.0) -> None:
        size = BODY
        lh = size * LEADING
        for k, v in rows:
            lines = _wrap(_runs(v), size, CONTENT_W - key_w)
            self.ensure(lh * min(len(lines), 3))
            self.text_at(MARGIN_L, self.y + lh * 0.5 + size * 0.36, k, size, MUTED)
            for line in lines:
                self.ensure(lh)
                self.draw_line(MARGIN_L + key_w, self.y + lh * 0.5 + size * 0.36, line.runs, size, INK)
                self.y += lh
        self.y += 4

    def table(self, cols: Sequence[_Col], rows: Sequence[Sequence[_Cell]], min_row_h: float = 18.0) -> None:
        """A ruled table; rows never split, the header repeats on every page."""
        pad_x, pad_y = 4.0, 4.0
        head_size = 8.5
        head_h = head_size * 1.4 + 2 * pad_y
        xs = [MARGIN_L]
        for c in cols:
            xs.append(xs[-1] + c.width)

        def header() -> None:
            self.rect(pymupdf.Rect(MARGIN_L, self.y, xs[-1], self.y + head_h), fill=HEAD_FILL)
            for i, c in enumerate(cols):
                x = {"left": xs[i] + pad_x, "center": (xs[i] + xs[i + 1]) / 2, "right": xs[i + 1] - pad_x}[
                    c.align
                ]
                self.text_at(x, self.y + pad_y + head_size * 1.05, c.title, head_size, MUTED, True, c.align)
            self.hline(self.y + head_h, RULE, 0.8, MARGIN_L, xs[-1])
            self.y += head_h

        self.ensure(head_h + min_row_h)
        header()
        for r, row in enumerate(rows):
            laid = []
            h = min_row_h
            for i, cell in enumerate(row):
                inner = cols[i].width - 2 * pad_x
                lines = _wrap(_runs(cell.text, cell.bold), cell.size, inner) if cell.text else []
                notes = _wrap(_runs(cell.note), cell.size - 1.5, inner) if cell.note else []
                ch = len(lines) * cell.size * 1.4 + len(notes) * (cell.size - 1.5) * 1.4 + 2 * pad_y
                laid.append((lines, notes))
                h = max(h, ch)
            h = min(h, self.bottom - self.top - head_h)
            if self.y + h > self.bottom:
                self.new_page()
                header()
            if r % 2 == 1:
                self.rect(pymupdf.Rect(MARGIN_L, self.y, xs[-1], self.y + h), fill=ZEBRA)
            for i, cell in enumerate(row):
                lines, notes = laid[i]
                box = pymupdf.Rect(xs[i], self.y, xs[i + 1], self.y + h)
                if cell.draw is not None:
                    cell.draw(self, box)
                total = len(lines) * cell.size * 1.4 + len(notes) * (cell.size - 1.5) * 1.4
                ty = self.y + (h - total) / 2
                for line, size, color in [(ln, cell.size, cell.color) for ln in lines] + [
                    (ln, cell.size - 1.5, MUTED) for ln in notes
                ]:
                    if cell.align == "center":
                        x = (box.x0 + box.x1 - line.width) / 2
                    elif cell.align == "right":
                        x = box.x1 - pad_x - line.width
                    else:
                        x = box.x0 + pad_x
                    self.draw_line(x, ty + size * 1.4 * 0.5 + size * 0.36, line.runs, size, color)
                    ty += size * 1.4
            self.y += h
            self.hline(self.y, RULE, 0.4, MARGIN_L, xs[-1])
        self.y += 8


# --------------------------------------------------------------------------- pieces


def _pdf_num(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _signature_drawer(strokes: list[Stroke], aspect: float) -> Callable[[_Canvas, pymupdf.Rect], None]:
    """Finger strokes as vector paths, fitted into the cell with the pad's aspect."""

    def draw(c: _Canvas, cell: pymupdf.Rect) -> None:
        box = cell + (4, 3, -4, -3)
        a = aspect if aspect and aspect > 0 else 3.0
        w, h = box.width, box.height
        if w / h > a:
            w = h * a
        else:
            h = w / a
        x0 = box.x0 + (box.width - w) / 2
        y0 = box.y0 + (box.height - h) / 2
        lw = max(0.5, h / 34)
        ops = [f"q {PEN[0]} {PEN[1]} {PEN[2]} RG {_pdf_num(lw)} w 1 J 1 j\n"]
        for stroke in strokes:
            path: list[str] = []
            last: tuple[float, float] | None = None
            for p in stroke:
                try:
                    px, py = float(p[0]), float(p[1])
                except (TypeError, ValueError, IndexError):
                    continue
                if not (math.isfinite(px) and math.isfinite(py)):
                    continue
                x = x0 + min(max(px, 0.0), 1.0) * w
                y = PAGE_H - (y0 + min(max(py, 0.0), 1.0) * h)  # PDF space: origin bottom left
                # points closer than a fifth of a point cannot be seen on paper
                if last is not None and abs(x - last[0]) + abs(y - last[1]) < 0.2:
                    continue
                path.append(f"{_pdf_num(x)} {_pdf_num(y)} {'l' if path else 'm'}")
                last = (x, y)
            if len(path) == 1:  # a dot: a zero-length line with round caps
                path.append(path[0][:-1] + "l")
            if path:
                ops.append(" ".join(path) + " S\n")
        ops.append("Q\n")
        c.raw(ops)

    return draw


def _bar_drawer(share: float) -> Callable[[_Canvas, pymupdf.Rect], None]:
    def draw(c: _Canvas, cell: pymupdf.Rect) -> None:
        inner = cell + (4, 5, -44, -5)
        if inner.width <= 0:
            return
        c.rect(inner, fill=(0.94, 0.95, 0.97))
        if share > 0:
            c.rect(
                pymupdf.Rect(inner.x0, inner.y0, inner.x0 + inner.width * min(share, 1.0), inner.y1), fill=BAR
            )

    return draw


_md = MarkdownIt("commonmark", {"breaks": True, "html": False}).enable("table")


def _inline_runs(children: list[Any] | None) -> list[Run]:
    runs: list[Run] = []
    bold = 0
    for t in children or []:
        if t.type == "strong_open":
            bold += 1
        elif t.type == "strong_close":
            bold = max(0, bold - 1)
        elif t.type in ("text", "code_inline"):
            runs.append((t.content, bold > 0))
        elif t.type in ("softbreak", "hardbreak"):  # a typed newline is a line break
            runs.append(("\n", False))
        elif t.type == "image":
            runs.append((t.content or "", bold > 0))
    return runs


def _markdown(c: _Canvas, text: str, indent: float = 0.0) -> None:
    """Render notes: paragraphs, headings, lists, quotes, code and tables."""
    tokens = _md.parse(text or "")
    lists: list[list[int]] = []  # per open list: [ordered(0/1), counter]
    quote = 0
    i = 0
    pending_prefix = ""
    while i < len(tokens):
        t = tokens[i]
        ind = indent + 16 * len(lists) + 12 * quote
        if t.type in ("bullet_list_open", "ordered_list_open"):
            start = int(t.attrGet("start") or 1)
            lists.append([1 if t.type == "ordered_list_open" else 0, start - 1])
        elif t.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                c.y += 2
        elif t.type == "list_item_open":
            lists[-1][1] += 1
            pending_prefix = f"{lists[-1][1]}." if lists[-1][0] else ("•" if len(lists) % 2 else "◦")
        elif t.type == "blockquote_open":
            quote += 1
        elif t.type == "blockquote_close":
            quote -= 1
        elif t.type == "heading_open":
            inline = tokens[i + 1]
            size = {1: 11.5, 2: 11.0}.get(int(t.tag[1]), 10.5)
            c.paragraph([(r[0], True) for r in _inline_runs(inline.children)], size, INK, ind, after=2)
            i += 2
        elif t.type == "paragraph_open":
            inline = tokens[i + 1]
            c.paragraph(
                _inline_runs(inline.children),
                BODY,
                MUTED if quote else INK,
                ind,
                first_prefix=pending_prefix,
                after=2 if lists else 4,
            )
            pending_prefix = ""
            i += 1
        elif t.type in ("fence", "code_block"):
            c.paragraph(_runs(t.content.rstrip("\n")), SMALL, MUTED, ind + 8, after=4)
        elif t.type == "hr":
            c.ensure(10)
            c.hline(c.y + 4, RULE, 0.4, MARGIN_L + ind)
            c.y += 10
        elif t.type == "table_open":
            i = _md_table(c, tokens, i, ind)
        i += 1


def _md_table(c: _Canvas, tokens: list[Any], i: int, indent: float) -> int:
    head: list[str] = []
    rows: list[list[str]] = []
    row: list[str] | None = None
    in_head = False
    while i < len(tokens) and tokens[i].type != "table_close":
        t = tokens[i]
        if t.type == "thead_open":
            in_head = True
        elif t.type == "thead_close":
            in_head = False
        elif t.type == "tr_open":
            row = []
        elif t.type == "tr_close" and row is not None:
            if in_head:
                head = row
            else:
                rows.append(row)
            row = None
        elif t.type == "inline" and row is not None:
            row.append("".join(r[0] for r in _inline_runs(t.children)))
        i += 1
    n = max([len(head)] + [len(r) for r in rows] + [1])
    w = CONTENT_W / n
    cols = [_Col(h, w) for h in head + [""] * (n - len(head))]
    c.table(cols, [[_Cell(x) for x in r + [""] * (n - len(r))] for r in rows], min_row_h=16)
    return i


# --------------------------------------------------------------------------- sections


def _section_title(c: _Canvas, n: int, key: str) -> None:
    if c.lang == "zh":
        c.heading(f"{_zh_number(n)}、{c.L[key]}")
    else:
        c.heading(f"{n}. {c.L[key]}")


def _title_block(c: _Canvas, m: MinutesData) -> None:
    c.new_page()
    # the red head of an official document
    if c.org_name:
        size = 22.0
        lines = _wrap(_runs(c.org_name, True), size, CONTENT_W)
        y = MARGIN_T - 14
        for line in lines:
            c.draw_line(MARGIN_L + (CONTENT_W - line.width) / 2, y + size, line.runs, size, RED)
            y += size * 1.3
        y += 8
        c.hline(y, RED, 2.0)
        c.hline(y + 3.2, RED, 0.6)
        c.y = y + 22
    size = 18.0
    c.paragraph(_runs(m.title, True), size, INK, align="center", leading=1.45, after=2)
    if "纪要" not in m.title and "minutes" not in m.title.lower():
        c.paragraph(_runs(c.L["minutes"]), 11, MUTED, align="center", after=4)
    c.y += 6


def _details(c: _Canvas, m: MinutesData, tz: ZoneInfo, tz_label: str) -> None:
    L = c.L
    rows: list[tuple[str, str]] = []
    if m.starts_at:
        rows.append((L["scheduled"], _fmt_dt(m.starts_at, tz, c.lang) + L["tz_fmt"].format(tz=tz_label)))
    start, end = _as_dt(m.started_at), _as_dt(m.ended_at)
    if start:
        if end:
            mins = max(0, int((end - start).total_seconds() // 60))
            dur = (
                L["dur_fmt_h"].format(h=mins // 60, m=mins % 60)
                if mins >= 60
                else L["dur_fmt_m"].format(m=mins)
            )
            same_day = start.astimezone(tz).date() == end.astimezone(tz).date()
            end_s = _fmt_dt(end, tz, c.lang, "time" if same_day else "datetime")
            held = L["held_fmt"].format(start=_fmt_dt(start, tz, c.lang), to=L["to"], end=end_s, dur=dur)
        else:
            held = _fmt_dt(start, tz, c.lang)
        rows.append((L["held"], held))
    elif m.started_at:
        rows.append((L["held"], _fmt_dt(m.started_at, tz, c.lang)))
    if m.location:
        rows.append((L["location"], m.location))
    if m.chair:
        rows.append((L["chair"], m.chair))
    if m.secretary:
        rows.append((L["secretary"], m.secretary))
    members = [a for a in m.attendees if a.role != "observer"]
    if m.attendees:
        count = {s: sum(1 for a in members if a.status == s) for s in STATUSES["en"]}
        present = count["present"] + count["late"] + count["left-early"]
        summary = L["summary_fmt"].format(
            expected=len(members),
            present=present,
            late=count["late"],
            left=count["left-early"],
            absent=count["absent"],
        )
        observers = len(m.attendees) - len(members)
        if observers:
            summary += L["observers_fmt"].format(n=observers)
        rows.append((L["summary"], summary))
    c.key_values(rows, key_w=76 if c.lang == "zh" else 84)


def _attendance(c: _Canvas, m: MinutesData, tz: ZoneInfo) -> None:
    L, lang = c.L, c.lang
    signed = any(a.signature for a in m.attendees)
    widths = [26, 92, 40, 52, 66, 40, 40]
    widths.append(CONTENT_W - sum(widths))
    cols = [
        _Col(L["no"], widths[0], "center"),
        _Col(L["name"], widths[1]),
        _Col(L["seat"], widths[2], "center"),
        _Col(L["role"], widths[3]),
        _Col(L["status"], widths[4]),
        _Col(L["checkin"], widths[5], "center"),
        _Col(L["checkout"], widths[6], "center"),
        _Col(L["signature"], widths[7], "center"),
    ]
    rows = []
    for n, a in enumerate(m.attendees, 1):
        absent = a.status == "absent"
        rows.append(
            [
                _Cell(str(n), color=MUTED, align="center"),
                _Cell(a.name, bold=a.role == "chair"),
                _Cell(a.seat or "—", align="center"),
                _Cell(ROLES[lang].get(a.role, a.role)),
                _Cell(
                    STATUSES[lang].get(a.status, a.status),
                    color=ABSENT if absent else INK,
                    note=a.proxy_reason or "",
                ),
                _Cell(_fmt_dt(a.checkin_at, tz, lang, "time"), align="center"),
                _Cell(_fmt_dt(a.checkout_at, tz, lang, "time"), align="center"),
                _Cell(draw=_signature_drawer(a.signature, a.signature_aspect) if a.signature else None),
            ]
        )
    c.table(cols, rows, min_row_h=32 if signed else 18)


def _agenda(c: _Canvas, m: MinutesData) -> None:
    L, lang = c.L, c.lang
    if not m.agenda:
        c.paragraph(_runs(L["no_agenda"]), BODY, MUTED)
        return
    for n, item in enumerate(m.agenda, 1):
        label = f"（{_zh_number(n)}）{item.title}" if lang == "zh" else f"{n}. {item.title}"
        meta = []
        if item.presenter:
            meta.append(f"{L['presenter']}{L['colon']}{item.presenter}")
        if item.duration_minutes:
            meta.append(f"{L['duration']}{L['colon']}{L['minutes_unit'].format(n=item.duration_minutes)}")
        c.subheading(label, "    ".join(meta))
        if item.notes and item.notes.strip():
            _markdown(c, item.notes, indent=0)
        if item.decisions:
            c.paragraph(_runs(L["decisions"] + L["colon"].strip(), True), BODY, INK, after=1)
            for k, d in enumerate(item.decisions, 1):
                c.paragraph(_runs(d), BODY, INK, indent=22, first_prefix=f"{k}.", after=1)
            c.y += 3
        c.y += 4


def _polls(c: _Canvas, m: MinutesData, tz: ZoneInfo) -> None:
    L, lang = c.L, c.lang
    if not m.polls:
        c.paragraph(_runs(L["no_polls"]), BODY, MUTED)
        return
    for n, p in enumerate(m.polls, 1):
        label = f"（{_zh_number(n)}）{p.title}" if lang == "zh" else f"{n}. {p.title}"
        meta = [L["secret"] if p.secret else L["named"], KINDS[lang].get(p.kind, p.kind)]
        if p.rule:
            meta.append(f"{L['rule']}{L['colon']}{p.rule}")
        if p.closed_at:
            meta.append(_fmt_dt(p.closed_at, tz, lang))
        c.subheading(label, "  ·  ".join(x for x in meta if x))
        stats = [
            f"{L['eligible']} {format_number(p.eligible)}",
            f"{L['present_n']} {format_number(p.present)}",
            f"{L['cast']} {format_number(p.cast)}",
        ]
        c.paragraph(_runs("    ".join(stats)), BODY, INK, after=3)
        cast = float(p.cast) if p.cast else 0.0
        share_w = 150.0
        cols = [
            _Col(L["option"], CONTENT_W - 70 - share_w),
            _Col(L["votes"], 70, "right"),
            _Col(L["share"], share_w, "right"),
        ]
        rows = []
        for k, opt in enumerate(p.options):
            v = p.tally[k] if k < len(p.tally) else None
            share = (float(v) / cast) if (v is not None and cast > 0) else None
            rows.append(
                [
                    _Cell(opt),
                    _Cell(format_number(v), align="right", bold=True),
                    _Cell(
                        f"{share * 100:.1f}%" if share is not None else "—",
                        align="right",
                        draw=_bar_drawer(share) if share is not None else None,
                    ),
                ]
            )
        c.table(cols, rows, min_row_h=18)
        if p.outcome:
            size = 10.5
            lines = _wrap(_runs(f"{L['outcome']}{L['colon']}{p.outcome}", True), size, CONTENT_W - 16)
            h = len(lines) * size * 1.5 + 8
            c.ensure(h + 4)
            c.rect(pymupdf.Rect(MARGIN_L, c.y - 2, PAGE_W - MARGIN_R, c.y - 2 + h), fill=(0.97, 0.94, 0.94))
            c.rect(pymupdf.Rect(MARGIN_L, c.y - 2, MARGIN_L + 2.5, c.y - 2 + h), fill=RED)
            y = c.y + 2
            for line in lines:
                c.draw_line(MARGIN_L + 10, y + size * 1.5 * 0.5 + size * 0.36, line.runs, size, INK)
                y += size * 1.5
            c.y += h + 6
        if p.secret:
            c.paragraph(_runs(L["secret_note"]), SMALL, MUTED, after=6)
        elif p.named_votes:
            c.paragraph(_runs(L["named_votes"], True), SMALL + 0.5, MUTED, after=1)
            half = CONTENT_W / 2
            cols = [
                _Col(L["name"], half * 0.55),
                _Col(L["choice"], half * 0.45),
                _Col(L["name"], half * 0.55),
                _Col(L["choice"], half * 0.45),
            ]
            votes = [(str(v[0]), str(v[1])) for v in p.named_votes]
            rows = []
            for k in range(0, len(votes), 2):
                pair = votes[k : k + 2] + ([("", "")] if k + 1 >= len(votes) else [])
                rows.append([_Cell(x, size=8.5) for v in pair for x in v])
            c.table(cols, rows, min_row_h=15)
        c.y += 4


def _documents(c: _Canvas, m: MinutesData) -> None:
    L = c.L
    if not m.documents:
        c.paragraph(_runs(L["no_documents"]), BODY, MUTED)
        return
    cols = [
        _Col(L["no"], 26, "center"),
        _Col(L["doc_title"], CONTENT_W - 26 - 40 - 150),
        _Col(L["pages"], 40, "right"),
        _Col(L["sha256"], 150),
    ]
    rows = []
    for n, d in enumerate(m.documents, 1):
        rows.append(
            [
                _Cell(str(n), color=MUTED, align="center"),
                _Cell(d.title, note=d.filename if d.filename and d.filename != d.title else ""),
                _Cell(format_number(d.pages) if d.pages is not None else "—", align="right"),
                _Cell(d.sha256 or "—", size=6.5, color=MUTED),
            ]
        )
    c.table(cols, rows, min_row_h=18)


def _approval(c: _Canvas, m: MinutesData, tz: ZoneInfo, seal_png: bytes | None) -> pymupdf.Rect:
    """The approval table, then the sealing block; returns where the seal goes."""
    L, lang = c.L, c.lang
    if m.approvals:
        cols = [
            _Col(L["who"], 110),
            _Col(L["job"], 120),
            _Col(L["action"], 90),
            _Col(L["at"], CONTENT_W - 320),
        ]
        rows = [
            [
                _Cell(a.who),
                _Cell(a.role),
                _Cell(ACTIONS[lang].get(a.action, a.action)),
                _Cell(_fmt_dt(a.at, tz, lang, "short") if a.at else "—"),
            ]
            for a in m.approvals
        ]
        c.table(cols, rows, min_row_h=18)
    else:
        c.paragraph(_runs(L["no_approval"]), BODY, MUTED)
    # the sealing block, bottom right, as on a paper document
    seal = 118.0
    c.ensure(seal + 20)
    c.y += 14
    when = next((a.at for a in reversed(m.approvals) if a.at), None) or m.ended_at
    right = PAGE_W - MARGIN_R - 10
    org_line = c.org_name
    size = 11.0
    date = _fmt_dt(when, tz, lang, "date") if when else ""
    lines = _wrap(_runs(org_line), size, CONTENT_W * 0.6) if org_line else []
    block_w = max([ln.width for ln in lines] + [_width(date, size), seal * 0.8])
    cx = right - block_w / 2  # org name and date centred on one axis, the seal over them
    base = c.y + seal * 0.42
    for ln in lines:
        c.draw_line(cx - ln.width / 2, base, ln.runs, size, INK)
        base += size * 1.7
    if date:
        c.text_at(cx, base, date, size, INK, align="center")
    cy = (c.y + seal * 0.42 + base) / 2 - size * 0.4
    spot = pymupdf.Rect(cx - seal / 2, cy - seal / 2, cx + seal / 2, cy + seal / 2)
    if spot.x1 > PAGE_W - MARGIN_R + 20:
        spot += (PAGE_W - MARGIN_R + 20 - spot.x1, 0, PAGE_W - MARGIN_R + 20 - spot.x1, 0)
    if seal_png:
        assert c.page is not None
        c._flush()  # text first, the seal is stamped on top of it
        c.shape = c.page.new_shape()
        c.page.insert_image(spot, stream=seal_png, keep_proportion=True, overlay=True)
    c.y = max(c.y + seal, base + 8)
    return spot


def build_minutes_pdf(
    m: MinutesData | dict[str, Any],
    lang: str = "zh",
    org_name: str = "",
    seal_png: bytes | None = None,
) -> bytes:
    """Render the minutes of one meeting; returns the PDF bytes (A4, fonts embedded).

    ``lang`` is "zh" or "en" (labels, numbering, date style); the content is
    printed as given. Times are printed in ``m.timezone``. If ``seal_png`` is
    given it is stamped next to the approval record; either way that spot is
    recorded for ``sign_pdf``, whose signature shows the seal there.
    """
    if isinstance(m, dict):
        m = MinutesData.from_dict(m)
    if lang not in LABELS:
        raise ValueError(f"lang must be one of {sorted(LABELS)}, not {lang!r}")
    tz = _tz(m.timezone)
    tz_label = _utc_offset(tz, m.starts_at or m.started_at)
    c = _Canvas(lang, org_name, m.title, m.draft)
    _title_block(c, m)
    n = 0
    for key, render in (
        ("details", lambda: _details(c, m, tz, tz_label)),
        ("attendance", lambda: _attendance(c, m, tz)),
        ("agenda", lambda: _agenda(c, m)),
        ("polls", lambda: _polls(c, m, tz)),
        ("documents", lambda: _documents(c, m)),
    ):
        if key == "attendance" and not m.attendees:
            continue
        n += 1
        _section_title(c, n, key)
        render()
    _section_title(c, n + 1, "approval")
    spot = _approval(c, m, tz, seal_png)
    seal_page = c.page
    doc = c.finish()
    assert seal_page is not None
    doc.set_metadata(
        {
            "title": m.title,
            "author": org_name,
            "subject": LABELS[lang]["minutes"],
            "creator": "meeting-server",
            "producer": "meeting-server (PyMuPDF)",
        }
    )
    doc.set_language("zh-CN" if lang == "zh" else "en")
    # where sign_pdf puts the signature's seal: page index and box in PDF
    # user space (origin bottom left). An empty signature field would do, but
    # MuPDF paints a "SIGN" tag on those in every page image.
    info = doc.xref_get_key(-1, "Info")
    if info[0] == "xref":
        h = seal_page.rect.height
        box = f"[{seal_page.number} {spot.x0:.2f} {h - spot.y1:.2f} {spot.x1:.2f} {h - spot.y0:.2f}]"
        doc.xref_set_key(int(info[1].split()[0]), SEAL_SPOT_KEY, box)
    doc.subset_fonts()
    data = doc.tobytes(garbage=3, deflate=True)
    doc.close()
    return data
