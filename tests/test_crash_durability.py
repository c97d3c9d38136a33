"""Nothing acknowledged is lost: 20 API writers (upvotes, comments, subscriptions) against a real `paperboy
serve` (a child process on loopback) that gets SIGKILL 5 times at random moments and is restarted on the same
data; then the database, opened directly, holds every write that got a 2xx. bench/crash.py is the same run,
longer; these tests call it at CI size (a few seconds of writing) and check its JSON summary too."""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import crash

from paperboy.db.schema import comments, votes

WRITERS = 20
KILLS = 5
DURATION = 4.0  # seconds of writing, cut at 5 random moments


def _assert_nothing_lost(summary: dict[str, object]) -> None:
    assert summary["errors"] == 0, summary["error_examples"]
    assert summary["lost"] == 0, summary["lost_examples"]
    assert summary["unanswered"] == 0  # every writer's last request was answered after the last restart
    assert summary["kills"] == KILLS and summary["starts"] == KILLS + 1
    assert summary["retries"] > 0  # the kills did land on requests under way
    # every kind of write was acknowledged, and many of them
    assert (
        summary["acked_votes"] > 50 and summary["acked_comments"] > 20 and summary["acked_subscriptions"] > 5
    )
    assert summary["acked"] == summary["requests"]
    assert summary["votes_exact"] == summary["vote_pairs"] > 0


def test_acknowledged_writes_survive_sigkill_on_sqlite(tmp_path: Path) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        rc = crash.main(
            [
                "--writers",
                str(WRITERS),
                "--kills",
                str(KILLS),
                "--duration",
                str(DURATION),
                "--data-dir",
                str(tmp_path),
                "--seed",
                "7",
            ]
        )
    (line,) = out.getvalue().splitlines()
    summary = json.loads(line)
    assert summary["backend"] == "sqlite"
    assert summary["integrity"] == "ok" and summary["foreign_key_check"] == "ok"
    _assert_nothing_lost(summary)
    assert rc == 0


def test_the_check_sees_a_lost_comment_and_a_lost_vote(tmp_path: Path) -> None:
    """The comparison can fail: remove one acknowledged comment and flip one acknowledged upvote by hand."""
    result = crash.run(writers=4, kills=1, duration=1.5, data_dir=tmp_path, seed=11, log=lambda m: None)
    assert result.summary["lost"] == 0
    acked = [o for w in result.writers for o in w.ops if o.outcome == "acked"]
    comment = next(o for o in acked if o.kind == "comment")
    writer = next(w for w in result.writers if any(o.kind == "vote" and o.outcome == "acked" for o in w.ops))
    vote = [o for o in writer.ops if o.kind == "vote"][-1]
    assert vote.outcome == "acked"
    engine = sa.create_engine(result.url)
    with engine.begin() as conn:
        conn.execute(sa.delete(comments).where(comments.c.id == comment.answer))
        key = (votes.c.user_id == writer.member.user_id) & (votes.c.arxiv_id == vote.arxiv_id)
        if vote.answer:
            conn.execute(sa.delete(votes).where(key))
        else:
            conn.execute(
                sa.insert(votes).values(
                    user_id=writer.member.user_id,
                    arxiv_id=vote.arxiv_id,
                    created_at=sa.func.current_timestamp(),
                )
            )
    engine.dispose()
    found = crash.check(result.url, result.writers)
    assert (found["lost"], found["lost_comments"], found["lost_votes"]) == (2, 1, 1)


@pytest.mark.postgres
def test_acknowledged_writes_survive_sigkill_on_postgres(postgres_engine: Engine, tmp_path: Path) -> None:
    url = postgres_engine.url.render_as_string(hide_password=False)
    postgres_engine.dispose()
    result = crash.run(
        writers=WRITERS,
        kills=KILLS,
        duration=DURATION,
        database_url=url,
        data_dir=tmp_path,
        seed=8,
        log=lambda m: None,
    )
    assert result.summary["backend"] == "postgresql"
    _assert_nothing_lost(result.summary)
