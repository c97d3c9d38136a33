"""Schemathesis against the app's own `/openapi.json`: every operation, generated valid and invalid requests,
anonymous, with a member's bearer token and with an admin's. No answer may be a 5xx, and every answer must
be what the operation documents: a documented status code, its content type, a body that fits its schema,
its documented headers; invalid input must be refused with a 4xx.

The app is the real one over a real SQLite file holding the tests' small hub (webhub: papers, a withdrawn
one, old-style ids) with upvotes and comments, so that generated ids sometimes hit real rows. A few examples
per operation keep CI quick (the same ones each run); docs/api.md ("Fuzzing the API") gives the longer run.

Each operation runs as its own Hypothesis test and every finding is collected, so that one failing
operation does not hide another; the test fails with the list. (Schemathesis's own pytest loader,
`schemathesis.pytest.from_fixture`, fails on pytest 9.2: `'Function' object has no attribute '_nodeid'`.)

No operation is left out. None sends mail: `POST /subscribe` does, but it is a form (not in the schema);
`POST /api/papers/submit` could look a paper up on arXiv, and the app here is built without `fetch_paper`,
so only stored papers can be submitted and nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema_rs
import pytest
import schemathesis
import webhub
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from members import FAST_HASHER, PASSWORD, csrf, login
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.engine import Engine

from paperboy import accounts
from paperboy.community import comments, votes
from paperboy.web.app import create_app

EXAMPLES = int(os.environ.get("PAPERBOY_FUZZ_EXAMPLES", "8"))  # per operation and generation mode
LONG = "PAPERBOY_FUZZ_EXAMPLES" in os.environ  # a longer run draws new examples each time
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
# Rows of the hub that positive cases often name instead of a made-up id (a made-up id is only ever a 404).
KNOWN = {
    "arxiv_id": [webhub.A, webhub.B, webhub.OLD],
    "paper_id": [webhub.A, webhub.C, webhub.OLD],
    "comment_id": [1, 2],
    "username": ["ada", "grace"],
}
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


class Hub:
    """The app over the small hub, with an admin and a member who each hold an API token."""

    def __init__(self, engine: Engine) -> None:
        webhub.load(engine)
        now = webhub.NOW
        with engine.begin() as conn:
            admin = accounts.create_user(
                conn, FAST_HASHER, username="grace", email="grace@example.org", password=PASSWORD, now=now
            )
            member = accounts.create_user(
                conn, FAST_HASHER, username="ada", email="ada@example.org", password=PASSWORD, now=now
            )
            self.tokens = {
                "admin": accounts.create_token(conn, admin, "fuzz", now).secret,
                "member": accounts.create_token(conn, member, "fuzz", now).secret,
            }
            votes.set_vote(conn, member, webhub.A, True, now)
            first = comments.post(conn, member, webhub.A, "A *first* comment.", now)
            comments.post(conn, admin, webhub.A, "A reply.", now, first.id)
        self.app = create_app(engine, site=webhub.SITE, clock=lambda: now, hasher=FAST_HASHER)


def _headers(case: Any, token: str | None) -> dict[str, str]:
    """The headers to send: the token's, or none at all for an anonymous caller (a generated case may carry a
    made-up `Authorization` header from the documented bearer scheme: an anonymous caller sends none)."""
    if token is None:
        if case.headers:
            case.headers.pop("Authorization", None)
        return {}
    return {"Authorization": f"Bearer {token}"}


def _summary(exc: BaseException) -> str:
    """A finding in a few lines: what broke, the answer, and the curl command that reproduces it."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    keep = [line for line in lines if not line.startswith(("Reproduce with", "You can reproduce"))]
    return "\n".join(keep[:14])


def _wire_query_is_valid(response: Any, params: dict[str, dict[str, Any]]) -> bool:
    """Whether the query a "negative" case put on the wire is valid after all, read the way the app reads it.

    Schemathesis makes a value invalid before serializing it, and some invalid values come out on the wire as
    valid ones: `null` or `{}` as an empty value, `false` as the string "false", `[0.0]` as "0.0". The app
    reads an empty value as an absent one (HTML forms send their empty fields) and an integer written with a
    zero fraction as that integer (pydantic's lax mode), and takes the last of repeated scalar values. Such a
    case is accepted on purpose: only when every query value, read so, fits its documented schema is an
    accepted "negative" case forgiven; anything else in the request (path, headers, body) is never forgiven.
    """
    sent = parse_qs(urlsplit(response.request.url).query, keep_blank_values=True)
    for name, param in params.items():
        values = [v for v in sent.get(name, []) if v != ""]
        schema = param.get("schema", {})
        types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
        if not values:
            if param.get("required"):
                return False
            continue
        if "array" in types:
            instance: Any = values
        else:
            instance = values[-1]
            if "integer" in types:
                with contextlib.suppress(ValueError):
                    number = float(instance)
                    if number.is_integer():
                        instance = int(number)
        if not jsonschema_rs.validator_for(schema).is_valid(instance):
            return False
    return set(sent) <= set(params)


def _only_accepted_negative(exc: BaseException) -> bool:
    failures = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
    return all(getattr(f, "title", "") == "Schema-violating request accepted" for f in failures)


