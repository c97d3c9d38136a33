"""Collections on the web: "Save" on cards and paper pages (htmx and plain forms), "Save to…", the pages
`/collections` and `/u/{name}/c/{slug}` with their owner's controls, the JSON twin, the Atom feed, the API
for scripts with a token, CSRF on every form, and privacy (a private collection is 404 to others)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import feedparser
import members
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from webhub import LATEST, NOW, OLD, A, B, C

from paperboy import accounts
from paperboy.db.schema import collection_items, collections
from paperboy.store import users as user_store
from paperboy.web.security import RateLimits

DAY = f"/papers/date/{LATEST.isoformat()}"
MANY = RateLimits(signup="1000 per minute")


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    with members.client(sqlite_engine, rate_limits=MANY) as c:
        yield c


def _token(engine: Engine, username: str) -> str:
    with engine.begin() as conn:
        user = user_store.get_user_by_name(conn, username)
        assert user is not None
        return accounts.create_token(conn, user, "script", NOW).secret


def _items(engine: Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        stmt = (
            sa.select(collections.c.slug, collection_items.c.arxiv_id, collection_items.c.position)
            .join(collections, collections.c.id == collection_items.c.collection_id)
            .order_by(collections.c.slug, collection_items.c.position)
        )
        return [(r[0], r[1], r[2]) for r in conn.execute(stmt)]


def _collection_id(engine: Engine, slug: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(collections.c.id).where(collections.c.slug == slug)).scalar_one())


def _post(c: TestClient, path: str, data: dict[str, Any], page: str = DAY, **kw: Any) -> Any:
    return c.post(path, data={"csrf_token": members.csrf(c, page), **data}, follow_redirects=False, **kw)


def test_save_on_a_card_puts_the_paper_in_the_reading_list_and_draws_it_saved(
    client: TestClient, sqlite_engine: Engine
) -> None:
    members.signup(client, "ada")
    page = client.get(DAY).text
    assert f'action="/papers/{A}/save"' in page  # a Save form on every card
    assert f'href="/papers/{A}/collections?next=' in page  # and "Save to…"
    r = _post(client, f"/papers/{A}/save", {"next": DAY})
    assert r.status_code == 303 and r.headers["location"] == DAY
    r = _post(client, f"/papers/{A}/save", {"next": DAY})  # twice: still once
    assert _items(sqlite_engine) == [("reading-list", A, 0)]
    page = client.get(DAY).text
    assert f'action="/papers/{A}/save"' not in page  # drawn saved now
    assert "btn-save saved" in page
    # htmx: the Save block comes back in place
    token = members.csrf(client, DAY)
    r = client.post(
        f"/papers/{B}/save", data={"csrf_token": token, "next": DAY}, headers={"HX-Request": "true"}
    )
    assert r.status_code == 200 and r.text.lstrip().startswith('<div class="save">')
    assert "btn-save saved" in r.text
    # the paper page has it too
    assert "btn-save saved" in client.get(f"/papers/{A}").text
    assert _items(sqlite_engine) == [("reading-list", A, 0), ("reading-list", B, 1)]


def test_signed_out_visitors_get_a_sign_in_link_and_saving_sends_them_to_sign_in(
    client: TestClient, sqlite_engine: Engine
) -> None:
    page = client.get(DAY).text
    assert f'href="/login?next={DAY.replace("/", "%2F")}"' in page or "/login?next=" in page
    assert f'action="/papers/{A}/save"' not in page
    r = _post(client, f"/papers/{A}/save", {"next": DAY})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert client.get("/collections", follow_redirects=False).status_code == 303
    assert _items(sqlite_engine) == []


def test_forms_without_the_csrf_token_change_nothing(client: TestClient, sqlite_engine: Engine) -> None:
    members.signup(client, "ada")
    for path, data in (
        (f"/papers/{A}/save", {}),
        ("/collections", {"name": "Sneaky"}),
        (f"/papers/{A}/collections", {"new_name": "Sneaky"}),
    ):
        assert client.post(path, data=data, follow_redirects=False).status_code == 403
        r = client.post(path, data={**data, "csrf_token": "0" * 64}, follow_redirects=False)
        assert r.status_code == 403
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(collections)).scalar_one() == 0


def test_save_to_menu_without_javascript_and_with_htmx(client: TestClient, sqlite_engine: Engine) -> None:
    members.signup(client, "ada")
    _post(client, f"/papers/{A}/save", {"next": DAY})
    r = _post(client, "/collections", {"name": "Attention", "public": "1"}, page="/collections")
    assert r.status_code == 303 and r.headers["location"] == "/u/ada/c/attention"
    reading, attention = (
        _collection_id(sqlite_engine, "reading-list"),
        _collection_id(sqlite_engine, "attention"),
    )
    menu = client.get(f"/papers/{A}/collections?next={DAY}")
    assert menu.status_code == 200 and "<html" in menu.text
    assert re.search(rf'name="collection" value="{reading}"\s+checked', menu.text)
    assert not re.search(rf'name="collection" value="{attention}"\s+checked', menu.text)
    fragment = client.get(f"/papers/{A}/collections?next={DAY}", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and 'hx-post="/papers/' in fragment.text
    # move A from the Reading list to Attention, and into a new list
    r = _post(
        client,
        f"/papers/{A}/collections",
        {
            "collection": [str(attention)],
            "shown": [str(reading), str(attention)],
            "new_name": "Later",
            "next": DAY,
        },
    )
    assert r.status_code == 303 and r.headers["location"] == DAY
    assert _items(sqlite_engine) == [("attention", A, 0), ("later", A, 0)]
    # a foreign or made-up id is refused
    r = _post(client, f"/papers/{A}/collections", {"collection": ["999"], "shown": ["999"]})
    assert r.status_code == 404
    r = _post(client, f"/papers/{A}/collections", {"collection": ["x"], "shown": ["x"]})
    assert r.status_code == 400


def test_the_owner_edits_reorders_notes_and_removes_and_others_see_only_public_ones(
    client: TestClient, sqlite_engine: Engine
) -> None:
    members.signup(client, "ada")
    for paper in (A, B, C):
        _post(client, f"/papers/{paper}/save", {"next": DAY})
    cid = _collection_id(sqlite_engine, "reading-list")
    page = "/u/ada/c/reading-list"
    html = client.get(page).text
    assert html.index(A) < html.index(B) < html.index(C)
    assert f'action="/collections/{cid}/move"' in html and f'action="/collections/{cid}/note"' in html
    r = _post(client, f"/collections/{cid}/move", {"arxiv_id": C, "to": "up", "next": page}, page=page)
    assert r.status_code == 303 and r.headers["location"] == page
    _post(client, f"/collections/{cid}/move", {"arxiv_id": C, "to": "1"}, page=page)  # to place 1 (first)
    assert [a for _, a, _ in _items(sqlite_engine)] == [C, A, B]
    _post(client, f"/collections/{cid}/note", {"arxiv_id": A, "note": "Read <b>this</b>\nfirst."}, page=page)
    _post(client, f"/collections/{cid}/remove", {"arxiv_id": B}, page=page)
    html = client.get(page).text
    assert "Read &lt;b&gt;this&lt;/b&gt;\nfirst." in html  # plain text, escaped
    assert [a for _, a, _ in _items(sqlite_engine)] == [C, A]
    # private: 404 to others, in every shape
    bob = members.another(client)
    members.signup(bob, "bob")
    visitor = members.another(client)
    for who in (bob, visitor):
        assert who.get(page).status_code == 404
        assert who.get(page + "/feed.atom").status_code == 404
        assert who.get("/api/users/ada/collections/reading-list").status_code == 404
        assert who.get(page + "?format=bib").status_code == 404
        assert [c["slug"] for c in who.get("/api/users/ada/collections").json()] == ["upvotes"]
    assert client.get(page + "/feed.atom").status_code == 404  # a feed is public or nothing
    # bob cannot change it either
    for path, data in (
        (f"/collections/{cid}/remove", {"arxiv_id": A}),
        (f"/collections/{cid}/note", {"arxiv_id": A, "note": "mine"}),
        (f"/collections/{cid}/move", {"arxiv_id": A, "to": "down"}),
        (f"/collections/{cid}/edit", {"name": "Bob's"}),
        (f"/collections/{cid}/delete", {}),
    ):
        assert _post(bob, path, data, page="/collections").status_code == 404
    assert [a for _, a, _ in _items(sqlite_engine)] == [C, A]
    # made public (and renamed): visible to all, with its feed
    r = _post(
        client,
        f"/collections/{cid}/edit",
        {"name": "Sparse things", "description": "Mine.", "public": "1"},
        page=page,
    )
    assert r.status_code == 303 and r.headers["location"] == "/u/ada/c/sparse-things"
    page = "/u/ada/c/sparse-things"
    html = visitor.get(page).text
    assert "Sparse things" in html and "Read &lt;b&gt;this&lt;/b&gt;" in html
    assert f'action="/collections/{cid}/move"' not in html  # no controls for others
    assert 'type="application/atom+xml"' in html
    feed = feedparser.parse(visitor.get(page + "/feed.atom").content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title.startswith("Sparse things")
    assert {e.link for e in feed.entries} == {f"https://papers.example.org/papers/{p}" for p in (A, C)}
    data = visitor.get("/api/users/ada/collections/sparse-things").json()
    assert data["title"] == "Sparse things" and data["private"] is False and data["numItems"] == 2
    assert [i["paper"]["paper"]["id"] for i in data["items"]] == [C, A]
    assert data["items"][1]["note"] == "Read <b>this</b>\nfirst."
    assert client.get("/u/ADA/c/sparse-things", follow_redirects=False).status_code == 301
    # the profile lists public collections
    assert 'href="/u/ada/c/sparse-things"' in visitor.get("/u/ada").text
    listed = visitor.get("/api/users/ada").json()["collections"]  # and its JSON twin
    assert [(c["slug"], c["numItems"]) for c in listed] == [("sparse-things", 2), ("upvotes", 0)]
    # delete
    r = _post(client, f"/collections/{cid}/delete", {}, page=page)
    assert r.status_code == 303 and visitor.get(page).status_code == 404


def test_create_form_errors_are_shown_and_caps_hold(client: TestClient, sqlite_engine: Engine) -> None:
    members.signup(client, "ada")
    r = _post(client, "/collections", {"name": "   "}, page="/collections")
    assert r.status_code == 400 and "give the collection a name" in r.text
    r = _post(client, "/collections", {"name": "x" * 101}, page="/collections")
    assert r.status_code == 400 and "at most 100 characters" in r.text
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(collections)).scalar_one() == 0


def test_upvotes_form_a_public_collection_with_json_and_atom(client: TestClient) -> None:
    members.signup(client, "ada")
    token = members.csrf(client, DAY)
    for paper in (B, A):
        client.post(f"/papers/{paper}/upvote", data={"csrf_token": token})
    visitor = members.another(client)
    html = visitor.get("/u/ada/c/upvotes").text
    assert html.index(A) < html.index(B)  # the latest vote first
    assert "/collections/0/" not in html  # nothing to edit
    data = visitor.get("/api/users/ada/collections/upvotes").json()
    assert data["editable"] is False and data["private"] is False
    assert {i["paper"]["paper"]["id"] for i in data["items"]} == {A, B}
    feed = feedparser.parse(visitor.get("/u/ada/c/upvotes/feed.atom").content)
    assert not feed.bozo and len(feed.entries) == 2
    assert visitor.get("/u/nobody/c/upvotes").status_code == 404


def test_the_api_with_a_token(client: TestClient, sqlite_engine: Engine) -> None:
    members.signup(client, "ada")
    secret = _token(sqlite_engine, "ada")
    script = TestClient(client.app, base_url="https://testserver")
    auth = {"Authorization": f"Bearer {secret}"}
    # no token: 401, nothing made
    assert script.post("/api/collections", json={"title": "X"}).status_code == 401
    bad = {"Authorization": "Bearer pb_nope"}
    assert script.post("/api/collections", json={"title": "X"}, headers=bad).status_code == 401
    r = script.post("/api/collections", json={"title": "Reading list", "description": "d"}, headers=auth)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["slug"] == "reading-list" and made["private"] is True and made["items"] == []
    cid = made["id"]
    for paper in (A, B, OLD, A):
        r = script.post(f"/api/collections/{cid}/papers", json={"id": paper}, headers=auth)
        assert r.status_code == 200
    assert [i["position"] for i in r.json()["items"]] == [0, 1, 2]
    r = script.patch(
        f"/api/collections/{cid}/papers/{OLD}", json={"note": "old-style", "position": 0}, headers=auth
    )
    assert [i["paper"]["paper"]["id"] for i in r.json()["items"]] == [OLD, A, B]
    assert r.json()["items"][0]["note"] == "old-style"
    r = script.put(f"/api/collections/{cid}/order", json={"ids": [B, A]}, headers=auth)
    assert [i["paper"]["paper"]["id"] for i in r.json()["items"]] == [B, A, OLD]
    assert script.put(f"/api/collections/{cid}/order", json={"ids": [C]}, headers=auth).status_code == 400
    r = script.delete(f"/api/collections/{cid}/papers/{A}", headers=auth)
    assert [i["paper"]["paper"]["id"] for i in r.json()["items"]] == [B, OLD]
    assert (
        script.post(f"/api/collections/{cid}/papers", json={"id": "2501.99999"}, headers=auth).status_code
        == 404
    )
    # the owner reads the private one; others get 404
    assert script.get("/api/users/ada/collections/reading-list", headers=auth).status_code == 200
    assert script.get("/api/users/ada/collections/reading-list").status_code == 404
    slugs = [c["slug"] for c in script.get("/api/users/ada/collections", headers=auth).json()]
    assert slugs == ["reading-list", "upvotes"]
    r = script.patch(f"/api/collections/{cid}", json={"private": False, "title": "Shared"}, headers=auth)
    assert r.json()["slug"] == "shared" and r.json()["private"] is False
    assert script.get("/api/users/ada/collections/shared").status_code == 200
    # writes without a token change nothing
    for method, path in (
        ("post", f"/api/collections/{cid}/papers"),
        ("patch", f"/api/collections/{cid}/papers/{B}"),
        ("delete", f"/api/collections/{cid}/papers/{B}"),
        ("put", f"/api/collections/{cid}/order"),
        ("patch", f"/api/collections/{cid}"),
        ("delete", f"/api/collections/{cid}"),
    ):
        r = script.request(method, path, json={"id": C, "ids": [OLD, B], "note": "x", "title": "y"})
        assert r.status_code == 401, (method, path)
    # another member's token: 404 (not theirs)
    members.signup(members.another(client), "bob")
    bob = {"Authorization": f"Bearer {_token(sqlite_engine, 'bob')}"}
    assert script.delete(f"/api/collections/{cid}", headers=bob).status_code == 404
    assert script.post(f"/api/collections/{cid}/papers", json={"id": C}, headers=bob).status_code == 404
    assert [a for _, a, _ in _items(sqlite_engine)] == [B, OLD]
    assert script.delete(f"/api/collections/{cid}", headers=auth).status_code == 204
    assert _items(sqlite_engine) == []


def test_the_collect_rate_limit_answers_429(sqlite_engine: Engine) -> None:
    with members.client(sqlite_engine, rate_limits=RateLimits(collect="2 per minute")) as c:
        members.signup(c, "ada")
        for paper in (A, B):
            assert _post(c, f"/papers/{paper}/save", {}).status_code == 303
        r = _post(c, f"/papers/{C}/save", {})
        assert r.status_code == 429 and "changes to collections" in r.text
    assert [a for _, a, _ in _items(sqlite_engine)] == [A, B]


def test_collections_on_postgres(postgres_engine: Engine) -> None:
    """The pages and the API over PostgreSQL: save, a public list with its feed, a private one hidden."""
    with members.client(postgres_engine, rate_limits=MANY) as c:
        members.signup(c, "ada")
        _post(c, f"/papers/{A}/save", {"next": DAY})
        _post(c, f"/papers/{B}/save", {"next": DAY})
        visitor = members.another(c)
        assert visitor.get("/u/ada/c/reading-list").status_code == 404
        cid = _collection_id(postgres_engine, "reading-list")
        _post(c, f"/collections/{cid}/edit", {"name": "Reading list", "public": "1"}, page="/collections")
        feed = feedparser.parse(visitor.get("/u/ada/c/reading-list/feed.atom").content)
        assert not feed.bozo and len(feed.entries) == 2
        data = visitor.get("/api/users/ada/collections/reading-list").json()
        assert [i["paper"]["paper"]["id"] for i in data["items"]] == [A, B]


def test_a_collection_exports_as_bibtex_ris_and_csl_json_in_its_order(client: TestClient) -> None:
    import json

    import bibtexparser
    import rispy

    members.signup(client, "ada")
    for paper in (B, A):
        _post(client, f"/papers/{paper}/save", {"next": DAY})
    page = "/u/ada/c/reading-list"
    html = client.get(page).text
    for fmt in ("bib", "ris", "csljson"):
        assert f'href="{page}?format={fmt}"' in html
    bib = client.get(page, params={"format": "bib"})
    assert bib.status_code == 200 and "reading-list" in bib.headers["content-disposition"]
    library = bibtexparser.parse_string(bib.text)
    assert not library.failed_blocks and len(library.entries) == 2
    assert B in library.entries[0].fields_dict["eprint"].value  # the member's order
    records = rispy.loads(client.get(page, params={"format": "ris"}).text)
    assert len(records) == 2
    items = json.loads(client.get(page, params={"format": "csljson"}).text)
    assert len(items) == 2
    assert client.get(page, params={"format": "docx"}).status_code == 400
    assert members.another(client).get(page, params={"format": "bib"}).status_code == 404  # private


def test_many_scripts_adding_to_one_collection_over_http_at_once(engine: Engine) -> None:
    """Ten clients at once, each adding the same ten papers in its own order to one collection through the
    API of a real server (uvicorn, its worker threads, the test's database): every answer is a 200, every
    paper is in it once, and the places are 0..9 with no two alike, on SQLite and PostgreSQL."""
    import threading

    import livehub

    from paperboy.db.schema import papers

    with livehub.live(
        engine, rate_limits=RateLimits(signup="100 per minute", collect="1000 per minute")
    ) as hub:
        token = hub.make_token(hub.signup("ada"))
        auth = {"Authorization": f"Bearer {token}"}
        made = hub.request("POST", "/api/collections", headers=auth, json={"title": "Busy"})
        assert made.status_code == 201, made.text
        cid = made.json()["id"]
        with engine.connect() as conn:
            ids = list(
                conn.execute(sa.select(papers.c.arxiv_id).order_by(papers.c.arxiv_id).limit(10)).scalars()
            )
        statuses: list[int] = []
        start = threading.Barrier(10)

        def work(n: int) -> None:
            start.wait()
            for arxiv_id in ids[n:] + ids[:n]:
                r = hub.request("POST", f"/api/collections/{cid}/papers", headers=auth, json={"id": arxiv_id})
                statuses.append(r.status_code)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200] * 100
        final = hub.request("GET", "/api/users/ada/collections/busy", headers=auth).json()
    assert sorted(i["paper"]["paper"]["id"] for i in final["items"]) == sorted(ids)
    assert [i["position"] for i in final["items"]] == list(range(10))
    with engine.connect() as conn:
        stmt = sa.select(collection_items.c.position).where(collection_items.c.collection_id == cid)
        assert sorted(conn.execute(stmt).scalars()) == list(range(10))


def test_a_long_collection_is_paged_and_its_feed_lists_the_latest_added(
    client: TestClient, sqlite_engine: Engine
) -> None:
    from datetime import timedelta

    from paperboy.community import collections as ops
    from paperboy.db import transaction
    from paperboy.models import Paper, Record
    from paperboy.store.papers import upsert_records

    ids = [f"2504.{n:05d}" for n in range(105)]
    members.signup(client, "ada")
    with transaction(sqlite_engine) as conn:
        upsert_records(conn, [Record(Paper(arxiv_id=i, title=f"Paper {i}", abstract="A.")) for i in ids], NOW)
        ada = user_store.get_user_by_name(conn, "ada")
        assert ada is not None
        c = ops.create_collection(conn, ada, "Long", NOW, public=True)
        for n, arxiv_id in enumerate(ids):
            ops.add_paper(conn, ada, c.id, arxiv_id, NOW + timedelta(seconds=n))
    first = client.get("/u/ada/c/long").text
    assert first.count('class="card"') == 100 and "105 papers" in first
    assert 'href="/u/ada/c/long?p=2"' in first
    second = client.get("/u/ada/c/long", params={"p": 2}).text
    assert second.count('class="card"') == 5 and 'start="101"' in second
    assert ids[-1] in second and ids[0] not in second
    assert client.get("/u/ada/c/long", params={"p": 3}).status_code == 404
    feed = feedparser.parse(client.get("/u/ada/c/long/feed.atom").content)
    assert len(feed.entries) == 100 and feed.entries[0].link.endswith(ids[-1])  # the one added last first
    data = client.get("/api/users/ada/collections/long").json()
    assert data["numItems"] == 105 and [i["position"] for i in data["items"]] == list(range(105))
