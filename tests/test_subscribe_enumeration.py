"""Subscribing tells nobody who is subscribed (issue 12, point 4), checked on the wire: a real
`paperboy serve` process, HTTP from outside, and a real SMTP server (aiosmtpd) whose received messages are
counted.

For a stranger, a pending address, an active subscriber (and one that left, and a suppressed one) the
subscribe form answers the same status, the same page (once the address is taken out) and, within noise,
in the same time; each address gets at most 3 mails from the form per 6 hours whoever it is: a stranger its
confirmation, an active subscriber a link to its preferences, counted against the same cap. Past the cap the
answer is still the same 200 page, just without a mail.
"""

from __future__ import annotations

import email
import random
import re
import statistics
import time
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import httpx
import sqlalchemy as sa
from test_mail_wire import CSRF, Keeper, _wait_for
from test_mail_wire import served as served  # the fixtures
from test_mail_wire import smtp_raw as smtp_raw

from paperboy.db.schema import outbox, subscriptions, suppressions
from paperboy.digest import subscriptions as subs

KEY = b"s" * 40  # the PAPERBOY_SECRET_KEY that test_mail_wire's `served` runs with
CAP = 3  # mails from the subscribe form per address per 6 hours
CONFIRM_PATH = re.compile(r"https?://[^\s\"<>]+?(/subscribe/confirm\?t=[A-Za-z0-9_\-]+)")
TOKENS = [
    (re.compile(r'name="csrf_token" value="[^"]*"'), 'name="csrf_token" value="TOKEN"'),
    (re.compile(r"hx-headers='[^']*'"), "hx-headers='TOKEN'"),
    (re.compile(r'nonce="[^"]*"'), 'nonce="NONCE"'),
]


# --- talking to serve and reading the SMTP server -----------------------------------------------------------


class Browser:
    """One visitor's HTTP client on the served hub (no account, so the public CSRF token)."""

    def __init__(self, base: str) -> None:
        self.web = httpx.Client(base_url=base, timeout=30)
        self._token: str | None = None

    def close(self) -> None:
        self.web.close()

    def token(self, path: str = "/subscribe") -> str:
        if self._token is None:
            found = CSRF.search(self.web.get(path).text)
            assert found, "no CSRF token on " + path
            self._token = found.group(1)
        return self._token

    def subscribe(self, address: str, **fields: str) -> httpx.Response:
        return self.web.post("/subscribe", data={"email": address, "csrf_token": self.token(), **fields})

    def confirm(self, path: str) -> httpx.Response:
        page = self.web.get(path)
        assert page.status_code == 200, page.text[:500]
        t = path.split("t=", 1)[1]
        return self.web.post("/subscribe/confirm", data={"t": t, "csrf_token": self.token()})


def form_mails(keeper: Keeper, address: str) -> list[bytes]:
    """The raw messages the SMTP server got for `address` from the subscribe form (Message-ID <confirm.…>)."""
    return [
        m.data
        for m in list(keeper.got)
        if address in m.rcpt and re.search(rb"^Message-ID: <confirm\.", m.data, re.M | re.I)
    ]


