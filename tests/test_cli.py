"""The `paperboy` command end to end, over a real SQLite file in a temporary data dir."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from paperboy.cli import main
from paperboy.config import Settings


def _listing_line(i: int) -> str:
    return json.dumps(
        {
            "id": f"2501.{i:05d}",
            "title": f"Paper number {i}",
            "authors": ["Ada Lovelace", "Alan Turing"],
            "categories": ["cs.CL", "cs.LG"],
            "comment": None,
            "summary": f"An abstract\nabout topic {i}.",
            "listing_date": "2025-01-15",
        }
    )


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PAPERBOY_DATABASE_URL", raising=False)
    return CliRunner()


def _summary(output: str) -> dict[str, int]:
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_snapshot_ingest_is_idempotent(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "listing.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(_listing_line(i) for i in range(1, 51)) + "\n")
    first = runner.invoke(main, ["ingest", "snapshot", str(path)])
    assert first.exit_code == 0, first.output
    assert _summary(first.stdout)["inserted"] == 50
    second = runner.invoke(main, ["ingest", "snapshot", str(path)])
    assert second.exit_code == 0
    s = _summary(second.stdout)
    assert (s["inserted"], s["updated"]) == (0, 0)


def test_truncated_file_fails_keeps_pages_and_resumes(runner: CliRunner, tmp_path: Path) -> None:
    from paperboy.sources import snapshot

    lines = [_listing_line(i) for i in range(1, snapshot.PAGE_SIZE + 11)]
    path = tmp_path / "cut.jsonl"
    path.write_text("\n".join(lines) + '\n{"id": "2501.9', encoding="utf-8")  # truncated last line
    result = runner.invoke(main, ["ingest", "snapshot", str(path)])
    assert result.exit_code == 1
    assert "may be truncated" in result.output
    assert f"Kept {snapshot.PAGE_SIZE} new" in result.output
    # The file is completed (as a re-download would); the run resumes after the stored page.
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    again = runner.invoke(main, ["ingest", "snapshot", str(path)])
    assert again.exit_code == 0, again.output
    assert _summary(again.stdout)["inserted"] == 10


def test_missing_file_and_bad_dates_are_clear_errors(runner: CliRunner, tmp_path: Path) -> None:
    missing = runner.invoke(main, ["ingest", "snapshot", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1
    assert "no such file" in missing.output
    bad = runner.invoke(main, ["ingest", "hf", "--date", "2026-02-30"])
    assert bad.exit_code == 2
    assert "'2026-02-30' is not a date in YYYY-MM-DD form" in bad.output
    both = runner.invoke(main, ["ingest", "hf", "--date", "2026-02-03", "--since", "2026-02-01"])
    assert both.exit_code == 2
    assert "not both" in both.output


def test_config_lists_every_setting(runner: CliRunner) -> None:
    result = runner.invoke(main, ["config"])
    assert result.exit_code == 0
    for name in Settings.model_fields:
        assert f"PAPERBOY_{name.upper()}" in result.output


def test_invalid_setting_is_reported(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERBOY_PORT", "99999")
    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "invalid settings" in result.output and "PAPERBOY_PORT='99999'" in result.output
    assert len(result.output.strip().splitlines()) == 1  # one line, not pydantic's report


def test_categories_setting_accepts_plain_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERBOY_ARXIV_CATEGORIES", "cs.CL, cs.LG")
    assert Settings().arxiv_categories == ["cs.CL", "cs.LG"]
    monkeypatch.setenv("PAPERBOY_ARXIV_CATEGORIES", '["cs.AI"]')
    assert Settings().arxiv_categories == ["cs.AI"]


def test_db_upgrade_creates_the_database(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0
    assert (tmp_path / "data" / "paperboy.sqlite3").exists()


def test_ingest_log_lists_runs_newest_first(runner: CliRunner, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(_listing_line(1) + "\n", encoding="utf-8")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    assert runner.invoke(main, ["ingest", "snapshot", str(good)]).exit_code == 0
    assert runner.invoke(main, ["ingest", "snapshot", str(bad)]).exit_code == 1
    result = runner.invoke(main, ["ingest", "log", "--limit", "5"])
    assert result.exit_code == 0
    runs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["source"], r["status"]) for r in runs] == [("snapshot", "failed"), ("snapshot", "ok")]
    assert "not JSON" in runs[0]["error"]
    assert runs[1]["inserted"] == 1
