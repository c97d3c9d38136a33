"""Sending, exactly once: the outbox sender against a real SMTP server (aiosmtpd, in this process) and a
real database. Headers arrive as enqueued; STARTTLS and implicit TLS; a server that goes away mid-run; hard
bounces suppress; 4xx retries with backoff; unsubscribes are re-checked just before sending; the rate holds;
and a sender killed with SIGKILL again and again still delivers every mail, twice at most when in flight."""

from __future__ import annotations

import email
import email.policy
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy.engine import Connection, Engine
from test_mail_wire import assert_plain_headers, raw_field, unfolded

from paperboy.db.schema import outbox as outbox_table
from paperboy.db.schema import subscriptions
from paperboy.digest.send import MAX_ATTEMPTS, backoff, build_message, send_pending
from paperboy.errors import InvalidInput
from paperboy.mailer import (
    PermanentFailure,
    ServerUnavailable,
    SmtpMailer,
    SmtpUrl,
    TemporaryFailure,
    parse_smtp_url,
)
from paperboy.store import outbox

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
SENDER = "Lab Papers <papers@hub.example>"


# --- a real SMTP server -------------------------------------------------------------------------------------


@dataclass
class Received:
    rcpt: list[str]
    content: bytes
    peer: Any

    @property
    def msg(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Handler:
    """Stores every message; answers `refuse[addr]` to RCPT TO or `refuse_data[addr]` to DATA; `defer[addr]`
    times 451 to RCPT TO, then accepts."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    refuse_data: dict[str, str] = field(default_factory=dict)
    defer: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        if self.defer.get(address, 0) > 0:
            self.defer[address] -= 1
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if envelope.rcpt_tos[0] in self.refuse_data:
            return self.refuse_data[envelope.rcpt_tos[0]]
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        self.received.append(Received(list(envelope.rcpt_tos), envelope.content, session.peer))
        return "250 Message accepted"

    def to(self, addr: str) -> list[Received]:
        return [r for r in self.received if addr in r.rcpt]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """An aiosmtpd server on 127.0.0.1 that can be stopped (connections refused) and started again."""

    def __init__(self, handler: Handler, **smtp_kwargs: Any) -> None:
        self.handler = handler
        self.port = _free_port()
        self.kwargs = smtp_kwargs
        self.controller: Controller | None = None

    def start(self) -> None:
        assert self.controller is None
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **self.kwargs)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server(Handler())
    s.start()
    yield s
    s.stop()


@pytest.fixture
def mailer(server: Server) -> Iterator[SmtpMailer]:
    with SmtpMailer(server.url, connections=1, timeout=10, local_hostname="sender.test") as m:
        yield m


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


def _client_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


# --- time and pace ------------------------------------------------------------------------------------------


class Clock:
    def __init__(self, t: datetime = T0) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t

    def advance(self, delta: timedelta) -> None:
        self.t += delta


class Pace:
    """A monotonic clock that moves only when slept on; `hook` runs on every sleep."""

    def __init__(self, hook: Any = None) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []
        self.hook = hook

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        if self.hook is not None:
            self.hook()


def _send(engine: Engine, mailer: Any, clock: Clock, pace: Pace | None = None, **kw: Any) -> Any:
    pace = pace or Pace()
    kw.setdefault("rate", 1000.0)
    return send_pending(engine, mailer, clock, sender=SENDER, sleep=pace.sleep, clock=pace.clock, **kw)


# --- the database -------------------------------------------------------------------------------------------


def _subscriber(conn: Connection, addr: str, status: str = "active") -> int:
    result = conn.execute(
        sa.insert(subscriptions).values(
            email=addr, status=status, categories=[], authors=[], exclude=[], created_at=T0
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def _digest(
    conn: Connection,
    addr: str,
    *,
    sub: int | None = None,
    n: int = 1,
    html: str | None = None,
    headers: dict[str, str] | None = None,
    kind: str = "digest",
    now: datetime = T0,
) -> int:
    if sub is None:
        found = conn.execute(sa.select(subscriptions.c.id).where(subscriptions.c.email == addr)).scalar()
        sub = found if found is not None else _subscriber(conn, addr)
    return outbox.enqueue(
        conn,
        kind=kind,
        to_addr=addr,
        subject=f"Your papers #{n}",
        text_body=f"Hello {addr}, here are today's papers.\n",
        html_body=html,
        headers=headers or {},
        message_id=f"<{kind}.{n}.{sub}@hub.example>",
        now=now,
        subscription_id=sub,
    )


def _row(engine: Engine, row_id: int) -> outbox.OutboxMessage:
    with engine.connect() as conn:
        row = outbox.get(conn, row_id)
    assert row is not None
    return row


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {k: v for k, v in outbox.counts(conn).items() if v}


# --- the SMTP URL -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://localhost", SmtpUrl("localhost", 25, None, None, "opportunistic")),
        (
            "smtp://digest%40lab:p%40ss%20w%2Frd@mail.example:587",
            SmtpUrl("mail.example", 587, "digest@lab", "p@ss w/rd", "opportunistic"),
        ),
        ("smtp://u:p@mail.example:587?starttls=require", SmtpUrl("mail.example", 587, "u", "p", "starttls")),
        ("smtp://relay:2525?starttls=never", SmtpUrl("relay", 2525, None, None, "none")),
        ("SMTPS://u:p@Mail.Example", SmtpUrl("mail.example", 465, "u", "p", "implicit")),
        ("smtps://[::1]:4650", SmtpUrl("::1", 4650, None, None, "implicit")),
    ],
)
def test_smtp_urls_parse(url: str, expected: SmtpUrl) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://mail.example", "smtp:// or smtps://"),
        ("mail.example:25", "smtp:// or smtps://"),
        ("smtp://", "no host"),
        ("smtp://user:secret@mail.example:99999", "malformed"),
        ("smtp://user:secret@mail.example:port", "malformed"),
        ("smtp://mail.example:0", "port"),
        ("smtp://mail.example/inbox", "path"),
        ("smtp://mail.example?tls=yes", "unknown parameter"),
        ("smtp://mail.example?starttls=maybe", "auto, require or never"),
        ("smtps://mail.example?starttls=require", "smtps://"),
        ("smtp://:secret@mail.example", "no user"),
    ],
)
def test_bad_smtp_urls_say_what_is_wrong_without_the_password(url: str, complaint: str) -> None:
    with pytest.raises(InvalidInput, match=complaint) as caught:
        parse_smtp_url(url)
    assert "secret" not in str(caught.value)
    assert "secret" not in repr(parse_smtp_url("smtp://u:secret@h"))


# --- what arrives -------------------------------------------------------------------------------------------


def test_headers_message_id_and_both_parts_arrive_as_enqueued(
    sqlite_engine: Engine, server: Server, mailer: SmtpMailer
) -> None:
    unsubscribe = "https://hub.example/unsubscribe?t=t1.eyJzIjoxMiwidiI6MX0.4Vq0c2lnbmF0dXJlLW9mLTI0LWJ5dGVz"
    headers = {
        "List-Unsubscribe": f"<{unsubscribe}>, <mailto:papers@hub.example?subject=unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": "Lab papers digest <digest.hub.example>",
    }
    with sqlite_engine.begin() as conn:
        row_id = outbox.enqueue(
            conn,
            kind="digest",
            to_addr="ada@lab.example",
            subject="Łukasz et al.: 3 new papers on speculative decoding",
            text_body="Bonjour Ada — 3 papers.\n",
            html_body="<p>Bonjour Ada — <b>3</b> papers.</p>",
            headers=headers,
            message_id="<digest.12.34@hub.example>",
            now=T0,
            subscription_id=_subscriber(conn, "ada@lab.example"),
        )

    report = _send(sqlite_engine, mailer, Clock(T0 + timedelta(minutes=3)))

    assert (report.sent, report.failed, report.retried, report.cancelled) == (1, 0, 0, 0)
    [got] = server.handler.received
    assert got.rcpt == ["ada@lab.example"]
    # the headers as they are on the wire (a mail client does not undo what Python's parser would)
    raw = got.content
    assert_plain_headers(raw)
    assert raw_field(raw, "Message-ID") == b"Message-ID: <digest.12.34@hub.example>\r\n"
    assert raw_field(raw, "From") == f"From: {SENDER}\r\n".encode()
    assert raw_field(raw, "To") == b"To: ada@lab.example\r\n"
    assert raw_field(raw, "List-Unsubscribe") == (
        f"List-Unsubscribe: <{unsubscribe}>,\r\n <mailto:papers@hub.example?subject=unsubscribe>\r\n".encode()
    )
    assert raw_field(raw, "List-Unsubscribe-Post") == b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    assert raw_field(raw, "List-Id") == b"List-Id: Lab papers digest <digest.hub.example>\r\n"
    subject = unfolded(raw_field(raw, "Subject"))
    assert subject.startswith("=?utf-8?")  # RFC 2047, as a non-ASCII subject must be
    assert str(make_header(decode_header(subject))) == "Łukasz et al.: 3 new papers on speculative decoding"
    msg = got.msg
    assert msg["Date"].datetime == T0  # when it was enqueued: a re-send is the same message
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.iter_parts()
    assert (text.get_content_type(), text.get_content_charset()) == ("text/plain", "utf-8")
    assert text.get_content().splitlines() == ["Bonjour Ada — 3 papers."]
    assert (html.get_content_type(), html.get_content_charset()) == ("text/html", "utf-8")
    assert "<b>3</b>" in html.get_content()
    row = _row(sqlite_engine, row_id)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, T0 + timedelta(minutes=3))


def test_a_text_only_mail_is_a_single_utf8_part() -> None:
    row = outbox.OutboxMessage(
        id=1,
        kind="confirm",
        to_addr="zoë@lab.example",
        message_id="<confirm.1@hub.example>",
        subject="Confirm",
        text_body="Ünïcode\n",
        html_body=None,
        status="sending",
        attempts=0,
        next_attempt_at=T0,
        created_at=T0,
        headers={"Auto-Submitted": "auto-generated"},
    )
    msg = build_message(row, SENDER)
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg["Auto-Submitted"] == "auto-generated"
    with pytest.raises(InvalidInput, match="Message-ID"):
        build_message(
            outbox.OutboxMessage(**{**row.__dict__, "headers": {"Message-ID": "<other@x>"}}), SENDER
        )


def test_a_pooled_connection_is_reused_and_replaced_when_the_server_dropped_it(server: Server) -> None:
    def message(n: int) -> EmailMessage:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = SENDER, f"r{n}@lab.example", f"#{n}"
        msg.set_content("hi")
        return msg

    with SmtpMailer(server.url, connections=2, timeout=10) as m:
        for n in range(4):
            m.send(message(n))
        assert len({r.peer for r in server.handler.received}) == 1
        server.stop()  # the idle connection is dropped; the next send notices (NOOP) and reconnects
        server.start()
        m.send(message(4))
        assert len({r.peer for r in server.handler.received}) == 2

        threads = [threading.Thread(target=lambda n=n: m.send(message(n))) for n in range(5, 13)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(r.rcpt[0] for r in server.handler.received) == sorted(
        f"r{n}@lab.example" for n in range(13)
    )
    assert len({r.peer for r in server.handler.received}) <= 4  # never more than 2 at a time


# --- TLS ----------------------------------------------------------------------------------------------------


def _login_ok(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    good = isinstance(data, LoginPassword) and (data.login, data.password) == (b"digest@lab", b"p@ss w/rd")
    return AuthResult(success=good, handled=False)


def test_starttls_with_a_login_and_a_verified_certificate(sqlite_engine: Engine, ca: trustme.CA) -> None:
    server = Server(
        Handler(),
        tls_context=_server_tls(ca),
        require_starttls=True,
        authenticator=_login_ok,
        auth_required=True,
        auth_require_tls=True,
    )
    server.start()
    try:
        with sqlite_engine.begin() as conn:
            _digest(conn, "ada@lab.example")
        url = f"smtp://digest%40lab:p%40ss%20w%2Frd@127.0.0.1:{server.port}?starttls=require"

        # the default context does not trust the test CA: nothing is sent, the row stays pending
        with SmtpMailer(url, timeout=10) as untrusting:
            report = _send(sqlite_engine, untrusting, Clock())
        assert report.sent == 0 and report.stopped is not None and "CERTIFICATE" in report.stopped.upper()
        assert _counts(sqlite_engine) == {"pending": 1}

        with SmtpMailer(url, timeout=10, ssl_context=_client_tls(ca)) as trusting:
            report = _send(sqlite_engine, trusting, Clock())
        assert report.sent == 1
        assert [r.rcpt for r in server.handler.received] == [["ada@lab.example"]]
    finally:
        server.stop()


def test_implicit_tls(sqlite_engine: Engine, ca: trustme.CA) -> None:
    server = Server(Handler(), ssl_context=_server_tls(ca))
    server.start()
    try:
        with sqlite_engine.begin() as conn:
            _digest(conn, "ada@lab.example", html="<p>hi</p>")
        with SmtpMailer(f"smtps://127.0.0.1:{server.port}", timeout=10, ssl_context=_client_tls(ca)) as m:
            assert _send(sqlite_engine, m, Clock()).sent == 1
        assert server.handler.received[0].msg["Message-ID"] == "<digest.1.1@hub.example>"
    finally:
        server.stop()


def test_a_required_starttls_the_server_does_not_offer_stops_the_run(server: Server) -> None:
    with SmtpMailer(f"{server.url}?starttls=require", timeout=10) as m:
        msg = EmailMessage()
        msg["From"], msg["To"] = SENDER, "ada@lab.example"
        msg.set_content("hi")
        with pytest.raises(ServerUnavailable, match="STARTTLS"):
            m.send(msg)
    assert server.handler.received == []


# --- failures -----------------------------------------------------------------------------------------------


def test_a_server_refusing_connections_mid_run_loses_nothing_and_sends_nothing_twice(
    sqlite_engine: Engine, server: Server, mailer: SmtpMailer
) -> None:
    addrs = [f"reader{n}@lab.example" for n in range(6)]
    with sqlite_engine.begin() as conn:
        for addr in addrs:
            _digest(conn, addr)

    def stop_after_three() -> None:
        if len(server.handler.received) >= 3:
            server.stop()

    report = _send(sqlite_engine, mailer, Clock(), Pace(stop_after_three))

    assert report.sent == 3 and report.stopped is not None and "refused" in report.stopped.lower()
    assert _counts(sqlite_engine) == {"sent": 3, "pending": 3}  # nothing left `sending`, nothing marked sent
    with sqlite_engine.connect() as conn:
        pending = conn.execute(sa.select(outbox_table).where(outbox_table.c.status == "pending")).all()
    assert all(r.attempts == 0 and r.next_attempt_at == T0 for r in pending)  # due again at once

    server.start()
    report = _send(sqlite_engine, mailer, Clock())
    assert (report.sent, report.stopped) == (3, None)
    assert _counts(sqlite_engine) == {"sent": 6}
    assert sorted(r.rcpt[0] for r in server.handler.received) == sorted(addrs)
    assert len({r.msg["Message-ID"] for r in server.handler.received}) == 6


@pytest.mark.parametrize("phase", ["RCPT", "DATA"])
def test_a_hard_bounce_fails_the_row_suppresses_the_address_and_the_rest_go_on(
    sqlite_engine: Engine, server: Server, mailer: SmtpMailer, phase: str
) -> None:
    reply = "550 5.1.1 <carol@lab.example>: Recipient address rejected: User unknown"
    if phase == "RCPT":
        server.handler.refuse["carol@lab.example"] = reply
    else:
        server.handler.refuse_data["carol@lab.example"] = reply
    with sqlite_engine.begin() as conn:
        ids = {a: _digest(conn, f"{a}@lab.example") for a in ("alice", "carol", "dave")}

    report = _send(sqlite_engine, mailer, Clock())

    assert (report.sent, report.failed) == (2, 1)
    carol = _row(sqlite_engine, ids["carol"])
    assert carol.status == "failed" and "550" in (carol.last_error or "")
    with sqlite_engine.connect() as conn:
        assert outbox.is_suppressed(conn, "Carol@Lab.example")
        reason = conn.execute(sa.text("select reason from suppressions")).scalar_one()
    assert "550" in reason and "User unknown" in reason
    assert sorted(r.rcpt[0] for r in server.handler.received) == ["alice@lab.example", "dave@lab.example"]

    # later mail to that address is cancelled, never sent
    server.handler.refuse.clear()
    server.handler.refuse_data.clear()
    with sqlite_engine.begin() as conn:
        later = _digest(conn, "carol@lab.example", n=2)
    report = _send(sqlite_engine, mailer, Clock(T0 + timedelta(days=1)))
    assert (report.sent, report.cancelled) == (0, 1)
    row = _row(sqlite_engine, later)
    assert row.status == "cancelled" and row.last_error == "the address is suppressed"
    assert server.handler.to("carol@lab.example") == []


def test_a_451_is_retried_with_growing_backoff_and_delivered_once_later(
    sqlite_engine: Engine, server: Server, mailer: SmtpMailer
) -> None:
    server.handler.defer["bob@lab.example"] = 2
    with sqlite_engine.begin() as conn:
        bob = _digest(conn, "bob@lab.example")
        _digest(conn, "eve@lab.example")
    clock = Clock()

    report = _send(sqlite_engine, mailer, clock)
    assert (report.sent, report.retried) == (1, 1)
    row = _row(sqlite_engine, bob)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, T0 + timedelta(minutes=1))
    assert "451" in (row.last_error or "")

    assert _send(sqlite_engine, mailer, clock).retried == 0  # not due yet: nothing happens
    assert _row(sqlite_engine, bob).attempts == 1

    clock.advance(timedelta(minutes=1))
    assert _send(sqlite_engine, mailer, clock).retried == 1
    row = _row(sqlite_engine, bob)
    assert (row.attempts, row.next_attempt_at) == (2, clock.t + timedelta(minutes=2))

    clock.advance(timedelta(minutes=2))
    assert _send(sqlite_engine, mailer, clock).sent == 1
    row = _row(sqlite_engine, bob)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
    assert len(server.handler.to("bob@lab.example")) == 1
    assert len(server.handler.to("eve@lab.example")) == 1


def test_temporary_failures_give_up_after_the_last_attempt_without_suppressing(
    sqlite_engine: Engine, server: Server, mailer: SmtpMailer
) -> None:
    assert [backoff(n).total_seconds() / 60 for n in (1, 2, 3, 9, 10, 30)] == [1, 2, 4, 256, 360, 360]
    server.handler.defer["bob@lab.example"] = 10**6
    with sqlite_engine.begin() as conn:
        bob = _digest(conn, "bob@lab.example")
    clock = Clock()
    for _ in range(MAX_ATTEMPTS - 1):
        assert _send(sqlite_engine, mailer, clock).retried == 1
        clock.advance(timedelta(hours=6))
    assert _send(sqlite_engine, mailer, clock).failed == 1
    row = _row(sqlite_engine, bob)
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
    assert "gave up" in (row.last_error or "")
    with sqlite_engine.connect() as conn:
        assert not outbox.is_suppressed(conn, "bob@lab.example")


def test_unsubscribing_after_planning_cancels_the_mail_even_once_claimed(
    sqlite_engine: Engine, server: Server, mailer: SmtpMailer
) -> None:
    with sqlite_engine.begin() as conn:
        gone = _digest(conn, "gone@lab.example")
        stays = _digest(conn, "stays@lab.example")
        late = _digest(conn, "late@lab.example")  # a mail went before it: the sender waits, then checks
        pending_sub = _subscriber(conn, "new@lab.example", status="pending")
        confirm = _digest(conn, "new@lab.example", sub=pending_sub, kind="confirm")
        early_digest = _digest(conn, "new@lab.example", sub=pending_sub, n=2)
        conn.execute(
            sa.update(subscriptions)
            .where(subscriptions.c.email == "gone@lab.example")
            .values(status="unsubscribed")
        )

    def unsubscribe_late() -> None:  # runs while `late` is claimed, just before it would be sent
        if _row(sqlite_engine, late).status == "sending":
            with sqlite_engine.begin() as conn:
                conn.execute(
                    sa.update(subscriptions)
                    .where(subscriptions.c.email == "late@lab.example")
                    .values(status="unsubscribed")
                )

    report = _send(sqlite_engine, mailer, Clock(), Pace(unsubscribe_late))

    assert (report.sent, report.cancelled) == (2, 3)
    for row_id in (gone, late, early_digest):
        assert _row(sqlite_engine, row_id).status == "cancelled"
    assert _row(sqlite_engine, gone).last_error == "the subscription is unsubscribed"
    assert _row(sqlite_engine, early_digest).last_error == "the subscription is pending"
    assert _row(sqlite_engine, stays).status == "sent"
    assert _row(sqlite_engine, confirm).status == "sent"  # a confirmation goes to a pending subscription
    assert sorted(r.rcpt[0] for r in server.handler.received) == ["new@lab.example", "stays@lab.example"]


def test_the_rate_spaces_the_mails(sqlite_engine: Engine, server: Server, mailer: SmtpMailer) -> None:
    with sqlite_engine.begin() as conn:
        for n in range(10):
            _digest(conn, f"r{n}@lab.example")
    pace = Pace()
    report = _send(sqlite_engine, mailer, Clock(), pace, rate=5.0)
    assert report.sent == 10
    assert len(pace.sleeps) == 9 and sum(pace.sleeps) == pytest.approx(1.8)  # 10 mails over ~2 s


def test_limit_bounds_one_run(sqlite_engine: Engine, server: Server, mailer: SmtpMailer) -> None:
    with sqlite_engine.begin() as conn:
        for n in range(5):
            _digest(conn, f"r{n}@lab.example")
    assert _send(sqlite_engine, mailer, Clock(), limit=2).sent == 2
    assert _counts(sqlite_engine) == {"sent": 2, "pending": 3}


def test_failures_are_classified_with_their_code(server: Server) -> None:
    server.handler.refuse["gone@lab.example"] = "550 5.1.1 no such user"
    server.handler.defer["grey@lab.example"] = 1
    msg = EmailMessage()
    msg["From"], msg["To"] = SENDER, "gone@lab.example"
    msg.set_content("hi")
    with SmtpMailer(server.url, timeout=10) as m:
        with pytest.raises(PermanentFailure) as permanent:
            m.send(msg)
        assert (permanent.value.code, permanent.value.recipient) == (550, True)
        assert "no such user" in permanent.value.reply
        msg.replace_header("To", "grey@lab.example")
        with pytest.raises(TemporaryFailure) as temporary:
            m.send(msg)
        assert temporary.value.code == 451 and not isinstance(temporary.value, ServerUnavailable)
        m.send(msg)
    server.stop()
    with SmtpMailer(server.url, timeout=10) as m, pytest.raises(ServerUnavailable, match="refused"):
        m.send(msg)


# --- the crash test -----------------------------------------------------------------------------------------

SENDER_SCRIPT = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta

    from paperboy.db import make_engine
    from paperboy.digest.send import send_pending
    from paperboy.mailer import SmtpMailer

    engine = make_engine(sys.argv[1])
    with SmtpMailer(sys.argv[2], connections=1, timeout=10, local_hostname="sender.test") as mailer:
        report = send_pending(
            engine, mailer, lambda: datetime.now(UTC), sender="papers@hub.example", rate=1000,
            lease=timedelta(0),
        )
    print(report)
    sys.exit(0 if report.stopped is None else 3)
    """
)