def text_of(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(msg, EmailMessage)
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def confirm_path(raw: bytes) -> str:
    found = CONFIRM_PATH.search(text_of(raw))
    assert found, text_of(raw)
    return found.group(1)


def wait_mails(keeper: Keeper, address: str, n: int, log: Path) -> list[bytes]:
    return _wait_for(  # type: ignore[no-any-return]
        f"{n} mail(s) to {address}",
        lambda: len(form_mails(keeper, address)) >= n and form_mails(keeper, address),
        15,
        log,
    )


def db(tmp_path: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'paperboy.sqlite3'}")


def wait_outbox_empty(engine: sa.Engine, log: Path) -> None:
    """Until the sender has handled every queued row (nothing pending or sending)."""

    def idle() -> bool:
        with engine.connect() as conn:
            stmt = sa.select(sa.func.count()).where(outbox.c.status.in_(("pending", "sending")))
            return conn.execute(stmt.select_from(outbox)).scalar_one() == 0

    _wait_for("the outbox sent", idle, 30, log)


def make_pending(b: Browser, keeper: Keeper, address: str, log: Path, **fields: str) -> None:
    assert b.subscribe(address, **fields).status_code == 200
    wait_mails(keeper, address, 1, log)


def make_active(b: Browser, keeper: Keeper, address: str, log: Path, **fields: str) -> None:
    make_pending(b, keeper, address, log, **fields)
    (raw,) = form_mails(keeper, address)
    assert b.confirm(confirm_path(raw)).status_code == 200


def status_of(engine: sa.Engine, address: str) -> str | None:
    with engine.connect() as conn:
        stmt = sa.select(subscriptions.c.status).where(subscriptions.c.email == address)
        return conn.execute(stmt).scalar_one_or_none()


def unsubscribe_path(engine: sa.Engine, address: str) -> str:
    """The one-click link a digest to `address` carries (signed with serve's key, as the planner signs it)."""
    from paperboy.store import subscriptions as store

    with engine.connect() as conn:
        found = store.get_by_email(conn, address)
    assert found is not None
    return subs.unsubscribe_url("", KEY, found)


def manage_path(engine: sa.Engine, address: str) -> str:
    from datetime import UTC, datetime

    from paperboy.store import subscriptions as store

    with engine.connect() as conn:
        found = store.get_by_email(conn, address)
    assert found is not None
    return subs.manage_url("", KEY, found, datetime.now(UTC))


def normalised(html: str, address: str) -> str:
    """The page with its per-request tokens and the address typed taken out: what must be the same."""
    for pattern, replacement in TOKENS:
        html = pattern.sub(replacement, html)
    return html.replace(address, "ADDRESS")


# --- the same answer and at most the cap of mails, whoever the address is -----------------------------------


def test_subscribing_answers_the_same_and_mails_at_most_the_cap_whoever_the_address_is(
    served: tuple[str, Keeper, Path], tmp_path: Path
) -> None:
    base, keeper, log = served
    engine = db(tmp_path)
    b = Browser(base)
    try:
        kinds = {
            "stranger": "stranger@lab.example",
            "pending": "pending@lab.example",
            "active": "active@lab.example",
            "left": "left00@lab.example",
            "suppressed": "bounced@lab.example",
        }
        make_pending(b, keeper, kinds["pending"], log)
        make_active(b, keeper, kinds["active"], log)
        make_active(b, keeper, kinds["left"], log)
        mail_client = httpx.Client(base_url=base, timeout=10)  # no cookies, as a mail provider
        r = mail_client.post(
            unsubscribe_path(engine, kinds["left"]),
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        mail_client.close()
        assert r.status_code == 200
        with engine.begin() as conn:
            conn.execute(
                sa.insert(suppressions).values(
                    email=kinds["suppressed"], reason="550 no such user", created_at=sa.func.now()
                )
            )
        assert [status_of(engine, kinds[k]) for k in ("stranger", "pending", "active", "left")] == [
            None,
            "pending",
            "active",
            "unsubscribed",
        ]
        wait_outbox_empty(engine, log)
        before = {k: len(form_mails(keeper, a)) for k, a in kinds.items()}
        assert before == {"stranger": 0, "pending": 1, "active": 1, "left": 1, "suppressed": 0}

        answers: dict[str, list[tuple[int, str]]] = {k: [] for k in kinds}
        for _ in range(6):
            for kind, address in kinds.items():
                r = b.subscribe(address)
                answers[kind].append((r.status_code, normalised(r.text, address)))
        wait_outbox_empty(engine, log)
        time.sleep(1)  # a mail too many would come right behind
    finally:
        b.close()

    statuses = {k: [s for s, _ in v] for k, v in answers.items()}
    print("\nstatuses:", statuses)
    assert all(seq == [200] * 6 for seq in statuses.values()), statuses
    pages = {k: {page for _, page in v} for k, v in answers.items()}
    assert all(len(p) == 1 for p in pages.values()), {k: len(p) for k, p in pages.items()}
    (stranger_page,) = pages["stranger"]
    for kind, (page,) in ((k, tuple(p)) for k, p in pages.items()):
        assert page == stranger_page, kind
    assert "Check your inbox" in stranger_page

    got = {k: len(form_mails(keeper, a)) for k, a in kinds.items()}
    print("mails from the form (setup included):", got)
    # everyone but the suppressed address reaches the cap, none passes it
    assert got == {"stranger": CAP, "pending": CAP, "active": CAP, "left": CAP, "suppressed": 0}
    # an active subscriber's mail links to its preferences, never starts anything by itself
    notices = form_mails(keeper, kinds["active"])[1:]
    for raw in notices:
        assert "subscribed already" in text_of(raw), text_of(raw)
    assert status_of(engine, kinds["left"]) == "unsubscribed"  # until its new link is confirmed
    engine.dispose()


def test_the_preferences_mail_to_an_active_subscriber_leads_to_its_preferences(
    served: tuple[str, Keeper, Path], tmp_path: Path
) -> None:
    base, keeper, log = served
    engine = db(tmp_path)
    b = Browser(base)
    try:
        make_active(b, keeper, "ada@lab.example", log)
        assert b.subscribe("ada@lab.example").status_code == 200
        raw = wait_mails(keeper, "ada@lab.example", 2, log)[-1]
        path = confirm_path(raw)
        page = b.web.get(path)
        assert page.status_code == 200 and "subscribed already" in page.text
        done = b.confirm(path)
        assert done.status_code == 200
        manage = re.search(r'href="(/subscription\?t=[^"]+)"', done.text)
        assert manage, done.text
        prefs = b.web.get(manage.group(1).replace("&amp;", "&"))
        assert prefs.status_code == 200 and "ada@lab.example" in prefs.text
        assert status_of(engine, "ada@lab.example") == "active"
    finally:
        b.close()
        engine.dispose()


# --- the same time, whoever the address is ------------------------------------------------------------------

TRIES = 30


def test_subscribing_takes_the_same_time_whoever_the_address_is(
    served: tuple[str, Keeper, Path], tmp_path: Path
) -> None:
    """Each of TRIES strangers, pending addresses and active subscribers is subscribed once more (each request
    queues one mail: nobody is at the cap), one of each kind per round in a shuffled order; the median of the
    paired differences between two kinds is within max(30 % of the fastest kind's median, 5 ms)."""
    base, keeper, log = served
    engine = db(tmp_path)
    b = Browser(base)
    rng = random.Random(12)
    try:
        pending = [f"pending{n:02d}@lab.example" for n in range(TRIES)]
        active = [f"active{n:02d}@lab.example" for n in range(TRIES)]
        stranger = [f"strange{n:02d}@lab.example" for n in range(TRIES)]
        for address in pending:
            assert b.subscribe(address).status_code == 200
        for address in active:
            make_active(b, keeper, address, log)
        wait_outbox_empty(engine, log)
        for n in range(5):  # warm up: the same path, addresses not measured
            b.subscribe(f"warm{n}@lab.example")
        wait_outbox_empty(engine, log)

        took: dict[str, list[float]] = {"stranger": [], "pending": [], "active": []}
        for n in range(TRIES):
            round_ = [("stranger", stranger[n]), ("pending", pending[n]), ("active", active[n])]
            rng.shuffle(round_)
            for kind, address in round_:
                start = time.perf_counter()
                r = b.subscribe(address)
                took[kind].append(time.perf_counter() - start)
                assert r.status_code == 200
                time.sleep(0.15)  # let the sender send what this request queued before the next one
        wait_outbox_empty(engine, log)
    finally:
        b.close()
        engine.dispose()

    medians = {k: statistics.median(v) for k, v in took.items()}
    # each round measured one of each kind back to back: the median of the paired differences cancels what
    # the machine's load did meanwhile
    paired = {
        f"{a}-{b}": statistics.median(x - y for x, y in zip(took[a], took[b], strict=True))
        for a, b in (("active", "stranger"), ("pending", "stranger"), ("active", "pending"))
    }
    print("\nmedian ms:", {k: round(v * 1000, 2) for k, v in medians.items()})
    print("median paired difference ms:", {k: round(v * 1000, 2) for k, v in paired.items()})
    print("min ms:", {k: round(min(v) * 1000, 2) for k, v in took.items()})
    print("all ms:", {k: [round(x * 1000, 1) for x in v] for k, v in took.items()})
    fastest = min(medians.values())
    # a bound the shared test machine's noise stays under (paired medians varied by up to 3 ms between runs);
    # the old code's active path was 3.5-7 ms (30-45 %) faster
    bound = max(0.3 * fastest, 0.005)
    assert all(abs(d) <= bound for d in paired.values()), (paired, bound)
    # and every one of them got exactly one more mail: the same work, not just the same time
    for address in stranger:
        assert len(form_mails(keeper, address)) == 1, address
    for address in pending + active:
        assert len(form_mails(keeper, address)) == 2, address
