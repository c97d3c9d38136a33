"""Submitting a paper by arXiv id or URL: the form and the API, what is refused (and that nothing is fetched
or stored then), duplicates, the 14-day window, arXiv being down, rate limits, and the real arXiv fetcher
against a local server playing export.arxiv.org."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import members
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from upstream import Reply, Upstream
from webhub import NOW, A

from paperboy import accounts
from paperboy.community import submit as ops
from paperboy.errors import SourceError
from paperboy.models import Paper, Record
from paperboy.store import papers as store
from paperboy.store import users as user_store
from paperboy.web.security import RateLimits

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "arxiv"
NEW = "2503.02001"
OLD_PAPER = "2501.00042"
TODAY = f"/papers/date/{NOW.date().isoformat()}"
MANY = RateLimits(signup="1000 per minute")


class FakeArxiv:
    """Stands in for the arXiv fetcher in app tests; records every id it is asked for."""

    def __init__(self, *papers: Paper, error: Exception | None = None) -> None:
        self.papers = {p.arxiv_id: p for p in papers}
        self.error = error
        self.calls: list[str] = []

    def __call__(self, arxiv_id: str) -> Paper | None:
        self.calls.append(arxiv_id)
        if self.error is not None:
            raise self.error
        return self.papers.get(arxiv_id)


def _new() -> Paper:
    return members.paper(
        NEW, "Fresh Results on Small Models", version=2, published_at=datetime(2025, 3, 4, 17, tzinfo=UTC)
    )


def _old() -> Paper:
    return members.paper(OLD_PAPER, "An Older Paper", published_at=datetime(2025, 1, 2, tzinfo=UTC))


@pytest.fixture
def arxiv() -> FakeArxiv:
    return FakeArxiv(_new(), _old())


@pytest.fixture
def client(sqlite_engine: Engine, arxiv: FakeArxiv) -> Iterator[TestClient]:
    with members.client(sqlite_engine, fetch_paper=arxiv, rate_limits=MANY) as c:
        yield c


@pytest.fixture
def bob(client: TestClient) -> TestClient:
    """A member who is not the admin (ada, the first to sign up, is)."""
    members.signup(client, "ada")
    other = members.another(client)
    members.signup(other, "bob")
    return other


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return store.count_papers(conn), store.count_featured(conn)


def _post(c: TestClient, text: str) -> httpx.Response:
    token = members.csrf(c, "/papers/submit")
    return c.post("/papers/submit", data={"arxiv": text, "csrf_token": token}, follow_redirects=False)


def _token(engine: Engine, username: str) -> str:
    with engine.begin() as conn:
        user = user_store.get_user_by_name(conn, username)
        assert user is not None
        return accounts.create_token(conn, user, "t", NOW).secret


# --- the form -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        NEW,
        f"{NEW}v1",
        f"https://arxiv.org/abs/{NEW}",
        f"https://arxiv.org/pdf/{NEW}v2",
        f"  arXiv:{NEW} ",
        f"https://huggingface.co/papers/{NEW}",
    ],
)
def test_a_member_submits_by_id_or_url_and_it_is_on_todays_list_at_once(
    bob: TestClient, arxiv: FakeArxiv, text: str
) -> None:
    page = bob.get("/papers/submit")
    assert page.status_code == 200 and 'name="arxiv"' in page.text

    response = _post(bob, text)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/papers/{NEW}"
    assert arxiv.calls == [NEW]  # the id without its version: the newest one

    for path in ("/papers", TODAY, f"/papers/{NEW}"):
        shown = bob.get(path)
        assert shown.status_code == 200
        assert "Fresh Results on Small Models" in shown.text
        assert "Submitted by bob" in shown.text or "Submitted by <strong>bob</strong>" in shown.text

    items = bob.get("/api/daily_papers", params={"submitter": "bob"}).json()
    assert [i["paper"]["id"] for i in items] == [NEW]
    assert items[0]["submittedBy"]["name"] == "bob"
    assert items[0]["paper"]["upvotes"] == 0
    assert items[0]["publishedAt"] == "2025-03-06T12:00:00.000Z"
    day = bob.get("/api/daily_papers", params={"date": NOW.date().isoformat()}).json()
    assert [i["paper"]["id"] for i in day] == [NEW]


@pytest.mark.parametrize(
    "text",
    [
        "https://evil.example/x",
        "http://127.0.0.1/",
        "http://127.0.0.1:8000/abs/2503.02001",
        "https://arxiv.org.evil.example/abs/2503.02001",
        "file:///etc/passwd",
        "2503.02001 and more",
        "",
        "x" * 5000,
    ],
)
def test_text_that_is_not_an_arxiv_id_is_refused_and_nothing_is_fetched(
    bob: TestClient, arxiv: FakeArxiv, sqlite_engine: Engine, text: str
) -> None:
    before = _counts(sqlite_engine)
    response = _post(bob, text)
    assert response.status_code == 400
    assert "arXiv id" in response.text
    assert 'aria-invalid="true"' in response.text  # the message sits beside the field
    assert arxiv.calls == []
    assert _counts(sqlite_engine) == before


def test_a_duplicate_points_at_the_paper_already_there_and_changes_nothing(
    bob: TestClient, arxiv: FakeArxiv, sqlite_engine: Engine
) -> None:
    before = _counts(sqlite_engine)
    response = _post(bob, f"https://arxiv.org/abs/{A}v1")
    assert response.status_code == 409
    assert f'href="/papers/{A}"' in response.text
    assert "already on the daily list" in response.text
    assert arxiv.calls == []
    assert _counts(sqlite_engine) == before
    # submitting our own submission again is a duplicate too
    assert _post(bob, NEW).status_code == 303
    again = _post(bob, NEW)
    assert again.status_code == 409 and f'href="/papers/{NEW}"' in again.text
    assert arxiv.calls == [NEW]


def test_a_stored_paper_never_featured_is_featured_without_asking_arxiv(
    bob: TestClient, arxiv: FakeArxiv, sqlite_engine: Engine
) -> None:
    stored = members.paper("2503.03003", "Stored Quietly", published_at=datetime(2025, 3, 1, tzinfo=UTC))
    with sqlite_engine.begin() as conn:
        store.upsert_records(conn, [Record(stored)], NOW)
    assert _post(bob, "2503.03003").status_code == 303
    assert arxiv.calls == []
    assert "Stored Quietly" in bob.get(TODAY).text


def test_a_member_cannot_submit_a_paper_older_than_14_days_but_an_admin_can(
    client: TestClient, bob: TestClient, sqlite_engine: Engine
) -> None:
    before = _counts(sqlite_engine)
    response = _post(bob, OLD_PAPER)
    assert response.status_code == 400
    assert "14 days" in response.text
    assert _counts(sqlite_engine) == before

    # ada (the client fixture's browser) is the admin
    assert _post(client, OLD_PAPER).status_code == 303
    assert "An Older Paper" in client.get(TODAY).text


def test_arxiv_down_is_a_clear_502_and_nothing_is_stored(sqlite_engine: Engine) -> None:
    down = FakeArxiv(
        error=SourceError("GET https://export.arxiv.org/api/query answered 503 after 5 attempts")
    )
    with members.client(sqlite_engine, fetch_paper=down, rate_limits=MANY) as c:
        members.signup(c, "ada")
        before = _counts(sqlite_engine)
        response = _post(c, NEW)
        assert response.status_code == 502
        assert "arXiv could not be reached" in response.text
        assert "export.arxiv.org" not in response.text
        api = c.post(
            "/api/papers/submit",
            json={"arxiv": NEW},
            headers={"Authorization": f"Bearer {_token(sqlite_engine, 'ada')}"},
        )
        assert api.status_code == 502 and "arXiv could not be reached" in api.json()["error"]
        timeout = FakeArxiv(error=TimeoutError("timed out"))
        c.app.state.fetch_paper = timeout
        assert _post(c, NEW).status_code == 502
        assert _counts(sqlite_engine) == before


def test_an_id_arxiv_does_not_know_is_a_404_with_a_clear_message(bob: TestClient, arxiv: FakeArxiv) -> None:
    response = _post(bob, "2503.09999")
    assert response.status_code == 404
    assert "arXiv has no paper 2503.09999" in response.text


def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient, arxiv: FakeArxiv) -> None:
    form = client.get("/papers/submit", follow_redirects=False)
    assert form.status_code == 303 and form.headers["location"] == "/login?next=/papers/submit"
    token = members.csrf(client, "/login")
    response = client.post("/papers/submit", data={"arxiv": NEW, "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert arxiv.calls == []


def test_without_the_csrf_token_nothing_is_fetched_or_stored(
    bob: TestClient, arxiv: FakeArxiv, sqlite_engine: Engine
) -> None:
    before = _counts(sqlite_engine)
    response = bob.post("/papers/submit", data={"arxiv": NEW}, follow_redirects=False)
    assert response.status_code == 403
    wrong = bob.post("/papers/submit", data={"arxiv": NEW, "csrf_token": "0" * 64}, follow_redirects=False)
    assert wrong.status_code == 403
    api = bob.post("/api/papers/submit", json={"arxiv": NEW})  # session cookie, no X-CSRF-Token
    assert api.status_code == 403
    assert arxiv.calls == [] and _counts(sqlite_engine) == before


def test_submissions_are_rate_limited_per_member(sqlite_engine: Engine) -> None:
    arxiv = FakeArxiv(_new(), _old())
    limits = RateLimits(signup="1000 per minute", submit="1 per minute")
    with members.client(sqlite_engine, fetch_paper=arxiv, rate_limits=limits) as c:
        members.signup(c, "ada")
        assert _post(c, OLD_PAPER).status_code == 303
        before = _counts(sqlite_engine)
        response = _post(c, NEW)
        assert response.status_code == 429
        assert response.headers["Retry-After"]
        assert arxiv.calls == [OLD_PAPER]
        assert _counts(sqlite_engine) == before


# --- the API ------------------------------------------------------------------------------------------------


def test_api_submit_with_a_token_answers_201_with_the_paper_shape(
    bob: TestClient, arxiv: FakeArxiv, sqlite_engine: Engine
) -> None:
    api = members.another(bob)  # no cookies: the token alone
    auth = {"Authorization": f"Bearer {_token(sqlite_engine, 'bob')}"}
    response = api.post("/api/papers/submit", json={"arxiv": f"arXiv:{NEW}v2"}, headers=auth)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == api.get(f"/api/papers/{NEW}").json()
    assert body["id"] == NEW and body["submittedOnDailyBy"]["name"] == "bob"
    assert body["submittedOnDailyAt"] == "2025-03-06T12:00:00.000Z"

    again = api.post("/api/papers/submit", data={"arxiv": NEW}, headers=auth)  # a form works too
    assert again.status_code == 409
    assert again.json()["id"] == NEW
    assert again.json()["url"] == f"https://papers.example.org/papers/{NEW}"
    assert arxiv.calls == [NEW]


def test_api_submit_refuses_bad_tokens_and_bad_input(
    bob: TestClient, arxiv: FakeArxiv, sqlite_engine: Engine
) -> None:
    api = members.another(bob)
    before = _counts(sqlite_engine)
    bad = api.post("/api/papers/submit", json={"arxiv": NEW}, headers={"Authorization": "Bearer pb_nope"})
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"] == "Bearer"
    auth = {"Authorization": f"Bearer {_token(sqlite_engine, 'bob')}"}
    for body in ({"arxiv": "http://127.0.0.1/"}, {"arxiv": 2503.02001}, {"url": NEW}, ["2503.02001"]):
        response = api.post("/api/papers/submit", json=body, headers=auth)
        assert response.status_code == 400, body
        assert "arxiv" in response.json()["error"]
    not_json = api.post(
        "/api/papers/submit", content=b"{nope", headers={**auth, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    old = api.post("/api/papers/submit", json={"arxiv": OLD_PAPER}, headers=auth)
    assert old.status_code == 400 and "14 days" in old.json()["error"]
    assert arxiv.calls == [OLD_PAPER]
    assert _counts(sqlite_engine) == before


def test_api_submit_with_the_session_cookie_needs_the_csrf_header(bob: TestClient, arxiv: FakeArxiv) -> None:
    token = members.csrf(bob, "/papers/submit")
    response = bob.post("/api/papers/submit", json={"arxiv": NEW}, headers={"X-CSRF-Token": token})
    assert response.status_code == 201 and response.json()["id"] == NEW


# --- the real arXiv fetcher ---------------------------------------------------------------------------------


def test_arxiv_fetcher_reads_the_atom_api(upstream: Upstream) -> None:
    upstream.route("/api/query", {"id_list": NEW}, Reply.xml((FIXTURES / "atom_submit.xml").read_bytes()))
    upstream.route(
        "/api/query", {"id_list": "2503.09999"}, Reply.xml((FIXTURES / "atom_empty.xml").read_bytes())
    )
    upstream.route(
        "/api/query", {"id_list": "2605.0100x"}, Reply.xml((FIXTURES / "atom_error.xml").read_bytes())
    )
    with ops.arxiv_fetcher(f"{upstream.url}/api/query", min_interval=0.0, timeout=5.0, retries=0) as fetch:
        paper = fetch(NEW)
        unknown = fetch("2503.09999")
        malformed = fetch("2605.0100x")
    assert paper is not None
    assert paper.arxiv_id == NEW and paper.version == 2
    assert paper.title == "Member-Submitted Results on Small Language Models"
    assert paper.authors == ("Ada Lovelace", "Charles Babbage")
    assert paper.published_at == datetime(2025, 3, 4, 17, 30, tzinfo=UTC)
    assert unknown is None
    assert malformed is None  # arXiv's error entry for an id it cannot use
    assert [r.query["id_list"] for r in upstream.requests_to("/api/query")] == [
        NEW,
        "2503.09999",
        "2605.0100x",
    ]


def test_arxiv_fetcher_reports_an_unreachable_arxiv_as_a_source_error(upstream: Upstream) -> None:
    upstream.route("/api/query", None, Reply(503, b"busy"))
    with (
        ops.arxiv_fetcher(f"{upstream.url}/api/query", min_interval=0.0, timeout=5.0, retries=0) as fetch,
        pytest.raises(SourceError),
    ):
        fetch(NEW)


def test_submitting_through_the_real_fetcher_end_to_end(sqlite_engine: Engine, upstream: Upstream) -> None:
    upstream.route("/api/query", {"id_list": NEW}, Reply.xml((FIXTURES / "atom_submit.xml").read_bytes()))
    with (
        ops.arxiv_fetcher(f"{upstream.url}/api/query", min_interval=0.0, timeout=5.0, retries=0) as fetch,
        members.client(sqlite_engine, fetch_paper=fetch, rate_limits=MANY) as c,
    ):
        members.signup(c, "ada")
        assert _post(c, f"https://arxiv.org/abs/{NEW}").status_code == 303
        page = c.get("/papers").text
        assert "Member-Submitted Results on Small Language Models" in page
        assert "Submitted by ada" in page
    assert len(upstream.requests_to("/api/query")) == 1


def test_without_a_fetcher_only_papers_the_hub_has_can_be_submitted(sqlite_engine: Engine) -> None:
    with members.client(sqlite_engine, rate_limits=MANY) as c:
        members.signup(c, "ada")
        response = _post(c, NEW)
        assert response.status_code == 400
        assert "does not look papers up on arXiv" in response.text
