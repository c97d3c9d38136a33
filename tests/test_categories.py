"""paperboy/categories.py: the one check of a category a person typed, and every entry point using it."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from paperboy.categories import ARCHIVES, check_categories, check_category
from paperboy.config import Settings
from paperboy.errors import InvalidInput
from paperboy.search.query import SearchQuery
from paperboy.sources import arxiv_rss


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("cs.CL", "cs.CL"),
        ("cs.cl", "cs.CL"),
        (" CS.Cl ", "cs.CL"),
        ("cs", "cs"),
        ("hep-th", "hep-th"),
        ("cond-mat.MES-HALL", "cond-mat.mes-hall"),
        ("physics.optics", "physics.optics"),
        ("math.AG", "math.AG"),
        ("q-fin.ST", "q-fin.ST"),
        ("solv-int", "solv-int"),  # retired: old papers carry it
    ],
)
def test_real_categories_pass_as_arxiv_spells_them(typed: str, canonical: str) -> None:
    assert check_category(typed) == canonical


@pytest.mark.parametrize(
    "typed", ["cs.XX", "cs.", "foo", "foo.BAR", "Physics!", "", "cs.CL.LG", "hep-th.AB", "x" * 5000, "cs CL"]
)
def test_anything_else_is_refused_with_what_was_expected(typed: str) -> None:
    with pytest.raises(ValueError, match=r"is not an arXiv category such as cs\.CL or an archive such as cs"):
        check_category(typed)


def test_a_long_value_is_cut_in_the_message() -> None:
    with pytest.raises(ValueError) as caught:
        check_category("y" * 100_000)
    assert len(str(caught.value)) < 200


def test_several_keep_order_and_drop_repeats() -> None:
    assert check_categories(["cs.LG", "CS.lg", "cs"]) == ("cs.LG", "cs")


def test_every_entry_point_uses_it() -> None:
    with pytest.raises(InvalidInput, match=r"category: 'cs\.XX' is not an arXiv category"):
        SearchQuery("x", categories=("cs.XX",))
    assert SearchQuery("x", categories=("cs.lg", "cs.LG")).categories == ("cs.LG",)
    with pytest.raises(InvalidInput, match=r"'cs\.XX' is not an arXiv category"):
        arxiv_rss.check_category("cs.CL+cs.XX")
    assert arxiv_rss.check_category("cs.cl+stat.ml") == "cs.CL+stat.ML"
    with pytest.raises(ValidationError, match=r"'cs\.XX' is not an arXiv category"):
        Settings(arxiv_categories="cs.CL, cs.XX")
    assert Settings(arxiv_categories="cs.cl cs.LG+stat.ML").arxiv_categories == ["cs.CL", "cs.LG+stat.ML"]


def test_the_cli_refuses_a_bad_category_to_follow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from paperboy.cli import main

    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["ingest", "arxiv", "--category", "cs.XX"])
    assert result.exit_code != 0
    assert "'cs.XX' is not an arXiv category" in result.output
    assert "Traceback" not in result.output


@pytest.mark.shared_data
def test_every_real_category_in_the_arxiv_snapshot_passes(shared_data: Path) -> None:
    """The taxonomy must not refuse a category arXiv uses: every value of the real 74,728-paper snapshot that
    has a category's shape (the field also carries MSC and ACM classes, which are not categories) passes."""
    path = shared_data / "arxiv_metadata" / "arxiv_daily_cs_2025-03-18_2026-07-01.jsonl.gz"
    shaped = re.compile(r"[a-z][a-z-]*(\.[A-Za-z][A-Za-z-]*)?")
    seen: set[str] = set()
    with gzip.open(path, "rt") as f:
        for line in f:
            seen.update(c for c in json.loads(line)["categories"] if shaped.fullmatch(c))
    seen.discard("na")  # "n/a" as one record's authors typed it into their classes
    assert len(seen) > 100
    for c in sorted(seen):
        assert check_category(c) == c
    assert {c.split(".")[0] for c in seen} <= ARCHIVES
