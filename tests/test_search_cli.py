"""`paperboy search` end to end: a real SQLite file in a temporary data dir, the searcher built as
`paperboy serve` builds it, plain and JSON-lines output, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import webhub
from click.testing import CliRunner, Result
from webhub import A

from paperboy.cli import main
from paperboy.db import make_engine, upgrade


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, onnx_models: Path) -> CliRunner:
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(onnx_models)  # the run's one ONNX export, not one per test
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(data))
    monkeypatch.setenv("PAPERBOY_BASE_URL", "https://papers.example.org")
    monkeypatch.delenv("PAPERBOY_DATABASE_URL", raising=False)
    monkeypatch.delenv("PAPERBOY_CONFIG", raising=False)
    engine = make_engine(f"sqlite:///{data / 'paperboy.sqlite3'}")
    upgrade(engine)
    webhub.load(engine)
    engine.dispose()
    return CliRunner()


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, ["search", *args])


def test_plain_output_ranks_ids_dates_titles_and_authors(runner: CliRunner) -> None:
    result = run(runner, "sparse attention")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["1", A, "2025-03-01"]
    assert lines[0].endswith("Sparse Attention in $O(n \\log n)$ Time")
    assert lines[1].strip() == "Ada Lovelace, Alan Turing, Grace Hopper et al."
    assert "1 paper matches" in result.stderr and "keyword" in result.stderr  # the summary stays off stdout


def test_json_lines(runner: CliRunner) -> None:
    result = run(runner, "filler", "--json", "--limit", "3")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 3
    assert [r["rank"] for r in records] == [1, 2, 3]
    first = records[0]
    assert {"id", "title", "score", "authors", "published", "url"} <= set(first)
    assert first["title"].startswith("Filler Paper Number")
    assert first["authors"] == ["F. Iller"]
    assert isinstance(first["score"], float)
    assert first["published"].startswith("2025-02-")
    assert first["url"] == f"https://papers.example.org/papers/{first['id']}"
    assert [r["score"] for r in records] == sorted((r["score"] for r in records), reverse=True)
    by_id = run(runner, f"https://arxiv.org/abs/{A}v2", "--json")
    assert json.loads(by_id.stdout.splitlines()[0])["id"] == A


def test_filters(runner: CliRunner) -> None:
    result = run(runner, "filler", "--json", "--limit", "100", "--from", "2025-02-10", "--to", "2025-02-14")
    assert result.exit_code == 0, result.output
    published = {json.loads(line)["published"] for line in result.stdout.splitlines()}
    assert published == {f"2025-02-{d}" for d in range(10, 15)}
    assert run(runner, "sparse attention", "--category", "cs").exit_code == 0
    assert run(runner, "sparse attention", "--category", "cs.CL,math").exit_code == 1  # A is cs.LG, cs.AI


def test_nothing_found_exits_1(runner: CliRunner) -> None:
    result = run(runner, "zebra finch")
    assert result.exit_code == 1
    assert "no papers match 'zebra finch'" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "--from", "2025-13-01"], "'2025-13-01' is not a date in YYYY-MM-DD form"),
        (["x", "--to", "tomorrow"], "'tomorrow' is not a date in YYYY-MM-DD form"),
        (["x", "--from", "2025-03-05", "--to", "2025-03-01"], "from 2025-03-05 is after to 2025-03-01"),
        (["x", "--category", "cs.XX"], "category: 'cs.XX' is not an arXiv category such as cs.CL"),
        (["x", "--category", "Physics!"], "category: 'Physics!' is not an arXiv category"),
        (["x", "--limit", "0"], "--limit"),
        (["x", "--limit", "101"], "--limit"),
        (["!!!"], "nothing to search for in '!!!'"),
        (["   "], "nothing to search for"),
        ([], "Missing argument 'QUERY'"),
    ],
)
def test_bad_input_exits_2_with_a_message(runner: CliRunner, args: list[str], message: str) -> None:
    result = run(runner, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


@pytest.mark.parametrize(
    "args",
    [['"sparse attention"'], ["sparse*"], ["NEAR(sparse)"], ["title:sparse"], ["(sparse"], ["--", "-sparse"]],
)
def test_fts_syntax_is_plain_text(runner: CliRunner, args: list[str]) -> None:
    assert run(runner, *args).exit_code in (0, 1)  # a leading "-" needs "--", as for any command


def test_a_10_kb_query_is_answered(runner: CliRunner) -> None:
    result = run(runner, "sparse " * 1500, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["id"] == A


def test_gibberish_exits_1_even_with_vectors(runner: CliRunner) -> None:
    """Every query has nearest neighbours by meaning; gibberish must still match nothing (it printed ten
    unrelated papers and exited 0 once vectors were there)."""
    update = runner.invoke(main, ["index", "update"])
    assert update.exit_code == 0, update.output
    if json.loads(update.stdout.splitlines()[-1])["vectors"] == 0:
        pytest.skip("no embedding model here: search by meaning is off")
    result = run(runner, "qzxvbn wplkmrt")
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert "no papers match 'qzxvbn wplkmrt'" in result.stderr
    assert "check the spelling" in result.stderr


def test_no_match_with_filters_suggests_dropping_them(runner: CliRunner) -> None:
    result = run(runner, "sparse attention", "--from", "2026-01-01")
    assert result.exit_code == 1
    assert "1 paper matches without them" in result.stderr