def test_a_sender_killed_again_and_again_delivers_every_mail_at_most_twice_when_in_flight(
    sqlite_engine: Engine, server: Server, tmp_path: Path
) -> None:
    subscribers = 1000
    server.handler.delay = 0.001  # a little time in flight for the kills to land in
    now = datetime.now(UTC)
    with sqlite_engine.begin() as conn:
        for n in range(subscribers):
            _digest(conn, f"reader{n:04d}@lab.example", now=now)
    script = tmp_path / "sender.py"
    script.write_text(SENDER_SCRIPT)
    db_url = str(sqlite_engine.url)
    rng = random.Random(20261127)
    kills, runs = 0, 0
    deadline = time.monotonic() + 240
    while True:
        assert time.monotonic() < deadline, f"not done after {runs} runs: {_counts(sqlite_engine)}"
        with (tmp_path / f"stderr{runs}.txt").open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, str(script), db_url, server.url], stdout=subprocess.DEVNULL, stderr=err
            )
        runs += 1
        if kills < 8:
            target = len(server.handler.received) + rng.randint(20, 160)
            while proc.poll() is None and len(server.handler.received) < target:
                time.sleep(0.002)
            if proc.poll() is None:
                time.sleep(rng.uniform(0, 0.004))
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
        rc = proc.wait(timeout=120)
        if rc != -signal.SIGKILL:
            assert rc == 0, (tmp_path / f"stderr{runs - 1}.txt").read_text()
            break

    assert kills >= 5
    assert _counts(sqlite_engine) == {"sent": subscribers}
    with sqlite_engine.connect() as conn:
        per_subscriber = conn.execute(
            sa.select(outbox_table.c.subscription_id, sa.func.count())
            .where(outbox_table.c.status == "sent")
            .group_by(outbox_table.c.subscription_id)
        ).all()
    assert len(per_subscriber) == subscribers and all(n == 1 for _, n in per_subscriber)
    got = [r.rcpt[0] for r in server.handler.received]
    assert set(got) == {f"reader{n:04d}@lab.example" for n in range(subscribers)}  # nobody missing
    duplicates = len(got) - subscribers
    assert duplicates <= kills, f"{duplicates} duplicates after {kills} kills"
    ids = [r.msg["Message-ID"] for r in server.handler.received]
    assert len(set(ids)) == subscribers  # a re-sent mail carries its first Message-ID


