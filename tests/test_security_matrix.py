"""The security matrices, generated from the app's route table (tests/routes.py), so that a route added
tomorrow is checked without anyone remembering to list it:

- CSRF: every unsafe route (POST / PUT / PATCH / DELETE) × {no token, a wrong token, another member's token,
  the public token of signed-out pages, another member's token in the header, and for signed-out forms the
  right token sent cross-site} is refused (403 naming the CSRF check, or 401 `WWW-Authenticate: Bearer` for
  an API route without the session cookie), and the database dump is byte-identical afterwards. A negative
  test adds unprotected write routes to an app and shows that the matrix reports each of them.
- Authorization: every route × {owner, another member, anonymous, admin}, against an explicit table keyed by
  (method, path template) of who may succeed. A route missing from the table fails the test (a new route
  must be classified); allowed actors succeed (writes on a fresh copy of the database, and change it where
  the table says so), the others are refused with the database unchanged, and no GET changes anything.
- Every GET route of the table, filled from stored hostile data (every upstream and member field a payload
  of `test_security.XSS_CORPUS`), as every actor, never carries markup from data.

The hub is seeded once per module into a SQLite file; each cell that may write gets its own copy.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import members
import pytest
import sqlalchemy as sa
import webhub
from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.testclient import TestClient
from routes import Endpoint, MissingSample, endpoints, fill
from sqlalchemy.engine import Connection, Engine
from test_security import XSS_CORPUS, X, _hostile_record, assert_no_markup_from_data
from webhub import LATEST, NOW, SITE, A

from paperboy import accounts
from paperboy.community import account_tokens
from paperboy.community import claims as claim_ops
from paperboy.community import collections as collection_ops
from paperboy.community import comments as comment_ops
from paperboy.community import follows as follow_ops
from paperboy.db import make_engine, write
from paperboy.db.schema import comments as comments_table
from paperboy.digest import subscriptions as subs
from paperboy.models import Featuring, Paper, Record, User
from paperboy.store import subscriptions as sub_store
from paperboy.store.papers import upsert_records
from paperboy.web import deps
from paperboy.web.app import create_app
from paperboy.web.feed import feed_token
from paperboy.web.security import Limiter, RateLimits

KEY = b"matrix-secret-key-".ljust(32, b"k")
ROOMY = RateLimits(
    signin="1000 per minute",
    signup="1000 per minute",
    vote="1000 per minute",
    comment="1000 per minute",
    submit="1000 per minute",
    claim="1000 per minute",
    subscribe="1000 per minute",
)
ACTORS = ("owner", "other", "anon", "admin")
SESSION_ACTORS = ("owner", "other", "admin")
NAMES = {"owner": "bob", "other": "carol", "admin": "root-admin"}
HOSTILE_AUTHOR = f"Author {XSS_CORPUS[0]}"  # one of the hostile paper's authors (test_security)
FRESH = "2503.07777"  # a paper arXiv "has" (the app's fetch_paper) and the hub does not: submittable
FRESH_IN_HUB = webhub.B  # a paper of the hub in no collection yet
CROSS_SITE = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
CSRF_REFUSAL = re.compile(r"CSRF|another site")


def _fetch(arxiv_id: str) -> Paper | None:
    if arxiv_id != FRESH:
        return None
    return members.paper(FRESH, published_at=NOW.replace(day=4))


# --- the seeded hub ----------------------------------------------------------------------------------------


@dataclass
class World:
    """The seeded database file and what the matrices need to know about it."""

    path: Path
    folder: Path
    sessions: dict[str, str]  # actor -> session cookie value
    csrf: dict[str, str]  # actor -> the token its pages carry ("anon": the public one)
    bearer: dict[str, str]  # actor -> API token
    samples: dict[str, str]  # path parameter -> the value filled in by default
    ids: dict[str, str]  # named objects (comment, hidden_comment, claim, ...) -> id
    links: dict[str, str]  # the owner's signed links: manage, unsubscribe, feed; and a confirm token
    apps: dict[Any, FastAPI] = field(default_factory=dict)

    @contextmanager
    def hub(self, extra: Callable[[FastAPI], None] | None = None) -> Iterator[Hub]:
        """A fresh copy of the seeded database and an app over it (`extra` may add routes to the app).

        One app serves every copy (its engine and rate limiter swapped in): FastAPI builds an app's routing
        on its first request, ~0.15 s, which per copy would be most of the matrices' time."""
        path = self.folder / f"{uuid.uuid4().hex}.sqlite3"
        shutil.copyfile(self.path, path)
        engine = make_engine(f"sqlite:///{path}")
        app = self.apps.get(extra)
        if app is None:
            app = create_app(
                engine,
                site=SITE,
                clock=lambda: NOW,
                hasher=members.FAST_HASHER,
                secret_key=KEY,
                rate_limits=ROOMY,
                fetch_paper=_fetch,
            )
            if extra is not None:
                extra(app)
            self.apps[extra] = app
        outer = (getattr(app.state, "engine", None), getattr(app.state, "limiter", None))
        app.state.engine, app.state.limiter = engine, Limiter(ROOMY)
        try:
            yield Hub(self, engine, app)
        finally:
            app.state.engine, app.state.limiter = outer  # a hub opened inside another gives it back
            engine.dispose()
            path.unlink(missing_ok=True)


