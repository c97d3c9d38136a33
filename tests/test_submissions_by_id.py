"""A member's submissions belong to their account id, not to their username (issue 12): a deleted member's
name, registered again by someone else, does not come with the papers the deleted account submitted, on the
profile page, its JSON twin or the `submitter` filter of /api/daily_papers. On the wire, SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import members
import webhub
from livehub import Live, live
from sqlalchemy.engine import Engine

NEW = "2503.07777"  # a paper the hub does not have: "arXiv" (fetch_paper) gives it


def _fetch(arxiv_id: str) -> object:
    return members.paper(arxiv_id, "A Paper Ada Submitted", published_at=webhub.NOW - timedelta(days=1))


def _submit(hub: Live, session: str, arxiv_id: str) -> None:
    r = hub.request(
        "POST", "/papers/submit", session=session, data={"arxiv": arxiv_id, "csrf_token": hub.csrf(session)}
    )
    assert r.status_code == 303, r.text[:300]


def _delete_account(hub: Live, session: str) -> None:
    r = hub.request(
        "POST",
        "/settings/delete",
        session=session,
        data={"password": members.PASSWORD, "csrf_token": hub.csrf(session)},
    )
    assert r.status_code == 303, r.text[:300]


def _submitted(hub: Live, username: str) -> list[str]:
    r = hub.request("GET", f"/api/users/{username}")
    assert r.status_code == 200, r.text[:300]
    return [item["paper"]["id"] for item in r.json()["submitted"]]


def _by_submitter(hub: Live, username: str) -> list[str]:
    r = hub.request("GET", f"/api/daily_papers?submitter={username}&date={webhub.NOW.date()}")
    assert r.status_code == 200, r.text[:300]
    return [item["paper"]["id"] for item in r.json()]


def test_a_reused_username_does_not_inherit_submissions(engine: Engine) -> None:
    with live(engine, fetch_paper=_fetch) as hub:
        first = hub.signup("ada")
        _submit(hub, first, NEW)
        assert _submitted(hub, "ada") == [NEW]  # the control: the submission is the member's
        assert _by_submitter(hub, "ada") == [NEW]
        assert NEW in hub.request("GET", "/u/ada").text

        _delete_account(hub, first)
        hub.signup("ada")  # someone else takes the name

        assert _submitted(hub, "ada") == []
        assert _by_submitter(hub, "ada") == []
        page = hub.request("GET", "/u/ada")
        assert page.status_code == 200
        assert NEW not in page.text
        # the paper stays on the daily list, credited to the name it was submitted under
        paper = hub.request("GET", f"/api/papers/{NEW}").json()
        assert paper["submittedOnDailyBy"]["name"] == "ada"


def test_the_new_holder_keeps_their_own_submissions(engine: Engine) -> None:
    """By id both ways: the new account's own submission is on its profile, the old one's is not."""
    with live(engine, fetch_paper=_fetch) as hub:
        first = hub.signup("ada")
        _submit(hub, first, NEW)
        _delete_account(hub, first)
        second = hub.signup("ada")
        _submit(hub, second, "2503.08888")
        assert _submitted(hub, "ada") == ["2503.08888"]
        assert _by_submitter(hub, "ada") == ["2503.08888"]