# --- the store, on SQLite and PostgreSQL --------------------------------------------------------------------


def test_claims_take_due_rows_oldest_first_and_a_dead_senders_rows_after_the_lease(engine: Engine) -> None:
    lease = timedelta(minutes=10)
    with engine.begin() as conn:
        later = _digest(conn, "later@lab.example", now=T0 + timedelta(hours=1))
        first = _digest(conn, "first@lab.example", now=T0)
        second = _digest(conn, "second@lab.example", now=T0 + timedelta(minutes=1))
    with engine.begin() as conn:
        row = outbox.claim_next(conn, T0 + timedelta(minutes=5), lease)
        assert row is not None and row.id == first and row.status == "sending"
        assert row.claimed_at == T0 + timedelta(minutes=5)
    with engine.begin() as conn:
        assert outbox.claim_next(conn, T0 + timedelta(minutes=5), lease).id == second  # type: ignore[union-attr]
        assert outbox.claim_next(conn, T0 + timedelta(minutes=5), lease) is None  # `later` is not due
    # the sender that took them died; after the lease they are taken again, before any pending row
    with engine.begin() as conn:
        assert outbox.claim_next(conn, T0 + timedelta(minutes=14), lease) is None
        again = outbox.claim_next(conn, T0 + timedelta(hours=2), lease)
        assert again is not None and again.id == first
        assert outbox.mark_sent(conn, first, T0 + timedelta(hours=2))
        assert not outbox.mark_sent(conn, first, T0 + timedelta(hours=2))  # only a `sending` row
        assert outbox.claim_next(conn, T0 + timedelta(hours=2), lease).id == second  # type: ignore[union-attr]
        assert outbox.claim_next(conn, T0 + timedelta(hours=2), lease).id == later  # type: ignore[union-attr]
        assert outbox.mark_retry(conn, later, next_attempt_at=T0 + timedelta(hours=3), error="451")
        assert outbox.release(conn, second, error="refused")
        assert not outbox.mark_failed(conn, second, "not claimed")
        assert outbox.counts(conn) == {"pending": 2, "sending": 0, "sent": 1, "failed": 0, "cancelled": 0}
        assert outbox.get(conn, later).attempts == 1  # type: ignore[union-attr]
        assert outbox.get(conn, second).attempts == 0  # type: ignore[union-attr]
        assert outbox.mark_cancelled(conn, second, "unsubscribed")
        assert outbox.get(conn, second).status == "cancelled"  # type: ignore[union-attr]


