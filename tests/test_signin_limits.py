"""Sign-in limits hold against guessers and not against the owner, on the wire: a real uvicorn server (a
thread) over the real app and a real SQLite file, each "address" a real client address (httpx binds to
127.0.0.N: the whole 127/8 reaches the server, so no proxy header is believed or needed). Then the same
limits across two `paperboy serve` processes sharing one redis-server.

The sequences the closing note quotes are printed (`pytest -s`).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import members
import pytest
import webhub
from browserkit import free_port, serving
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from paperboy.community.account_tokens import DEVICE_COOKIE
from paperboy.errors import RateLimited
from paperboy.web.app import create_app
from paperboy.web.deps import Site
from paperboy.web.security import SESSION_COOKIE, Limiter, RateLimits

LIMITS = RateLimits(signin="10 per 5 minutes", signup="1000 per minute")
OWNER, EMAIL = "ada", "ada@example.org"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


class Browsers:
    """Clients, each from its own address 127.0.0.N (httpx binds there), all closed at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._open: list[httpx.Client] = []

    def __call__(
        self, address: int, cookies: httpx.Cookies | None = None, url: str | None = None
    ) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=f"127.0.0.{address}")
        c = httpx.Client(base_url=url or self.url, transport=transport, cookies=cookies, timeout=30)
        self._open.append(c)
        return c

    def close(self) -> None:
        for c in self._open:
            c.close()


@contextmanager
def browsers(url: str) -> Iterator[Browsers]:
    made = Browsers(url)
    try:
        yield made
    finally:
        made.close()


@contextmanager
def hub(engine: Engine, **kwargs: Any) -> Iterator[Browsers]:
    """The app under uvicorn on a free port, its public URL plain http (so its cookies travel to httpx), and
    browsers to visit it."""
    port = free_port()
    site = Site(name="Lab Papers", public_url=f"http://127.0.0.1:{port}", trending_days=7)
    app = create_app(
        engine,
        site=site,
        clock=lambda: webhub.NOW,
        hasher=members.FAST_HASHER,
        rate_limits=kwargs.pop("rate_limits", LIMITS),
        **kwargs,
    )
    with serving(app, port, lifespan="on") as url, browsers(url) as made:
        yield made


def csrf(c: httpx.Client, path: str = "/login") -> str:
    found = _CSRF.search(c.get(path).text)
    assert found, path
    return found.group(1)


def sign_in(c: httpx.Client, login: str, password: str, token: str | None = None) -> int:
    data = {"username": login, "password": password, "csrf_token": token or csrf(c)}
    return c.post("/login", data=data, follow_redirects=False).status_code


