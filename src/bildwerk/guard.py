"""The prompt guard: decides, before anything is generated, whether a prompt may be sent.

A refused job is recorded with its reasons and never generated (no cost, nothing to
clean up later). Three sources of terms are checked in the positive prompt:

* the brand's ``forbidden_terms`` (claims a brand must never make);
* a policy file (``policy.yaml``, named by the brand or workspace) with
  ``people_names``, ``competitor_marks`` and ``blocked_terms``. bildwerk ships no default
  list: which names are off limits is a legal decision of the team, not of the tool;
* the policy's ``default_negatives``, which must all be in the negative prompt
  (:func:`enforce_negative` adds them; the check catches a path that forgot to).

Matching is principled, not clever: NFKC, case folding, invisible format characters
dropped, a small leet map (0→o 1→i 3→e 4→a 5→s 7→t @→a $→s) inside tokens that contain a
letter (so "100%" stays a number), and words compared as whole tokens. A term also
matches when written without its separators ("anti-aging" ~ "antiaging") or spelled out
("m i r a c l e"). Accents are kept: in many languages words differ only by them. Terms
in scripts written without spaces (CJK, kana, Thai) match as substrings. Terms in the
*negative* prompt are fine ("no miracle claims") and are only reported.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

from bildwerk.checks.base import CheckResult
from bildwerk.config.yamlfile import read_yaml, validate

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"})
_SYMBOLS = {"@": "a", "$": "s"}
_TOKEN = re.compile(r"[^\W_]+")
CATEGORIES = {
    "forbidden_terms": "brand forbidden term",
    "people_names": "real person's name",
    "competitor_marks": "competitor mark",
    "blocked_terms": "blocked term",
}


# --------------------------------------------------------------------------- policy


def _term(term: str) -> str:
    if not _normalise(term).tokens:
        raise ValueError(f"'{term}' has no letters or digits to match")
    return term


# validated per item, so an error points at the item's own line
Term = Annotated[str, AfterValidator(_term)]


class _PolicyFile(BaseModel):
    """The YAML shape of ``policy.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    people_names: tuple[Term, ...] = ()
    competitor_marks: tuple[Term, ...] = ()
    blocked_terms: tuple[Term, ...] = ()
    default_negatives: tuple[Term, ...] = ()


@dataclass(frozen=True)
class GuardPolicy:
    """Global terms beyond the brand's; empty by default (see the module docstring)."""

    people_names: tuple[str, ...] = ()
    competitor_marks: tuple[str, ...] = ()
    blocked_terms: tuple[str, ...] = ()
    default_negatives: tuple[str, ...] = ()
    source: Path | None = None


def load_policy(path: Path) -> GuardPolicy:
    """Load ``policy.yaml``; problems are ConfigErrors naming file and line."""
    doc = read_yaml(path)
    data = validate(doc, _PolicyFile)
    return GuardPolicy(
        people_names=data.people_names,
        competitor_marks=data.competitor_marks,
        blocked_terms=data.blocked_terms,
        default_negatives=data.default_negatives,
        source=path,
    )


# --------------------------------------------------------------------------- normalising


@dataclass(frozen=True)
class _Norm:
    """Normalised text: its tokens and, per token, the span in the NFKC text."""

    text: str  # NFKC of the input; spans index into it
    folded: str  # casefolded, format chars removed, leet mapped; same length as ``index``
    index: tuple[int, ...]  # folded position -> text position
    tokens: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]  # per token, in ``text``
    starts: tuple[int, ...]  # per token, its start in ``folded``


def _normalise(raw: str) -> _Norm:
    text = unicodedata.normalize("NFKC", raw)
    chars: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        if unicodedata.category(ch) == "Cf":  # zero-width joiners, soft hyphens, ...
            continue
        for c in _SYMBOLS.get(ch, ch).casefold():
            chars.append(c)
            index.append(i)
    folded = "".join(chars)
    tokens: list[str] = []
    spans: list[tuple[int, int]] = []
    starts: list[int] = []
    for m in _TOKEN.finditer(folded):
        tok = m.group()
        if any(c.isalpha() for c in tok):  # "m1racle" -> "miracle"; "100" stays
            tok = tok.translate(_LEET)
        tokens.append(tok)
        spans.append((index[m.start()], index[m.end() - 1] + 1))
        starts.append(m.start())
    return _Norm(text, folded, tuple(index), tuple(tokens), tuple(spans), tuple(starts))


def _spaceless(term: str) -> bool:
    """Scripts written without spaces between words: match as substrings there."""
    for ch in term:
        name = unicodedata.name(ch, "")
        if name.startswith(("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER")):
            return True
    return False


def _is_symbol(ch: str) -> bool:
    """A character of a term that is neither a word character, a space, an invisible
    format character nor a stand-in letter (``@``, ``$``): ``#`` in ``#1``."""
    return not (ch.isalnum() or ch.isspace() or ch in _SYMBOLS or ch == "_") and (
        unicodedata.category(ch) != "Cf"
    )


def _with_symbols(term: str, hay: _Norm, start: int, end: int) -> tuple[int, int] | None:
    """The match widened to the symbols a term starts or ends with, or None when the
    text around it lacks them: ``#1`` matches "we are #1" but not "podium 1"."""
    text = unicodedata.normalize("NFKC", term).strip().casefold()
    cut = [i for i, c in enumerate(text) if not _is_symbol(c) and not c.isspace()]
    if not cut:
        return start, end
    # symbols between words stay separators ("anti-aging" matches "anti aging")
    lead, trail = text[: cut[0]], text[cut[-1] + 1 :]
    a = start
    for want in reversed(lead):
        a -= 1
        while a >= 0 and unicodedata.category(hay.text[a]) == "Cf":
            a -= 1
        if a < 0 or hay.text[a].casefold() != want:
            return None
    b = end
    for want in trail:
        while b < len(hay.text) and unicodedata.category(hay.text[b]) == "Cf":
            b += 1
        if b >= len(hay.text) or hay.text[b].casefold() != want:
            return None
        b += 1
    return a, b