@dataclass
class Hub:
    world: World
    engine: Engine
    app: FastAPI
    _clients: dict[str, TestClient] = field(default_factory=dict)

    def client(self, actor: str) -> TestClient:
        """A browser: signed in as the actor's member, or with no cookie at all ("anon")."""
        if actor not in self._clients:
            c = TestClient(self.app, base_url="https://testserver")
            if actor in self.world.sessions:
                c.cookies.set("pb_session", self.world.sessions[actor])
            self._clients[actor] = c
        return self._clients[actor]

    def dump(self) -> str:
        """Every table's rows as SQL text (sqlite3's iterdump): equal dumps are byte-identical databases."""
        raw = self.engine.raw_connection()
        try:
            return "\n".join(raw.driver_connection.iterdump())  # type: ignore[union-attr]
        finally:
            raw.close()


def _subscribe_member(conn: Connection, user: User) -> Any:
    found = sub_store.insert_subscription(conn, email=user.email, now=NOW)
    sub_store.set_status(conn, found.id, "active", NOW)
    sub_store.link_user(conn, found.id, user.id)
    fresh = sub_store.get(conn, found.id)
    assert fresh is not None
    return fresh


def _t(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> World:
    """bob (the owner of the objects), carol (another member), root-admin, and dave / erin (members an admin
    disables / enables); bob's comments (the XSS corpus, a plain one and a hidden one), his pending claim,
    his API token, everyone's digest subscription, and a pending confirmation with a hostile topic."""
    folder = tmp_path_factory.mktemp("matrix")
    path = folder / "seed.sqlite3"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    webhub.load(engine)
    ids: dict[str, str] = {}
    sessions: dict[str, str] = {}
    bearer: dict[str, str] = {}
    with engine.begin() as conn:
        upsert_records(conn, [_hostile_record()], NOW)
        made: dict[str, User] = {}
        for name in ("root-admin", "bob", "carol", "dave", "erin"):
            made[name] = accounts.create_user(
                conn,
                members.FAST_HASHER,
                username=name,
                email=f"{name}@example.org",
                password=members.PASSWORD,
                now=NOW,
                admin=name == "root-admin",
            )
        from paperboy.store import users as user_store

        user_store.set_disabled(conn, made["erin"].id, True)
        for actor, name in NAMES.items():
            sessions[actor] = accounts.start_session(conn, made[name], NOW)
            bearer[actor] = accounts.create_token(conn, made[name], f"{name}'s script", NOW).secret
        bob, admin = made["bob"], made["root-admin"]
        ids["token"] = str(user_store.list_tokens(conn, bob.id)[0].id)
        for payload in XSS_CORPUS:
            comment_ops.post(conn, bob, X, payload, NOW)
        ids["comment"] = str(comment_ops.post(conn, bob, X, "A plain comment by bob.", NOW).id)
        hidden = comment_ops.post(conn, bob, X, "A comment an admin hid.", NOW)
        comment_ops.set_hidden(conn, admin, hidden.id, True, NOW)
        ids["hidden_comment"] = str(hidden.id)
        ids["claim"] = str(claim_ops.claim_authorship(conn, bob, X, HOSTILE_AUTHOR, NOW).id)
        # bob's public collection: a hostile description and note, the hostile paper first (issue 14)
        shelf = collection_ops.create_collection(
            conn, bob, "Bob's shelf", NOW, description=XSS_CORPUS[0], public=True
        )
        collection_ops.add_paper(conn, bob, shelf.id, X, NOW, note=XSS_CORPUS[1])
        collection_ops.add_paper(conn, bob, shelf.id, A, NOW)
        ids["collection"], ids["collection_slug"] = str(shelf.id), shelf.slug
        # an organization with a hostile name, which bob follows, and its paper's author (issue 14)
        lab = Paper(arxiv_id="2503.08888", title="From a lab", abstract="Lab work.", authors=("L. Ab",))
        featured = Featuring(
            lab.arxiv_id, LATEST, "huggingface", organization=XSS_CORPUS[2], organization_name="evil-lab"
        )
        upsert_records(conn, [Record(lab, featured)], NOW)
        ids["org"], ids["kind_author"], ids["followed_author"] = "evil-lab", "author", "L. Ab"
        follow_ops.follow(conn, bob, "org", "evil-lab", NOW)
        follow_ops.follow(conn, bob, "author", "L. Ab", NOW)
        ids["disable_user"] = str(made["dave"].id)
        ids["paper_a"] = A
        ids["enable_user"] = str(made["erin"].id)
        subscribed = {actor: _subscribe_member(conn, made[name]) for actor, name in NAMES.items()}
        pending = sub_store.insert_subscription(conn, email="pending@example.org", now=NOW)
        confirm_token = "matrix-confirmation-token"
        sub_store.insert_confirmation(
            conn,
            subscription_id=pending.id,
            token_hash=accounts.digest(confirm_token),
            now=NOW,
            expires_at=NOW + timedelta(days=subs.CONFIRM_DAYS),
            payload={"topic": XSS_CORPUS[1], "categories": []},
        )
    mine = subscribed["owner"]
    links = {
        "manage": _t(subs.manage_url(SITE.public_url, KEY, mine, NOW)),
        "unsubscribe": _t(subs.unsubscribe_url(SITE.public_url, KEY, mine)),
        "feed": _t(subs.feed_url(SITE.public_url, KEY, mine, NOW)),
        "confirm": confirm_token,
        "signup": account_tokens.signup_token(
            KEY, account_tokens.SignupLink("newbie", "new@example.org", False), NOW
        ),
        "for_you": feed_token(KEY, bob),  # the private Atom feed of bob's For you (issue 14)
    }
    engine.dispose()  # the last connection checkpoints the WAL into the file: one self-contained file to copy
    samples = {
        "arxiv_id:path": X,
        "paper_id:path": X,
        "comment_id": ids["comment"],
        "claim_id": ids["claim"],
        "token_id": ids["token"],
        "user_id": ids["disable_user"],
        "username": "bob",
        "name:path": HOSTILE_AUTHOR,
        "day": LATEST.isoformat(),
        "week": "2025-W10",
        "month": "2025-03",
        "collection_id": ids["collection"],
        "slug": ids["collection_slug"],
    }
    w = World(path, folder, sessions, {}, bearer, samples, ids, links)
    with w.hub() as hub:
        for actor in SESSION_ACTORS:
            w.csrf[actor] = members.csrf(hub.client(actor), "/settings")
        w.csrf["anon"] = members.csrf(hub.client("anon"), "/login")
    return w


# --- the expectation table ---------------------------------------------------------------------------------

ALL = frozenset(ACTORS)
MEMBERS = frozenset(SESSION_ACTORS)
OWNER = frozenset({"owner"})
ADMIN = frozenset({"admin"})


@dataclass(frozen=True)
class Rule:
    """Who may use a route, and what a request that should succeed sends.

    `params` override path samples with named objects of the world (`comment_id` -> "hidden_comment");
    `form` / `json` are the body (`{username}` is replaced by the actor's user name, `{actor}` by the actor);
    `link` names a signed link the route is authorised by: the owner sends it (without a session: the link
    alone is the authority), another member sends the owner's link of another purpose, the others none;
    `changes`: an allowed write must change the database."""

    allowed: frozenset[str]
    params: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] | None = None
    json: Mapping[str, Any] | None = None
    link: str | None = None
    link_in: str = "query"  # or "form"
    changes: bool = False
    why: str = ""


