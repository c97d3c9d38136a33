"""Signed account tokens, stored nowhere: device cookies (sign-in while others guess the password) and
sign-up links (PAPERBOY_SIGNUP_VERIFY_EMAIL), with the mail that carries a sign-up link.

Each is an HMAC-SHA256 (the hub's secret key) over a small JSON payload and the token's purpose; anything
altered, cut short or made for another purpose reads as None or InvalidInput, never a 500. Pure functions
but `mail_signup`: the key is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment
from sqlalchemy.engine import Connection

from paperboy.errors import InvalidInput
from paperboy.mailer import ascii_host
from paperboy.models import User
from paperboy.store import outbox as outbox_store


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(key: bytes, purpose: str, body: str) -> str:
    return _b64(hmac.new(key, f"{purpose}.{body}".encode(), hashlib.sha256).digest()[:24])


def _seal(key: bytes, purpose: str, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_mac(key, purpose, body)}"


def _unseal(key: bytes, purpose: str, token: str, limit: int) -> dict[str, Any] | None:
    """The payload `_seal` signed with `key` for `purpose`, or None for anything else."""
    if not token or len(token) > limit:
        return None
    body, _, mac = token.strip().partition(".")
    if not hmac.compare_digest(mac.encode("utf-8", "surrogatepass"), _mac(key, purpose, body).encode()):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


# OWASP's "device cookies": a browser that signed in to an account keeps a signed token naming the account
# and a random nonce. While others guess the account's password (its failures from browsers without one
# spent), a browser with one still signs in; each token has its failures counted apart (a stolen cookie
# guesses no faster than anyone). Nothing is stored: the token is bound to the account's id, name and
# creation time, so it never names an account made later with a reused id.
DEVICE_COOKIE = "pb_device"
DEVICE_DAYS = 365
DEVICE_TOKENS = 4  # accounts one browser is remembered for
_DEVICE_SEP = "~"
_DEVICE_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,200}")


def _device_purpose(user: User) -> str:
    return f"device:{user.id}:{user.username.lower()}:{int(user.created_at.timestamp())}"


def device_nonce(key: bytes, cookie: str | None, user: User) -> str | None:
    """The nonce of the token in the device cookie `cookie` that this hub made for `user`, or None."""
    for token in (cookie or "").split(_DEVICE_SEP)[:DEVICE_TOKENS]:
        payload = _unseal(key, _device_purpose(user), token, 200)
        if payload is not None and payload.get("u") == user.id and isinstance(payload.get("n"), str):
            return str(payload["n"])
    return None


def remember_device(key: bytes, cookie: str | None, user: User) -> str:
    """The device cookie's value once `user` signed in with it: their token first (the one it held, else a
    new one), then those it held for other accounts, up to DEVICE_TOKENS."""
    mine, others = None, []
    for token in (cookie or "").split(_DEVICE_SEP)[:DEVICE_TOKENS]:
        if not _DEVICE_TOKEN.fullmatch(token):
            continue
        if mine is None and device_nonce(key, token, user) is not None:
            mine = token
        else:
            others.append(token)
    if mine is None:
        mine = _seal(key, _device_purpose(user), {"u": user.id, "n": secrets.token_urlsafe(12)})
    return _DEVICE_SEP.join([mine, *others][:DEVICE_TOKENS])


SIGNUP_LINK_HOURS = 48


@dataclass(frozen=True)
class SignupLink:
    """What a sign-up link carries (PAPERBOY_SIGNUP_VERIFY_EMAIL): the name asked for, the address it was
    mailed to, and whether the setup code was given with it."""

    username: str
    email: str
    code_checked: bool


def signup_token(key: bytes, link: SignupLink, now: datetime) -> str:
    expires = int((now + timedelta(hours=SIGNUP_LINK_HOURS)).timestamp())
    payload = {"u": link.username, "e": link.email, "s": link.code_checked, "x": expires}
    return _seal(key, "signup", payload)


def signup_link(key: bytes, token: str, now: datetime) -> SignupLink:
    """The sign-up a link's token carries, or InvalidInput saying why it cannot be used."""
    payload = _unseal(key, "signup", token, 1000)
    if payload is None:
        raise InvalidInput("This sign-up link is not one of ours, or it was cut short: copy the whole link.")
    try:
        link = SignupLink(str(payload["u"]), str(payload["e"]), bool(payload["s"]))
        expires = int(payload["x"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput("This sign-up link is damaged.") from exc
    if now.timestamp() > expires:
        raise InvalidInput(f"This sign-up link has expired (after {SIGNUP_LINK_HOURS} hours): sign up again.")
    return link


def signup_url(public_url: str, token: str) -> str:
    return public_url.rstrip("/") + "/signup/confirm?" + urlencode({"t": token})


def mail_signup(
    conn: Connection,
    templates: Environment,
    *,
    site_name: str,
    public_url: str,
    email: str,
    link: str | None,
    now: datetime,
) -> None:
    """Queue the one mail that answers a sign-up (PAPERBOY_SIGNUP_VERIFY_EMAIL) in the caller's transaction:
    the link that makes the account, or (`link` None) for an address that has an account, a note to its
    owner saying so. The page answering the form is the same either way."""
    taken = link is None
    subject = (
        f"You have an account on {site_name} already" if taken else f"Confirm your sign-up to {site_name}"
    )
    context = {
        "subject": subject,
        "taken": taken,
        "site": {"name": site_name},
        "site_url": public_url.rstrip("/"),
        "email": email,
        "link": link,
        "hours": SIGNUP_LINK_HOURS,
    }
    host = ascii_host(urlsplit(public_url).hostname or "localhost")
    outbox_store.enqueue(
        conn,
        kind="signup",
        to_addr=email,
        subject=subject,
        text_body=templates.get_template("email/signup.txt").render(**context),
        html_body=templates.get_template("email/signup.html").render(**context),
        headers={"Auto-Submitted": "auto-generated"},
        message_id=f"<signup.{secrets.token_hex(12)}@{host}>",
        now=now,
    )