def sign_up(c: httpx.Client, username: str = OWNER, email: str = EMAIL) -> None:
    data = {
        "username": username,
        "email": email,
        "password": members.PASSWORD,
        "csrf_token": csrf(c, "/signup"),
    }
    r = c.post("/signup", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text


def sign_out(c: httpx.Client) -> None:
    r = c.post("/logout", data={"csrf_token": csrf(c, "/settings")}, follow_redirects=False)
    assert r.status_code == 303 and SESSION_COOKIE not in c.cookies


def test_guessers_from_many_addresses_lock_out_strangers_but_not_the_owners_browser(
    sqlite_engine: Engine,
) -> None:
    with hub(sqlite_engine) as browser:
        owner = browser(2)
        sign_up(owner)
        assert DEVICE_COOKIE in owner.cookies  # this browser made the account
        sign_out(owner)
        assert DEVICE_COOKIE in owner.cookies  # kept after sign-out

        # 12 wrong guesses, each from its own address (no address limit is reached), by name and by email
        logins = [OWNER, EMAIL, "ADA", " Ada@Example.org "]
        attacker = [sign_in(browser(20 + i), logins[i % 4], f"guess number {i}") for i in range(12)]
        stranger = sign_in(browser(3), OWNER, members.PASSWORD)  # the owner on a new device
        owners = sign_in(owner, OWNER, members.PASSWORD)  # the owner's browser, with its device cookie
        print(f"\nattacker {attacker}; owner without device cookie {stranger}; with it {owners}")

        assert attacker == [400] * 10 + [429] * 2  # name and email are one account: 10 guesses in all
        assert stranger == 429
        assert owners == 303 and owner.get("/settings").status_code == 200


def test_an_unknown_name_answers_as_a_known_one(sqlite_engine: Engine) -> None:
    with hub(sqlite_engine) as browser:
        sign_up(browser(2))
        known = [sign_in(browser(20 + i), OWNER, "wrong guess") for i in range(12)]
        unknown = [sign_in(browser(40 + i), "nobody", "wrong guess") for i in range(12)]
        assert known == unknown == [400] * 10 + [429] * 2


def test_only_failures_spend_the_account(sqlite_engine: Engine) -> None:
    with hub(sqlite_engine) as browser:
        sign_up(browser(2))
        # 15 sign-ins with the right password, each from a new browser on a new address: none is refused
        assert [sign_in(browser(20 + i), OWNER, members.PASSWORD) for i in range(15)] == [303] * 15
        assert sign_in(browser(3), OWNER, "one wrong guess") == 400


def test_a_stolen_device_cookie_guesses_no_faster_and_spends_only_its_own_count(
    sqlite_engine: Engine,
) -> None:
    with hub(sqlite_engine) as browser:
        owner = browser(2)
        sign_up(owner)
        stolen = httpx.Cookies()
        stolen.set(DEVICE_COOKIE, owner.cookies[DEVICE_COOKIE], domain="127.0.0.1", path="/login")
        thief = [sign_in(browser(20 + i, cookies=stolen), OWNER, f"guess {i}") for i in range(12)]
        assert thief == [400] * 10 + [429] * 2
        # browsers without a device cookie have their own count, untouched by the thief's guesses
        assert sign_in(browser(3), OWNER, members.PASSWORD) == 303


def test_a_forged_device_cookie_is_a_stranger(sqlite_engine: Engine) -> None:
    with hub(sqlite_engine) as browser:
        owner = browser(2)
        sign_up(owner)
        value = owner.cookies[DEVICE_COOKIE]
        forged = httpx.Cookies()
        forged.set(DEVICE_COOKIE, value[:-4] + "AAAA", domain="127.0.0.1", path="/login")
        guesses = [sign_in(browser(20 + i, cookies=forged), OWNER, "guess") for i in range(10)]
        assert guesses == [400] * 10
        assert sign_in(browser(3, cookies=forged), OWNER, members.PASSWORD) == 429
        sign_out(owner)
        assert sign_in(owner, OWNER, members.PASSWORD) == 303  # the real one still works


def test_forty_guesses_at_once_get_exactly_ten_password_checks(sqlite_engine: Engine) -> None:
    with hub(sqlite_engine, threads=40) as browser:
        sign_up(browser(2))
        clients = [browser(20 + i) for i in range(40)]
        tokens = [csrf(c) for c in clients]
        start = threading.Barrier(40)

        def guess(i: int) -> int:
            start.wait()
            return sign_in(clients[i], OWNER, f"guess {i}", tokens[i])

        with ThreadPoolExecutor(40) as pool:
            codes = list(pool.map(guess, range(40)))
        print(f"\n40 at once: {codes.count(400)} checked (400), {codes.count(429)} refused (429)")
        assert codes.count(400) == 10 and codes.count(429) == 30


def test_the_limiter_never_lets_tries_at_the_same_moment_past_its_limit() -> None:
    limiter = Limiter(RateLimits(signin="10 per 5 minutes"))
    start = threading.Barrier(40)

    def reserve(_: int) -> bool:
        start.wait()
        try:
            limiter.reserve("signin", "user:1")
        except RateLimited:
            return False
        return True

    def hit(_: int) -> bool:
        start.wait()
        try:
            limiter.hit("signin", ["ip:10.0.0.1"])
        except RateLimited:
            return False
        return True

    with ThreadPoolExecutor(40) as pool:
        assert sum(pool.map(reserve, range(40))) == 10
        assert sum(pool.map(hit, range(40))) == 10


def test_changing_the_password_from_a_session_is_guessing_limited_apart(sqlite_engine: Engine) -> None:
    with hub(sqlite_engine) as browser:
        owner = browser(2)
        sign_up(owner)
        token = csrf(owner, "/settings")
        data = {"current_password": "a guess", "new_password": "violet kettle drums", "csrf_token": token}
        codes = [owner.post("/settings/password", data=data).status_code for _ in range(11)]
        assert codes == [400] * 10 + [429]
        assert sign_in(browser(3), OWNER, members.PASSWORD) == 303  # the sign-in form's count is apart


# --- two servers, one redis ---------------------------------------------------------------------------------


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of our own on a free port (nothing saved), or a skip saying how to get one."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not found (apt-get install redis-server; scripts/test.sh does it as root)")
    pytest.importorskip("redis", reason="the redis client package is not installed (pip install '.[test]')")
    port = free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [binary, *args, "--daemonize", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_two_limiters_sharing_redis_let_exactly_the_limit_through(redis_url: str) -> None:
    limits = RateLimits(signin="10 per 5 minutes")
    one, two = Limiter(limits, redis_url), Limiter(limits, redis_url)
    start = threading.Barrier(40)

    def reserve(i: int) -> bool:
        start.wait()
        try:
            (one if i % 2 else two).reserve("signin", "user:7")
        except RateLimited:
            return False
        return True

    with ThreadPoolExecutor(40) as pool:
        assert sum(pool.map(reserve, range(40))) == 10
    one.refund("signin", "user:7")  # a success gives its slot back, seen by the other
    two.reserve("signin", "user:7")
    with pytest.raises(RateLimited):
        one.reserve("signin", "user:7")


def test_two_serve_processes_sharing_redis_check_ten_guesses_in_all(tmp_path: Path, redis_url: str) -> None:
    from servekit import serve

    env = {"PAPERBOY_RATE_LIMIT_STORAGE": redis_url, "PAPERBOY_RATE_SIGNUP": "100 per hour"}
    # the same data folder: one database, one secret key
    with (
        serve(tmp_path, env=env) as first,
        serve(tmp_path, env=env) as second,
        browsers(first.url) as browser,
    ):
        sign_up(browser(2))
        servers = [first.url, second.url]
        logins = [OWNER, EMAIL]
        codes = [
            sign_in(browser(20 + i, url=servers[i % 2]), logins[i // 2 % 2], f"guess {i}") for i in range(30)
        ]
        print(f"\ntwo servers, one redis, 30 guesses: {codes}")
        assert codes.count(400) == 10 and codes == [400] * 10 + [429] * 20
        owner_elsewhere = sign_in(browser(3, url=second.url), OWNER, members.PASSWORD)
        assert owner_elsewhere == 429  # the account's count is the same on both servers


def test_an_unreachable_redis_fails_closed(sqlite_engine: Engine) -> None:
    pytest.importorskip("redis", reason="the redis client package is not installed (pip install '.[test]')")
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = create_app(sqlite_engine, site=webhub.SITE, hasher=members.FAST_HASHER, rate_limit_storage=closed)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        r = c.post("/login", data={"username": OWNER, "password": "guess", "csrf_token": members.csrf(c)})
    assert r.status_code == 500  # not a password check without a limit
