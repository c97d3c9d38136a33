"""Signed tokens for links in mails and secret feed URLs: HMAC-SHA256 over a small JSON payload.

A token names one subscription, one purpose ("unsubscribe", "manage", "feed", ...) and the subscription's
`token_version` (bumping it revokes every link made before); it may carry an expiry. `verify` raises
BadToken for anything tampered with, truncated, made for another purpose, or expired, so routes answer a
4xx, never a 500. Pure functions: the key is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

from paperboy.errors import InvalidInput

PREFIX = "t1"
MAX_TOKEN = 600


class BadToken(InvalidInput):
    """The link is not one we made, was altered, is for something else, or has expired."""


@dataclass(frozen=True)
class Claims:
    subscription_id: int
    version: int
    expires: int | None  # seconds since the epoch


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, body: str) -> str:
    return _b64(hmac.new(key, f"{PREFIX}.{purpose}.{body}".encode(), hashlib.sha256).digest()[:24])


def sign(
    key: bytes, purpose: str, subscription_id: int, version: int, expires: datetime | None = None
) -> str:
    payload = {"s": subscription_id, "v": version}
    if expires is not None:
        payload["x"] = int(expires.timestamp())
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{PREFIX}.{body}.{_mac(key, purpose, body)}"


def verify(key: bytes, purpose: str, token: str, now: datetime | None) -> Claims:
    """The claims of a token made by `sign` with the same key and purpose, still valid at `now` (None: any
    expiry it carries is not checked, for links that must work for good, like unsubscribe links)."""
    if not token or len(token) > MAX_TOKEN:
        raise BadToken("this link is incomplete or not one of ours")
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise BadToken("this link is incomplete or not one of ours")
    _, body, mac = parts
    if not hmac.compare_digest(mac, _mac(key, purpose, body)):
        raise BadToken("this link was altered or is not one of ours")
    try:
        payload = json.loads(_unb64(body))
        claims = Claims(int(payload["s"]), int(payload["v"]), int(payload["x"]) if "x" in payload else None)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadToken("this link is damaged") from exc
    if now is not None and claims.expires is not None and now.timestamp() > claims.expires:
        raise BadToken("this link has expired; use the one in a newer mail")
    return claims
