"""The outbox sender: take a row, check it may still go, send it, mark it sent. docs/digests.md, "Sending".

Every step is its own short transaction and no transaction is open while SMTP is spoken, so a crash at any
point loses nothing: a row claimed but not marked sent is claimed again after the lease and sent again
(with the same Message-ID). Only the messages in flight at the crash can arrive twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from paperboy.errors import InvalidInput
from paperboy.mailer import (
    Mailer,
    PermanentFailure,
    ServerUnavailable,
    TemporaryFailure,
    new_message,
    set_ascii_header,
)
from paperboy.store import outbox
from paperboy.store.outbox import OutboxMessage

MAX_ATTEMPTS = 10  # temporary failures before a row is given up as failed
BACKOFF_BASE = timedelta(minutes=1)  # after the n-th temporary failure: 1 min · 2^(n-1) ...
BACKOFF_CAP = timedelta(hours=6)  # ... but never more than this
# headers build_message sets itself; a row's extra headers may not replace them
_OWN_HEADERS = frozenset(
    h.lower()
    for h in (
        "From",
        "To",
        "Cc",
        "Bcc",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    )
)


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0  # temporary failures, to be tried again later
    failed: int = 0  # given up: refused for good, or too many temporary failures
    cancelled: int = 0  # not sent: unsubscribed, suppressed, or the subscription is gone
    stopped: str | None = None  # why the run ended early (the server unreachable); None: it ran out of mail


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th temporary failure (1-based): 1, 2, 4, ... minutes, at most 6 hours."""
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)


def build_message(row: OutboxMessage, sender: str) -> EmailMessage:
    """The mail for an outbox row: From `sender`; To, Subject, Message-ID and extra headers as enqueued;
    Date when it was enqueued (a re-send is the same message); text, plus HTML as an alternative if any.

    From, To and Subject are encoded by Python (RFC 2047 for a name or subject that is not ASCII); the
    Message-ID and the extra headers (List-Unsubscribe, List-Id, ...) go on the wire exactly as enqueued:
    plain ASCII, folded at commas when long. A row whose extra header is not plain ASCII is refused
    (InvalidInput), never sent encoded."""
    msg = new_message()
    msg["From"] = sender
    msg["To"] = row.to_addr
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(row.created_at)
    set_ascii_header(msg, "Message-ID", row.message_id)
    for name, value in row.headers.items():
        if name.lower() in _OWN_HEADERS:
            raise InvalidInput(f"outbox row {row.id}: the extra header {name!r} would replace our own")
        set_ascii_header(msg, name, value)
    msg.set_content(row.text_body, charset="utf-8")
    if row.html_body is not None:
        msg.add_alternative(row.html_body, subtype="html", charset="utf-8")
    return msg


def _why_not(engine: Engine, row: OutboxMessage) -> str | None:
    """Why this row must not be sent now (checked just before sending), or None: it may go."""
    with engine.connect() as conn:
        if outbox.is_suppressed(conn, row.to_addr):
            return "the address is suppressed"
        if row.subscription_id is None:
            return None
        status = outbox.subscription_status(conn, row.subscription_id)
    if status is None:
        return "the subscription no longer exists"
    # A mail answering the subscribe form goes whatever the status: an address that left asks to come back
    # (unsubscribing cancels the ones queued before it).
    allowed = ("active",) if row.kind == "digest" else ("pending", "active", "unsubscribed")
    if status not in allowed:
        return f"the subscription is {status}"
    return None


def _suppress(engine: Engine, addr: str, reason: str, now: datetime) -> None:
    try:
        with engine.begin() as conn:
            outbox.suppress(conn, addr, reason, now)
    except IntegrityError:  # another sender suppressed it in the same instant
        pass


def send_pending(
    engine: Engine,
    mailer: Mailer,
    now: Callable[[], datetime],
    *,
    sender: str,
    rate: float,
    limit: int | None = None,
    lease: timedelta = timedelta(minutes=10),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> SendReport:
    """Send what the outbox has due, one row at a time, at most `rate` mails a second; a report of what
    happened. `limit`: at most this many rows handled (sent, retried, failed or cancelled).

    A row left `sending` for longer than `lease` belongs to a sender that died: it is taken and sent again.
    When the server cannot be reached the run stops and leaves the rest pending. `sleep` and `clock` pace the
    sending (tests pass fakes).
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    interval = 1.0 / rate
    report = SendReport()
    next_slot = clock()
    handled = 0
    while limit is None or handled < limit:
        with engine.begin() as conn:
            row = outbox.claim_next(conn, now(), lease)
        if row is None:
            break
        handled += 1
        try:
            msg = build_message(row, sender)
        except (InvalidInput, ValueError) as exc:  # a malformed row: it will never go
            with engine.begin() as conn:
                outbox.mark_failed(conn, row.id, f"cannot build the message: {exc}")
            report.failed += 1
            continue
        delay = next_slot - clock()
        if delay > 0:
            sleep(delay)
        reason = _why_not(engine, row)
        if reason is not None:
            with engine.begin() as conn:
                outbox.mark_cancelled(conn, row.id, reason)
            report.cancelled += 1
            continue
        next_slot = max(next_slot, clock()) + interval
        try:
            mailer.send(msg)
        except ServerUnavailable as exc:
            with engine.begin() as conn:
                outbox.release(conn, row.id, error=str(exc))
            report.stopped = str(exc)
            break
        except TemporaryFailure as exc:
            attempts = row.attempts + 1
            with engine.begin() as conn:
                if attempts >= MAX_ATTEMPTS:
                    outbox.mark_failed(conn, row.id, f"gave up after {attempts} attempts: {exc}")
                    report.failed += 1
                else:
                    outbox.mark_retry(conn, row.id, next_attempt_at=now() + backoff(attempts), error=str(exc))
                    report.retried += 1
        except PermanentFailure as exc:
            if exc.recipient:  # first: a crash right after leaves the row to be cancelled, not re-sent
                _suppress(engine, row.to_addr, f"hard bounce: {exc.code} {exc.reply}", now())
            with engine.begin() as conn:
                outbox.mark_failed(conn, row.id, str(exc))
            report.failed += 1
        else:
            with engine.begin() as conn:
                outbox.mark_sent(conn, row.id, now())
            report.sent += 1
    return report