def test_concurrent_senders_never_take_the_same_row(engine: Engine) -> None:
    with engine.begin() as conn:
        ids = {_digest(conn, f"r{n}@lab.example") for n in range(40)}
    taken: list[list[int]] = [[] for _ in range(4)]

    def claimer(mine: list[int]) -> None:
        while True:
            with engine.begin() as conn:
                row = outbox.claim_next(conn, T0, timedelta(minutes=10))
            if row is None:
                return
            mine.append(row.id)

    threads = [threading.Thread(target=claimer, args=(mine,)) for mine in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [i for mine in taken for i in mine]
    assert sorted(flat) == sorted(ids)  # every row once, none twice


def test_enqueue_suppress_and_counts(engine: Engine) -> None:
    with engine.begin() as conn:
        row_id = _digest(conn, "ada@lab.example", headers={"List-Id": "<d.hub.example>"})
        assert outbox.get(conn, row_id).headers == {"List-Id": "<d.hub.example>"}  # type: ignore[union-attr]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        _digest(conn, "ada@lab.example")  # the same Message-ID again
    with engine.begin() as conn:
        assert outbox.suppress(conn, "Ada@Lab.example", "hard bounce: 550", T0)
        assert not outbox.suppress(conn, "ada@lab.example", "again", T0)
        assert outbox.is_suppressed(conn, "ADA@lab.example")
        assert not outbox.is_suppressed(conn, "bob@lab.example")
        assert outbox.unsuppress(conn, "ada@lab.example")
        assert not outbox.is_suppressed(conn, "ada@lab.example")
        assert outbox.counts(conn)["pending"] == 1
