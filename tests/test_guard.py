"""The prompt guard: forbidden terms, normalisation, the policy file, negative merging."""

from __future__ import annotations

from pathlib import Path

import pytest

from bildwerk.checks.base import CheckResult
from bildwerk.errors import ConfigError
from bildwerk.guard import GuardPolicy, check_prompt, enforce_negative, load_policy

NONE = GuardPolicy()


def blocked(prompt: str, *terms: str, negative: str = "") -> bool:
    return not check_prompt(prompt, negative, forbidden=terms, policy=NONE).allowed


def test_plain_forbidden_term_refuses_with_reason_and_evidence() -> None:
    result = check_prompt("A Miracle cream on marble", "", forbidden=["miracle"], policy=NONE)
    assert not result.allowed
    assert result.reasons == ["prompt contains brand forbidden term 'miracle'"]
    (match,) = result.matches
    assert match == {
        "category": "forbidden_terms",
        "term": "miracle",
        "found": "Miracle",
        "field": "prompt",
        "start": 2,
        "end": 9,
        "blocking": True,
    }


def test_clean_prompt_passes() -> None:
    result = check_prompt("a bottle on a podium", "text", forbidden=["miracle"], policy=NONE)
    assert result.allowed and result.reasons == [] and result.matches == []
    assert result.to_check() == CheckResult(
        name="prompt_guard", verdict="pass", score=1.0, reason=None, evidence={"matches": []}
    )


@pytest.mark.parametrize(
    "prompt",
    [
        "MIRACLE glow",  # case
        "ｍｉｒａｃｌｅ glow",  # fullwidth forms (NFKC)
        "m i r a c l e glow",  # spelled out
        "m.i.r.a.c.l.e glow",  # spelled out with dots
        "m1racle glow",  # leet digit inside a word
        "m 1 r 4 c l e glow",  # spelled out with leet digits
        "mir\u200bacle glow",  # zero-width space
        "mir\u00adacle glow",  # soft hyphen
    ],
)
def test_obfuscations_are_caught(prompt: str) -> None:
    assert blocked(prompt, "miracle")


@pytest.mark.parametrize(
    "prompt",
    [
        "miraculous results",  # another word
        "miracles",  # whole tokens only: list plurals explicitly
        "a mirror, a cle",  # letters from different words
        "model 1 on a stand",  # a lone digit stays a digit outside spelled-out runs
    ],
)
def test_word_boundaries_prevent_false_positives(prompt: str) -> None:
    assert not blocked(prompt, "miracle")
    assert not blocked(prompt, "i")


def test_multiword_and_separator_variants() -> None:
    for prompt in ("anti-aging serum", "anti aging serum", "ANTI_AGING serum", "antiaging"):
        assert blocked(prompt, "anti-aging"), prompt
    assert not blocked("anti-wrinkle aging", "anti-aging")


def test_casefold_and_spaceless_scripts() -> None:
    assert blocked("Straße im Licht", "strasse")
    assert blocked("奇迹面霜的广告", "奇迹")
    result = check_prompt("新しい奇迹", "", forbidden=["奇迹"], policy=NONE)
    assert result.matches[0]["found"] == "奇迹"
    assert blocked("SCHÖN", "schön")
    assert not blocked("schon", "schön")  # accents are kept: they tell words apart


def test_terms_in_the_negative_prompt_are_reported_not_blocking() -> None:
    result = check_prompt("a cream", "no miracle claims", forbidden=["miracle"], policy=NONE)
    assert result.allowed
    assert result.matches[0]["field"] == "negative" and not result.matches[0]["blocking"]


def test_policy_categories_and_check_result() -> None:
    policy = GuardPolicy(
        people_names=("Jane Example",),
        competitor_marks=("Rivalco",),
        blocked_terms=("gore",),
    )
    result = check_prompt(
        "JaneExample holding a RIVALCO bottle, gore", "", forbidden=(), policy=policy
    )
    assert not result.allowed
    assert {m["category"] for m in result.matches} == {
        "people_names",
        "competitor_marks",
        "blocked_terms",
    }
    assert (
        result.reasons[0]
        == "prompt contains real person's name 'Jane Example' (written 'JaneExample')"
    )
    check = result.to_check()
    assert check.name == "prompt_guard" and check.verdict == "fail" and check.score == 0.0
    assert check.reason is not None and "competitor mark 'Rivalco'" in check.reason
    assert check.evidence["matches"] == result.matches
    assert check.to_json()["evidence"]["matches"][0]["term"] == "Jane Example"


def test_default_negatives_must_be_applied() -> None:
    policy = GuardPolicy(default_negatives=("text", "watermark"))
    missing = check_prompt("a bottle", "blurry", forbidden=(), policy=policy)
    assert not missing.allowed
    assert "text, watermark" in missing.reasons[0]
    merged = enforce_negative("blurry", policy.default_negatives)
    assert check_prompt("a bottle", merged, forbidden=(), policy=policy).allowed


def test_enforce_negative_dedupes_in_stable_order() -> None:
    assert enforce_negative("Text, blurry,, text;  BLURRY ", ["watermark", "text"]) == (
        "Text, blurry, watermark"
    )
    assert enforce_negative("", ["text", "Text", "logo"]) == "text, logo"
    assert enforce_negative("low quality", []) == "low quality"
    assert enforce_negative("text", ["text, watermark", "logo"]) == "text, watermark, logo"


# --------------------------------------------------------------------------- policy file


def test_policy_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "people_names: [Jane Example]\n"
        "competitor_marks:\n  - Rivalco\n"
        "blocked_terms: [gore]\n"
        "default_negatives: [text, watermark]\n",
        encoding="utf-8",
    )
    policy = load_policy(path)
    assert policy.people_names == ("Jane Example",)
    assert policy.competitor_marks == ("Rivalco",)
    assert policy.default_negatives == ("text", "watermark")
    assert policy.source == path


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("people_names: [a\nblocked_terms: [b]\n", 2, "malformed YAML"),
        ("blocked_terms: [gore]\ncompetitors: [x]\n", 2, "unknown key"),
        ("blocked_terms:\n  - gore\n  - '!!!'\n", 3, "no letters"),
        ("blocked_terms: [gore]\nblocked_terms: [x]\n", 2, "appears twice"),
    ],
)
def test_bad_policy_file_names_file_and_line(
    tmp_path: Path, text: str, line: int, needle: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=needle) as info:
        load_policy(path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}:")


@pytest.mark.parametrize(
    ("prompt", "term", "hit"),
    [
        ("a bottle on podium 1", "#1", False),  # issue 10.9: the '#' is part of the term
        ("we are # 1 in town", "#1", False),
        ("we are #1 in town", "#1", True),
        ("the ＃1 mug", "#1", True),  # fullwidth '#' (NFKC)
        ("#\u200b1 choice", "#1", True),  # a zero-width space does not hide it
        ("C rocks", "C++", False),
        ("C++ rocks", "C++", True),
    ],
)
def test_terms_keep_their_own_symbols(prompt: str, term: str, hit: bool) -> None:
    assert blocked(prompt, term) is hit


def test_symbol_match_reports_the_whole_term() -> None:
    result = check_prompt("we are #1 here", "", forbidden=["#1"], policy=NONE)
    assert result.matches[0]["found"] == "#1"
    assert result.reasons == ["prompt contains brand forbidden term '#1'"]
