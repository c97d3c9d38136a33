"""arXiv's interval holds across processes: clients sharing one Redis key take turns (sources/pacing.py)."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from test_signin_limits import redis_url  # noqa: F401 - the fixture: a redis-server of our own
from upstream import Reply, Upstream

from paperboy.errors import SourceError
from paperboy.sources.http import PoliteClient
from paperboy.sources.pacing import SharedPacer


def test_clients_sharing_a_pacer_space_their_requests(redis_url: str) -> None:  # noqa: F811
    with Upstream() as upstream:
        upstream.route("/api/query", None, Reply.xml("<feed/>"))
        clients = [PoliteClient(retries=0, pacer=SharedPacer(redis_url, "arxiv", 1.0)) for _ in range(3)]

        def ask(client: PoliteClient) -> None:
            for _ in range(2):
                client.get(upstream.url + "/api/query")

        threads = [threading.Thread(target=ask, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for c in clients:
            c.close()
        times = sorted(r.at for r in upstream.requests_to("/api/query"))
    assert len(times) == 6
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # without the shared pacer the three clients would send their first requests at once
    assert min(gaps) >= 0.9, gaps


def test_a_pacer_gives_up_after_its_longest_wait(redis_url: str) -> None:  # noqa: F811
    first = SharedPacer(redis_url, "slow", 3.0)
    second = SharedPacer(redis_url, "slow", 3.0, max_wait=0.5)
    first()
    started = time.monotonic()
    with pytest.raises(SourceError, match="try again later"):
        second()
    assert time.monotonic() - started < 2.0
