"""A crowd on one server: many signed-in members at the same moment, over a real uvicorn server on
loopback and a real SQLite file, built the way `paperboy serve` builds it on its default settings
(PAPERBOY_THREADS=40, a pool of threads + background connections, no overflow).

Each request holds one connection (web/deps.py): the pool never runs dry, so nobody waits on it, and a burst
far larger than the pool queues without errors instead of stalling for the pool's timeout and answering 500.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import members
import pytest
import sqlalchemy as sa
import webhub
from browserkit import free_port, serving
from sqlalchemy.engine import Engine

from paperboy import accounts
from paperboy.config import Settings
from paperboy.db import make_engine, pool_size_for, upgrade, write
from paperboy.db.schema import users, votes
from paperboy.web.app import create_app
from paperboy.web.security import SESSION_COOKIE

CROWD = 64
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


class PoolWatch:
    """The most connections ever checked out of the engine's pool at once (one waits only at its size)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.most = 0
        self._lock = threading.Lock()
        sa.event.listen(engine, "checkout", self._checkout)

    def _checkout(self, *_: Any) -> None:
        with self._lock:
            self.most = max(self.most, self.engine.pool.checkedout())  # type: ignore[attr-defined]


@pytest.fixture
def crowd_hub(tmp_path: Path) -> Iterator[tuple[Engine, Any, list[str]]]:
    """The webhub's papers, CROWD members with a session each, and the app as `paperboy serve` makes it."""
    threads = Settings(data_dir=tmp_path).threads
    engine = make_engine(f"sqlite:///{tmp_path / 'paperboy.sqlite3'}", pool_size=pool_size_for(threads))
    upgrade(engine)
    webhub.load(engine)
    sessions = []
    with engine.connect() as conn, write(conn):
        for i in range(CROWD):
            user = accounts.create_user(
                conn,
                members.FAST_HASHER,
                username=f"member{i}",
                email=f"member{i}@example.org",
                password=members.PASSWORD,
                now=webhub.NOW,
            )
            sessions.append(accounts.start_session(conn, user, webhub.NOW))
    app = create_app(
        engine,
        site=webhub.SITE,
        clock=lambda: webhub.NOW,
        hasher=members.FAST_HASHER,
        threads=threads,
    )
    yield engine, app, sessions
    engine.dispose()


def test_a_crowd_of_signed_in_members_upvoting_and_reading_at_once_gets_no_errors_and_never_waits_on_the_pool(
    crowd_hub: tuple[Engine, Any, list[str]],
) -> None:
    engine, app, sessions = crowd_hub
    watch = PoolWatch(engine)
    statuses: list[int] = []
    slowest: list[float] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    with serving(app, free_port(), lifespan="on") as base:
        tokens = {}
        for s in sessions:  # each member's form token, read off a page the way a browser gets it
            page = httpx.get(f"{base}/papers/{webhub.A}", cookies={SESSION_COOKIE: s}, timeout=30)
            found = _CSRF.search(page.text)
            assert page.status_code == 200 and found
            tokens[s] = found.group(1)
        watch.most = 0
        barrier = threading.Barrier(2 * CROWD)

        def member(session: str, upvote: bool) -> None:
            try:
                with httpx.Client(base_url=base, cookies={SESSION_COOKIE: session}, timeout=60) as client:
                    barrier.wait(timeout=30)
                    started = time.monotonic()
                    if upvote:
                        r = client.post(
                            f"/papers/{webhub.A}/upvote",
                            headers={"X-CSRF-Token": tokens[session], "HX-Request": "true"},
                        )
                    else:
                        r = client.get(f"/papers/{webhub.A}")
                    with lock:
                        statuses.append(r.status_code)
                        slowest.append(time.monotonic() - started)
            except BaseException as exc:
                with lock:
                    failures.append(exc)

        threads = [threading.Thread(target=member, args=(s, up)) for s in sessions for up in (True, False)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    assert not failures, failures[:3]
    assert sorted(set(statuses)) == [200], statuses
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(votes)).scalar_one() == CROWD
        assert conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one() == CROWD
    pool_size = engine.pool.size()  # type: ignore[attr-defined]
    # Every request held one connection at most: the pool was never exhausted, so nobody waited on it.
    assert 0 < watch.most < pool_size
    assert max(slowest) < 20, f"the slowest request took {max(slowest):.1f} s"
