"""The whole digest round — plan, then send — killed with SIGKILL at random points over 1,000 subscribers and
restarted until done: one run per subscriber and period, every subscriber exactly one sent row, nobody
missing, duplicates only for the mails in flight at a kill. Real SQLite file, real SMTP server (aiosmtpd)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from test_digest_plan import FRIDAY, _load
from test_send import Server
from test_send import server as server  # the fixture

from paperboy.db.schema import digest_runs, outbox, subscriptions, topics

SUBSCRIBERS = 1000

ROUND = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta

    from paperboy.db import make_engine
    from paperboy.digest.plan import Context
    from paperboy.digest.run import digest_round
    from paperboy.mailer import SmtpMailer
    from paperboy.templating import make_environment

    engine = make_engine(sys.argv[1])
    as_of = datetime.fromisoformat(sys.argv[3])
    ctx = Context("Lab Papers", "https://papers.example.org", "Lab Papers <papers@example.org>", b"k" * 32)
    with SmtpMailer(sys.argv[2], connections=1, timeout=10) as mailer:
        report = digest_round(
            engine, as_of, ctx, make_environment(), mailer, lambda: datetime.now(UTC), rate=1000,
            lease=timedelta(0),  # a restarted round takes back at once what a killed one left `sending`
        )
    print(report.summary())
    sys.exit(0 if report.send is not None and report.send.stopped is None else 3)
    """
)


def _subscribers(engine: Engine) -> None:
    then = FRIDAY - timedelta(days=30)
    subs = [
        {
            "id": n + 1,
            "email": f"reader{n:04d}@lab.example",
            "status": "active",
            "cadence": "daily",
            "send_hour": 8,
            "weekly_day": 0,
            "timezone": "America/New_York",
            "max_papers": 10,
            "categories": [],
            "authors": [],
            "exclude": [],
            "token_version": 1,
            "created_at": then,
            "confirmed_at": then,
        }
        for n in range(SUBSCRIBERS)
    ]
    tops = [
        {"subscription_id": n + 1, "query": "KV cache", "source": "topic", "created_at": then}
        for n in range(SUBSCRIBERS)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(subscriptions), subs)
        conn.execute(sa.insert(topics), tops)


def test_a_digest_round_killed_again_and_again_sends_each_digest_once(
    sqlite_engine: Engine, server: Server, tmp_path: Path
) -> None:
    _load(sqlite_engine)
    _subscribers(sqlite_engine)
    server.handler.delay = 0.001
    script = tmp_path / "round.py"
    script.write_text(ROUND)
    rng = random.Random(20261128)
    kills = runs = 0
    deadline = time.monotonic() + 300
    while True:
        assert time.monotonic() < deadline, f"not done after {runs} runs"
        err = (tmp_path / f"err{runs}.txt").open("w")
        proc = subprocess.Popen(
            [sys.executable, str(script), str(sqlite_engine.url), server.url, FRIDAY.isoformat()],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        runs += 1
        if kills < 8:
            # the first kills land while it starts up or plans (nothing received yet), later ones mid-send
            time.sleep(rng.uniform(0.5, 3.0) if kills < 3 else 0)
            target = len(server.handler.received) + rng.randint(30, 200)
            while kills >= 3 and proc.poll() is None and len(server.handler.received) < target:
                time.sleep(0.002)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
        rc = proc.wait(timeout=120)
        err.close()
        if rc != -signal.SIGKILL:
            assert rc == 0, (tmp_path / f"err{runs - 1}.txt").read_text()
            break

    assert kills >= 5
    with sqlite_engine.connect() as conn:
        periods = conn.execute(
            sa.select(digest_runs.c.subscription_id, digest_runs.c.period, digest_runs.c.papers)
        ).all()
        sent = conn.execute(
            sa.select(outbox.c.subscription_id, sa.func.count())
            .where(outbox.c.status == "sent")
            .group_by(outbox.c.subscription_id)
        ).all()
        statuses = set(conn.execute(sa.select(outbox.c.status)).scalars())
    assert len(periods) == SUBSCRIBERS and {p for _, p, _ in periods} == {"day:2026-11-27"}  # one run each
    assert all(papers > 0 for _, _, papers in periods)
    assert statuses == {"sent"}
    assert len(sent) == SUBSCRIBERS and all(n == 1 for _, n in sent)
    got = [r.rcpt[0] for r in server.handler.received]
    assert set(got) == {f"reader{n:04d}@lab.example" for n in range(SUBSCRIBERS)}  # nobody missing
    assert len(got) - SUBSCRIBERS <= kills  # duplicates: at most the one mail in flight at each kill
    assert len({r.msg["Message-ID"] for r in server.handler.received}) == SUBSCRIBERS
