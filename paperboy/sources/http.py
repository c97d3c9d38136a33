"""A polite HTTP client for upstreams: a minimum interval between requests, honest retries.

- 429 (and 503 with a header): wait for `Retry-After` (seconds or an HTTP date; capped), then retry.
- 5xx, connection errors and timeouts: retry with exponential backoff.
- Other 4xx: no retry; the caller gets a SourceError that names the URL and status.
One client holds one connection pool limited to a single connection, so arXiv sees one connection at a time.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from paperboy import __version__
from paperboy.errors import SourceError, UpstreamRateLimited

USER_AGENT = f"paperboy/{__version__} (self-hosted daily papers hub)"


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class PoliteClient:
    def __init__(
        self,
        *,
        min_interval: float = 0.0,
        retries: int = 4,
        timeout: float = 30.0,
        backoff: float = 1.0,
        max_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
        pacer: Callable[[], None] | None = None,
    ) -> None:
        self.min_interval = min_interval
        # shared with other processes (sources/pacing.py): called before every request, after our own pacing
        self.pacer = pacer
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        self._last: float | None = None
        self.requests = 0
        self._client = httpx.Client(
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=True,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pace(self) -> None:
        if self._last is not None and self.min_interval > 0:
            wait = self.min_interval - (self._clock() - self._last)
            if wait > 0:
                self._sleep(wait)
        if self.pacer is not None:
            self.pacer()
        self._last = self._clock()

    def get(self, url: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """GET with pacing and retries; returns a 2xx response or raises SourceError."""
        attempt = 0
        while True:
            self._pace()
            self.requests += 1
            try:
                response = self._client.get(url, params=params)
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:  # retrying cannot help
                raise SourceError(f"GET {url}: {exc}") from exc
            except httpx.TransportError as exc:  # timeouts, refused or dropped connections, cut-off bodies
                if attempt >= self.retries:
                    raise SourceError(f"GET {url} failed after {attempt + 1} attempts: {exc!r}") from exc
                self._sleep(min(self.max_wait, self.backoff * 2**attempt))
                attempt += 1
                continue
            except httpx.HTTPError as exc:  # too many redirects, an undecodable body: not worth a retry
                raise SourceError(f"GET {url} failed: {exc!r}") from exc
            status = response.status_code
            if status == 429 or status >= 500:
                if attempt >= self.retries:
                    if status == 429:
                        raise UpstreamRateLimited(
                            f"GET {response.url} still rate-limited (429) after retries"
                        )
                    raise SourceError(f"GET {response.url} answered {status} after {attempt + 1} attempts")
                wait = self.backoff * 2**attempt
                if status in (429, 503):  # arXiv's OAI-PMH sends 503 + Retry-After when busy
                    header = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
                    if header is not None and header > self.max_wait:
                        # Retrying before the upstream said it would answer is not honouring Retry-After.
                        error = UpstreamRateLimited if status == 429 else SourceError
                        raise error(
                            f"GET {response.url} answered {status} asking to retry after {header:.0f} s, "
                            f"longer than the {self.max_wait:.0f} s we wait; try again later"
                        )
                    if header is not None:
                        wait = header
                self._sleep(min(self.max_wait, wait))
                attempt += 1
                continue
            if status >= 400:
                raise SourceError(f"GET {response.url} answered {status}: {response.text[:200]!r}")
            return response