def _find(term: str, hay: _Norm) -> list[tuple[int, int]]:
    """Spans (in ``hay.text``) where ``term`` occurs, by the rules of the module; a
    term's symbols (``#`` in ``#1``) must be there too."""
    spans = (_with_symbols(term, hay, a, b) for a, b in _find_tokens(term, hay))
    return [span for span in spans if span is not None]


def _find_tokens(term: str, hay: _Norm) -> list[tuple[int, int]]:
    needle = _normalise(term)
    if not needle.tokens:
        return []
    joined = "".join(needle.tokens)
    if _spaceless(term):
        flat = "".join(hay.tokens)
        starts = list(accumulate((len(t) for t in hay.tokens), initial=0))[:-1]
        out = []
        for m in re.finditer(re.escape(joined), flat):
            first = bisect_right(starts, m.start()) - 1
            last = bisect_right(starts, m.end() - 1) - 1
            a = hay.starts[first] + m.start() - starts[first]
            b = hay.starts[last] + m.end() - 1 - starts[last]
            out.append((hay.index[a], hay.index[b] + 1))
        return out
    found: list[tuple[int, int]] = []
    toks, n = hay.tokens, len(needle.tokens)
    i = 0
    while i < len(toks):
        end = None
        if tuple(toks[i : i + n]) == needle.tokens or toks[i] == joined:
            end = i + (n if tuple(toks[i : i + n]) == needle.tokens else 1)
        elif len(toks[i]) == 1:  # spelled out: single characters that join to the term
            acc, j = "", i
            while j < len(toks) and len(toks[j]) == 1 and len(acc) < len(joined):
                acc += toks[j].translate(_LEET)  # "m 1 r a c l e"
                j += 1
            if acc == joined and j - i > 1:
                end = j
        if end is not None:
            found.append((hay.spans[i][0], hay.spans[end - 1][1]))
            i = end
        else:
            i += 1
    return found


# --------------------------------------------------------------------------- result


@dataclass
class GuardResult:
    """The guard's decision. ``matches`` are JSON-ready dicts: ``category``, ``term``,
    ``found`` (the matched text, NFKC), ``field`` ("prompt"|"negative"), ``start``/``end``
    (offsets in the NFKC text) and ``blocking``."""

    allowed: bool
    reasons: list[str] = field(default_factory=list)
    matches: list[dict[str, Any]] = field(default_factory=list)

    def to_check(self) -> CheckResult:
        """As a QA result, so the job's record and the report carry the refusal."""
        return CheckResult(
            name="prompt_guard",
            verdict="pass" if self.allowed else "fail",
            score=1.0 if self.allowed else 0.0,
            reason="; ".join(self.reasons) or None,
            evidence={"matches": list(self.matches)},
        )


def check_prompt(
    prompt: str,
    negative: str,
    *,
    forbidden: Sequence[str],
    policy: GuardPolicy,
) -> GuardResult:
    """Whether ``prompt`` may be generated. Terms in ``prompt`` refuse it; terms in
    ``negative`` are reported only; a missing default negative refuses it too."""
    pos, neg = _normalise(prompt), _normalise(negative)
    groups: list[tuple[str, Iterable[str]]] = [
        ("forbidden_terms", forbidden),
        ("people_names", policy.people_names),
        ("competitor_marks", policy.competitor_marks),
        ("blocked_terms", policy.blocked_terms),
    ]
    matches: list[dict[str, Any]] = []
    reasons: list[str] = []
    for category, terms in groups:
        for term in dict.fromkeys(terms):
            for where, hay in (("prompt", pos), ("negative", neg)):
                for start, end in _find(term, hay):
                    matches.append(
                        {
                            "category": category,
                            "term": term,
                            "found": hay.text[start:end],
                            "field": where,
                            "start": start,
                            "end": end,
                            "blocking": where == "prompt",
                        }
                    )
            hits = [
                m
                for m in matches
                if m["term"] == term and m["category"] == category and m["blocking"]
            ]
            if hits:
                found = hits[0]["found"]
                via = "" if found.casefold() == term.casefold() else f" (written '{found}')"
                reasons.append(f"prompt contains {CATEGORIES[category]} '{term}'{via}")
    required = [i for d in policy.default_negatives for i in _items(d)]
    missing = [d for d in required if not _contains_item(negative, d)]
    if missing:
        reasons.append(
            "negative prompt lacks required default(s): "
            + ", ".join(missing)
            + " (apply enforce_negative before generating)"
        )
    return GuardResult(allowed=not reasons, reasons=reasons, matches=matches)


# --------------------------------------------------------------------------- negatives


def _items(negative: str) -> list[str]:
    return [p.strip() for p in re.split(r"[,;\n]", negative) if p.strip()]


def _key(item: str) -> str:
    return " ".join(_normalise(item).tokens)


def _contains_item(negative: str, item: str) -> bool:
    keys = {_key(x) for x in _items(negative)}
    return _key(item) in keys


def enforce_negative(negative: str, defaults: Sequence[str]) -> str:
    """``negative`` with every default merged in: comma-separated items, deduplicated
    by their normalised form, the user's items first, then missing defaults in order.
    A default may itself be a list ("text, watermark", as the brand's default_negative)."""
    out: list[str] = []
    seen: set[str] = set()
    for item in [*_items(negative), *(i for d in defaults for i in _items(d))]:
        key = _key(item)
        if item and key not in seen:
            seen.add(key)
            out.append(item)
    return ", ".join(out)