PUBLIC = Rule(ALL, why="public reading")
WRONG_LINK = {
    "manage": "unsubscribe",
    "unsubscribe": "manage",
    "feed": "unsubscribe",
    "confirm": "manage",
    "signup": "manage",
    "for_you": "feed",
}
COMMENT_FORM = {"body": "A hostile member's words."}

RULES: dict[tuple[str, str], Rule] = {
    # reading: everyone
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): Rule(
        ALL, why="operations: counts and route templates; PAPERBOY_METRICS_TOKEN gates it"
    ),
    ("GET", "/api/papers/{arxiv_id:path}/comments"): PUBLIC,
    ("GET", "/api/daily_papers"): PUBLIC,
    ("GET", "/api/papers/search"): PUBLIC,
    ("GET", "/api/papers/{paper_id:path}/similar"): PUBLIC,
    ("GET", "/api/papers"): PUBLIC,
    ("GET", "/api/papers/{paper_id:path}"): PUBLIC,
    ("GET", "/api/trending"): PUBLIC,
    ("GET", "/signup"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("GET", "/api/authors/{name:path}"): PUBLIC,
    ("GET", "/authors/{name:path}"): PUBLIC,
    ("GET", "/api/users/{username}"): PUBLIC,
    ("GET", "/u/{username}"): PUBLIC,
    ("GET", "/u/{username}/feed.atom"): PUBLIC,
    ("GET", "/papers/feed.atom"): PUBLIC,
    ("GET", "/papers/date/{day}/feed.atom"): PUBLIC,
    ("GET", "/papers/week/{week}/feed.atom"): PUBLIC,
    ("GET", "/papers/month/{month}/feed.atom"): PUBLIC,
    ("GET", "/papers/trending/feed.atom"): PUBLIC,
    ("GET", "/subscribe"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/papers"): PUBLIC,
    ("GET", "/papers/date/{day}"): PUBLIC,
    ("GET", "/papers/week/{week}"): PUBLIC,
    ("GET", "/papers/month/{month}"): PUBLIC,
    ("GET", "/papers/trending"): PUBLIC,
    ("GET", "/about"): PUBLIC,
    ("GET", "/papers/{arxiv_id:path}.md"): PUBLIC,
    ("GET", "/papers/{arxiv_id:path}"): PUBLIC,
    # reading behind a sign-in or a signed link
    ("GET", "/settings"): Rule(MEMBERS, why="one's own account"),
    ("GET", "/papers/submit"): Rule(MEMBERS),
    ("GET", "/admin"): Rule(ADMIN),
    ("GET", "/api/admin"): Rule(ADMIN),
    ("GET", "/settings/subscription"): Rule(MEMBERS, why="a link to one's own subscription"),
    ("GET", "/subscription"): Rule(OWNER, link="manage"),
    ("GET", "/api/subscription"): Rule(OWNER, link="manage"),
    ("GET", "/subscription/feed.atom"): Rule(OWNER, link="feed"),
    ("GET", "/unsubscribe"): Rule(OWNER, link="unsubscribe"),
    ("GET", "/subscribe/confirm"): Rule(OWNER, link="confirm"),
    ("GET", "/signup/confirm"): Rule(OWNER, link="signup", why="the sign-up link's holder"),
    # signing up, in and out: anyone (a signed-in member may open a second account or sign in again)
    ("POST", "/signup"): Rule(
        ALL,
        form={"username": "new-{actor}", "email": "new-{actor}@example.org", "password": members.PASSWORD},
        changes=True,
    ),
    ("POST", "/login"): Rule(
        ALL, form={"username": "{username}", "password": members.PASSWORD}, changes=True
    ),
    ("POST", "/logout"): Rule(ALL, why="signed out: nothing to end"),
    ("POST", "/signup/confirm"): Rule(
        OWNER,
        form={"username": "newbie", "password": members.PASSWORD},
        link="signup",
        link_in="form",
        changes=True,
    ),
    # one's own account
    ("POST", "/settings/password"): Rule(
        MEMBERS,
        form={"current_password": members.PASSWORD, "new_password": "a whole new passphrase"},
        changes=True,
    ),
    ("POST", "/settings/tokens"): Rule(MEMBERS, form={"name": "another script"}, changes=True),
    ("POST", "/settings/tokens/{token_id}/revoke"): Rule(OWNER, changes=True),
    ("POST", "/settings/delete"): Rule(MEMBERS, form={"password": members.PASSWORD}, changes=True),
    # admin actions
    ("POST", "/admin/papers/{arxiv_id:path}/unfeature"): Rule(
        ADMIN, form={"day": LATEST.isoformat()}, changes=True
    ),
    ("POST", "/admin/users/{user_id}/disable"): Rule(ADMIN, changes=True),
    ("POST", "/admin/users/{user_id}/enable"): Rule(ADMIN, params={"user_id": "enable_user"}, changes=True),
    ("POST", "/admin/claims/{claim_id}/approve"): Rule(ADMIN, changes=True),
    ("POST", "/admin/claims/{claim_id}/reject"): Rule(ADMIN, changes=True),
    # comments: any member posts; only the author edits or deletes; only an admin hides (and cannot edit)
    ("POST", "/papers/{arxiv_id:path}/comments"): Rule(MEMBERS, form=COMMENT_FORM, changes=True),
    ("POST", "/comments/{comment_id}/edit"): Rule(OWNER, form=COMMENT_FORM, changes=True),
    ("POST", "/comments/{comment_id}/delete"): Rule(OWNER, changes=True),
    ("POST", "/comments/{comment_id}/hide"): Rule(ADMIN, changes=True),
    ("POST", "/comments/{comment_id}/unhide"): Rule(
        ADMIN, params={"comment_id": "hidden_comment"}, changes=True
    ),
    ("POST", "/api/papers/{arxiv_id:path}/comments"): Rule(MEMBERS, json=COMMENT_FORM, changes=True),
    ("PATCH", "/api/comments/{comment_id}"): Rule(OWNER, json=COMMENT_FORM, changes=True),
    ("DELETE", "/api/comments/{comment_id}"): Rule(OWNER, changes=True),
    # papers: members submit, upvote and claim authorship
    ("POST", "/api/papers/submit"): Rule(MEMBERS, json={"arxiv": FRESH}, changes=True),
    ("POST", "/papers/submit"): Rule(MEMBERS, form={"arxiv": FRESH}, changes=True),
    ("POST", "/papers/{arxiv_id:path}/claim"): Rule(
        MEMBERS, params={"arxiv_id:path": "paper_a"}, form={"author_name": "Alan Turing"}, changes=True
    ),
    ("POST", "/api/papers/{arxiv_id:path}/upvote"): Rule(MEMBERS, json={}, changes=True),
    ("DELETE", "/api/papers/{arxiv_id:path}/upvote"): Rule(MEMBERS, json={}),
    ("POST", "/papers/{arxiv_id:path}/upvote"): Rule(MEMBERS, form={}, changes=True),
    # one's own digest: follow authors as a member, the rest behind the subscription's signed links
    ("POST", "/authors/{name:path}/follow"): Rule(MEMBERS, form={}, changes=True),
    ("POST", "/authors/{name:path}/unfollow"): Rule(MEMBERS, form={}),
    ("POST", "/subscribe"): Rule(ALL, form={"email": "sub-{actor}@example.org"}, changes=True),
    ("POST", "/subscribe/confirm"): Rule(OWNER, form={}, link="confirm", link_in="form", changes=True),
    ("POST", "/unsubscribe/resubscribe"): Rule(
        OWNER, form={}, link="unsubscribe", why="the subscription is on"
    ),
    ("POST", "/unsubscribe"): Rule(OWNER, form={}, link="unsubscribe", changes=True),
    ("POST", "/subscription"): Rule(
        OWNER,
        form={
            "cadence": "weekly",
            "send_hour": "7",
            "weekly_day": "0",
            "timezone": "UTC",
            "max_papers": "10",
        },
        link="manage",
        changes=True,
    ),
    ("POST", "/subscription/rotate"): Rule(OWNER, form={}, link="manage", changes=True),
    ("POST", "/subscription/resume"): Rule(OWNER, form={}, link="manage"),
    # collections (issue 14): public ones are public reading; members save; only the owner changes one
    ("GET", "/u/{username}/c/{slug}"): PUBLIC,
    ("GET", "/u/{username}/c/{slug}/feed.atom"): PUBLIC,
    ("GET", "/api/users/{username}/collections"): PUBLIC,
    ("GET", "/api/users/{username}/collections/{slug}"): PUBLIC,
    ("GET", "/collections"): Rule(MEMBERS, why="one's own collections"),
    ("GET", "/papers/{arxiv_id:path}/collections"): Rule(MEMBERS, why="one's own collections"),
    ("POST", "/papers/{arxiv_id:path}/save"): Rule(MEMBERS, form={}, changes=True),
    ("POST", "/papers/{arxiv_id:path}/collections"): Rule(
        MEMBERS, form={"new_name": "Saved by {actor}"}, changes=True
    ),
    ("POST", "/collections"): Rule(MEMBERS, form={"name": "New of {actor}"}, changes=True),
    ("POST", "/collections/{collection_id}/edit"): Rule(OWNER, form={"name": "Renamed"}, changes=True),
    ("POST", "/collections/{collection_id}/delete"): Rule(OWNER, form={}, changes=True),
    ("POST", "/collections/{collection_id}/remove"): Rule(OWNER, form={"arxiv_id": X}, changes=True),
    ("POST", "/collections/{collection_id}/note"): Rule(
        OWNER, form={"arxiv_id": X, "note": "n"}, changes=True
    ),
    ("POST", "/collections/{collection_id}/move"): Rule(
        OWNER, form={"arxiv_id": X, "to": "down"}, changes=True
    ),
    ("POST", "/api/collections"): Rule(MEMBERS, json={"title": "New of {actor}"}, changes=True),
    ("PATCH", "/api/collections/{collection_id}"): Rule(OWNER, json={"title": "Renamed"}, changes=True),
    ("DELETE", "/api/collections/{collection_id}"): Rule(OWNER, json={}, changes=True),
    ("POST", "/api/collections/{collection_id}/papers"): Rule(OWNER, json={"id": FRESH_IN_HUB}, changes=True),
    ("PATCH", "/api/collections/{collection_id}/papers/{arxiv_id:path}"): Rule(
        OWNER, json={"note": "n"}, changes=True
    ),
    ("DELETE", "/api/collections/{collection_id}/papers/{arxiv_id:path}"): Rule(OWNER, json={}, changes=True),
    ("PUT", "/api/collections/{collection_id}/order"): Rule(OWNER, json={"ids": [A, X]}, changes=True),
    # follows (issue 14): organization pages are public reading; members follow; one's own list is one's own
    ("GET", "/orgs/{slug}"): Rule(ALL, params={"slug": "org"}, why="public reading"),
    ("GET", "/api/orgs/{slug}"): Rule(ALL, params={"slug": "org"}, why="public reading"),
    ("GET", "/following"): Rule(MEMBERS, why="one's own follows"),
    ("GET", "/api/following"): Rule(MEMBERS, why="one's own follows"),
    ("POST", "/following/follow"): Rule(
        MEMBERS, form={"kind": "author", "name": "Solo Author"}, changes=True
    ),
    ("POST", "/following/unfollow"): Rule(MEMBERS, form={"kind": "org", "name": "evil-lab"}),
    ("POST", "/following/digest"): Rule(
        OWNER, form={"kind": "org", "name": "evil-lab", "in_digest": "0"}, changes=True
    ),
    ("POST", "/api/follows"): Rule(MEMBERS, json={"kind": "author", "name": "Solo Author"}, changes=True),
    ("DELETE", "/api/follows/{kind}/{name:path}"): Rule(
        MEMBERS, params={"kind": "kind_author", "name:path": "followed_author"}, json={}
    ),
    # For you (issue 14): one's own feed, its private Atom feed behind its signed address; feedback: members
    ("GET", "/papers/for-you"): Rule(MEMBERS, why="one's own feed"),
    ("GET", "/api/papers/for-you"): Rule(MEMBERS, why="one's own feed"),
    ("GET", "/papers/for-you/feed.atom"): Rule(OWNER, link="for_you"),
    ("POST", "/papers/{arxiv_id:path}/not-interested"): Rule(MEMBERS, form={}, changes=True),
    ("POST", "/papers/{arxiv_id:path}/less-like-this"): Rule(MEMBERS, form={}, changes=True),
    ("POST", "/papers/{arxiv_id:path}/feedback/undo"): Rule(MEMBERS, form={}),
    ("PUT", "/api/papers/{arxiv_id:path}/feedback"): Rule(MEMBERS, json={"kind": "hide"}, changes=True),
    ("DELETE", "/api/papers/{arxiv_id:path}/feedback"): Rule(MEMBERS, json={}),
    # citations out (issue 14): public reading
    ("GET", "/papers/{arxiv_id:path}.bib"): PUBLIC,
    ("GET", "/papers/{arxiv_id:path}.ris"): PUBLIC,
    ("GET", "/papers/{arxiv_id:path}.csl.json"): PUBLIC,
}
# RFC 8058 one-click: mail clients post without cookies or a CSRF token; the signed link is the authority
CSRF_EXEMPT = {("POST", "/unsubscribe")}
GENERIC_FORM = {"body": "hi", "arxiv": FRESH, "name": "n", "day": LATEST.isoformat(), "author_name": "x"}


# --- sending one cell --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    actor: str
    what: str
    response: Any

    @property
    def status(self) -> int:
        return int(self.response.status_code)

    def to_login(self) -> bool:
        return self.status == 303 and self.response.headers.get("location", "").startswith("/login")

    def succeeded(self) -> bool:
        return self.status < 400 and not self.to_login()

    def csrf_refused(self, expect_401: bool) -> bool:
        """Refused for want of authority: 401 `WWW-Authenticate: Bearer` where that is the answer (an API
        write without the cookie, a bad `Authorization` header), else 403 naming the CSRF check."""
        if expect_401:
            return self.status == 401 and self.response.headers.get("www-authenticate") == "Bearer"
        return self.status == 403 and bool(CSRF_REFUSAL.search(self.response.text))

    def __str__(self) -> str:
        where = self.response.headers.get("location", "")
        text = self.response.text
        said = re.search(r'class="error-message">([^<]*)<', text) or re.search(r"<title>([^<]*)<", text)
        body = f"→ {where}" if where else " ".join((said.group(1) if said else text).split())[:160]
        return f"{self.actor} {self.what}: {self.status} {body}"


def _samples(world: World, rule: Rule | None) -> dict[str, str]:
    samples = dict(world.samples)
    for name, obj in (rule.params if rule else {}).items():
        samples[name] = world.ids[obj]
    return samples


def _body(rule: Rule | None, ep: Endpoint, actor: str) -> dict[str, Any]:
    username = NAMES.get(actor, "bob")

    def fmt(value: Any) -> Any:
        return value.format(actor=actor, username=username) if isinstance(value, str) else value

    if rule is not None and rule.json is not None:
        return {"json": {k: fmt(v) for k, v in rule.json.items()}}
    if rule is not None and rule.form is not None:
        return {"data": {k: fmt(v) for k, v in rule.form.items()}}
    if ep.method == "GET":
        return {}
    return {"json": dict(GENERIC_FORM)} if ep.api else {"data": dict(GENERIC_FORM)}


def send(
    hub: Hub,
    ep: Endpoint,
    actor: str,
    *,
    csrf: str | None = "right",
    as_header: bool = False,
    headers: Mapping[str, str] | None = None,
    bearer: bool = False,
) -> Sent:
    """One request of `actor` to `ep`, built from its rule. `csrf`: "right" (the token the actor's pages
    carry), None (none), or the token to send. A link-authorised route's owner sends the link without a
    session."""
    world = hub.world
    rule = RULES.get(ep.key)
    path = fill(ep.path, _samples(world, rule))
    params: dict[str, str] = {}
    who = actor
    if rule is not None and rule.link is not None:
        if actor == "owner":
            params["t"], who = world.links[rule.link], "anon"
        elif actor == "other":
            params["t"] = world.links[WRONG_LINK[rule.link]]
    body = _body(rule, ep, actor)
    if rule is not None and rule.link_in == "form" and params:
        body = {"data": {**body.get("data", {}), **params}}
        params = {}
    sent_headers = dict(headers or {})
    if bearer:
        sent_headers["Authorization"] = f"Bearer {world.bearer[actor]}"
        who = "anon"
    token = world.csrf[who] if csrf == "right" else csrf
    if ep.unsafe and token is not None:
        if as_header or "json" in body:
            sent_headers["X-CSRF-Token"] = token
        else:
            body = {"data": {**body.get("data", {}), "csrf_token": token}}
    response = hub.client(who).request(
        ep.method, path, params=params, headers=sent_headers, follow_redirects=False, **body
    )
    what = f"{ep.method} {path}" + (" (bearer)" if bearer else "")
    return Sent(actor, what, response)


# --- the CSRF matrix ---------------------------------------------------------------------------------------


@dataclass
class Report:
    cells: int = 0
    failures: list[str] = field(default_factory=list)


def _csrf_victims(ep: Endpoint) -> list[str]:
    """Who the forged request is sent for: every signed-in actor the route lets act (the admin and the
    owner when the route is not classified yet), so that the request would succeed with its token."""
    rule = RULES.get(ep.key)
    if rule is None:
        return ["owner", "admin"]
    if rule.link is not None:
        return []  # the owner of a signed link acts without a session: the anonymous cells cover it
    return [a for a in SESSION_ACTORS if a in rule.allowed] or ["owner", "admin"]


def _forgeries(world: World, ep: Endpoint) -> list[tuple[str, bool, dict[str, Any]]]:
    """The forged requests for `ep`: (actor, whether the refusal is a 401 rather than a 403, keyword
    arguments of `send`)."""
    cells: list[tuple[str, bool, dict[str, Any]]] = []
    rule = RULES.get(ep.key)
    json_body = (rule is not None and rule.json is not None) or (rule is None and ep.api)
    for victim in _csrf_victims(ep):
        foreign = world.csrf["other" if victim != "other" else "owner"]
        cells += [
            (victim, False, {"csrf": None}),
            (victim, False, {"csrf": "f" * 64}),
            (victim, False, {"csrf": foreign}),
            (victim, False, {"csrf": world.csrf["anon"]}),  # the token of pages seen before signing in
        ]
        if not json_body:  # (a JSON body's token goes in the header anyway)
            cells.append((victim, False, {"csrf": foreign, "as_header": True}))
        # one authority per request: a bad Authorization header is judged alone, the cookie ignored
        cells.append((victim, True, {"csrf": None, "headers": {"Authorization": "Bearer pb_junk"}}))
    # signed out (or holding a signed link): the public token is right, but not from another site
    anyone = "owner" if (rule or PUBLIC).link else "anon"
    for headers in (CROSS_SITE, {"Origin": "https://evil.example"}, {"Origin": "null"}):
        cells.append((anyone, ep.api, {"headers": headers}))
    cells.append((anyone, ep.api, {"csrf": None}))
    return cells


def csrf_matrix(world: World, extra: Callable[[FastAPI], None] | None = None) -> Report:
    """Every unsafe route × every forged request: refused, and the database dump unchanged."""
    report = Report()
    with world.hub(extra) as hub:
        writes = [ep for ep in endpoints(hub.app) if ep.unsafe and ep.key not in CSRF_EXEMPT]
        before = hub.dump()
    for ep in writes:
        with world.hub(extra) as hub:
            for actor, expect_401, how in _forgeries(world, ep):
                report.cells += 1
                try:
                    sent = send(hub, ep, actor, **how)
                except MissingSample as exc:
                    report.failures.append(f"{ep.method} {ep.path}: no sample value for {{{exc.args[0]}}}")
                    break
                if not sent.csrf_refused(expect_401):
                    report.failures.append(f"not refused: {sent}")
                if hub.dump() != before:
                    report.failures.append(f"changed the database: {sent}")
                    break
    return report


def test_every_write_route_refuses_forged_requests_and_changes_nothing(world: World) -> None:
    report = csrf_matrix(world)
    assert not report.failures, "\n".join(report.failures)
    with world.hub() as hub:
        writes = [ep for ep in endpoints(hub.app) if ep.unsafe]
    assert len(writes) >= 30, writes  # the walk finds the routes (one that finds none proves nothing)
    assert report.cells >= 8 * len(writes), report.cells


def _rogue_routes(app: FastAPI) -> None:
    """Writes that forgot the CSRF check: a form route, an API route acting on the session cookie, and a
    route whose path parameter has no sample yet."""

    @app.post("/comments/{comment_id}/pin")
    def pin(
        comment_id: int, user: User = Depends(deps.member), conn: Connection = Depends(deps.conn)
    ) -> Response:
        with write(conn):
            conn.execute(
                sa.update(comments_table).where(comments_table.c.id == comment_id).values(body="pinned")
            )
        return RedirectResponse("/papers", status_code=303)

    @app.delete("/api/comments/{comment_id}/pin")
    def unpin(comment_id: int, request: Request, conn: Connection = Depends(deps.conn)) -> Response:
        if deps.viewer(request, conn).user is None:
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        with write(conn):
            conn.execute(
                sa.update(comments_table).where(comments_table.c.id == comment_id).values(body="unpinned")
            )
        return Response(status_code=204)

    @app.post("/widgets/{widget_id}/poke")
    def poke(widget_id: int) -> Response:
        return Response(status_code=204)


def test_the_csrf_matrix_reports_a_write_route_added_without_protection(world: World) -> None:
    report = csrf_matrix(world, extra=_rogue_routes)
    text = "\n".join(report.failures)
    assert f"not refused: owner POST /comments/{world.ids['comment']}/pin" in text, text
    assert f"changed the database: owner POST /comments/{world.ids['comment']}/pin" in text, text
    assert f"not refused: owner DELETE /api/comments/{world.ids['comment']}/pin" in text, text
    assert "POST /widgets/{widget_id}/poke: no sample value for {widget_id}" in text, text
    assert all(("/pin" in f or "/widgets/" in f) for f in report.failures), text  # and nothing else


# --- the authorization matrix ------------------------------------------------------------------------------


def unclassified(app: FastAPI) -> list[tuple[str, str]]:
    return [ep.key for ep in endpoints(app) if ep.key not in RULES]


def test_every_route_is_classified_in_the_authorization_table(world: World) -> None:
    with world.hub() as hub:
        keys = {ep.key for ep in endpoints(hub.app)}
        assert not unclassified(hub.app), (
            "routes without an expectation in RULES (say who may use them):\n"
            + "\n".join(f"  {m} {p}" for m, p in unclassified(hub.app))
        )
    assert not set(RULES) - keys, f"RULES names routes the app no longer has: {set(RULES) - keys}"
    with world.hub(extra=_rogue_routes) as hub:
        assert ("POST", "/comments/{comment_id}/pin") in unclassified(hub.app)


def _judge(rule: Rule, ep: Endpoint, sent: Sent, changed: bool) -> str | None:
    """What is wrong with this cell, or None."""
    if ep.method == "GET" and changed:
        return f"a GET changed the database: {sent}"
    if sent.actor in rule.allowed:
        if not sent.succeeded():
            return f"refused an allowed actor: {sent}"
        if rule.changes and not changed:
            return f"succeeded but changed nothing: {sent}"
        return None
    if changed:
        return f"changed the database for a refused actor: {sent}"
    if sent.actor == "anon" and rule.link is None:
        ok = sent.status == 401 if ep.api else sent.to_login()
        return None if ok else f"anonymous not sent to sign in (401 / 303 /login): {sent}"
    expected = (400, 404) if rule.link is not None else (403, 404)
    return None if sent.status in expected else f"expected {' or '.join(map(str, expected))}: {sent}"


def _cell(hub: Hub, ep: Endpoint, actor: str, bearer: bool) -> tuple[Sent, bool]:
    """One request, and whether the database changed under it."""
    before = hub.dump()
    sent = send(hub, ep, actor, bearer=bearer)
    return sent, hub.dump() != before


def authorization_matrix(
    world: World, rules: Mapping[tuple[str, str], Rule], extra: Callable[[FastAPI], None] | None = None
) -> Report:
    """Every classified route × every actor. The refused cells of a route share one copy of the database
    (a fresh one after a cell that changed it, which is reported), each allowed write gets its own copy.
    Signed-in actors try each route with their session, then with their API token (one authority per
    request: a valid `Authorization: Bearer` alone acts, on any route)."""
    report = Report()
    with world.hub(extra) as hub:
        eps = [ep for ep in endpoints(hub.app) if ep.key in rules]
    saved = dict(RULES)
    RULES.update(rules)
    try:
        for ep in eps:
            rule = rules[ep.key]
            ways = [False, True] if rule.link is None else [False]  # a session, then an API token
            shared = ExitStack()
            try:
                hub = shared.enter_context(world.hub(extra))
                for actor in ACTORS:
                    for bearer in ways if actor != "anon" else [False]:
                        if actor in rule.allowed and ep.method != "GET":
                            with world.hub(extra) as fresh:
                                sent, changed = _cell(fresh, ep, actor, bearer)
                        else:
                            sent, changed = _cell(hub, ep, actor, bearer)
                            if changed:
                                shared.close()
                                hub = shared.enter_context(world.hub(extra))
                        report.cells += 1
                        wrong = _judge(rule, ep, sent, changed)
                        if wrong:
                            report.failures.append(wrong)
            finally:
                shared.close()
    finally:
        RULES.clear()
        RULES.update(saved)
    return report


def test_only_the_allowed_actors_succeed_on_every_route(world: World) -> None:
    report = authorization_matrix(world, RULES)
    assert not report.failures, "\n".join(report.failures)
    assert report.cells >= 4 * len(RULES), report.cells


def test_the_authorization_matrix_reports_a_route_that_lets_another_member_in(world: World) -> None:
    owner_only = {("POST", "/comments/{comment_id}/pin"): Rule(OWNER, form={}, changes=True)}
    report = authorization_matrix(world, owner_only, extra=_rogue_routes)
    text = "\n".join(report.failures)
    assert (
        f"changed the database for a refused actor: other POST /comments/{world.ids['comment']}/pin" in text
    )
    assert (
        f"changed the database for a refused actor: admin POST /comments/{world.ids['comment']}/pin" in text
    )
    assert "anonymous" not in text, text  # deps.member still sends the signed-out to sign in


# --- every GET route with hostile data ---------------------------------------------------------------------


def test_every_get_route_renders_hostile_data_inert_for_every_actor(world: World) -> None:
    """The hostile paper, bob's hostile comments and claim, a hostile author name and a hostile pending
    topic fill every GET route of the table; whatever answers (page, JSON, feed, Markdown) carries no markup
    from the data."""
    checked = 0
    with world.hub() as hub:
        gets = [ep for ep in endpoints(hub.app) if ep.method == "GET"]
        for ep in gets:
            for actor in ACTORS:
                sent = send(hub, ep, actor)
                checked += 1
                ctype = sent.response.headers.get("content-type", "")
                where = str(sent)
                assert sent.status < 500, where
                text = sent.response.text
                if "html" in ctype:
                    assert_no_markup_from_data(text, where)
                    assert "<script>alert" not in text, where
                elif "json" in ctype and (ep.api or "citationstyles" in ctype):  # `<`, `>`, `&` as escapes
                    # (SafeJSONResponse; the CSL-JSON export escapes them the same way)
                    assert "<" not in text and ">" not in text, where
                elif "json" in ctype:  # /openapi.json: the schema's own prose (`<token>`), no stored data
                    assert not any(p in text for p in XSS_CORPUS), where
                elif "xml" in ctype:
                    assert not re.search(r"<(script|img|svg|iframe|style)\b", text), where
                    assert not re.search(r"""(href|src)=["']\s*javascript:""", text, re.IGNORECASE), where
                    assert re.search(r"<[a-z]+[^>]*\son\w+=", text) is None, where
                else:
                    assert sent.response.headers.get("x-content-type-options") == "nosniff", where
    assert checked >= 4 * 40, checked
