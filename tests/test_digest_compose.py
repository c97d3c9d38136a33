"""What a subscriber's digest holds (pure): trending first, then each topic and followed author; each paper
once; exclusions (the subscriber's and a topic's own `-word`), categories, and the size bound."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from searchkit import HashEmbedder

from paperboy.digest.compose import Pool, author_matches, compose, parse_topic
from paperboy.models import Paper, StoredPaper, Subscription, Topic

NOW = datetime(2026, 11, 27, 13, tzinfo=UTC)
EMB = HashEmbedder()


def _item(
    arxiv_id: str, title: str, abstract: str = "", authors=("A. Nyone",), cats=("cs.LG",), up=0
) -> StoredPaper:
    paper = Paper(
        arxiv_id=arxiv_id, title=title, abstract=abstract or title, authors=tuple(authors), categories=cats
    )
    return StoredPaper(paper, local_upvotes=up)


FRESH = [
    _item("2611.00001", "KV cache eviction for long context inference", cats=("cs.CL",)),
    _item("2611.00002", "Speculative decoding with draft models", cats=("cs.CL",)),
    _item("2611.00003", "Speculative decoding for medical report generation", cats=("cs.CL",)),
    _item(
        "2611.00004",
        "Graph neural networks for molecules",
        authors=("Ada Lovelace", "B. Two"),
        cats=("q-bio.BM",),
    ),
    _item("2611.00005", "Protein folding with diffusion", authors=("Grace Hopper",), cats=("q-bio.BM",)),
    _item("2611.00006", "Evicting keys from the KV cache under memory pressure", cats=("cs.LG",)),
]
TRENDING = [
    _item("2611.00010", "A trending survey of everything", up=50),
    _item("2611.00001", "KV cache eviction for long context inference", cats=("cs.CL",), up=30),
    _item("2611.00011", "Trending medical imaging benchmark", up=20, cats=("eess.IV",)),
]


def _pool() -> Pool:
    vectors = np.stack([EMB._vector(f"{i.paper.title} {i.paper.abstract}") for i in FRESH]).astype(np.float32)
    return Pool(TRENDING, FRESH, vectors)


def _topic(n: int, query: str, cats: tuple[str, ...] = ()) -> Topic:
    return Topic(
        n,
        1,
        query,
        "topic",
        NOW,
        categories=cats,
        vector=EMB.embed_query(parse_topic(query)[0]).astype(np.float32).tobytes(),
    )


def _sub(**kw: object) -> Subscription:
    base = {"id": 1, "email": "ada@example.org", "status": "active", "created_at": NOW, "max_papers": 10}
    return Subscription(**{**base, **kw})  # type: ignore[arg-type]


def _ids(section) -> list[str]:  # type: ignore[no-untyped-def]
    return [i.paper.arxiv_id for i in section.items]


def test_trending_then_topics_then_authors_each_paper_once() -> None:
    sub = _sub(
        topics=(_topic(1, "KV cache"), _topic(2, "speculative decoding -medical")),
        authors=("ada lovelace",),
    )
    digest = compose(sub, _pool())
    kinds = [s.kind for s in digest.sections]
    assert kinds == ["trending", "topic", "topic", "author"]
    trending, kv, spec, author = digest.sections
    assert _ids(trending) == ["2611.00010", "2611.00001", "2611.00011"][: len(trending.items)]
    assert "2611.00001" not in _ids(kv)  # already in trending: each paper once
    assert "2611.00006" in _ids(kv)
    assert _ids(spec) == ["2611.00002"]  # the medical one is excluded by the topic's -medical
    assert _ids(author) == ["2611.00004"]
    all_ids = [i.paper.arxiv_id for i in digest.papers]
    assert len(all_ids) == len(set(all_ids)) == digest.total


def test_excluded_words_leave_papers_out_everywhere() -> None:
    sub = _sub(topics=(_topic(1, "speculative decoding"),), exclude=("medical",), max_papers=9)
    digest = compose(sub, _pool())
    ids = [i.paper.arxiv_id for i in digest.papers]
    assert "2611.00003" not in ids and "2611.00011" not in ids  # trending's medical benchmark too
    assert "2611.00002" in ids


def test_categories_narrow_every_section() -> None:
    sub = _sub(topics=(_topic(1, "KV cache eviction"),), categories=("cs.CL",))
    ids = [i.paper.arxiv_id for i in compose(sub, _pool()).papers]
    assert ids and all(i in {"2611.00001", "2611.00002", "2611.00003"} for i in ids)
    archive = _sub(categories=("q-bio",), authors=("Grace Hopper",))
    assert [i.paper.arxiv_id for i in compose(archive, _pool()).papers] == ["2611.00005"]


def test_the_size_bound_is_shared_fairly() -> None:
    sub = _sub(topics=(_topic(1, "KV cache"), _topic(2, "speculative decoding")), max_papers=3)
    digest = compose(sub, _pool())
    assert digest.total == 3
    assert [s.kind for s in digest.sections] == ["trending", "topic", "topic"]


def test_without_topics_the_digest_is_what_is_trending() -> None:
    digest = compose(_sub(max_papers=2), _pool())
    assert [s.kind for s in digest.sections] == ["trending"] and digest.total == 2


def test_nothing_new_and_nothing_trending_is_an_empty_digest() -> None:
    digest = compose(_sub(topics=(_topic(1, "KV cache"),)), Pool([], [], None))
    assert digest.total == 0 and digest.sections == ()


def test_keyword_only_when_there_are_no_vectors() -> None:
    sub = _sub(topics=(Topic(1, 1, "protein folding", "topic", NOW),), max_papers=6)
    ids = [i.paper.arxiv_id for i in compose(sub, Pool([], FRESH, None)).papers]
    assert ids == ["2611.00005"]


def test_topic_syntax_and_author_names() -> None:
    assert parse_topic('speculative decoding -medical -"code generation"') == (
        "speculative decoding",
        ("medical", "code generation"),
    )
    assert parse_topic("-only -negatives") == ("", ("only", "negatives"))
    assert author_matches("Ada Lovelace", ["A. Lovelace"])
    assert author_matches("ada lovelace", ["Ada  Lovelace"])
    assert author_matches("Jose Garcia", ["José García"])
    assert not author_matches("Ada Lovelace", ["Ada Byron"])
    assert not author_matches("Ada Lovelace", ["Alan Lovelace"])
