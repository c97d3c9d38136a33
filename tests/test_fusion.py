"""Rank fusion: reciprocal-rank fusion and score-normalised fusion, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from paperboy.search.fusion import HYBRID_K, hybrid_weights, rrf, score_fusion

RRF_CASES: list[tuple[str, list[list[str]], dict[str, Any], list[tuple[str, float]]]] = [
    ("nothing", [], {}, []),
    ("empty lists", [[], []], {}, []),
    ("one list keeps its order", [["a", "b", "c"]], {}, [("a", 1 / 61), ("b", 1 / 62), ("c", 1 / 63)]),
    (
        "agreement beats one first place",
        [["a", "b"], ["b", "c"]],
        {},
        [("b", 1 / 62 + 1 / 61), ("a", 1 / 61), ("c", 1 / 62)],
    ),
    ("k changes the scores", [["a", "b"]], {"k": 0}, [("a", 1.0), ("b", 0.5)]),
    (
        "ties go to the better best rank",
        [["a", "b"], ["b", "a"]],
        {"k": 1},
        [("a", 1 / 2 + 1 / 3), ("b", 1 / 3 + 1 / 2)],
    ),
    ("ties at the same ranks go to the smaller id", [["b"], ["a"]], {}, [("a", 1 / 61), ("b", 1 / 61)]),
    (
        "weights scale each list",
        [["a"], ["b"]],
        {"k": 0, "weights": [0.5, 1.0]},
        [("b", 1.0), ("a", 0.5)],
    ),
    (
        "a zero weight keeps the documents, at 0",
        [["a"], ["b"]],
        {"k": 0, "weights": [0.0, 1.0]},
        [("b", 1.0), ("a", 0.0)],
    ),
    ("a repeated id counts once, at its best rank", [["a", "b", "a"]], {"k": 0}, [("a", 1.0), ("b", 0.5)]),
    (
        "three lists",
        [["a", "b"], ["b", "c"], ["c", "b"]],
        {"k": 0},
        [("b", 0.5 + 1.0 + 0.5), ("c", 0.5 + 1.0), ("a", 1.0)],
    ),
]


@pytest.mark.parametrize(("case", "rankings", "kwargs", "expected"), RRF_CASES, ids=[c[0] for c in RRF_CASES])
def test_rrf(
    case: str, rankings: list[list[str]], kwargs: dict[str, Any], expected: list[tuple[str, float]]
) -> None:
    result = rrf(rankings, **kwargs)
    assert [i for i, _ in result] == [i for i, _ in expected]
    assert [s for _, s in result] == pytest.approx([s for _, s in expected])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": -1}, "k must not be negative"),
        ({"weights": [1.0]}, "1 weights for 2 lists"),
        ({"weights": [1.0, -1.0]}, "not negative"),
        ({"weights": [1.0, float("nan")]}, "finite"),
    ],
)
def test_rrf_refuses_bad_parameters(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rrf([["a"], ["b"]], **kwargs)


SCORE_CASES: list[tuple[str, list[list[tuple[str, float]]], dict[str, Any], list[tuple[str, float]]]] = [
    ("nothing", [], {}, []),
    (
        "min-max of one list",
        [[("a", 10.0), ("b", 5.0), ("c", 0.0)]],
        {},
        [("a", 1.0), ("b", 0.5), ("c", 0.0)],
    ),
    (
        "min-max puts both scales on [0, 1]; a missing document counts 0",
        [[("a", 30.0), ("b", 10.0)], [("b", 0.9), ("c", 0.7)]],
        {},
        [("a", 1.0), ("b", 1.0), ("c", 0.0)],
    ),
    (
        "weights",
        [[("a", 30.0), ("b", 10.0)], [("b", 0.9), ("c", 0.7)]],
        {"weights": [0.5, 1.0]},
        [("b", 1.0), ("a", 0.5), ("c", 0.0)],
    ),
    ("all-equal scores normalise to 1", [[("a", 2.0), ("b", 2.0)]], {}, [("a", 1.0), ("b", 1.0)]),
    (
        "z-scores; a missing document gets the list's lowest",
        [[("a", 3.0), ("b", 1.0)], [("c", 5.0), ("a", 1.0)]],
        {"method": "zscore"},
        [("a", 0.0), ("c", 0.0), ("b", -2.0)],
    ),
    ("all-equal z-scores are 0", [[("a", 2.0), ("b", 2.0)]], {"method": "zscore"}, [("a", 0.0), ("b", 0.0)]),
    (
        "a repeated id keeps its first score",
        [[("a", 4.0), ("b", 2.0), ("a", 0.0)]],
        {},
        [("a", 1.0), ("b", 0.0)],
    ),
]


@pytest.mark.parametrize(
    ("case", "results", "kwargs", "expected"), SCORE_CASES, ids=[c[0] for c in SCORE_CASES]
)
def test_score_fusion(
    case: str,
    results: list[list[tuple[str, float]]],
    kwargs: dict[str, Any],
    expected: list[tuple[str, float]],
) -> None:
    fused = score_fusion(results, **kwargs)
    assert [i for i, _ in fused] == [i for i, _ in expected]
    assert [s for _, s in fused] == pytest.approx([s for _, s in expected])


def test_score_fusion_refuses_an_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown normalisation"):
        score_fusion([[("a", 1.0)]], method="rank")  # type: ignore[arg-type]


def test_the_hybrid_setting_weighs_bm25_below_vectors() -> None:
    assert hybrid_weights(["keyword", "vector"]) == [0.7, 1.0]
    assert hybrid_weights(["vector"]) == [1.0]
    assert hybrid_weights(["other"]) == [1.0]
    # a paper second in both lists beats one that is first in the BM25 list only
    fused = rrf(
        [["kw-only", "both"], ["both", "vec"]], k=HYBRID_K, weights=hybrid_weights(["keyword", "vector"])
    )
    assert [i for i, _ in fused] == ["both", "vec", "kw-only"]
