"""paperboy.recommend.rank: what a member's feed shows first, and the one reason each card gives."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from paperboy.recommend.rank import (
    Interests,
    Pick,
    Pool,
    Reason,
    Seed,
    TopicSeed,
    author_index,
    rank,
    reason_text,
    tail,
)

NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)
DIM = 8


def unit(*xs: float) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(xs)] = xs
    return v / np.linalg.norm(v)


def axis(i: int, noise: float = 0.0, j: int = 7) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    v[j] += noise
    return v / np.linalg.norm(v)


def make_pool(
    rows: list[tuple[str, np.ndarray, tuple[str, ...]]],
    popularity: list[float] | None = None,
    days_ago: list[float] | None = None,
    via: dict[str, str] | None = None,
) -> Pool:
    n = len(rows)
    ages = days_ago if days_ago is not None else [1.0] * n
    return Pool(
        ids=tuple(r[0] for r in rows),
        vectors=np.stack([r[1] for r in rows]).astype(np.float32),
        authors=tuple(tuple(a.casefold() for a in r[2]) for r in rows),
        author_names=tuple(r[2] for r in rows),
        published=np.array([(NOW - timedelta(days=a)).timestamp() for a in ages]),
        popularity=np.array(popularity if popularity is not None else [0.0] * n, dtype=np.float64),
        via=via or {},
    )


def seed(arxiv_id: str, vec: np.ndarray, authors: tuple[str, ...] = (), kind: str = "upvote") -> Seed:
    return Seed(
        arxiv_id=arxiv_id,
        title=f"Paper {arxiv_id}",
        kind=kind,
        at=NOW - timedelta(days=3),
        vector=vec,
        authors=tuple(a.casefold() for a in authors),
    )


def ids(picks: list[Pick]) -> list[str]:
    return [p.arxiv_id for p in picks]


@pytest.fixture(params=[False, True], ids=["plain", "indexed"])
def indexed(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def prepared(pool: Pool, indexed: bool) -> Pool:
    return author_index(pool) if indexed else pool


def test_similar_papers_come_first_with_the_seed_they_are_like(indexed: bool) -> None:
    pool = prepared(
        make_pool(
            [
                ("s1", axis(0), ("Ann",)),
                ("near0", axis(0, 0.3), ("Bo",)),
                ("near1", axis(1, 0.3), ("Cy",)),
                ("far", axis(5), ("Di",)),
            ]
        ),
        indexed,
    )
    interests = Interests(seeds=(seed("s1", axis(0)), seed("s2", axis(1))))
    picks = rank(interests, pool, NOW, 10)
    assert ids(picks)[:2] in (["near0", "near1"], ["near1", "near0"])
    assert ids(picks)[-1] == "far"
    assert "s1" not in ids(picks)  # a seed is never shown
    by_id = {p.arxiv_id: p for p in picks}
    assert by_id["near0"].reason == Reason("similar", "Paper s1", "s1")
    assert by_id["near1"].reason == Reason("similar", "Paper s2", "s2")
    assert picks == sorted(picks, key=lambda p: -p.score)


def test_hidden_and_seeds_never_appear(indexed: bool) -> None:
    pool = prepared(
        make_pool(
            [("s1", axis(0), ()), ("a", axis(0, 0.1), ()), ("b", axis(0, 0.2), ()), ("c", axis(3), ())]
        ),
        indexed,
    )
    interests = Interests(seeds=(seed("s1", axis(0)),), hidden=frozenset({"a"}))
    assert ids(rank(interests, pool, NOW, 10)) == ["b", "c"]
    assert ids(rank(interests, pool, NOW, 1)) == ["b"]


def test_less_like_this_pushes_similar_papers_down(indexed: bool) -> None:
    rows = [
        ("gan1", unit(1, 0.5), ()),  # like the seed, and like the paper marked "less like this"
        ("gan2", unit(1, 0.6), ()),
        ("other", unit(1, 0, 0.9), ()),  # a little less like the seed, unlike the marked paper
    ]
    pool = prepared(make_pool(rows), indexed)
    base = Interests(seeds=(seed("s", unit(1, 0.3, 0.3)),))
    assert ids(rank(base, pool, NOW, 3))[-1] == "other"
    less = Interests(seeds=base.seeds, less=(unit(0, 1),), hidden=frozenset({"marked"}))
    assert ids(rank(less, pool, NOW, 3))[0] == "other"


def test_a_followed_author_ranks_first_with_reason_author(indexed: bool) -> None:
    pool = prepared(
        make_pool(
            [
                ("close", axis(0, 0.1), ("Bo",)),
                ("theirs", axis(4), ("Ann", "Jane Doe")),
                ("other", axis(5), ("Cy",)),
            ]
        ),
        indexed,
    )
    interests = Interests(seeds=(seed("s", axis(0)),), followed_authors={"jane doe": "Jane Doe"})
    picks = rank(interests, pool, NOW, 3)
    assert picks[0].arxiv_id == "theirs"
    assert picks[0].reason == Reason("author", "Jane Doe", None)
    assert reason_text(picks[0].reason) == "By Jane Doe, whom you follow"
    assert picks[1].reason.kind == "similar"


def test_a_coauthor_of_a_seed_is_named_with_that_seed(indexed: bool) -> None:
    pool = prepared(
        make_pool([("later", axis(3), ("Zed", "Mary Major")), ("near", axis(0, 3.0), ("Cy",))]),
        indexed,
    )
    s = seed("s", axis(0), authors=("Mary Major", "Joe"))
    picks = rank(Interests(seeds=(s,)), pool, NOW, 2)
    assert picks[0].arxiv_id == "later"
    assert picks[0].reason == Reason("author", "Mary Major", "s")  # the name as the paper prints it
    assert reason_text(picks[0].reason, [s]) == "By Mary Major, an author of “Paper s”, which you upvoted"
    # by meaning alone the co-authored paper is no longer first
    assert ids(rank(Interests(seeds=(s,)), pool, NOW, 2, use_authors=False))[0] == "near"


def test_topics_and_follows_through_members_and_organizations() -> None:
    pool = make_pool(
        [
            ("kv", axis(2, 0.1), ()),
            ("bob", axis(5), ()),
            ("goog", axis(6), ()),
            ("x", axis(4), ()),
            ("carol", axis(7), ()),
        ],
        via={"bob": "member:bob", "goog": "org:Google", "nope": "member:ghost", "carol": "submitted:carol"},
    )
    interests = Interests(topics=(TopicSeed("kv cache", axis(2)),))
    by_id = {p.arxiv_id: p.reason for p in rank(interests, pool, NOW, 5)}
    assert by_id["kv"] == Reason("topic", "kv cache")
    assert by_id["bob"] == Reason("member", "bob")
    assert by_id["goog"] == Reason("org", "Google")
    assert reason_text(by_id["kv"]) == "Matches your topic “kv cache”"
    assert reason_text(by_id["bob"]) == "Upvoted by @bob, whom you follow"
    assert reason_text(by_id["goog"]) == "From Google, which you follow"
    assert reason_text(by_id["carol"]) == "Submitted by @carol, whom you follow"
    assert ids(rank(interests, pool, NOW, 4))[0] == "kv"


def test_no_interests_means_trending_by_popularity_then_recency(indexed: bool) -> None:
    pool = prepared(
        make_pool(
            [
                ("old_hit", axis(0), ()),
                ("new_hit", axis(1), ()),
                ("quiet", axis(2), ()),
                ("mid", axis(3), ()),
            ],
            popularity=[50, 50, 0, 10],
            days_ago=[20, 2, 1, 30],
        ),
        indexed,
    )
    picks = rank(Interests(hidden=frozenset({"mid"})), pool, NOW, 10)
    assert ids(picks) == ["new_hit", "old_hit", "quiet"]
    assert {p.reason for p in picks} == {Reason("trending", "")}
    assert reason_text(picks[0].reason) == "Trending"


def test_ties_are_broken_by_newer_then_id() -> None:
    same = axis(1)
    pool = make_pool(
        [("2601.3", same, ()), ("2601.1", same, ()), ("2601.2", same, ()), ("2601.0", same, ())],
        days_ago=[5, 5, 5, 1],
    )
    interests = Interests(seeds=(seed("s", axis(1)),))
    expected = ["2601.0", "2601.1", "2601.2", "2601.3"]
    assert ids(rank(interests, pool, NOW, 4)) == expected
    assert ids(rank(interests, pool, NOW, 2)) == expected[:2]
    reversed_pool = make_pool(
        [("2601.0", same, ()), ("2601.2", same, ()), ("2601.1", same, ()), ("2601.3", same, ())],
        days_ago=[1, 5, 5, 5],
    )
    assert ids(rank(interests, reversed_pool, NOW, 4)) == expected


def test_a_tail_of_an_indexed_pool_ranks_like_a_fresh_pool() -> None:
    rows = [(f"p{i}", axis(i % 6, 0.1 * i), (f"A{i % 3}",)) for i in range(12)]
    full = author_index(make_pool(rows))
    s = seed("p0", axis(0), authors=("A1",))
    interests = Interests(seeds=(s,), hidden=frozenset({"p7"}), followed_authors={"a2": "A2"})
    got = rank(interests, tail(full, 5), NOW, 5)
    fresh = author_index(make_pool(rows[5:]))
    assert fresh.index is not None and full.index is not None
    # a tail keeps the mean vector of the papers it was cut from
    want = rank(interests, replace(fresh, index=replace(fresh.index, mean=full.index.mean)), NOW, 5)
    assert got == want
    assert "p7" not in ids(got) and all(int(i[1:]) >= 5 for i in ids(got))


def test_reason_texts_for_each_kind_of_seed() -> None:
    seeds = [seed("u", axis(0)), seed("v", axis(1), kind="save"), seed("w", axis(2), kind="claim")]
    assert reason_text(Reason("similar", "Paper u", "u"), seeds) == "Like “Paper u”, which you upvoted"
    assert reason_text(Reason("similar", "Paper v", "v"), seeds) == "Like “Paper v”, which you saved"
    assert reason_text(Reason("similar", "Paper w", "w"), seeds) == "Like “Paper w”, a paper of yours"
    # any iterable of seeds, a generator too
    author = Reason("author", "Ann", "v")
    assert reason_text(author, (s for s in seeds)) == "By Ann, an author of “Paper v”, which you saved"
    assert reason_text(author) == "By Ann, an author of a paper you liked"


def test_a_reason_quotes_a_long_title_cut_at_a_word() -> None:
    long = "Directing the World: Fast Autoregressive Video Generation with Compositional Human-Camera Control"
    text = reason_text(Reason("similar", long, "u"), [seed("u", axis(0))])
    assert text == "Like “Directing the World: Fast Autoregressive Video Generation…”, which you upvoted"
    assert reason_text(Reason("topic", "kv cache")) == "Matches your topic “kv cache”"


def test_empty_pool_and_zero_limit() -> None:
    pool = make_pool([("a", axis(0), ())])
    assert rank(Interests(seeds=(seed("s", axis(0)),)), pool, NOW, 0) == []
    assert rank(Interests(seeds=(seed("a", axis(0)),)), pool, NOW, 5) == []  # only the seed itself
