"""PoliteClient against a real local HTTP server: pacing, Retry-After, retries and what is not retried."""

from __future__ import annotations

import email.utils
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from upstream import Reply, Upstream

from paperboy.errors import SourceError, UpstreamRateLimited
from paperboy.sources.http import USER_AGENT, PoliteClient, parse_retry_after


class Waits(list[float]):
    """A `sleep` that records instead of sleeping: retries are checked without waiting for them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def client(waits: Waits) -> Iterator[PoliteClient]:
    with PoliteClient(retries=3, backoff=1.0, timeout=5.0, sleep=waits) as c:
        yield c


def test_requests_are_paced_at_least_min_interval_apart(upstream: Upstream) -> None:
    upstream.route("/rss/cs.CL", None, Reply.xml("<rss/>"))
    with PoliteClient(min_interval=0.25) as client:  # real sleeping
        for _ in range(4):
            client.get(f"{upstream.url}/rss/cs.CL")
    times = [r.at for r in upstream.requests]
    assert len(times) == 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Server-side arrival times: allow 10% for scheduling jitter (unpaced requests arrive ~1 ms apart).
    assert min(gaps) >= 0.25 * 0.9, gaps


def test_pacing_also_spaces_retries(upstream: Upstream) -> None:
    upstream.route("/api/query", None, Reply(503), Reply.xml("<feed/>"))
    with PoliteClient(min_interval=0.2, backoff=0.0) as client:
        assert client.get(f"{upstream.url}/api/query").status_code == 200
    first, second = upstream.requests
    assert second.at - first.at >= 0.2 * 0.9


def test_sends_a_descriptive_user_agent(upstream: Upstream, client: PoliteClient) -> None:
    upstream.route("/x", None, Reply.json([]))
    client.get(f"{upstream.url}/x", params={"date": "2025-06-13"})
    (seen,) = upstream.requests
    assert seen.headers["User-Agent"] == USER_AGENT
    assert seen.query == {"date": "2025-06-13"}


def test_429_waits_for_retry_after_seconds_then_succeeds(
    upstream: Upstream, client: PoliteClient, waits: Waits
) -> None:
    upstream.route("/api/daily_papers", None, Reply(429, headers={"Retry-After": "7"}), Reply.json([]))
    response = client.get(f"{upstream.url}/api/daily_papers")
    assert response.json() == []
    assert waits == [7.0]
    assert len(upstream.requests) == 2


def test_429_retry_after_as_http_date(upstream: Upstream, client: PoliteClient, waits: Waits) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    header = email.utils.format_datetime(when, usegmt=True)
    upstream.route("/api/daily_papers", None, Reply(429, headers={"Retry-After": header}), Reply.json([]))
    client.get(f"{upstream.url}/api/daily_papers")
    (wait,) = waits
    assert 115 <= wait <= 120


def test_503_with_retry_after_is_honoured_like_429(
    upstream: Upstream, client: PoliteClient, waits: Waits
) -> None:
    upstream.route("/oai", None, Reply(503, headers={"Retry-After": "30"}), Reply.xml("<OAI-PMH/>"))
    client.get(f"{upstream.url}/oai")
    assert waits == [30.0]


def test_retry_after_longer_than_max_wait_gives_up_at_once(upstream: Upstream, waits: Waits) -> None:
    upstream.route("/api/daily_papers", None, Reply(429, headers={"Retry-After": "3600"}))
    with (
        PoliteClient(retries=3, max_wait=300, sleep=waits) as client,
        pytest.raises(UpstreamRateLimited, match="3600"),
    ):
        client.get(f"{upstream.url}/api/daily_papers")
    assert len(upstream.requests) == 1  # never retried before the upstream said it would answer
    assert waits == []


def test_rate_limited_after_every_retry(upstream: Upstream, client: PoliteClient, waits: Waits) -> None:
    upstream.route("/api/daily_papers", None, Reply(429, headers={"Retry-After": "2"}))
    with pytest.raises(UpstreamRateLimited, match="429"):
        client.get(f"{upstream.url}/api/daily_papers")
    assert len(upstream.requests) == 4  # the first try and 3 retries
    assert waits == [2.0, 2.0, 2.0]


def test_5xx_retried_with_backoff_then_success(
    upstream: Upstream, client: PoliteClient, waits: Waits
) -> None:
    upstream.route("/api/daily_papers", None, Reply(500), Reply(502), Reply(504), Reply.json([{"ok": 1}]))
    assert client.get(f"{upstream.url}/api/daily_papers").json() == [{"ok": 1}]
    assert waits == [1.0, 2.0, 4.0]  # exponential backoff
    assert len(upstream.requests) == 4


def test_5xx_every_time_is_a_source_error_naming_the_status(upstream: Upstream, client: PoliteClient) -> None:
    upstream.route("/api/daily_papers", None, Reply(503))
    with pytest.raises(SourceError, match="503 after 4 attempts") as info:
        client.get(f"{upstream.url}/api/daily_papers")
    assert not isinstance(info.value, UpstreamRateLimited)


def test_404_is_not_retried(upstream: Upstream, client: PoliteClient, waits: Waits) -> None:
    with pytest.raises(SourceError, match=r"404.*no rule") as info:
        client.get(f"{upstream.url}/nowhere")
    assert "/nowhere" in str(info.value)
    assert len(upstream.requests) == 1
    assert waits == []


def test_timeout_is_retried(upstream: Upstream, waits: Waits) -> None:
    upstream.route("/slow", None, Reply.json([1], delay=2.0), Reply.json([2]))
    with PoliteClient(retries=2, timeout=0.3, sleep=waits) as client:
        assert client.get(f"{upstream.url}/slow").json() == [2]
    assert len(upstream.requests) == 2
    assert waits == [1.0]


def test_timeouts_every_time_become_a_source_error(upstream: Upstream, waits: Waits) -> None:
    upstream.route("/slow", None, Reply.json([1], delay=2.0))
    with (
        PoliteClient(retries=1, timeout=0.2, sleep=waits) as client,
        pytest.raises(SourceError, match="failed after 2 attempts"),
    ):
        client.get(f"{upstream.url}/slow")


def test_dropped_connection_mid_body_is_retried(upstream: Upstream, client: PoliteClient) -> None:
    body = [{"n": i} for i in range(200)]
    upstream.route("/api/daily_papers", None, Reply.json(body, cut_connection=True), Reply.json(body))
    assert client.get(f"{upstream.url}/api/daily_papers").json() == body
    assert len(upstream.requests) == 2


def test_connection_refused_is_a_source_error(waits: Waits) -> None:
    server = Upstream()
    url = server.url
    server.close()  # nothing listens there any more
    with (
        PoliteClient(retries=1, sleep=waits) as client,
        pytest.raises(SourceError, match="failed after 2 attempts"),
    ):
        client.get(f"{url}/api/daily_papers")


def test_unsupported_scheme_is_not_retried(waits: Waits) -> None:
    with PoliteClient(retries=3, sleep=waits) as client, pytest.raises(SourceError):
        client.get("ftp://example.invalid/file")
    assert waits == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("12", 12.0),
        ("0", 0.0),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: no wait
        ("Wed, 01 Jan 2031 00:00:10 GMT", 10.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = datetime(2031, 1, 1, tzinfo=UTC)
    assert parse_retry_after(header, now) == expected
