"""The JSON API over a real database and the real app: shapes, periods, sorting, paging, errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from smallhub import ALL_IDS, NOW, UNLISTED, A, B, C, D, E, F, G, load_small_hub
from sqlalchemy.engine import Engine

from paperboy.web.app import create_app
from paperboy.web.deps import Site
from paperboy.web.schemas import author_id, hf_datetime

HF_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")


def make_client(engine: Engine) -> TestClient:
    load_small_hub(engine)
    site = Site(name="paperboy", public_url="http://testserver", trending_days=7)
    return TestClient(create_app(engine, site=site, clock=lambda: NOW))


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    with make_client(sqlite_engine) as c:
        yield c


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["paper"]["id"] if "paper" in item else item["id"] for item in response.json()]


def daily(client: TestClient, **params: Any) -> list[str]:
    return ids(client.get("/api/daily_papers", params=params))


# --- /api/daily_papers ---


def test_daily_item_has_hugging_faces_shape(client: TestClient) -> None:
    [item] = client.get("/api/daily_papers", params={"date": "2026-08-03", "limit": 1}).json()
    assert set(item) == {
        "paper",
        "publishedAt",
        "title",
        "summary",
        "thumbnail",
        "numComments",
        "submittedBy",
        "organization",
        "isAuthorParticipating",
        "demo",  # ours: a bundled demo paper (false here)
    }
    assert item["publishedAt"] == "2026-08-03T02:10:00.000Z"  # when it was put on the daily list
    assert item["title"] == "Sparse Attention Is All You Need Again"
    assert item["summary"] == "We revisit sparse attention for long documents and show it scales."
    assert item["thumbnail"] == f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{A}.png"
    assert item["numComments"] == 3
    assert item["isAuthorParticipating"] is False
    assert item["organization"] == {"name": "acme", "fullname": "Acme AI"}  # upstream's slug and full name
    assert item["paper"]["discussionId"] == "7ad45e34df1061992960f67f"
    assert item["submittedBy"]["name"] == "akhaliq"
    assert item["submittedBy"]["user"] == "akhaliq"
    assert item["submittedBy"]["fullname"] == "AK"
    assert item["submittedBy"]["type"] == "user"
    assert item["submittedBy"]["avatarUrl"].startswith("/avatars/")
    paper = item["paper"]
    assert paper["id"] == A
    assert [a["name"] for a in paper["authors"]] == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert all(OBJECT_ID.match(a["_id"]) and a["hidden"] is False for a in paper["authors"])
    assert paper["authors"][0]["_id"] == author_id(A, 0, "Ada Lovelace")  # stable across requests
    assert paper["publishedAt"] == "2026-08-02T17:59:00.000Z"  # the arXiv date
    assert paper["submittedOnDailyAt"] == "2026-08-03T02:10:00.000Z"
    assert paper["submittedOnDailyBy"]["name"] == "akhaliq"
    assert paper["title"] == item["title"] and paper["summary"] == item["summary"]
    assert paper["upvotes"] == 40
    assert paper["ai_summary"] == "Sparse attention scales to long documents."
    assert paper["ai_keywords"] == ["sparse attention", "long context"]
    assert paper["githubRepo"] == "https://github.com/acme/sparse"
    assert paper["githubStars"] == 1200
    assert paper["projectPage"] == "https://acme.example/sparse"
    assert paper["organization"] == {"name": "acme", "fullname": "Acme AI"}


def test_unknown_values_are_left_out_not_null(client: TestClient) -> None:
    items = {i["paper"]["id"]: i for i in client.get("/api/daily_papers", params={"month": "2026-08"}).json()}
    b = items[B]
    assert "organization" not in b and "organization" not in b["paper"]
    for key in ("githubRepo", "githubStars", "projectPage", "ai_summary", "ai_keywords"):
        assert key not in b["paper"], key
    assert [a["name"] for a in b["paper"]["authors"]] == ["Zoë Müller", "李雷", "Łukasz Kaiser"]
    body = client.get("/api/daily_papers", params={"month": "2026-08"}).text
    assert "null" not in body


def test_timestamps_are_utc_with_milliseconds(client: TestClient) -> None:
    for item in client.get("/api/daily_papers", params={"limit": 100}).json():
        for value in (item["publishedAt"], item["paper"]["publishedAt"], item["paper"]["submittedOnDailyAt"]):
            assert HF_TIME.match(value), value


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"date": "2026-08-10"}, [F, E, D]),  # a period without sort: most upvoted first, as HF answers
        ({"date": "2026-08-10", "sort": "publishedAt"}, [D, E, F]),  # latest on the list first
        ({"date": "2026-08-10", "sort": "trending"}, [F, D, E]),
        ({"date": "2026-08-07"}, [C]),
        ({"date": "2026-08-08"}, []),  # a day without papers is an empty list, not an error
        ({"week": "2026-W32"}, [A, C, B]),
        ({"week": "2026-W33", "sort": "publishedAt"}, [D, E, F]),
        ({"week": "2026-W31"}, [G]),
        ({"month": "2026-08"}, [A, F, C, E, B, D]),
        ({"month": "2026-07"}, [G]),
        ({"month": "2026-06"}, []),
        ({}, [D, E, F, C, B, A, G]),  # no period: the most recent on the list, newest first, across days
        ({"sort": "publishedAt"}, [D, E, F, C, B, A, G]),
        ({"sort": "trending"}, [F, D, E, C]),  # no period: the trending window (7 days back from 08-10)
        ({"submitter": "akhaliq"}, [F, C, A]),
        ({"submitter": "akhaliq", "week": "2026-W32"}, [A, C]),
        ({"submitter": "taesiri", "sort": "trending"}, [D]),
        ({"submitter": "nobody"}, []),
        ({"submitter": ""}, [D, E, F, C, B, A, G]),  # empty means no filter
        ({"date": ""}, [D, E, F, C, B, A, G]),
    ],
)
def test_daily_papers_periods_and_sorting(
    client: TestClient, params: dict[str, str], expected: list[str]
) -> None:
    assert daily(client, **params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"limit": 2}, [D, E]),
        ({"limit": 2, "p": 1}, [F, C]),
        ({"limit": 2, "p": 3}, [G]),
        ({"limit": 2, "p": 4}, []),
        ({"limit": 100, "p": 0}, [D, E, F, C, B, A, G]),
        ({"month": "2026-08", "limit": 4, "p": 1}, [B, D]),
        ({"limit": 1, "p": 0, "date": "2026-08-10"}, [F]),
    ],
)
def test_daily_papers_paging(client: TestClient, params: dict[str, Any], expected: list[str]) -> None:
    assert daily(client, **params) == expected


def test_default_page_is_fifty(client: TestClient) -> None:
    # 7 papers here; the default limit (50) shows them all and p=1 is past the end
    assert len(daily(client)) == 7
    assert daily(client, p=1) == []


BAD_DAILY = [
    ({"date": "2026-13-01"}, "date"),
    ({"date": "20260810"}, "date"),
    ({"date": "2026-08-10T00:00"}, "date"),
    ({"date": "yesterday"}, "date"),
    ({"week": "2026-W60"}, "week"),
    ({"week": "2026-32"}, "week"),
    ({"week": "2026-W3"}, "week"),
    ({"month": "2026-13"}, "month"),
    ({"month": "2026/08"}, "month"),
    ({"month": "2026-08-01"}, "month"),
    ({"date": "2026-08-10", "week": "2026-W33"}, "only one of date, week and month"),
    ({"week": "2026-W33", "month": "2026-08"}, "only one of date, week and month"),
    ({"date": "2026-08-10", "week": "2026-W33", "month": "2026-08"}, "only one of date, week and month"),
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"limit": -5}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"p": -1}, "p"),
    ({"p": 10**7}, "p"),
    ({"p": "first"}, "p"),
    ({"p": 1.5}, "p"),
    ({"sort": "upvotes"}, "sort"),
    ({"sort": "newest"}, "sort"),
    ({"sort": ""}, "sort"),
]


@pytest.mark.parametrize(("params", "named"), BAD_DAILY)
def test_daily_papers_bad_input_is_400_naming_the_parameter(
    client: TestClient, params: dict[str, Any], named: str
) -> None:
    response = client.get("/api/daily_papers", params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]
    assert named in message
    assert set(response.json()) == {"error"}


def test_neighbours_at_the_end_of_the_calendar_are_not_a_crash(client: TestClient) -> None:
    for params in ({"week": "9999-W52"}, {"month": "9999-12"}, {"month": "0001-01"}, {"week": "0001-W01"}):
        assert daily(client, **params) == []
    assert daily(client, date="9999-12-31") == [] and daily(client, date="0001-01-01") == []


# --- /api/papers/{id} ---


def test_paper_has_hugging_faces_paper_shape(client: TestClient) -> None:
    response = client.get(f"/api/papers/{A}")
    assert response.status_code == 200
    paper = response.json()
    assert paper["id"] == A
    assert paper["title"] == "Sparse Attention Is All You Need Again"
    assert paper["summary"].startswith("We revisit sparse attention")
    assert [a["name"] for a in paper["authors"]] == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert paper["publishedAt"] == "2026-08-02T17:59:00.000Z"
    assert paper["submittedOnDailyAt"] == "2026-08-03T02:10:00.000Z"
    assert paper["submittedOnDailyBy"]["user"] == "akhaliq"
    assert paper["upvotes"] == 40
    assert paper["ai_summary"] == "Sparse attention scales to long documents."
    assert paper["ai_keywords"] == ["sparse attention", "long context"]
    assert (paper["githubRepo"], paper["githubStars"]) == ("https://github.com/acme/sparse", 1200)
    assert paper["projectPage"] == "https://acme.example/sparse"
    assert "paper" not in paper and "numComments" not in paper


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/api/papers/{A}v3", A),  # a version suffix is ignored
        ("/api/papers/hep-th/9901001", E),  # old-style ids keep their slash
        ("/api/papers/hep-th/9901001v2", E),
        (f"/api/papers/{UNLISTED}", UNLISTED),
    ],
)
def test_paper_ids(client: TestClient, path: str, expected: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == expected


def test_paper_never_listed_has_no_daily_fields(client: TestClient) -> None:
    paper = client.get(f"/api/papers/{UNLISTED}").json()
    assert paper["upvotes"] == 0
    assert paper["publishedAt"] == "2026-08-09T20:00:00.000Z"
    assert "submittedOnDailyAt" not in paper and "submittedOnDailyBy" not in paper


@pytest.mark.parametrize(
    "path", ["/api/papers/2608.99999", "/api/papers/math.AG/0309136", "/api/papers/1234.5678"]
)
def test_unknown_paper_is_404_json(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "is not in this hub" in response.json()["error"]


@pytest.mark.parametrize("path", ["/api/papers/not-an-id", "/api/papers/2608", "/api/papers/a/b/c"])
def test_malformed_paper_id_is_400(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert response.json()["error"].startswith("id ")


# --- /api/papers ---


def _next_link(response: Any) -> str | None:
    link = response.headers.get("link")
    if link is None:
        return None
    m = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert m, link
    return m.group(1)


def test_papers_walks_every_paper_once_by_link_header(client: TestClient) -> None:
    url: str | None = "/api/papers?limit=3"
    seen: list[str] = []
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        page = ids(response)
        assert 0 < len(page) <= 3
        seen += page
        pages += 1
        url = _next_link(response)
        if url:
            assert url.startswith("http://testserver/api/papers?") and "limit=3" in url
    assert pages == 3
    assert seen == [UNLISTED, D, F, C, A, B, G, E]  # newest arXiv date first
    assert set(seen) == ALL_IDS


def test_papers_items_are_paper_shaped(client: TestClient) -> None:
    response = client.get("/api/papers", params={"limit": 100})
    assert "link" not in response.headers  # everything fits: no next page
    papers = response.json()
    assert len(papers) == 8
    assert {"id", "authors", "title", "summary", "upvotes"} <= set(papers[0])
    by_id = {p["id"]: p for p in papers}
    assert by_id[A]["upvotes"] == 40 and by_id[A]["githubStars"] == 1200


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "W10"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 1000}, "limit"),
        ({"limit": "x"}, "limit"),
    ],
)
def test_papers_bad_input(client: TestClient, params: dict[str, Any], named: str) -> None:
    response = client.get("/api/papers", params=params)
    assert response.status_code == 400
    assert named in response.json()["error"]


# --- /api/papers/search ---


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("sparse attention", [UNLISTED, A]),  # unlisted papers are found too; both titles match: newest first
        ("SPARSE", [UNLISTED, A]),
        ("long documents", [A]),
        ("agents", [B, G]),
        ("müller", [B]),  # authors, non-ASCII
        ("łukasz", [B]),
        ("Hopper", [D, A]),
        ("nothing matches this", []),
        (D, [D]),  # an arXiv id: that paper
        (f"https://arxiv.org/abs/{D}v2", [D]),
        (f"arXiv:{D}", [D]),
        ("hep-th/9901001", [E]),
        ("2608.99999", []),  # an unknown id finds nothing
    ],
)
def test_search(client: TestClient, q: str, expected: list[str]) -> None:
    assert ids(client.get("/api/papers/search", params={"q": q})) == expected


def test_search_id_comes_first_and_limit_holds(client: TestClient) -> None:
    # "2608.00101" is A's id; A's text does not contain it, so only the exact lookup finds it
    assert ids(client.get("/api/papers/search", params={"q": A, "limit": 1})) == [A]
    assert ids(client.get("/api/papers/search", params={"q": "a", "limit": 2})) != []
    assert len(ids(client.get("/api/papers/search", params={"q": "a", "limit": 2}))) == 2


def test_search_items_are_daily_items(client: TestClient) -> None:
    [unlisted, listed] = client.get("/api/papers/search", params={"q": "sparse attention"}).json()
    assert listed["paper"]["upvotes"] == 40 and listed["submittedBy"]["name"] == "akhaliq"
    assert listed["publishedAt"] == "2026-08-03T02:10:00.000Z"
    assert unlisted["paper"]["id"] == UNLISTED
    assert unlisted["publishedAt"] == "2026-08-09T20:00:00.000Z"  # never listed: its arXiv date
    assert "submittedBy" not in unlisted and "thumbnail" not in unlisted
    assert unlisted["numComments"] == 0


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "   "}])
def test_search_without_words_is_empty(client: TestClient, params: dict[str, str]) -> None:
    assert ids(client.get("/api/papers/search", params=params)) == []


@pytest.mark.parametrize(
    "params", [{"q": "x", "limit": 0}, {"q": "x", "limit": 101}, {"q": "x", "limit": "all"}]
)
def test_search_bad_limit(client: TestClient, params: dict[str, Any]) -> None:
    response = client.get("/api/papers/search", params=params)
    assert response.status_code == 400 and "limit" in response.json()["error"]


# --- our additions, errors, docs ---


def test_trending_json_twin(client: TestClient) -> None:
    assert ids(client.get("/api/trending")) == [F, D, E, C]
    assert ids(client.get("/api/trending", params={"limit": 2, "p": 1})) == [E, C]
    assert ids(client.get("/api/trending", params={"submitter": "akhaliq"})) == [F, C]
    assert client.get("/api/trending", params={"limit": 0}).status_code == 400


def test_unknown_api_path_is_404_json(client: TestClient) -> None:
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "nothing at /api/nothing-here"}


def test_writes_are_not_allowed(client: TestClient) -> None:
    response = client.post("/api/daily_papers")
    assert response.status_code == 405
    assert "error" in response.json()


def test_openapi_documents_the_api_with_hugging_faces_names(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/daily_papers",
        "/api/papers",
        "/api/papers/search",
        "/api/papers/{paper_id}",
        "/api/trending",
    ):
        assert path in spec["paths"], path
    params = {p["name"] for p in spec["paths"]["/api/daily_papers"]["get"]["parameters"]}
    assert params == {"date", "week", "month", "submitter", "sort", "p", "limit"}
    schemas = spec["components"]["schemas"]
    assert {"numComments", "submittedBy", "isAuthorParticipating", "publishedAt"} <= set(
        schemas["DailyPaper"]["properties"]
    )
    assert {"submittedOnDailyAt", "githubRepo", "ai_summary"} <= set(schemas["PaperModel"]["properties"])
    assert "_id" in schemas["Author"]["properties"]
    assert "Link" in spec["paths"]["/api/papers"]["get"]["responses"]["200"]["headers"]
    assert spec["paths"]["/api/daily_papers"]["get"]["responses"]["400"]
    assert client.get("/docs").status_code == 200


def test_junk_never_reaches_a_500(client: TestClient) -> None:
    junk = ["", "%00", "'; DROP TABLE papers; --", "9" * 400, "ü", "-1", "1e9", "[]", "{}", "%", "_"]
    for value in junk:
        for path in ("/api/daily_papers", "/api/papers", "/api/papers/search", "/api/trending"):
            for name in ("date", "week", "month", "sort", "p", "limit", "cursor", "q", "submitter"):
                response = client.get(path, params={name: value})
                assert response.status_code < 500, (path, name, value, response.text)
        assert client.get(f"/api/papers/{value or 'x'}").status_code in (400, 404)


def test_hf_datetime() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    assert hf_datetime(datetime(2025, 12, 10, 6, 50, 16, 612345, tzinfo=UTC)) == "2025-12-10T06:50:16.612Z"
    assert hf_datetime(datetime(2025, 12, 10, 1, 0, tzinfo=timezone(timedelta(hours=-5)))) == (
        "2025-12-10T06:00:00.000Z"
    )


# --- the same routes on PostgreSQL ---


def test_main_routes_on_both_databases(engine: Engine) -> None:
    with make_client(engine) as c:
        assert daily(c, date="2026-08-10", sort="trending") == [F, D, E]
        assert daily(c, week="2026-W32") == [A, C, B]
        assert daily(c, limit=2, p=1) == [F, C]
        assert c.get(f"/api/papers/{A}").json()["publishedAt"] == "2026-08-02T17:59:00.000Z"
        assert c.get("/api/papers/hep-th/9901001").json()["id"] == E
        assert ids(c.get("/api/papers/search", params={"q": "łukasz"})) == [B]
        first = c.get("/api/papers", params={"limit": 5})
        assert ids(first) == [UNLISTED, D, F, C, A]
        nxt = _next_link(first)
        assert nxt is not None and ids(c.get(nxt)) == [B, G, E]
        assert c.get("/api/papers", params={"cursor": "bad"}).status_code == 400
