"""How an incoming record combines with the stored one (paperboy.store.merge), case by case."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from paperboy.models import Featuring, Paper, Submitter
from paperboy.store.merge import merge_featuring, merge_paper

D1 = datetime(2026, 8, 1, tzinfo=UTC)
D2 = datetime(2026, 8, 5, tzinfo=UTC)
D3 = datetime(2026, 8, 9, tzinfo=UTC)

STORED = Paper(
    arxiv_id="2608.00001",
    title="Stored title",
    abstract="Stored abstract.",
    authors=("A. One", "B. Two"),
    categories=("cs.CL", "cs.AI"),
    primary_category="cs.CL",
    version=2,
    published_at=D2,
    updated_at=D2,
    comments="10 pages",
)


def incoming(**kw: Any) -> Paper:
    return Paper(
        arxiv_id="2608.00001", title=kw.pop("title", "New title"), abstract=kw.pop("abstract", ""), **kw
    )


# (case, incoming record, fields expected to differ from STORED after the merge)
PAPER_CASES: list[tuple[str, Paper, dict[str, Any]]] = [
    (
        "newer version replaces what it carries, keeps what it leaves empty",
        incoming(version=3, abstract="New abstract.", categories=("cs.LG",), updated_at=D3),
        {
            "title": "New title",
            "abstract": "New abstract.",
            "version": 3,
            "categories": ("cs.LG",),
            "primary_category": "cs.LG",  # the old primary is not among the new categories
            "updated_at": D3,
        },
    ),
    (
        "same version refreshes",
        incoming(version=2, authors=("A. One", "B. Two", "C. Three")),
        {"title": "New title", "authors": ("A. One", "B. Two", "C. Three")},
    ),
    ("older version changes nothing", incoming(version=1, abstract="Old.", published_at=D2), {}),
    (
        "older version still moves published_at back to the earliest date seen",
        incoming(version=1, published_at=D1),
        {"published_at": D1},
    ),
    ("unversioned record does not overwrite", incoming(title="HF title", authors=("X",)), {}),
    (
        "unversioned record fills gaps",
        incoming(doi="10.1/x", journal_ref="J. 1", license="CC0"),
        {"doi": "10.1/x", "journal_ref": "J. 1", "license": "CC0"},
    ),
    (
        "enrichments come from anyone",
        incoming(
            github_repo="https://github.com/a/b", github_stars=5, ai_summary="Short.", ai_keywords=("k",)
        ),
        {
            "github_repo": "https://github.com/a/b",
            "github_stars": 5,
            "ai_summary": "Short.",
            "ai_keywords": ("k",),
        },
    ),
    (
        "empty strings and tuples are not values",
        incoming(version=3, title="", abstract="", authors=()),
        {"version": 3},
    ),
    (
        "a newer withdrawn version withdraws",
        incoming(version=3, withdrawn=True, abstract="This paper has been withdrawn."),
        {"version": 3, "withdrawn": True, "abstract": "This paper has been withdrawn.", "title": "New title"},
    ),
    ("an unversioned record cannot withdraw", incoming(withdrawn=True), {}),
    (
        "same version can withdraw",
        incoming(version=2, withdrawn=True),
        {"withdrawn": True, "title": "New title"},
    ),
    ("updated_at keeps the latest", incoming(version=1, updated_at=D1), {}),
]


@pytest.mark.parametrize(("case", "new", "changes"), PAPER_CASES, ids=[c[0] for c in PAPER_CASES])
def test_merge_paper(case: str, new: Paper, changes: dict[str, Any]) -> None:
    assert merge_paper(STORED, new) == replace(STORED, **changes)


def test_merge_paper_into_nothing_is_the_record() -> None:
    new = incoming(version=1)
    assert merge_paper(None, new) is new


@pytest.mark.parametrize(
    ("stored", "new", "expected"),
    [
        (True, incoming(version=3), False),  # a newer version that is not withdrawn brings it back
        (True, incoming(version=2), True),
        (True, incoming(version=1), True),
        (True, incoming(), True),
    ],
)
def test_withdrawn_stays_until_a_newer_version(stored: bool, new: Paper, expected: bool) -> None:
    assert merge_paper(replace(STORED, withdrawn=stored), new).withdrawn is expected


def test_unversioned_stored_takes_any_version_and_refreshes_from_unversioned() -> None:
    hf = replace(STORED, version=None)
    assert merge_paper(hf, incoming(version=1)).version == 1
    assert merge_paper(hf, incoming(version=1)).title == "New title"
    assert merge_paper(hf, incoming()).title == "New title"  # same (unknown) version: refresh


def test_merge_is_idempotent() -> None:
    for _, new, _ in PAPER_CASES:
        once = merge_paper(STORED, new)
        assert merge_paper(once, new) == once


FEAT = Featuring(
    arxiv_id="2608.00001",
    day=date(2026, 8, 12),
    source="huggingface",
    submitted_at=D1,
    submitter=Submitter("ada"),
    upvotes=10,
    num_comments=2,
)

FEATURING_CASES: list[tuple[str, Featuring, dict[str, Any]]] = [
    ("fewer votes do not lower the count", replace(FEAT, upvotes=3, num_comments=0), {}),
    ("more votes raise it", replace(FEAT, upvotes=15, num_comments=4), {"upvotes": 15, "num_comments": 4}),
    ("the first source keeps the credit", replace(FEAT, source="member"), {}),
    (
        "other fields fill or refresh",
        replace(
            FEAT, submitter=Submitter("bob", "Bob"), thumbnail="t.png", organization="Org", submitted_at=D2
        ),
        {
            "submitter": Submitter("bob", "Bob"),
            "thumbnail": "t.png",
            "organization": "Org",
            "submitted_at": D2,
        },
    ),
    ("empty fields do not erase", replace(FEAT, submitter=None, submitted_at=None, upvotes=0), {}),
]


@pytest.mark.parametrize(("case", "new", "changes"), FEATURING_CASES, ids=[c[0] for c in FEATURING_CASES])
def test_merge_featuring(case: str, new: Featuring, changes: dict[str, Any]) -> None:
    assert merge_featuring(FEAT, new) == replace(FEAT, **changes)


def test_merge_featuring_into_nothing_is_the_record() -> None:
    assert merge_featuring(None, FEAT) is FEAT
