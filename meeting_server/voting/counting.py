"""Counting ballots and applying majority and quorum rules: pure functions, no database.

Arithmetic is exact (`fractions.Fraction`): "more than one half" of 7 is 4, of
8 is 5, and a weight of 0.1 is one tenth, never 0.1000000000000000055.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

KINDS = ("motion", "single", "multiple", "election", "rating")
BASES = ("cast", "present", "members")

#: The rule a motion gets when it names none: more than half of the votes cast, abstentions not counted.
DEFAULT_RULE: dict[str, Any] = {"base": "cast", "fraction": [1, 2], "strict": True, "abstentions": "exclude"}


@dataclass(frozen=True)
class Spec:
    """What counting needs to know about a poll."""

    kind: str
    options: int
    seats: int | None = None
    abstain_option: int | None = None
    scale: tuple[int, int] | None = None
    drop_extremes: bool = False
    weighted: bool = False
    rule: dict[str, Any] | None = None

    @classmethod
    def of(cls, poll: Any) -> Spec:
        scale = (poll.scale_min, poll.scale_max) if poll.kind == "rating" else None
        return cls(
            kind=poll.kind,
            options=len(poll.options),
            seats=poll.seats,
            abstain_option=poll.abstain_option,
            scale=scale,
            drop_extremes=bool(poll.drop_extremes),
            weighted=bool(poll.weighted),
            rule=poll.rule,
        )

    def effective_rule(self) -> dict[str, Any] | None:
        if self.rule is None and self.kind == "motion":
            return dict(DEFAULT_RULE)
        return self.rule


def weight_of(w: Any) -> Fraction:
    """A weight as an exact fraction of what was typed (0.1 is one tenth)."""
    if isinstance(w, Fraction):
        return w
    if isinstance(w, int):
        return Fraction(w)
    return Fraction(str(w))


# -- checking one ballot --------------------------------------------------------------


class BadChoices(ValueError):
    """The choices do not fit the poll; the message says why."""


def normalize(spec: Spec, choices: Any) -> list:
    """Check `choices` against the poll; return the stored form (sorted indexes, or scores).

    Choice kinds: option indexes from 0 (`[2]`, `[0, 3]`, `[]` for a blank ballot where
    `min_choices` is 0). Rating: one entry per item, in option order, each an integer
    score within the scale or `null` for "no score".
    """
    if not isinstance(choices, list):
        raise BadChoices("choices must be a list")
    if spec.kind == "rating":
        lo, hi = spec.scale or (0, 10)
        if len(choices) != spec.options:
            raise BadChoices(f"give one score (or null) for each of the {spec.options} items")
        for c in choices:
            if c is None:
                continue
            if isinstance(c, bool) or not isinstance(c, int) or not lo <= c <= hi:
                raise BadChoices(f"each score must be a whole number from {lo} to {hi}, or null")
        return list(choices)
    out = []
    for c in choices:
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < spec.options:
            raise BadChoices(f"each choice must be an option index from 0 to {spec.options - 1}")
        out.append(c)
    if len(set(out)) != len(out):
        raise BadChoices("an option may be chosen only once")
    if spec.abstain_option is not None and spec.abstain_option in out and len(out) > 1:
        raise BadChoices("abstaining cannot be combined with other choices")
    return sorted(out)


def check_count(choices: list, min_choices: int, max_choices: int) -> None:
    if not min_choices <= len(choices) <= max_choices:
        if min_choices == max_choices:
            raise BadChoices(f"choose exactly {max_choices}")
        raise BadChoices(f"choose from {min_choices} to {max_choices} options")


# -- counting ------------------------------------------------------------------------


@dataclass
class Count:
    """The tally of a poll, exact."""

    tally: list[int]  #: per option: ballots naming it (rating: the sum of its scores)
    weighted: list[Fraction]  #: per option, each ballot counted with its weight
    cast: int = 0  #: ballots
    cast_weight: Fraction = Fraction(0)
    blank: int = 0  #: ballots with no choice (rating: no score at all)
    blank_weight: Fraction = Fraction(0)
    abstain: int = 0  #: ballots naming only the abstain option
    abstain_weight: Fraction = Fraction(0)
    scores: list[dict[str, Any]] = field(default_factory=list)  #: rating only


def _trimmed(scores: list[int]) -> list[int]:
    """Drop one highest and one lowest score (only when at least three remain to drop from)."""
    if len(scores) < 3:
        return list(scores)
    s = sorted(scores)
    return s[1:-1]


def count(spec: Spec, ballots: Iterable[tuple[Sequence, Any]]) -> Count:
    """Count `(choices, weight)` pairs; choices as `normalize` returns them."""
    n = spec.options
    c = Count(tally=[0] * n, weighted=[Fraction(0)] * n)
    per_item: list[list[int]] = [[] for _ in range(n)]
    for choices, w in ballots:
        w = weight_of(w) if spec.weighted else Fraction(1)
        c.cast += 1
        c.cast_weight += w
        if spec.kind == "rating":
            given = [(i, s) for i, s in enumerate(choices) if s is not None]
            if not given:
                c.blank += 1
                c.blank_weight += w
            for i, s in given:
                per_item[i].append(s)
                c.tally[i] += s
                c.weighted[i] += s * w
            continue
        if not choices:
            c.blank += 1
            c.blank_weight += w
            continue
        if spec.abstain_option is not None and list(choices) == [spec.abstain_option]:
            c.abstain += 1
            c.abstain_weight += w
        for i in choices:
            c.tally[i] += 1
            c.weighted[i] += w
    if spec.kind == "rating":
        for scores in per_item:
            item: dict[str, Any] = {
                "count": len(scores),
                "sum": sum(scores),
                "mean": _num(Fraction(sum(scores), len(scores))) if scores else None,
                "min": min(scores) if scores else None,
                "max": max(scores) if scores else None,
            }
            if spec.drop_extremes:
                kept = _trimmed(scores)
                item["trimmed_count"] = len(kept)
                item["trimmed_sum"] = sum(kept)
                item["trimmed_mean"] = _num(Fraction(sum(kept), len(kept))) if kept else None
            c.scores.append(item)
    return c


def _num(x: Fraction | int) -> int | float:
    """A JSON number: an int when whole, else a float rounded to 6 places."""
    x = Fraction(x)
    return int(x) if x.denominator == 1 else round(float(x), 6)


# -- rules -----------------------------------------------------------------------------


def quorum_required(quorum: dict[str, Any] | None, members: int) -> int | None:
    """How many members must be present; None when there is no quorum rule."""
    if not quorum:
        return None
    if quorum["kind"] == "count":
        return int(quorum["value"])
    return max(1, math.ceil(weight_of(quorum["value"]) * members))


def passes(votes: Fraction | int, base: Fraction | int, fraction: Sequence[int], strict: bool) -> bool:
    """votes > fraction * base (strict), or votes >= fraction * base; never with no votes."""
    num, den = fraction
    if votes <= 0:
        return False
    lhs, rhs = Fraction(votes) * den, Fraction(base) * num
    return lhs > rhs if strict else lhs >= rhs


@dataclass(frozen=True)
class Snapshot:
    members: int
    present: int
    members_weight: Fraction
    present_weight: Fraction

    @classmethod
    def of(cls, d: dict[str, Any]) -> Snapshot:
        return cls(
            members=d["members"],
            present=d["present"],
            members_weight=weight_of(d.get("members_weight", d["members"])),
            present_weight=weight_of(d.get("present_weight", d["present"])),
        )


def base_value(spec: Spec, rule: dict[str, Any], c: Count, snap: Snapshot) -> Fraction:
    base = rule.get("base", "cast")
    w = spec.weighted
    if base == "present":
        return snap.present_weight if w else Fraction(snap.present)
    if base == "members":
        return snap.members_weight if w else Fraction(snap.members)
    total = c.cast_weight if w else Fraction(c.cast)
    if rule.get("abstentions", "exclude") == "exclude":
        total -= (c.abstain_weight + c.blank_weight) if w else (c.abstain + c.blank)
    return total


def evaluate(
    spec: Spec,
    c: Count,
    snap: Snapshot,
    meeting_quorum: dict[str, Any] | None = None,
    labels: Sequence[str] = (),
) -> dict[str, Any]:
    """The outcome of a closed poll under its rule, with the rule and the result in Chinese and English."""
    rule = spec.effective_rule()
    labels = list(labels) or [f"#{i + 1}" for i in range(spec.options)]
    out: dict[str, Any] = {"winners": [], "tied": []}
    quorum = None
    if rule and rule.get("quorum"):
        quorum = meeting_quorum if rule["quorum"] == "meeting" else rule["quorum"]
    required = quorum_required(quorum, snap.members)
    if required is not None:
        out["quorum"] = {"required": required, "present": snap.present, "reached": snap.present >= required}
    out["rule_text"] = rule_text(spec, rule, required)
    votes = c.weighted if spec.weighted else [Fraction(v) for v in c.tally]
    threshold = None
    if rule and spec.kind != "rating":
        base = base_value(spec, rule, c, snap)
        fraction = list(rule.get("fraction", [1, 2]))
        strict = bool(rule.get("strict", True))
        threshold = (base, fraction, strict)
        out["threshold"] = {
            "base": rule.get("base", "cast"),
            "base_value": _num(base),
            "fraction": fraction,
            "strict": strict,
            "value": _num(base * Fraction(fraction[0], fraction[1])),
        }

    def ok(v: Fraction) -> bool:
        return threshold is None or passes(v, *threshold)

    candidates = [i for i in range(spec.options) if i != spec.abstain_option]
    if required is not None and snap.present < required:
        result = "no_quorum"
    elif spec.kind == "motion":
        result = "adopted" if ok(votes[0]) and votes[0] > 0 else "rejected"
        out["passed"] = result == "adopted"
        if result == "adopted":
            out["winners"] = [0]
    elif spec.kind == "single":
        top = max((votes[i] for i in candidates), default=Fraction(0))
        best = [i for i in candidates if votes[i] == top and top > 0]
        if not best:
            result = "no_majority"
        elif len(best) > 1:
            result, out["tied"] = "tie", best
        elif ok(top):
            result, out["winners"] = "adopted", best
        else:
            result = "no_majority"
    elif spec.kind == "multiple":
        if threshold is None:
            result = "counted"
            out["ranking"] = _ranking(candidates, votes)
        else:
            out["passed_options"] = [i for i in candidates if ok(votes[i])]
            out["winners"] = out["passed_options"]
            result = "adopted" if out["winners"] else "rejected"
    elif spec.kind == "election":
        seats = spec.seats or 1
        qualified = [i for i in _ranking(candidates, votes) if votes[i] > 0 and ok(votes[i])]
        if len(qualified) <= seats:
            winners, tied = qualified, []
        else:
            cut = votes[qualified[seats - 1]]
            if votes[qualified[seats]] == cut:
                winners = [i for i in qualified if votes[i] > cut]
                tied = [i for i in qualified if votes[i] == cut]
            else:
                winners, tied = qualified[:seats], []
        out["winners"], out["tied"] = winners, tied
        result = "elected" if len(winners) == seats else ("tie" if tied else "not_filled")
        out["ranking"] = _ranking(candidates, votes)
    else:  # rating
        key = "trimmed_mean" if spec.drop_extremes else "mean"
        scored = [i for i in range(spec.options) if c.scores[i][key] is not None]
        scored.sort(key=lambda i: (-Fraction(str(c.scores[i][key])), i))
        out["ranking"] = scored + [i for i in range(spec.options) if i not in scored]
        result = "ranked"
    out["result"] = result
    out["text"] = outcome_text(
        result,
        [labels[i] for i in out["winners"]],
        [labels[i] for i in out["tied"]],
        [labels[i] for i in out.get("ranking", [])],
        spec.kind,
    )
    return out


def _ranking(candidates: list[int], votes: Sequence[Fraction]) -> list[int]:
    return sorted(candidates, key=lambda i: (-votes[i], i))


# -- words -------------------------------------------------------------------------------

_ZH_DIGITS = "零一二三四五六七八九"
_EN_FRACTIONS = {
    (1, 2): "one half",
    (2, 3): "two thirds",
    (1, 3): "one third",
    (3, 4): "three quarters",
    (1, 4): "one quarter",
    (3, 5): "three fifths",
    (4, 5): "four fifths",
    (1, 1): "all",
}


def zh_number(n: int) -> str:
    if 0 <= n < 10:
        return _ZH_DIGITS[n]
    if 10 <= n < 100:
        tens, ones = divmod(n, 10)
        return ("" if tens == 1 else _ZH_DIGITS[tens]) + "十" + (_ZH_DIGITS[ones] if ones else "")
    return str(n)


def fraction_words(fraction: Sequence[int]) -> tuple[str, str]:
    num, den = fraction
    zh = "全部" if num == den else f"{zh_number(den)}分之{zh_number(num)}"
    return zh, _EN_FRACTIONS.get((num, den), f"{num}/{den}")


def rule_text(spec: Spec, rule: dict[str, Any] | None, quorum_required: int | None) -> dict[str, str]:
    parts_zh: list[str] = []
    parts_en: list[str] = []
    if rule and spec.kind != "rating":
        base = rule.get("base", "cast")
        fzh, fen = fraction_words(rule.get("fraction", [1, 2]))
        strict = rule.get("strict", True)
        subject_zh, subject_en = (
            ("赞成票", "Yes votes") if spec.kind == "motion" else ("得票", "Votes for an option")
        )
        base_zh = {"cast": "实投票数", "present": "出席成员数", "members": "全体成员数"}[base]
        base_en = {"cast": "the votes cast", "present": "the members present", "members": "all members"}[base]
        if base == "cast":
            if rule.get("abstentions", "exclude") == "exclude":
                base_zh += "（不计弃权）"
                base_en += " (abstentions not counted)"
            else:
                base_zh += "（弃权计入）"
                base_en += " (abstentions counted)"
        if spec.weighted:
            base_zh += "，按表决权重计"
            base_en += ", weighted"
        parts_zh.append(f"{subject_zh}{'超过' if strict else '达到'}{base_zh}的{fzh}")
        parts_en.append(f"{subject_en} {'more than' if strict else 'at least'} {fen} of {base_en}")
    elif spec.kind == "rating":
        parts_zh.append("按平均分排名" + ("（去掉一个最高分和一个最低分）" if spec.drop_extremes else ""))
        parts_en.append(
            "ranked by mean score" + (" (highest and lowest score dropped)" if spec.drop_extremes else "")
        )
    else:
        parts_zh.append("得票最多者当选" if spec.kind in ("single", "election") else "只计票，不设多数要求")
        parts_en.append(
            "most votes wins" if spec.kind in ("single", "election") else "counted only, no majority rule"
        )
    if spec.kind == "election":
        parts_zh.append(f"应选{zh_number(spec.seats or 1)}名")
        parts_en.append(f"{spec.seats or 1} to elect")
    if quorum_required is not None:
        parts_zh.append(f"法定人数：至少{quorum_required}人出席")
        parts_en.append(f"quorum: at least {quorum_required} members present")
    return {"zh": "；".join(parts_zh), "en": "; ".join(parts_en)}


def outcome_text(
    result: str, winners: list[str], tied: list[str], ranking: list[str], kind: str = ""
) -> dict[str, str]:
    zh_list, en_list = "、".join(winners), ", ".join(winners)
    if result == "adopted":
        if kind == "motion" or not winners:
            return {"zh": "通过", "en": "adopted"}
        return {"zh": f"通过：{zh_list}", "en": f"adopted: {en_list}"}
    texts = {
        "rejected": ("未通过", "rejected"),
        "no_quorum": ("未达法定人数，表决无效", "no quorum: the vote is not valid"),
        "no_majority": ("没有选项获得所需多数", "no option reached the required majority"),
        "tie": (
            f"票数相同：{'、'.join(tied)}，需再次表决",
            f"tie between {', '.join(tied)}: a new round is needed",
        ),
        "elected": (f"当选：{zh_list}", f"elected: {en_list}"),
        "not_filled": (
            f"当选：{zh_list or '无'}，名额未满",
            f"elected: {en_list or 'nobody'}; seats not filled",
        ),
        "counted": ("已计票", "counted"),
        "ranked": (f"排名：{'、'.join(ranking)}", f"ranking: {', '.join(ranking)}"),
    }
    zh, en = texts[result]
    return {"zh": zh, "en": en}
