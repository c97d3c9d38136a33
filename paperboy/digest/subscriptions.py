"""Subscribing to digests: double opt-in, preferences, saved searches, unsubscribing, and the signed links
that every mail carries.

- `subscribe` records a pending address (or finds the existing one) and puts one mail in the outbox in the
  same transaction: a confirmation, or for an address that is subscribed already a link to its preferences.
  Its link is a random single-use secret (only its SHA-256 is kept) that expires after CONFIRM_DAYS; nothing
  but such mails goes to an unconfirmed address. At most MAX_CONFIRMATIONS of them per address per
  CONFIRM_WINDOW, whatever they say. It does the same work and the web answers the same page whoever the
  address is, so subscribing tells nobody who is subscribed. What confirming adds (a saved search, linking
  the member's account) travels in the confirmation's payload, so nobody adds anything to someone else's
  address without their click.
- `confirm` applies a confirmation once; `unsubscribe` stops mail at once and cancels what is queued;
  `resubscribe` undoes it from the same one-click link (which can do nothing else).
- `manage_url`, `unsubscribe_url`, `feed_url` sign links with paperboy.signing; `subscription_for_token`
  checks one (and that the subscription's token_version still matches: "rotate my links" bumps it).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from jinja2 import Environment
from sqlalchemy.engine import Connection

from paperboy import accounts, signing
from paperboy.categories import check_categories
from paperboy.errors import FieldInvalid, InvalidInput
from paperboy.mailer import ascii_host
from paperboy.models import Subscription, User
from paperboy.store import outbox as outbox_store
from paperboy.store import subscriptions as store

CONFIRM_DAYS = 7
MAX_CONFIRMATIONS = 3  # mails answering the subscribe form, per address ...
CONFIRM_WINDOW = timedelta(hours=6)  # ... per this long
LINK_DAYS = 90  # manage links, from when the mail is made; unsubscribe and feed links never expire
MAX_TOPICS = 20
MAX_TOPIC_CHARS = 200
MAX_CATEGORIES = 20
MAX_AUTHORS = 50
MAX_EXCLUDE = 50
MAX_ENTRY_CHARS = 100  # one author name or one excluded word or phrase
MAX_CONFIRM_TOKEN = 200
MAX_PAPERS = 50
CADENCES = ("daily", "weekly")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# An arXiv archive (`cs`, `hep-th`) or category (`cs.CL`, `math.AG`), as the search page's filter takes them.


@dataclass(frozen=True)
class Mailing:
    """What a confirmation mail needs to know about the hub."""

    site_name: str
    public_url: str
    templates: Environment


@dataclass(frozen=True)
class Subscribed:
    """What `subscribe` queued. `mail`: "subscribe" (confirm to start getting the digest), "topic" (confirm
    adding a saved search to an active digest), "account" (confirm that the member's account manages it),
    "already" (subscribed already: the link leads to the preferences), or None (nothing queued: the address
    had its MAX_CONFIRMATIONS mails in CONFIRM_WINDOW, or is suppressed). Only the address's owner learns
    which, from the mail; the web page never says."""

    mail: str | None
    email: str
    topic: str | None = None


@dataclass(frozen=True)
class Confirmed:
    subscription: Subscription
    added_topic: str | None = None
    topic_skipped: bool = False  # the topic list was full


@dataclass(frozen=True)
class Pending:
    """A confirmation link that is still good, and what it would do (shown on the page with the button)."""

    subscription: Subscription
    topic: str | None
    categories: tuple[str, ...]
    links_account: bool
    asks: str = "subscribe"  # subscribe | topic | account | already (nothing changes: on to the preferences)


class PreferencesInvalid(FieldInvalid):
    """One or more preference fields are wrong; `errors` maps each field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        field, message = next(iter(errors.items()))
        super().__init__(field, message)
        self.errors = errors


# --- cleaning input -----------------------------------------------------------------------------------------


def clean_topic(value: str, field: str = "topic") -> str:
    text = " ".join(value.split())
    if not text:
        raise FieldInvalid(field, "A topic needs at least one word.")
    if len(text) > MAX_TOPIC_CHARS:
        raise FieldInvalid(field, f"A topic has at most {MAX_TOPIC_CHARS} characters.")
    return text


def clean_categories(values: Sequence[str], field: str = "categories") -> tuple[str, ...]:
    """arXiv categories or archives, comma- or space-separated, deduplicated: `cs.CL, cs.LG`, `hep-th`."""
    found: dict[str, None] = {}
    for value in values:
        for part in value.replace(",", " ").split():
            found.setdefault(part, None)
    if len(found) > MAX_CATEGORIES:
        raise FieldInvalid(field, f"At most {MAX_CATEGORIES} categories (got {len(found)}).")
    try:
        return check_categories(found)
    except ValueError as exc:
        raise FieldInvalid(field, f"{exc}.") from None


def _lines(value: str) -> list[str]:
    """Entries typed one per line (commas also separate entries, except in topics)."""
    return [" ".join(line.split()) for line in value.splitlines() if line.strip()]


def _dedupe(values: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for v in values:
        seen.setdefault(v.lower(), v)
    return tuple(seen.values())


def _int(value: str, field: str, low: int, high: int, what: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise FieldInvalid(field, f"{what} is a whole number from {low} to {high}.") from None
    if not low <= number <= high:
        raise FieldInvalid(field, f"{what} is a whole number from {low} to {high}.")
    return number


def check_timezone(value: str) -> str:
    name = value.strip()
    if not name:
        raise FieldInvalid("timezone", "Choose a time zone, such as Europe/Paris or UTC.")
    if len(name) > 64 or name not in _timezones():
        raise FieldInvalid("timezone", f"{name[:64]!r} is not a time zone name such as Europe/Paris or UTC.")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldInvalid("timezone", f"{name[:64]!r} is not a time zone this server knows.") from None
    return name


_ZONES: frozenset[str] | None = None


def _timezones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones()) | {"UTC"}
    return _ZONES


def timezone_names() -> list[str]:
    return sorted(_timezones())


@dataclass(frozen=True)
class Preferences:
    cadence: str
    send_hour: int
    weekly_day: int
    timezone: str
    max_papers: int
    topics: tuple[str, ...]
    categories: tuple[str, ...]
    authors: tuple[str, ...]
    exclude: tuple[str, ...]


def parse_preferences(form: Mapping[str, str]) -> Preferences:
    """Preferences from the form's fields (every one a string; lists one entry per line). Every wrong field
    is named in PreferencesInvalid.errors; nothing is partly accepted."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}

    def run(field: str, check: Any) -> None:
        try:
            values[field] = check()
        except FieldInvalid as exc:
            errors.setdefault(exc.field, str(exc))

    def cadence() -> str:
        value = form.get("cadence", "").strip()
        if value not in CADENCES:
            raise FieldInvalid("cadence", "Choose daily (weekdays) or weekly.")
        return value

    def topics() -> tuple[str, ...]:
        found = _dedupe([clean_topic(line, "topics") for line in _lines(form.get("topics", ""))])
        if len(found) > MAX_TOPICS:
            raise FieldInvalid("topics", f"At most {MAX_TOPICS} topics (got {len(found)}).")
        return found

    def entries(field: str, limit: int, what: str) -> tuple[str, ...]:
        raw = [part for line in _lines(form.get(field, "")) for part in line.split(",")]
        found = _dedupe([" ".join(p.split()) for p in raw if p.strip()])
        if len(found) > limit:
            raise FieldInvalid(field, f"At most {limit} {what} (got {len(found)}).")
        for entry in found:
            if len(entry) > MAX_ENTRY_CHARS:
                raise FieldInvalid(field, f"Each entry has at most {MAX_ENTRY_CHARS} characters.")
        return found

    run("cadence", cadence)
    run("send_hour", lambda: _int(form.get("send_hour", ""), "send_hour", 0, 23, "The hour"))
    run("weekly_day", lambda: _int(form.get("weekly_day", "0"), "weekly_day", 0, 6, "The weekday"))
    run("timezone", lambda: check_timezone(form.get("timezone", "")))
    run(
        "max_papers", lambda: _int(form.get("max_papers", ""), "max_papers", 1, MAX_PAPERS, "How many papers")
    )
    run("topics", topics)
    run("categories", lambda: clean_categories([form.get("categories", "")]))
    run("authors", lambda: entries("authors", MAX_AUTHORS, "authors"))
    run("exclude", lambda: entries("exclude", MAX_EXCLUDE, "words or topics to exclude"))
    if errors:
        raise PreferencesInvalid(errors)
    return Preferences(**values)


def save_preferences(conn: Connection, subscription: Subscription, prefs: Preferences, now: datetime) -> None:
    store.update_preferences(
        conn,
        subscription.id,
        cadence=prefs.cadence,
        send_hour=prefs.send_hour,
        weekly_day=prefs.weekly_day,
        timezone=prefs.timezone,
        max_papers=prefs.max_papers,
        categories=prefs.categories,
        authors=prefs.authors,
        exclude=prefs.exclude,
    )
    store.replace_topics(conn, subscription.id, prefs.topics, now)


# --- subscribing and confirming -----------------------------------------------------------------------------


def confirm_url(public_url: str, token: str) -> str:
    return public_url.rstrip("/") + "/subscribe/confirm?" + urlencode({"t": token})


def subscribe(
    conn: Connection,
    mailing: Mailing,
    *,
    email: str,
    now: datetime,
    topic: str | None = None,
    categories: Sequence[str] = (),
    user: User | None = None,
) -> Subscribed:
    """Answer a subscribe request for `email` with one mail to it, whoever the address is.

    The mail carries a single-use link (see Subscribed.mail for what it says). Every address is treated
    alike: whatever its state the same statements run and a mail is rendered (only its words differ), and
    the caller answers the same page, so neither the answer nor its timing tells whether the address is new,
    pending, active, unsubscribed or suppressed. At most MAX_CONFIRMATIONS such mails go to one address per
    CONFIRM_WINDOW, whatever they say; past that, and for a suppressed address, nothing is queued (and for a
    suppressed address nothing is stored). FieldInvalid only for a bad address, topic or category (what was
    typed, never what is stored).
    """
    address = accounts.clean_email(email)
    wanted = clean_topic(topic) if topic is not None and topic.strip() else None
    cats = clean_categories(categories, "category") if wanted is not None else ()
    suppressed = outbox_store.is_suppressed(conn, address)
    # the address's row, locked until the transaction ends so that two requests at once count one after the
    # other (made pending when it is new: the unique address decides, in one statement)
    subscription = store.claim_subscription(conn, email=address, now=now, create=not suppressed)
    links_account = user is not None and user.email.lower() == address
    mail = _what_to_mail(subscription, wanted, user.id if links_account and user is not None else None)
    payload: dict[str, Any] = {}
    if wanted is not None:
        payload.update(topic=wanted, categories=list(cats))
    if links_account and user is not None:
        payload["user_id"] = user.id
    sent = store.confirmations_sent_since(conn, subscription.id, now - CONFIRM_WINDOW) if subscription else []
    secret = secrets.token_urlsafe(32)
    expires = now + timedelta(days=CONFIRM_DAYS)
    text, html, subject = _render_form_mail(
        mailing,
        mail,
        email=address,
        link=confirm_url(mailing.public_url, secret),
        expires=expires,
        topic=wanted,
        categories=cats,
        username=user.username if links_account and user is not None else None,
    )
    if subscription is None or suppressed or len(sent) >= MAX_CONFIRMATIONS:
        return Subscribed(None, address, wanted)
    confirmation_id = store.insert_confirmation(
        conn,
        subscription_id=subscription.id,
        token_hash=accounts.digest(secret),
        now=now,
        expires_at=expires,
        payload=payload,
    )
    host = ascii_host(urlsplit(mailing.public_url).hostname or "localhost")
    outbox_store.enqueue(
        conn,
        kind="confirm",
        to_addr=address,
        subject=subject,
        text_body=text,
        html_body=html,
        headers={"Auto-Submitted": "auto-generated"},
        message_id=f"<confirm.{confirmation_id}.{secrets.token_hex(8)}@{host}>",
        now=now,
        subscription_id=subscription.id,
    )
    return Subscribed(mail, address, wanted)


def _what_to_mail(subscription: Subscription | None, topic: str | None, member_id: int | None) -> str:
    """What the mail answering a subscribe request asks (see Subscribed.mail), and so its link's page."""
    if subscription is None or subscription.status != "active":
        return "subscribe"
    if topic is not None and all(t.query != topic for t in subscription.topics):
        return "topic"
    if member_id is not None and subscription.user_id != member_id:
        return "account"
    return "already"


def _render_form_mail(
    mailing: Mailing,
    mail: str,
    *,
    email: str,
    link: str,
    expires: datetime,
    topic: str | None,
    categories: Sequence[str],
    username: str | None,
) -> tuple[str, str, str]:
    """The text, the HTML and the subject of the mail answering a subscribe request."""
    if mail == "topic" and topic is not None:
        subject = f"Confirm: email me new papers about “{_short(topic)}” · {mailing.site_name}"
    elif mail == "account":
        subject = f"Confirm: manage your digest from your account · {mailing.site_name}"
    elif mail == "already":
        subject = f"You are subscribed to {mailing.site_name} already: your preferences"
    else:
        subject = f"Confirm your subscription to {mailing.site_name}"
    context = {
        "subject": subject,
        "mail": mail,
        "site": {"name": mailing.site_name},
        "site_url": mailing.public_url.rstrip("/"),
        "email": email,
        "link": link,
        "expires": expires,
        "days": CONFIRM_DAYS,
        "topic": topic,
        "categories": list(categories),
        "username": username,
        "max_per_window": MAX_CONFIRMATIONS,
        "window_hours": int(CONFIRM_WINDOW.total_seconds() // 3600),
    }
    text = mailing.templates.get_template("email/confirm.txt").render(**context)
    html = mailing.templates.get_template("email/confirm.html").render(**context)
    return text, html, subject


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _confirmation(conn: Connection, token: str, now: datetime) -> store.Confirmation:
    if not token or len(token) > MAX_CONFIRM_TOKEN:
        raise InvalidInput("This confirmation link is incomplete. Copy the whole link from the mail.")
    found = store.find_confirmation(conn, accounts.digest(token.strip()))
    if found is None:
        raise InvalidInput("This confirmation link is not one of ours, or it was cut short.")
    if found.used_at is not None:
        raise InvalidInput("This confirmation link was already used. Each link works once.")
    if now >= found.expires_at:
        raise InvalidInput(
            f"This confirmation link has expired (links last {CONFIRM_DAYS} days). Subscribe again."
        )
    return found


def _payload_topic(payload: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    topic = payload.get("topic")
    cats = payload.get("categories")
    return (
        topic if isinstance(topic, str) else None,
        tuple(str(c) for c in cats) if isinstance(cats, list) else (),
    )


def pending_confirmation(conn: Connection, token: str, now: datetime) -> Pending:
    """What the link would confirm, changing nothing; InvalidInput when it is bad, used or expired."""
    found = _confirmation(conn, token, now)
    subscription = store.get(conn, found.subscription_id)
    if subscription is None:  # pragma: no cover - confirmations go with their subscription (cascade)
        raise InvalidInput("This confirmation link is for a subscription that no longer exists.")
    topic, cats = _payload_topic(found.payload)
    member_id = found.payload.get("user_id")
    member_id = member_id if isinstance(member_id, int) else None
    asks = _what_to_mail(subscription, topic, member_id)
    return Pending(subscription, topic, cats, member_id is not None, asks)


def confirm(conn: Connection, token: str, now: datetime) -> Confirmed:
    """Use a confirmation link: the subscription becomes active and gets what the link carried. Once only."""
    found = _confirmation(conn, token, now)
    if not store.use_confirmation(conn, found.id, now):
        raise InvalidInput("This confirmation link was already used. Each link works once.")
    subscription = store.get(conn, found.subscription_id)
    if subscription is None:  # pragma: no cover - confirmations go with their subscription (cascade)
        raise InvalidInput("This confirmation link is for a subscription that no longer exists.")
    if outbox_store.is_suppressed(conn, subscription.email):
        raise InvalidInput("This address asked not to get mail from this hub, so we send it nothing.")
    if subscription.status != "active":
        store.set_status(conn, subscription.id, "active", now)
    topic, cats = _payload_topic(found.payload)
    added, skipped = None, False
    if topic is not None:
        if len(subscription.topics) >= MAX_TOPICS and all(t.query != topic for t in subscription.topics):
            skipped = True
        elif store.add_topic(conn, subscription.id, topic, source="search", categories=cats, now=now):
            added = topic
    user_id = found.payload.get("user_id")
    if isinstance(user_id, int):
        store.link_user(conn, subscription.id, user_id)
    fresh = store.get(conn, subscription.id)
    assert fresh is not None  # noqa: S101 - narrows a row read back in this transaction (under -O: the same 500)
    return Confirmed(fresh, added, skipped)


def unsubscribe(conn: Connection, subscription: Subscription, now: datetime) -> Subscription:
    """Stop all mail to this subscription at once: status unsubscribed, queued mail cancelled."""
    if subscription.status != "unsubscribed":
        store.set_status(conn, subscription.id, "unsubscribed", now)
    store.cancel_pending_outbox(conn, subscription.id)
    fresh = store.get(conn, subscription.id)
    assert fresh is not None  # noqa: S101 - narrows a row read back in this transaction (under -O: the same 500)
    return fresh


def resume(conn: Connection, subscription: Subscription, now: datetime) -> Subscription:
    """Start digests again for an address that unsubscribed (the manage link that asks was mailed to it)."""
    if outbox_store.is_suppressed(conn, subscription.email):
        raise InvalidInput("This address asked not to get mail from this hub, so we send it nothing.")
    if subscription.status == "unsubscribed":
        store.set_status(conn, subscription.id, "active", now)
    fresh = store.get(conn, subscription.id)
    assert fresh is not None  # noqa: S101 - narrows a row read back in this transaction (under -O: the same 500)
    return fresh


def resubscribe(conn: Connection, subscription: Subscription, now: datetime) -> Subscription:
    """Undo an unsubscribe from the one-click link that did it: a confirmed address that left is active
    again. Nothing else changes (a pending or active subscription stays as it is). InvalidInput when the
    address is suppressed."""
    if outbox_store.is_suppressed(conn, subscription.email):
        raise InvalidInput("This address asked not to get mail from this hub, so we send it nothing.")
    if subscription.status == "unsubscribed" and subscription.confirmed_at is not None:
        store.set_status(conn, subscription.id, "active", now)
    fresh = store.get(conn, subscription.id)
    assert fresh is not None  # noqa: S101 - narrows a row read back in this transaction (under -O: the same 500)
    return fresh


def member_subscription(conn: Connection, user: User) -> Subscription | None:
    """The subscription a member's account manages (linked to the account when they confirmed from it)."""
    return store.get_by_user(conn, user.id)


# --- signed links -------------------------------------------------------------------------------------------


def _link(
    site_url: str, path: str, key: bytes, purpose: str, subscription: Subscription, expires: datetime | None
) -> str:
    token = signing.sign(key, purpose, subscription.id, subscription.token_version, expires)
    return site_url.rstrip("/") + path + "?" + urlencode({"t": token})


def unsubscribe_url(site_url: str, key: bytes, subscription: Subscription) -> str:
    """The one-click unsubscribe link (RFC 8058). It never expires: a mail read (or replayed) years later
    still unsubscribes. Changing PAPERBOY_SECRET_KEY revokes it, and so does the subscriber's own "rotate my
    links" (the links in their newer mails work)."""
    return _link(site_url, "/unsubscribe", key, "unsubscribe", subscription, None)


def manage_url(site_url: str, key: bytes, subscription: Subscription, now: datetime) -> str:
    """The preferences page, good for LINK_DAYS."""
    return _link(site_url, "/subscription", key, "manage", subscription, now + timedelta(days=LINK_DAYS))


def feed_url(site_url: str, key: bytes, subscription: Subscription, now: datetime) -> str:
    """The Atom feed of the subscription's topics; it does not expire (rotating the links revokes it)."""
    return _link(site_url, "/subscription/feed.atom", key, "feed", subscription, None)


def subscription_for_token(
    conn: Connection, key: bytes, purpose: str, token: str, now: datetime
) -> Subscription:
    """The subscription a signed link names; BadToken (a 400) when the link is bad, expired, for another
    purpose, or made before the subscription's links were rotated."""
    # unsubscribe links never expire, those made with an expiry before that rule included
    claims = signing.verify(key, purpose, token, None if purpose == "unsubscribe" else now)
    found = store.get(conn, claims.subscription_id)
    if found is None or found.token_version != claims.version:
        raise signing.BadToken("this link was replaced by a newer one; use the link in your latest mail")
    return found


def rotate_links(conn: Connection, subscription: Subscription) -> Subscription:
    """Make every link sent so far (manage, unsubscribe, feed) stop working."""
    store.bump_token_version(conn, subscription.id)
    fresh = store.get(conn, subscription.id)
    assert fresh is not None  # noqa: S101 - narrows a row read back in this transaction (under -O: the same 500)
    return fresh
