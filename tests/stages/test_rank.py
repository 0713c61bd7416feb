"""The rank stage: composite score, gate states and top-k per cell."""

from __future__ import annotations

import random

import pytest

from bildwerk.checks.base import CheckResult
from bildwerk.config.qa import CheckPolicy, QAPolicy
from bildwerk.stages.rank import HERO_REASON, Candidate, Decision, composite_score, rank


def ok(name: str, score: float) -> CheckResult:
    return CheckResult(name, "pass", score)


def cand(
    id_: str,
    *checks: CheckResult,
    cell: str = "ig",
    hero: bool = False,
    duplicate_of: str | None = None,
) -> Candidate:
    return Candidate(id_, cell, "s", "en", hero, checks, duplicate_of)


def by_id(decisions: list[Decision]) -> dict[str, Decision]:
    return {d.id: d for d in decisions}


def test_weights_change_the_order() -> None:
    a = cand("a", ok("sharp", 0.9), ok("brand", 0.3))  # mean 0.6
    b = cand("b", ok("sharp", 0.5), ok("brand", 0.6))  # mean 0.55
    plain = rank([a, b], QAPolicy())
    assert [d.id for d in plain] == ["a", "b"]
    assert plain[0].score == pytest.approx(0.6)
    brand_heavy = QAPolicy(checks={"brand": CheckPolicy(weight=3.0)})
    weighted = rank([a, b], brand_heavy)
    assert [d.id for d in weighted] == ["b", "a"]
    assert by_id(weighted)["a"].score == pytest.approx((0.9 + 3 * 0.3) / 4)
    assert [d.rank for d in weighted] == [1, 2]


def test_score_ignores_skipped_unscored_and_zero_weight_checks() -> None:
    checks = [
        ok("sharp", 0.8),
        CheckResult("nsfw", "skip", 0.0, "not run"),
        CheckResult("logo", "warn", None, "logo small"),
        ok("clip", 0.0),
        CheckResult("contrast", "pass", float("nan")),
    ]
    policy = QAPolicy(checks={"clip": CheckPolicy(weight=0.0)})
    assert composite_score(checks, policy, "ig") == pytest.approx(0.8)
    assert composite_score([], policy, "ig") is None
    override = QAPolicy(
        checks={"clip": CheckPolicy(weight=0.0)},
        channels={"ig": {"clip": CheckPolicy(weight=1.0)}},
    )
    assert composite_score(checks, override, "ig") == pytest.approx(0.4)  # channel weight
    assert composite_score(checks, override, "web") == pytest.approx(0.8)


def test_ties_are_broken_by_id_whatever_the_input_order() -> None:
    cands = [cand(f"c{i}", ok("sharp", 0.5)) for i in range(6)]
    cands.append(cand("unscored"))
    expected = rank(cands, QAPolicy(top_k=10))
    assert [d.id for d in expected] == [*(f"c{i}" for i in range(6)), "unscored"]
    assert expected[-1].score is None  # no score ranks after every scored creative
    for seed in range(5):
        shuffled = cands[:]
        random.Random(seed).shuffle(shuffled)
        assert rank(shuffled, QAPolicy(top_k=10)) == expected


def test_failing_check_rejects_with_its_reason() -> None:
    bad = cand(
        "bad",
        ok("sharp", 0.99),
        CheckResult("nsfw", "fail", 0.1, "explicit content"),
        CheckResult("logo", "fail", 0.2),
    )
    good = cand("good", ok("sharp", 0.2))
    d = by_id(rank([bad, good], QAPolicy()))
    assert d["bad"].state == "rejected"
    assert d["bad"].reasons == ["nsfw: explicit content", "logo: fail"]
    assert d["bad"].rank is None
    assert (d["good"].state, d["good"].rank) == ("queued", 1)  # the reject takes no slot


def test_block_policy_decides_which_verdicts_reject() -> None:
    warned = cand("w", CheckResult("contrast", "warn", 0.6, "low contrast"))
    assert rank([warned], QAPolicy(block=("fail", "warn")))[0].state == "rejected"
    assert rank([warned], QAPolicy(block=()))[0].state == "needs_review"
    failed = cand("f", CheckResult("contrast", "fail", 0.1, "unreadable"))
    assert rank([failed], QAPolicy(block=("warn",)))[0].state == "queued"


def test_warning_goes_to_review() -> None:
    d = rank(
        [cand("w", ok("sharp", 0.9), CheckResult("logo", "warn", 0.5, "logo small"))], QAPolicy()
    )
    assert (d[0].state, d[0].reasons) == ("needs_review", ["logo: logo small"])


def test_hero_goes_to_review_even_when_clean() -> None:
    d = by_id(
        rank([cand("h", ok("sharp", 0.9), hero=True), cand("n", ok("sharp", 0.9))], QAPolicy())
    )
    assert (d["h"].state, d["h"].reasons) == ("needs_review", [HERO_REASON])
    assert (d["n"].state, d["n"].reasons) == ("queued", [])


def test_top_k_per_cell() -> None:
    cands = [
        cand(f"{cell}{i}", ok("sharp", i / 10), cell=cell)
        for cell in ("ig", "web")
        for i in range(5)
    ]
    cands.append(Candidate("other-locale", "ig", "s", "de", checks=[ok("sharp", 0.0)]))
    decisions = rank(cands, QAPolicy(top_k=2))
    d = by_id(decisions)
    for cell in ("ig", "web"):
        assert [d[f"{cell}{i}"].state for i in range(5)] == ["held"] * 3 + ["queued"] * 2
        assert [d[f"{cell}{i}"].rank for i in range(5)] == [5, 4, 3, 2, 1]
    assert d["ig2"].reasons == ["not in the top 2 of ig/s/en (rank 3)"]
    assert (d["other-locale"].state, d["other-locale"].rank) == ("queued", 1)  # its own cell
    assert len(decisions) == len(cands)
    assert [x.id for x in decisions[:5]] == ["other-locale", "ig4", "ig3", "ig2", "ig1"]


def test_duplicates_are_rejected_and_free_their_slot() -> None:
    keeper = cand("keep", ok("sharp", 0.5))
    dup = cand("dup", ok("sharp", 0.9), duplicate_of="keep")
    third = cand("third", ok("sharp", 0.1))
    decisions = rank([dup, keeper, third], QAPolicy(top_k=2))
    d = by_id(decisions)
    assert (d["dup"].state, d["dup"].reasons, d["dup"].rank) == (
        "rejected",
        ["near-duplicate of keep"],
        None,
    )
    assert [(d[i].state, d[i].rank) for i in ("keep", "third")] == [("queued", 1), ("queued", 2)]
    assert [x.id for x in decisions] == ["keep", "third", "dup"]  # rejected last in the cell


def test_disabled_checks_neither_block_nor_score() -> None:
    c = cand("x", ok("sharp", 0.8), CheckResult("people", "fail", 0.0, "person found"))
    policy = QAPolicy(checks={"people": CheckPolicy(enabled=False)})
    d = rank([c], policy)[0]
    assert d.state == "queued"
    assert d.score == pytest.approx(0.8)
    assert rank([c], QAPolicy())[0].state == "rejected"


def test_repeated_ids_are_an_error() -> None:
    with pytest.raises(ValueError, match="unique"):
        rank([cand("a"), cand("a")], QAPolicy())
