"""Mail as it is on the wire (issue 11, point 5), tested on the bytes a real SMTP server (aiosmtpd) receives,
never through Python's email parser (which decodes what a mail client would not):

- `paperboy serve`, run as a real process with the normal 5-minute digest round, sends the confirmation mail
  of a subscription made over HTTP within seconds (the request wakes the sender);
- the headers we set go out as plain ASCII, folded at commas, while a non-ASCII Subject or From name is
  valid RFC 2047;
- `serve` names itself in links when PAPERBOY_BASE_URL is unset (its own address, this machine's name for
  0.0.0.0).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import browserkit
import httpx
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from paperboy.config import Settings
from paperboy.digest.send import build_message
from paperboy.errors import InvalidInput
from paperboy.mailer import fold_ascii_header
from paperboy.serve import serving_settings
from paperboy.store.outbox import OutboxMessage

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# --- a real SMTP server that keeps the bytes ----------------------------------------------------------------


@dataclass
class Raw:
    rcpt: list[str]
    data: bytes  # exactly as received after DATA
    at: float  # time.monotonic() when it arrived


@dataclass
class Keeper:
    got: list[Raw] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.got.append(Raw(list(envelope.rcpt_tos), envelope.original_content, time.monotonic()))
        self.arrived.set()
        return "250 OK"


@pytest.fixture
def smtp_raw() -> Iterator[tuple[str, Keeper]]:
    keeper = Keeper()
    controller = Controller(keeper, hostname="127.0.0.1", port=browserkit.free_port())
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", keeper
    finally:
        controller.stop()


def header_block(data: bytes) -> bytes:
    head, sep, _ = data.partition(b"\r\n\r\n")
    assert sep, "no blank line after the headers"
    return head + b"\r\n"


def raw_field(data: bytes, name: str) -> bytes:
    """The header field `name` exactly as on the wire, folding (CRLF + white space) included."""
    found = re.findall(
        rb"^" + re.escape(name.encode()) + rb":.*?\r\n(?![ \t])", header_block(data), re.M | re.S | re.I
    )
    assert len(found) == 1, f"{name}: {len(found)} fields in\n{header_block(data).decode('ascii', 'replace')}"
    return bytes(found[0])


def unfolded(field_bytes: bytes) -> str:
    """A raw field's value with the folding taken out (RFC 5322 2.2.3), nothing decoded."""
    text = field_bytes.decode("ascii")
    return re.sub(r"\r\n(?=[ \t])", "", text).split(":", 1)[1].strip()


def assert_plain_headers(data: bytes) -> None:
    """Every header line is ASCII and at most 998 characters (RFC 5322 2.1.1)."""
    head = header_block(data)
    assert head.isascii(), head
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))


# --- serve: the confirmation mail leaves within seconds -----------------------------------------------------


