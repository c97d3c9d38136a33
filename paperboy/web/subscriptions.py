"""Email digests, the visitor's side: subscribe (double opt-in), confirm, preferences behind a signed link,
the topics' Atom feed, and RFC 8058 one-click unsubscribe.

Every POST here carries the CSRF token except `POST /unsubscribe?t=…` (`oneclick_router`): mail clients send
it with the body `List-Unsubscribe=One-Click` and no cookies, and the signed token in the URL is the
authority. GETs change nothing: the links in mails open pages whose button does the deed.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from paperboy.db import write
from paperboy.digest import subscriptions as subs
from paperboy.errors import FieldInvalid, InvalidInput, NotFound
from paperboy.models import StoredPaper, Subscription, User
from paperboy.web import deps, feeds, listings, schemas, security
from paperboy.web.deps import Pages, Site, Viewer
from paperboy.web.pages import paper_path
from paperboy.web.security import Limiter

if TYPE_CHECKING:
    from paperboy.search.hybrid import Searcher

router = APIRouter(
    default_response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(deps.require_csrf)],
)
# The only write without a CSRF token (tests/test_security.py lists it in EXEMPT): RFC 8058 one-click.
oneclick_router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)
api_router = APIRouter(prefix="/api")

FEED_PER_TOPIC = 30
MAX_FIELD = 20_000  # characters kept of one preferences field (the checks then say what is too long)
Token = Query("", max_length=1000, description="The signed token from the link in a digest mail.")


def secret_key(request: Request) -> bytes:
    key: bytes = request.app.state.secret_key
    return key


def _page(
    templates: Pages, name: str, site: Site, now: datetime, status: int = 200, **context: Any
) -> HTMLResponse:
    html = templates.render(name, site=site, today=now.date(), q="", **context)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _path(url: str) -> str:
    """The path and query of one of our absolute links (pages link within the site)."""
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def _mailing(request: Request, site: Site) -> subs.Mailing:
    return subs.Mailing(site.name, site.public_url, request.app.state.templates)


def mail_queued(request: Request) -> None:
    """Tell the sender that a mail was committed to the outbox, so that it leaves now rather than at the
    next round (call it after the transaction, never inside: the sender must find the row). `paperboy serve`
    sets `app.state.on_outbox` to its sender's wake-up; without one (tests, another host) the sender's
    periodic round sends the mail."""
    notify = getattr(request.app.state, "on_outbox", None)
    if notify is not None:
        notify()


# --- subscribing --------------------------------------------------------------------------------------------


def _subscribe_form(
    templates: Pages,
    site: Site,
    now: datetime,
    *,
    form: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    return _page(
        templates,
        "pages/subscribe.html",
        site,
        now,
        status=status,
        title="Subscribe",
        state="form",
        form=form,
        errors=errors,
        days=subs.CONFIRM_DAYS,
    )


@router.get("/subscribe")
def subscribe_form(
    topic: str = Query("", max_length=1000),
    category: str = Query("", max_length=1000),
    next: str = "",
    who: Viewer = Depends(deps.viewer),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    email = who.user.email if who.user is not None else ""
    form = {
        "email": email,
        "topic": topic.strip(),
        "category": category.strip(),
        "next": security.safe_next(next),
    }
    return _subscribe_form(templates, site, now, form=form, errors={})


@router.post("/subscribe")
def subscribe(
    request: Request,
    email: str = Form("", max_length=1000),
    topic: str = Form("", max_length=1000),
    category: str = Form("", max_length=1000),
    next: str = Form(""),
    who: Viewer = Depends(deps.viewer),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    """Answer with one mail to the address (a confirmation, or its preferences link when it is subscribed
    already; at most 3 per address per 6 hours) and one page that is the same whoever the address is."""
    limiter.hit("subscribe", ["ip:" + security.client_ip(request)])
    target = security.safe_next(next)
    try:
        with write(conn):
            done = subs.subscribe(
                conn,
                _mailing(request, site),
                email=email,
                topic=topic or None,
                categories=[category] if category.strip() else [],
                user=who.user,
                now=now,
            )
    except FieldInvalid as exc:  # what was typed is wrong, whoever the address is
        form = {"email": email[:254], "topic": topic[:200], "category": category[:200], "next": target}
        return _subscribe_form(templates, site, now, form=form, errors={exc.field: str(exc)}, status=400)
    # Woken whether or not a mail was queued (the sender finds nothing then): the request does the same work
    # and answers the same page for every address, so neither tells who is subscribed.
    mail_queued(request)
    return _page(
        templates,
        "pages/subscribe.html",
        site,
        now,
        title="Check your inbox",
        state="sent",
        email=done.email,
        topic=done.topic,
        days=subs.CONFIRM_DAYS,
        max_mails=subs.MAX_CONFIRMATIONS,
        window_hours=int(subs.CONFIRM_WINDOW.total_seconds() // 3600),
        next=target,
        form={},
        errors={},
    )


@router.get("/subscribe/confirm")
def confirm_page(
    t: str = Query("", max_length=1000),
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    """The page the confirmation mail links to: it shows what will happen and a button; it changes nothing."""
    pending = subs.pending_confirmation(conn, t, now)
    return _page(
        templates,
        "pages/subscribe_confirm.html",
        site,
        now,
        title="Confirm your subscription",
        state="ask",
        token=t,
        pending=pending,
    )


@router.post("/subscribe/confirm")
def confirm(
    request: Request,
    t: str = Form("", max_length=1000),
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    with write(conn):
        done = subs.confirm(conn, t, now)
    key = secret_key(request)
    return _page(
        templates,
        "pages/subscribe_confirm.html",
        site,
        now,
        title="You are subscribed",
        state="done",
        done=done,
        manage=_path(subs.manage_url(site.public_url, key, done.subscription, now)),
        max_topics=subs.MAX_TOPICS,
    )


# --- unsubscribing (RFC 8058) -------------------------------------------------------------------------------
# The one-click link travels in headers (List-Unsubscribe) and in forwarded mail, so it does one thing:
# unsubscribe, and undo that. Its pages show neither the address, nor the preferences, nor a manage link; its
# token is signed for the purpose "unsubscribe" and no other route takes it.


def _unsubscribe_page(
    templates: Pages, site: Site, now: datetime, t: str, *, state: str, found: Subscription
) -> HTMLResponse:
    query = urlencode({"t": t})
    return _page(
        templates,
        "pages/unsubscribe.html",
        site,
        now,
        title={"ask": "Unsubscribe", "done": "Unsubscribed", "back": "Subscribed again"}[state],
        state=state,
        unsubscribed=found.status == "unsubscribed",
        active=found.status == "active",
        can_resubscribe=found.status == "unsubscribed" and found.confirmed_at is not None,
        action="/unsubscribe?" + query,
        resubscribe_action="/unsubscribe/resubscribe?" + query,
    )


@oneclick_router.get("/unsubscribe")
def unsubscribe_page(
    t: str = Token,
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
    key: bytes = Depends(secret_key),
) -> Response:
    """What a person clicking the link sees: a button that unsubscribes. Opening the link changes nothing
    (mail scanners open links too)."""
    found = subs.subscription_for_token(conn, key, "unsubscribe", t, now)
    return _unsubscribe_page(templates, site, now, t, state="ask", found=found)


@oneclick_router.post("/unsubscribe")
def unsubscribe(
    t: str = Token,
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
    key: bytes = Depends(secret_key),
) -> Response:
    """One click: the body `List-Unsubscribe=One-Click` from a mail client (or the page's button), no cookies,
    no CSRF token. Unsubscribed at once; queued mail is cancelled. The page offers to undo it."""
    with write(conn):
        found = subs.subscription_for_token(conn, key, "unsubscribe", t, now)
        done = subs.unsubscribe(conn, found, now)
    return _unsubscribe_page(templates, site, now, t, state="done", found=done)


@router.post("/unsubscribe/resubscribe")
def resubscribe(
    t: str = Token,
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
    key: bytes = Depends(secret_key),
) -> Response:
    """Undo the unsubscribe with the same link (the button on the unsubscribed page, with its CSRF token)."""
    with write(conn):
        found = subs.subscription_for_token(conn, key, "unsubscribe", t, now)
        back = subs.resubscribe(conn, found, now)
    return _unsubscribe_page(templates, site, now, t, state="back", found=back)


# --- preferences --------------------------------------------------------------------------------------------


def _prefs_form(found: Subscription) -> dict[str, str]:
    return {
        "cadence": found.cadence,
        "send_hour": str(found.send_hour),
        "weekly_day": str(found.weekly_day),
        "timezone": found.timezone,
        "max_papers": str(found.max_papers),
        "topics": "\n".join(t.query for t in found.topics),
        "categories": ", ".join(found.categories),
        "authors": "\n".join(found.authors),
        "exclude": "\n".join(found.exclude),
    }


def _prefs_page(
    templates: Pages,
    site: Site,
    now: datetime,
    key: bytes,
    found: Subscription,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    manage = subs.manage_url(site.public_url, key, found, now)
    return _page(
        templates,
        "pages/subscription.html",
        site,
        now,
        status=status,
        title="Your digest",
        subscription=found,
        form=form or _prefs_form(found),
        errors=errors or {},
        notice=notice,
        action=_path(manage),
        rotate_action=_path(manage).replace("/subscription?", "/subscription/rotate?", 1),
        resume_action=_path(manage).replace("/subscription?", "/subscription/resume?", 1),
        unsubscribe_action=_path(subs.unsubscribe_url(site.public_url, key, found)),
        feed=subs.feed_url(site.public_url, key, found, now),
        weekdays=subs.WEEKDAYS,
        timezones=subs.timezone_names(),
        max_topics=subs.MAX_TOPICS,
        max_papers=subs.MAX_PAPERS,
        saved_searches=[tp for tp in found.topics if tp.categories],
    )


@router.get("/subscription")
def preferences_page(
    t: str = Token,
    rotated: str = "",
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
    key: bytes = Depends(secret_key),
) -> Response:
    found = subs.subscription_for_token(conn, key, "manage", t, now)
    notice = (
        "New links made: the ones in earlier mails (and the old feed address) no longer work."
        if rotated
        else ""
    )
    return _prefs_page(templates, site, now, key, found, notice=notice)


@router.post("/subscription")
def save_preferences(
    t: str = Token,
    cadence: str = Form(""),
    send_hour: str = Form(""),
    weekly_day: str = Form("0"),
    timezone: str = Form(""),
    max_papers: str = Form(""),
    topics: str = Form(""),
    categories: str = Form(""),
    authors: str = Form(""),
    exclude: str = Form(""),
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
    key: bytes = Depends(secret_key),
) -> Response:
    """Save the preferences form; any wrong field: 400, the form again with the messages, nothing stored."""
    form = {
        "cadence": cadence,
        "send_hour": send_hour,
        "weekly_day": weekly_day,
        "timezone": timezone,
        "max_papers": max_papers,
        "topics": topics,
        "categories": categories,
        "authors": authors,
        "exclude": exclude,
    }
    form = {k: v[:MAX_FIELD] for k, v in form.items()}
    with write(conn):
        found = subs.subscription_for_token(conn, key, "manage", t, now)
        try:
            prefs = subs.parse_preferences(form)
        except subs.PreferencesInvalid as exc:
            errors = exc.errors
        else:
            subs.save_preferences(conn, found, prefs, now)
            fresh = subs.subscription_for_token(conn, key, "manage", t, now)
            return _prefs_page(templates, site, now, key, fresh, notice="Saved.")
    return _prefs_page(templates, site, now, key, found, form=form, errors=errors, status=400)


@router.post("/subscription/rotate")
def rotate_links(
    t: str = Token,
    conn: Connection = Depends(deps.conn),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
    key: bytes = Depends(secret_key),
) -> Response:
    """Every link sent so far (preferences, unsubscribe, feed) stops working; here are new ones."""
    with write(conn):
        found = subs.subscription_for_token(conn, key, "manage", t, now)
        fresh = subs.rotate_links(conn, found)
    return RedirectResponse(_path(subs.manage_url(site.public_url, key, fresh, now)) + "&rotated=1", 303)


@router.post("/subscription/resume")
def resume(
    t: str = Token,
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
    key: bytes = Depends(secret_key),
) -> Response:
    with write(conn):
        found = subs.subscription_for_token(conn, key, "manage", t, now)
        fresh = subs.resume(conn, found, now)
    return _prefs_page(templates, site, now, key, fresh, notice="Digests are on again.")


@router.get("/settings/subscription")
def my_preferences(
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
    key: bytes = Depends(secret_key),
) -> Response:
    """A signed-in member's way to their preferences page (a fresh link, for the subscription their account
    confirmed)."""
    found = subs.member_subscription(conn, user)
    if found is None:
        raise NotFound("Your account has no digest subscription yet: subscribe from the settings page.")
    return RedirectResponse(_path(subs.manage_url(site.public_url, key, found, now)), 303)


# --- the topics' feed ---------------------------------------------------------------------------------------


def _excluded(item: StoredPaper, patterns: list[re.Pattern[str]]) -> bool:
    text = f"{item.paper.title}\n{item.paper.abstract}"
    return any(p.search(text) for p in patterns)


def topic_papers(
    conn: Connection, searcher: Searcher | None, found: Subscription, limit: int = feeds.FEED_LIMIT
) -> list[StoredPaper]:
    """The newest matches of each topic, merged and deduplicated, newest first; papers with an excluded word
    are left out."""
    patterns = [re.compile(r"(?<!\w)" + re.escape(w) + r"(?!\w)", re.IGNORECASE) for w in found.exclude]
    seen: dict[str, StoredPaper] = {}
    for topic in found.topics:
        try:
            query = listings.search_query(topic.query, categories=topic.categories, limit=FEED_PER_TOPIC)
        except InvalidInput:
            continue
        for hit in listings.search(conn, searcher, query).hits:
            seen.setdefault(hit.item.paper.arxiv_id, hit.item)
    items = [i for i in seen.values() if not _excluded(i, patterns)]
    items.sort(key=lambda i: (feeds.entry_updated(i), i.paper.arxiv_id), reverse=True)
    return items[:limit]


@router.get("/subscription/feed.atom")
def topics_feed(
    t: str = Token,
    conn: Connection = Depends(deps.conn),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
    key: bytes = Depends(secret_key),
    env: Environment = Depends(deps.templates),
    searcher: Searcher | None = Depends(deps.searcher),
) -> Response:
    found = subs.subscription_for_token(conn, key, "feed", t, now)
    items = topic_papers(conn, searcher, found)
    base = site.public_url.rstrip("/")
    names = ", ".join(f"“{tp.query}”" for tp in found.topics[:5]) + ("…" if len(found.topics) > 5 else "")
    body = env.get_template("feeds/listing.xml").render(
        site=site,
        base=base,
        title=f"Your topics · {site.name}",
        subtitle=f"New papers matching {names}"
        if found.topics
        else "No topics yet: add some in your preferences",
        page_url=base + "/papers",
        self_url=subs.feed_url(site.public_url, key, found, now),
        updated=max((feeds.entry_updated(i) for i in items), default=now),
        items=items,
        paper_url=lambda arxiv_id: base + paper_path(arxiv_id),
        featured_at=listings.featured_at,
        entry_updated=feeds.entry_updated,
    )
    return Response(body, media_type=feeds.ATOM, headers={"Cache-Control": "private, max-age=300"})


# --- JSON twin ----------------------------------------------------------------------------------------------


class TopicModel(BaseModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    query: str = Field(description="The search as typed, e.g. `speculative decoding -medical`.")
    source: str = Field(
        description="`topic` (typed in the preferences) or `search` (saved from a search page)."
    )
    categories: list[str] = Field(description="A saved search's category filter (empty: any category).")
    created_at: schemas.HfDateTime = Field(alias="createdAt")


class SubscriptionModel(BaseModel):
    """Your digest subscription: what it sends, when, and about what."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    email: str = Field(description="The address digests go to (the one this link was mailed to).")
    status: str = Field(description="`pending` (not confirmed yet), `active` or `unsubscribed`.")
    cadence: str = Field(description="`daily` (weekdays) or `weekly`.")
    send_hour: int = Field(alias="sendHour", description="Local hour the digest is sent, 0-23.")
    weekly_day: int = Field(alias="weeklyDay", description="Weekly digests: the day, 0 = Monday.")
    timezone: str = Field(description="IANA time zone of `sendHour`.")
    max_papers: int = Field(alias="maxPapers", description="At most this many papers per digest (1-50).")
    categories: list[str] = Field(description="arXiv categories or archives followed.")
    authors: list[str] = Field(description="Authors followed.")
    exclude: list[str] = Field(description="Words or phrases: papers with them are left out.")
    topics: list[TopicModel]
    created_at: schemas.HfDateTime = Field(alias="createdAt")
    confirmed_at: schemas.HfDateTime | None = Field(alias="confirmedAt")
    unsubscribed_at: schemas.HfDateTime | None = Field(alias="unsubscribedAt")


def subscription_model(found: Subscription) -> SubscriptionModel:
    return SubscriptionModel(
        email=found.email,
        status=found.status,
        cadence=found.cadence,
        sendHour=found.send_hour,
        weeklyDay=found.weekly_day,
        timezone=found.timezone,
        maxPapers=found.max_papers,
        categories=list(found.categories),
        authors=list(found.authors),
        exclude=list(found.exclude),
        topics=[
            TopicModel(
                query=tp.query, source=tp.source, categories=list(tp.categories), createdAt=tp.created_at
            )
            for tp in found.topics
        ],
        createdAt=found.created_at,
        confirmedAt=found.confirmed_at,
        unsubscribedAt=found.unsubscribed_at,
    )


@api_router.get(
    "/subscription",
    response_model=SubscriptionModel,
    responses={400: {"description": "The link is damaged, expired, for something else, or was replaced."}},
)
def api_subscription(
    t: str = Token,
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    key: bytes = Depends(secret_key),
) -> SubscriptionModel:
    """The preferences page's JSON twin: the subscription that the manage link `t` (from a digest mail or
    the preferences page) names."""
    return subscription_model(subs.subscription_for_token(conn, key, "manage", t, now))
