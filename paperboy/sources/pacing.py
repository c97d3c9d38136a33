"""Pacing one upstream across processes: arXiv asks for at most one request every 3 seconds from a client,
and a deployment of several web processes (members submitting papers) and workers (scheduled ingests) is
one client to arXiv.

`SharedPacer` is a moving-window limit of one request per interval on a key in the rate-limit storage the
hub already has (`PAPERBOY_RATE_LIMIT_STORAGE`: Redis when several processes run; the `limits` library,
as for sign-in limits). Before each request a client waits until the key has had no request for an
interval; with in-memory storage it paces this process alone (what one `paperboy serve` needs)."""

from __future__ import annotations

import time
from collections.abc import Callable

from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from paperboy.errors import SourceError


class SharedPacer:
    """`pacer()` returns when this process may send the next request to the upstream named `key`: at most
    one per `interval` seconds across every process sharing `storage_uri`. Waits at most `max_wait`
    seconds, then raises SourceError (a member waiting on a web page must not hang)."""

    def __init__(
        self,
        storage_uri: str,
        key: str,
        interval: float,
        *,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        # limits counts whole seconds: an interval of 3 s is "1 per 3 seconds"; 0.4 s rounds up to 1 s
        self._item = RateLimitItemPerSecond(1, max(1, round(interval + 0.4999)))
        self.key = key
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock

    def __call__(self) -> None:
        deadline = self._clock() + self.max_wait
        while not self._limiter.hit(self._item, "pace", self.key):
            reset_at, _ = self._limiter.get_window_stats(self._item, "pace", self.key)
            wait = max(0.05, min(reset_at - time.time(), 1.0))
            if self._clock() + wait > deadline:
                raise SourceError(
                    f"{self.key}: no request slot free within {self.max_wait:.0f} s; try again later"
                )
            self._sleep(wait)