def _wait_for(what: str, check: Any, timeout: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise AssertionError(f"{what}: not within {timeout} s\n--- serve's log ---\n{tail}")


@pytest.fixture
def served(tmp_path: Path, smtp_raw: tuple[str, Keeper]) -> Iterator[tuple[str, Keeper, Path]]:
    """`paperboy serve` in its own process, as an admin starts it: SQLite in a data dir, the demo papers, the
    digest loop on its normal 5-minute round, mail to the SMTP server above; no PAPERBOY_BASE_URL."""
    smtp_url, keeper = smtp_raw
    port = browserkit.free_port()
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env.update(
        PAPERBOY_DATA_DIR=str(data),
        PAPERBOY_SMTP_URL=smtp_url,
        PAPERBOY_MAIL_FROM="Lab Papers <papers@lab.example>",
        PAPERBOY_SITE_NAME="Lab Papers",
        PAPERBOY_EMBEDDING_MODEL="/no/such/model",  # keyword search only: a light, quick start
        PAPERBOY_SECRET_KEY="s" * 40,
        PAPERBOY_RATE_SUBSCRIBE="1000 per hour",  # the crowd below comes from one address
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "paperboy",
                "serve",
                "--no-sync",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    engine = None
    try:

        def up() -> bool:
            assert proc.poll() is None, "serve exited"
            try:
                return httpx.get(base + "/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for("serve answering", up, 180, log)
        engine = sa.create_engine(f"sqlite:///{data / 'paperboy.sqlite3'}")

        def first_round_done() -> bool:
            with engine.connect() as conn:
                row = conn.execute(
                    sa.text("SELECT last_success_at FROM background_status WHERE name = 'digests'")
                ).first()
            return row is not None and row[0] is not None

        # its first round runs at start; the next regular one is 5 minutes later
        _wait_for("the digest loop's first round", first_round_done, 60, log)
        yield base, keeper, log
    finally:
        if engine is not None:
            engine.dispose()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_sends_the_confirmation_mail_within_seconds_of_subscribing(
    served: tuple[str, Keeper, Path],
) -> None:
    base, keeper, log = served
    port = base.rsplit(":", 1)[1]
    with httpx.Client(base_url=base, timeout=10) as web:
        form = web.get("/subscribe")
        token = CSRF.search(form.text)
        assert form.status_code == 200 and token
        assert not keeper.got
        start = time.monotonic()
        r = web.post("/subscribe", data={"email": "ada@lab.example", "csrf_token": token.group(1)})
        answered = time.monotonic()
    assert r.status_code == 200 and "Check your inbox" in r.text
    _wait_for("the confirmation mail", keeper.arrived.is_set, 10, log)
    (mail,) = keeper.got
    took = mail.at - start
    print(f"\nsubscribe -> confirmation mail received: {took:.3f} s (the request: {answered - start:.3f} s)")
    assert took < 10
    assert mail.rcpt == ["ada@lab.example"]
    assert_plain_headers(mail.data)
    # no PAPERBOY_BASE_URL: the link names the address serve listens on
    body = mail.data.decode("utf-8", "replace")
    assert re.search(rf"http://localhost:{port}/subscribe/confirm\?t=[A-Za-z0-9_\-]+", body), body[:2000]
    assert re.fullmatch(
        rb"Message-ID: <confirm\.\d+\.[0-9a-f]+@localhost>\r\n", raw_field(mail.data, "Message-ID")
    )
    assert raw_field(mail.data, "Auto-Submitted") == b"Auto-Submitted: auto-generated\r\n"


def test_a_crowd_subscribing_at_once_each_gets_one_confirmation_within_seconds(
    served: tuple[str, Keeper, Path],
) -> None:
    """The morning a hub is announced: 24 people subscribe in the same second, each from their own browser.
    Every request wakes the sender; wakes that pile up while it sends must neither lose a mail nor send one
    twice, and none waits for the 5-minute round."""
    base, keeper, log = served
    crowd = [f"reader{n}@lab.example" for n in range(24)]

    def subscribe(email: str) -> int:
        with httpx.Client(base_url=base, timeout=30) as web:
            token = CSRF.search(web.get("/subscribe").text)
            assert token
            return web.post("/subscribe", data={"email": email, "csrf_token": token.group(1)}).status_code

    start = time.monotonic()
    with ThreadPoolExecutor(len(crowd)) as pool:
        statuses = list(pool.map(subscribe, crowd))
    answered = time.monotonic()
    assert statuses == [200] * len(crowd)
    _wait_for("every confirmation mail", lambda: len(keeper.got) >= len(crowd), 10, log)
    time.sleep(1)  # a duplicate would come right behind
    assert sorted(r for m in keeper.got for r in m.rcpt) == sorted(crowd)
    last = max(m.at for m in keeper.got)
    print(f"\n{len(crowd)} at once: requests {answered - start:.2f} s, last mail {last - start:.2f} s")
    for mail in keeper.got:
        assert_plain_headers(mail.data)


# --- headers on the wire ------------------------------------------------------------------------------------


def _row(**kw: Any) -> OutboxMessage:
    from datetime import UTC, datetime

    t0 = datetime(2026, 11, 27, 8, tzinfo=UTC)
    values: dict[str, Any] = dict(
        id=1,
        kind="digest",
        to_addr="ada@lab.example",
        message_id="<digest.1.1@papers.example.org>",
        subject="Subject",
        text_body="Hello\n",
        html_body=None,
        status="sending",
        attempts=0,
        next_attempt_at=t0,
        created_at=t0,
        headers={},
    )
    values.update(kw)
    return OutboxMessage(**values)


def test_a_header_that_is_not_plain_ascii_is_refused_not_encoded() -> None:
    for bad in (
        {"List-Id": "Łukasz <digest.x>"},
        {"X-Evil": "a\r\nBcc: victim@x.example"},
        {"Bad Name": "x"},
    ):
        with pytest.raises(InvalidInput):
            build_message(_row(headers=bad), "Lab <papers@lab.example>")


def test_folding_cuts_only_after_top_level_commas() -> None:
    url = "https://papers.example.org/unsubscribe?t=" + "A" * 120
    folded = fold_ascii_header(
        "List-Unsubscribe", f"<{url}>, <mailto:papers@lab.example?subject=unsubscribe>"
    )
    assert folded == f"<{url}>,\n <mailto:papers@lab.example?subject=unsubscribe>"
    assert fold_ascii_header("X", '"a, b" <c,d>, e') == '"a, b" <c,d>, e'  # short: one line
    with pytest.raises(InvalidInput):
        fold_ascii_header("X", "<https://x.example/" + "a" * 1000 + ">")


# --- the public URL -----------------------------------------------------------------------------------------


def test_serve_names_itself_when_no_base_url_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    told: list[str] = []
    for key in [k for k in os.environ if k.startswith("PAPERBOY_")]:
        monkeypatch.delenv(key)

    def run(**kw: Any) -> str:
        return serving_settings(Settings(data_dir=tmp_path, **kw), told.append).public_url

    assert run(host="127.0.0.1", port=8123) == "http://localhost:8123"
    monkeypatch.setattr("socket.getfqdn", lambda *a: "papers.lab.example")
    assert run(host="0.0.0.0", port=8123) == "http://papers.lab.example:8123"  # never http://0.0.0.0
    assert run(host="::", port=80) == "http://papers.lab.example"
    assert run(host="10.1.2.3", port=8000) == "http://10.1.2.3:8000"
    assert run(host="fd00::5", port=8000) == "http://[fd00::5]:8000"
    assert all("PAPERBOY_BASE_URL is not set" in m for m in told) and len(told) == 5
    told.clear()
    set_url = serving_settings(
        Settings(data_dir=tmp_path, base_url="https://papers.example.org/hub/"), told.append
    )
    assert set_url.public_url == "https://papers.example.org/hub" and not told


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("papers.example.org", "http"),
        ("ftp://papers.example.org", "http"),
        ("https://papers.example.org/?x=1", "query"),
        ("https://user:pw@papers.example.org", "password"),
        ("https://papers.example.org:99999", "not a URL"),
    ],
)
def test_a_bad_base_url_is_refused_saying_why(value: str, complaint: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=complaint):
        Settings(data_dir=tmp_path, base_url=value)


def test_base_url_goes_into_headers_as_ascii(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, base_url="https://Bücher.example:443/Papers/")
    assert settings.public_url == "https://xn--bcher-kva.example/Papers"


def test_encoded_words_stay_valid_for_subject_and_from() -> None:
    msg = build_message(
        _row(subject="Łukasz et al.: 3 new papers on speculative decoding, and a long tail to fold it"),
        "Łódź Papers <papers@lab.example>",
    )
    data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    assert_plain_headers(data)
    subject = unfolded(raw_field(data, "Subject"))
    assert "=?utf-8?" in subject
    assert str(make_header(decode_header(subject))).startswith("Łukasz et al.: 3 new papers")
    sender = unfolded(raw_field(data, "From"))
    assert sender.endswith("<papers@lab.example>") and "Łódź" in str(make_header(decode_header(sender)))
