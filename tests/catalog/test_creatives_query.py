"""Finding creatives: every filter narrows the same way on SQLite and PostgreSQL, pages
add up, the current decision is the newest one, and stars belong to one person."""

from __future__ import annotations

from typing import Any

from bildwerk.catalog import repo
from bildwerk.catalog.repo.creatives import CreativeFilter, facets, find_creatives, set_star
from bildwerk.testing.catalog_rows import fill_run

N = 90


def _find(db: Any, **kw: Any) -> tuple[list[Any], int]:
    with db.session(write=False) as s:
        return find_creatives(s, CreativeFilter(limit=1000, **kw), viewer=kw.get("starred_by"))


def test_filters_sort_and_pages(catalog_db: Any) -> None:
    ids = fill_run(catalog_db, N, run_id="r1")
    fill_run(catalog_db, 10, run_id="r2", campaign="other")
    rows, total = _find(catalog_db, run_id="r1")
    assert total == N and {r.id for r in rows} == set(ids)
    # contact-sheet order: channel, segment, locale, then rank
    keys = [(r.channel, r.segment, r.locale, r.rank) for r in rows]
    assert keys == sorted(keys)

    failing, total = _find(catalog_db, run_id="r1", failing="contrast")
    assert total == len([i for i in range(N) if i % 7 == 0]) == len(failing)
    assert all(r.flagged["contrast"] == "fail" and r.state == "rejected" for r in failing)
    warned, _ = _find(catalog_db, run_id="r1", failing="legibility", verdict="warn")
    assert len(warned) == len([i for i in range(N) if i % 5 == 0])

    cell, _ = _find(catalog_db, run_id="r1", channel="feed", segment="pro", locale="de-DE")
    expected = [i for i in range(N) if i % 3 == 1 and (i // 3) % 2 == 1 and (i // 6) % 3 == 1]
    assert sorted(r.id for r in cell) == sorted(ids[i] for i in expected)

    serum_dusk, _ = _find(catalog_db, run_id="r1", slots={"product": "serum", "light": "dusk"})
    assert serum_dusk and all(r.slots == {"product": "serum", "light": "dusk"} for r in serum_dusk)
    assert {r.id for r in _find(catalog_db, text="serum bottle")[0]} == {
        r.id for r in _find(catalog_db, slots={"product": "serum"})[0]
    }
    assert [r.id for r in _find(catalog_db, text="1004", run_id="r1")[0]] == [ids[4]]  # a seed
    assert [r.id for r in _find(catalog_db, text=ids[5][:12])[0]] == [ids[5]]  # an id prefix
    assert _find(catalog_db, text="100%")[1] == 0  # LIKE wildcards are literal
    assert _find(catalog_db, model="sd15-tiny", run_id="r1")[1] == (N + 1) // 2
    assert _find(catalog_db, campaign="other")[1] == 10

    with catalog_db.session(write=False) as s:
        first, total = find_creatives(s, CreativeFilter(run_id="r1", limit=40))
        second, _ = find_creatives(s, CreativeFilter(run_id="r1", limit=40, offset=40))
        third, _ = find_creatives(s, CreativeFilter(run_id="r1", limit=40, offset=80))
    assert [r.id for r in first + second + third] == [r.id for r in rows]
    newest, _ = _find(catalog_db, run_id="r1", sort="score")
    scores = [r.score for r in newest]
    assert scores == sorted(scores, reverse=True)


def test_current_decision_and_stars(catalog_db: Any) -> None:
    ids = fill_run(catalog_db, 12, run_id="r1")
    with catalog_db.session() as s:
        repo.add_decision(s, ids[1], "approved", actor="ana", reasons=["fine"])
        repo.add_decision(s, ids[2], "approved", actor="ana")
        repo.add_decision(s, ids[2], "rejected", actor="ben", reasons=["logo too small"])
        assert set_star(s, "ana", ids[3], True) and not set_star(s, "ana", ids[3], True)
        set_star(s, "ben", ids[4], True)
        s.commit()
    approved, _ = _find(catalog_db, decision="approved")
    assert [(r.id, r.decided_by) for r in approved] == [(ids[1], "ana")]
    rejected = {r.id: r.decided_by for r in _find(catalog_db, decision="rejected")[0]}
    assert rejected[ids[2]] == "ben"
    mine, _ = _find(catalog_db, starred_by="ana")
    assert [r.id for r in mine] == [ids[3]] and mine[0].starred
    with catalog_db.session() as s:
        assert set_star(s, "ana", ids[3], False)
        s.commit()
    assert _find(catalog_db, starred_by="ana")[1] == 0
    with catalog_db.session(write=False) as s:
        menus = facets(s, "r1")
    assert menus["channel"] == ["feed", "mrec", "web_hero"]
    assert menus["check"] == ["contrast", "legibility"]
    assert menus["slot:product"] == ["cream", "oil", "serum"]