def _fuzz_operation(
    operation: Any, mode: Any, token: str | None, found: list[str], forgiven: list[str]
) -> None:
    """Up to EXAMPLES requests of one generation mode to one operation; each distinct finding once."""
    seen: set[str] = set()
    params = {p["name"]: p for p in operation.definition.raw.get("parameters", []) if p.get("in") == "query"}
    known = {k: v for k, v in KNOWN.items() if f"{{{k}}}" in operation.path}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not LONG,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def one(case: Any, data: Any) -> None:
        if mode is schemathesis.GenerationMode.POSITIVE:
            for name, values in known.items():  # often a row that exists, to get past the 404s
                pick = data.draw(st.sampled_from([None, *values]))
                if pick is not None:
                    case.path_parameters[name] = pick
        headers = _headers(case, token)
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # the app raised: a 500 for a real client
            key = f"raised {type(exc).__name__}"
            if key not in seen:
                seen.add(key)
                found.append(f"({mode.value}) the app {key}: {exc}\n  {case.as_curl_command(headers)}")
            return
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, FailureGroup) as exc:  # record, keep going
            if _only_accepted_negative(exc) and _wire_query_is_valid(response, params):
                forgiven.append(response.request.url)
                return
            text = _summary(exc)
            key = text.split("\n[")[0]  # the failed checks, without the answer's body
            if key not in seen:
                seen.add(key)
                found.append(f"({mode.value}) {text}")

    with contextlib.suppress(Unsatisfiable):  # no such request exists (no invalid form of a bare GET)
        one()


def fuzz(app: Any, token: str | None) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """Every operation of the app's schema, valid and invalid requests: the operations run, the findings per
    operation, and the forgiven "negative" requests (see `_wire_query_is_valid`)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    ran: list[str] = []
    found: dict[str, list[str]] = defaultdict(list)
    forgiven: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # a schema error here fails the test: the schema must load
        ran.append(operation.label)
        for mode in MODES:
            _fuzz_operation(operation, mode, token, found[operation.label], forgiven)
    return ran, {label: items for label, items in found.items() if items}, forgiven


def _report(found: dict[str, list[str]]) -> str:
    return "\n\n".join(f"== {label}\n" + "\n".join(items) for label, items in found.items())


@pytest.mark.parametrize("who", [None, "member", "admin"], ids=["anonymous", "member-token", "admin-token"])
def test_every_operation_answers_as_documented(sqlite_engine: Engine, who: str | None) -> None:
    hub = Hub(sqlite_engine)
    ran, found, forgiven = fuzz(hub.app, hub.tokens[who] if who else None)
    print(f"{len(forgiven)} accepted 'negative' requests were valid on the wire, e.g. {forgiven[:3]}")
    paths = {label.split(" ", 1)[1] for label in ran}
    assert {"/api/daily_papers", "/api/papers/{arxiv_id}/upvote", "/api/comments/{comment_id}"} <= paths
    assert not found, f"{sum(map(len, found.values()))} findings:\n" + _report(found)


def test_what_the_fuzzer_found_stays_fixed(sqlite_engine: Engine) -> None:
    hub = Hub(sqlite_engine)
    client = TestClient(hub.app)
    spec = client.get("/openapi.json").json()["paths"]
    member = {"Authorization": f"Bearer {hub.tokens['member']}"}
    # GET /api/admin answered 401 and 403 that it did not document
    assert {"401", "403"} <= set(spec["/api/admin"]["get"]["responses"])
    assert client.get("/api/admin").status_code == 401
    assert client.get("/api/admin", headers=member).status_code == 403
    # API writes without any credentials are a 401 (with WWW-Authenticate: Bearer), which they document;
    # a session request without its CSRF token stays a documented 403
    for path, method in [("/api/papers/submit", "post"), ("/api/papers/{arxiv_id}/upvote", "post")]:
        assert {"401", "403"} <= set(spec[path][method]["responses"]), path
    anonymous = client.post("/api/papers/submit", json={"arxiv": webhub.A})
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    # a category in no arXiv archive (`category=false`) matched nothing with a 200; now a 400 naming it
    bad = client.get("/api/papers/search", params={"q": "attention", "category": "false"})
    assert bad.status_code == 400 and "category: 'false'" in bad.json()["error"]
    # an id past SQLite's 64-bit INTEGER raised OverflowError (a 500): now a 400 naming the field
    huge = 10**30
    reply = client.post(
        f"/api/papers/{webhub.A}/comments", json={"body": "hi", "parent_id": huge}, headers=member
    )
    assert reply.status_code == 400 and "parent_id" in reply.json()["error"]
    browser = TestClient(hub.app, base_url="https://testserver")
    login(browser, "grace")
    token = csrf(browser, "/settings")
    for path in (
        f"/comments/{huge}/edit",
        f"/comments/{huge}/delete",
        f"/comments/{huge}/hide",
        f"/settings/tokens/{huge}/revoke",
        f"/admin/users/{huge}/disable",
        f"/admin/claims/{huge}/approve",
    ):
        assert browser.post(path, data={"csrf_token": token, "body": "x"}).status_code == 400, path
    for fine in ("hep-th", "cs.CL,stat", "astro-ph.GA"):
        assert (
            client.get("/api/papers/search", params={"q": "attention", "category": fine}).status_code == 200
        )


def test_only_valid_wire_queries_are_forgiven() -> None:
    params = {
        "p": {"name": "p", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        "to": {"name": "to", "in": "query", "schema": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
    }

    def sent(query: str) -> Any:
        return SimpleNamespace(request=SimpleNamespace(url=f"http://testserver/api/x?{query}"))

    assert _wire_query_is_valid(sent("p=0.0&to="), params)
    assert _wire_query_is_valid(sent("p=x&p=3"), params)  # the last of repeated values counts
    assert not _wire_query_is_valid(sent("p=0.5"), params)
    assert not _wire_query_is_valid(sent("p=-1"), params)
    assert not _wire_query_is_valid(sent("p=1&other=2"), params)  # an undocumented parameter
