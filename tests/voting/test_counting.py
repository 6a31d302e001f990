"""Property-based tests of every poll kind's tally and every majority and quorum rule."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meeting_server.voting import counting
from meeting_server.voting.counting import (
    BadChoices,
    Count,
    Snapshot,
    Spec,
    count,
    evaluate,
    normalize,
    passes,
)

FAST = settings(max_examples=100, deadline=None)

weights = st.sampled_from([1, 1, 2, 0.5, 0.1, 3.25, 10])


@st.composite
def choice_ballots(draw, kind: str):
    n = draw(st.integers(2, 7))
    abstain = draw(st.one_of(st.none(), st.just(n - 1))) if kind != "motion" else 2
    if kind == "motion":
        n = 3
    seats = draw(st.integers(1, n - 1)) if kind == "election" else None
    k = {"motion": 1, "single": 1}.get(kind) or draw(st.integers(1, seats or n))
    spec = Spec(kind=kind, options=n, seats=seats, abstain_option=abstain, weighted=draw(st.booleans()))
    real = [i for i in range(n) if i != abstain]

    def one():
        if kind in ("motion", "single"):
            return [draw(st.sampled_from(range(n)))]
        if abstain is not None and draw(st.booleans()) and draw(st.booleans()):
            return [abstain]
        return sorted(draw(st.sets(st.sampled_from(real), max_size=min(k, len(real)))))

    ballots = [(one(), draw(weights)) for _ in range(draw(st.integers(0, 30)))]
    return spec, ballots


@given(st.sampled_from(["motion", "single", "multiple", "election"]).flatmap(choice_ballots))
@FAST
def test_choice_tally(case):
    spec, ballots = case
    c = count(spec, ballots)
    w = (lambda x: counting.weight_of(x)) if spec.weighted else (lambda x: Fraction(1))
    for i in range(spec.options):
        assert c.tally[i] == sum(1 for ch, _ in ballots if i in ch)
        assert c.weighted[i] == sum((w(x) for ch, x in ballots if i in ch), Fraction(0))
    assert c.cast == len(ballots)
    assert c.cast_weight == sum((w(x) for _, x in ballots), Fraction(0))
    assert c.blank == sum(1 for ch, _ in ballots if not ch)
    assert c.abstain == sum(
        1 for ch, _ in ballots if spec.abstain_option is not None and ch == [spec.abstain_option]
    )
    # every ballot is counted once: marks add up to the choices made
    assert sum(c.tally) == sum(len(ch) for ch, _ in ballots)


@st.composite
def rating_ballots(draw):
    n = draw(st.integers(1, 5))
    lo = draw(st.integers(-5, 5))
    hi = lo + draw(st.integers(1, 10))
    spec = Spec(kind="rating", options=n, scale=(lo, hi), drop_extremes=draw(st.booleans()))
    score = st.one_of(st.none(), st.integers(lo, hi))
    ballots = [([draw(score) for _ in range(n)], 1) for _ in range(draw(st.integers(0, 25)))]
    return spec, ballots


@given(rating_ballots())
@FAST
def test_rating_tally(case):
    spec, ballots = case
    c = count(spec, ballots)
    for i in range(spec.options):
        scores = [b[i] for b, _ in ballots if b[i] is not None]
        item = c.scores[i]
        assert c.tally[i] == sum(scores) == item["sum"]
        assert item["count"] == len(scores)
        if scores:
            assert item["mean"] == pytest.approx(sum(scores) / len(scores), abs=1e-6)
        if spec.drop_extremes:
            kept = sorted(scores)[1:-1] if len(scores) >= 3 else scores
            assert item["trimmed_count"] == len(kept)
            assert item["trimmed_sum"] == sum(kept)
            if len(scores) >= 3:  # exactly one highest and one lowest score are gone
                assert item["trimmed_sum"] == sum(scores) - max(scores) - min(scores)
    assert c.blank == sum(1 for b, _ in ballots if all(x is None for x in b))
    outcome = evaluate(spec, c, Snapshot(5, 5, Fraction(5), Fraction(5)))
    assert outcome["result"] == "ranked" and sorted(outcome["ranking"]) == list(range(spec.options))
    key = "trimmed_mean" if spec.drop_extremes else "mean"
    means = [c.scores[i][key] for i in outcome["ranking"] if c.scores[i][key] is not None]
    assert means == sorted(means, reverse=True)


fractions_ = st.tuples(st.integers(1, 12), st.integers(1, 12)).filter(lambda t: t[0] <= t[1])


@given(st.integers(0, 500), st.integers(0, 500), fractions_, st.booleans())
@FAST
def test_passes_is_exact(votes, base, fraction, strict):
    num, den = fraction
    share = Fraction(votes) - Fraction(num, den) * base
    expected = votes > 0 and (share > 0 if strict else share >= 0)
    assert passes(votes, base, fraction, strict) is expected


def test_named_thresholds():
    # simple majority of 8 needs 5; two thirds (at least) of 9 needs 6; of 10 needs 7
    assert not passes(4, 8, (1, 2), True) and passes(5, 8, (1, 2), True)
    assert not passes(5, 9, (2, 3), False) and passes(6, 9, (2, 3), False)
    assert not passes(6, 10, (2, 3), False) and passes(7, 10, (2, 3), False)
    # weights are exact: 0.1 + 0.2 is three tenths, which is not more than 3/10
    w = counting.weight_of(0.1) + counting.weight_of(0.2)
    assert not passes(w, 1, (3, 10), True) and passes(w, 1, (3, 10), False)


@st.composite
def motion_case(draw):
    yes, no, abstain, blank = (draw(st.integers(0, 40)) for _ in range(4))
    members = yes + no + abstain + blank + draw(st.integers(0, 40))
    present = draw(st.integers(yes + no + abstain + blank, members))
    rule = {
        "base": draw(st.sampled_from(["cast", "present", "members"])),
        "fraction": list(draw(fractions_)),
        "strict": draw(st.booleans()),
        "abstentions": draw(st.sampled_from(["exclude", "include"])),
    }
    if draw(st.booleans()):
        rule["quorum"] = draw(
            st.one_of(
                st.builds(lambda v: {"kind": "count", "value": v}, st.integers(1, 60)),
                st.builds(
                    lambda v: {"kind": "fraction", "value": v}, st.sampled_from([0.5, 2 / 3, 0.25, 1.0])
                ),
            )
        )
    return yes, no, abstain, blank, members, present, rule


@given(motion_case())
@FAST
def test_motion_rules(case):
    yes, no, abstain, blank, members, present, rule = case
    spec = Spec(kind="motion", options=3, abstain_option=2, rule=rule)
    c = Count(
        tally=[yes, no, abstain],
        weighted=[Fraction(yes), Fraction(no), Fraction(abstain)],
        cast=yes + no + abstain + blank,
        blank=blank,
        abstain=abstain,
    )
    out = evaluate(spec, c, Snapshot(members, present, Fraction(members), Fraction(present)))
    # the oracle, written independently
    q = rule.get("quorum")
    need = None
    if q:
        need = q["value"] if q["kind"] == "count" else max(1, math.ceil(Fraction(str(q["value"])) * members))
    if need is not None and present < need:
        assert out["result"] == "no_quorum" and out["quorum"]["reached"] is False
        return
    base = {"present": present, "members": members}.get(rule["base"])
    if base is None:
        base = yes + no + (abstain + blank if rule["abstentions"] == "include" else 0)
    num, den = rule["fraction"]
    ok = yes * den > num * base if rule["strict"] else yes * den >= num * base
    assert out["result"] == ("adopted" if ok and yes > 0 else "rejected")
    assert out["threshold"]["base_value"] == base
    assert out["rule_text"]["zh"] and out["rule_text"]["en"]


def test_default_motion_rule_ignores_abstentions():
    spec = Spec(kind="motion", options=3, abstain_option=2)
    c = count(spec, [([0], 1)] * 3 + [([1], 1)] * 2 + [([2], 1)] * 10)
    out = evaluate(spec, c, Snapshot(20, 15, Fraction(20), Fraction(15)))
    assert out["result"] == "adopted"  # 3 of 5 yes/no votes; the 10 abstentions do not count
    assert out["rule_text"]["zh"] == "赞成票超过实投票数（不计弃权）的二分之一"
    assert (
        out["rule_text"]["en"] == "Yes votes more than one half of the votes cast (abstentions not counted)"
    )
    assert out["text"] == {"zh": "通过", "en": "adopted"}


@st.composite
def election_case(draw):
    n = draw(st.integers(2, 8))
    seats = draw(st.integers(1, n - 1))
    votes = [draw(st.integers(0, 12)) for _ in range(n)]
    rule = draw(
        st.one_of(
            st.none(),
            st.builds(
                lambda f, s: {"base": "cast", "fraction": list(f), "strict": s}, fractions_, st.booleans()
            ),
        )
    )
    cast = max(votes + [0]) + draw(st.integers(0, 10))
    return n, seats, votes, rule, cast


@given(election_case())
@FAST
def test_election(case):
    n, seats, votes, rule, cast = case
    spec = Spec(kind="election", options=n, seats=seats, rule=rule)
    c = Count(tally=votes, weighted=[Fraction(v) for v in votes], cast=cast)
    out = evaluate(spec, c, Snapshot(cast, cast, Fraction(cast), Fraction(cast)))
    winners, tied = out["winners"], out["tied"]

    def qualifies(i):
        if votes[i] == 0:
            return False
        if rule is None:
            return True
        return passes(votes[i], cast, rule["fraction"], rule["strict"])

    assert len(winners) <= seats and all(qualifies(i) for i in winners + tied)
    others = [i for i in range(n) if i not in winners and i not in tied]
    for w in winners:
        assert all(votes[w] > votes[o] or not qualifies(o) for o in others + tied)
    if tied:
        assert len({votes[i] for i in tied}) == 1 and len(winners) + len(tied) > seats
        assert out["result"] == "tie"
    elif len(winners) == seats:
        assert out["result"] == "elected"
    else:
        assert out["result"] == "not_filled" and len([i for i in range(n) if qualifies(i)]) == len(winners)


@given(st.lists(st.integers(0, 9), min_size=2, max_size=6), st.booleans())
@FAST
def test_single_choice_winner(votes, with_rule):
    n = len(votes)
    rule = {"base": "cast", "fraction": [1, 2], "strict": True} if with_rule else None
    spec = Spec(kind="single", options=n, rule=rule)
    cast = sum(votes)
    c = Count(tally=votes, weighted=[Fraction(v) for v in votes], cast=cast)
    out = evaluate(spec, c, Snapshot(cast, cast, Fraction(cast), Fraction(cast)))
    top = max(votes)
    best = [i for i, v in enumerate(votes) if v == top]
    if top == 0:
        assert out["result"] == "no_majority"
    elif len(best) > 1:
        assert out["result"] == "tie" and out["tied"] == best
    elif not with_rule or 2 * top > cast:
        assert out["result"] == "adopted" and out["winners"] == best
    else:
        assert out["result"] == "no_majority"


@given(st.lists(st.integers(0, 9), min_size=2, max_size=6), fractions_, st.booleans())
@FAST
def test_multiple_each_option_against_the_rule(votes, fraction, strict):
    cast = max(votes) + 3
    spec = Spec(
        kind="multiple",
        options=len(votes),
        rule={"base": "cast", "fraction": list(fraction), "strict": strict},
    )
    c = Count(tally=votes, weighted=[Fraction(v) for v in votes], cast=cast)
    out = evaluate(spec, c, Snapshot(cast, cast, Fraction(cast), Fraction(cast)))
    assert out["passed_options"] == [i for i, v in enumerate(votes) if passes(v, cast, fraction, strict)]


@given(st.integers(1, 300), st.sampled_from([0.5, 2 / 3, 0.1, 1.0, 0.51]))
@FAST
def test_quorum_fraction_is_a_ceiling(members, value):
    need = counting.quorum_required({"kind": "fraction", "value": value}, members)
    share = Fraction(str(value)) * members
    assert need == 1 and share <= 1 or need - 1 < share <= need


def test_normalize_refuses_bad_choices():
    spec = Spec(kind="multiple", options=4, abstain_option=3)
    assert normalize(spec, [2, 0]) == [0, 2]
    for bad in ([4], [-1], [1, 1], [True], [1.0], "0", [0, 3], None):
        with pytest.raises(BadChoices):
            normalize(spec, bad)
    rating = Spec(kind="rating", options=2, scale=(1, 5))
    assert normalize(rating, [5, None]) == [5, None]
    for bad in ([6, 1], [1], [1, 2, 3], [0, 1], ["3", 1]):
        with pytest.raises(BadChoices):
            normalize(rating, bad)


def test_words():
    assert (
        counting.zh_number(2) == "二"
        and counting.zh_number(10) == "十"
        and counting.zh_number(23) == "二十三"
    )
    assert counting.fraction_words([2, 3]) == ("三分之二", "two thirds")
    assert counting.fraction_words([3, 5]) == ("五分之三", "three fifths")
    assert counting.fraction_words([5, 7]) == ("七分之五", "5/7")
    spec = Spec(
        kind="election",
        options=4,
        seats=2,
        rule={
            "base": "present",
            "fraction": [2, 3],
            "strict": False,
            "quorum": {"kind": "count", "value": 3},
        },
    )
    text = counting.rule_text(spec, spec.rule, 3)
    assert text["zh"] == "得票达到出席成员数的三分之二；应选二名；法定人数：至少3人出席"
    assert text["en"] == (
        "Votes for an option at least two thirds of the members present; 2 to elect; "
        "quorum: at least 3 members present"
    )
