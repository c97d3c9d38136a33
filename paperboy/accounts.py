"""Members: sign-up, sign-in, sessions, passwords, device cookies and API tokens.

Passwords are hashed with argon2id (argon2-cffi, the algorithm OWASP recommends first) and must not be easy
to guess (zxcvbn's estimate, below); session ids and API tokens are random 256-bit secrets of which only a
SHA-256 is stored, so a leaked database signs no one in. Device cookies and sign-up links (signed, stored
nowhere) are in community/account_tokens.py.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection

from paperboy.errors import FieldInvalid, NotFound
from paperboy.models import ApiToken, User
from paperboy.store import users as store

SESSION_DAYS = 30
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,38}[A-Za-z0-9]")
EMAIL = re.compile(r"[^@\s<>\"'()\[\],;:\\]+@[^@\s<>\"'()\[\],;:\\]+\.[^@\s<>\"'()\[\],;:\\]+")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 reads every byte: bound the work one request can ask for
# zxcvbn's score, 0-4: 3 is "safely unguessable: moderate protection from an offline slow-hash attack"
# (< 10^10 guesses). Sign-in limits already stop guessing online; what a weaker password loses to is a copy
# of the database, whose argon2id hashes are exactly that slow-hash case. Score 2 (< 10^8 guesses: fine
# online) would let `Summer2024!` and `adalovelace1` through.
MIN_STRENGTH = 3
STRENGTH_CHARS = 72  # zxcvbn reads at most this many (its own cap; longer ones are judged by their start)
TOKEN_PREFIX = "pb_"  # noqa: S105 - a token's visible prefix, not a secret
# Usernames that would read as the site itself in a profile URL or a comment.
RESERVED = frozenset(
    {"admin", "administrator", "root", "system", "paperboy", "support", "deleted", "anonymous"}
)


def new_hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile: t=3, 64 MiB, p=4)."""
    return PasswordHasher()


def digest(secret: str) -> str:
    """What the database keeps of a session id or API token."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def clean_username(value: str) -> str:
    name = value.strip()
    if not name:
        raise FieldInvalid("username", "Choose a username.")
    if not USERNAME.fullmatch(name):
        raise FieldInvalid(
            "username",
            "A username is 3 to 40 letters, digits, '-' or '_', starting and ending with a letter or digit.",
        )
    if name.lower() in RESERVED:
        raise FieldInvalid("username", f"The username {name!r} is reserved.")
    return name


def clean_email(value: str) -> str:
    email = value.strip().lower()
    if not email:
        raise FieldInvalid("email", "Enter your email address.")
    if len(email) > 254 or not EMAIL.fullmatch(email):
        raise FieldInvalid("email", "That does not look like an email address.")
    return email


def check_password(password: str, username: str = "", field: str = "password", email: str = "") -> None:
    """FieldInvalid saying why, for a password too short, too long, the username, or too easy to guess
    (zxcvbn scores it below MIN_STRENGTH: a common password, a keyboard row, a name and a year, the
    username or email with a digit added...). zxcvbn's own warning and suggestions are the reason shown."""
    if len(password) < MIN_PASSWORD:
        raise FieldInvalid(field, f"A password needs at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise FieldInvalid(field, f"A password may have at most {MAX_PASSWORD} characters.")
    if username and password.lower() == username.lower():
        raise FieldInvalid(field, "Your password must not be your username.")
    from zxcvbn import zxcvbn  # its word lists take ~80 ms to load: only where a password is chosen

    known = [w for w in (username, email, email.partition("@")[0]) if w]
    verdict = zxcvbn(password[:STRENGTH_CHARS], user_inputs=known)
    if verdict["score"] < MIN_STRENGTH:
        feedback = verdict["feedback"]
        why = " ".join(t.strip() for t in [feedback["warning"], *feedback["suggestions"]] if t and t.strip())
        raise FieldInvalid(field, f"This password is too easy to guess. {why}".strip())


@dataclass(frozen=True)
class NewAccount:
    """A sign-up checked and its password hashed: what `add_account` stores."""

    username: str
    email: str
    password_hash: str


def new_account(hasher: PasswordHasher, *, username: str, email: str, password: str) -> NewAccount:
    """Check a sign-up's fields and hash its password (argon2: tens of milliseconds of CPU, so it happens
    before the write transaction, never while holding the database's write lock)."""
    username, email = clean_username(username), clean_email(email)
    check_password(password, username, email=email)
    return NewAccount(username, email, hasher.hash(password))


def create_user(
    conn: Connection,
    hasher: PasswordHasher,
    *,
    username: str,
    email: str,
    password: str,
    now: datetime,
    admin: bool | None = None,
) -> User:
    """A new member. The first member of a hub is its admin unless `admin` says otherwise."""
    made = new_account(hasher, username=username, email=email, password=password)
    return add_account(conn, made, now, admin)


class SetupCodeWrong(FieldInvalid):
    """The hub has no member yet and this first sign-up, which makes its admin, lacks the setup code that
    `paperboy serve` printed (asked for when the hub is reachable from other machines)."""


def new_setup_code() -> str:
    """A one-time code for the first sign-up: 15 characters of an unambiguous alphabet (74 bits) in groups."""
    code = "".join(secrets.choice(SETUP_ALPHABET) for _ in range(15))
    return "-".join(code[i : i + 5] for i in range(0, 15, 5))


def derived_setup_code(key: bytes) -> str:
    """The first sign-up's code as every web node of one deployment derives it from their shared secret key
    (HMAC-SHA256, mapped onto the same alphabet and groups as `new_setup_code`)."""
    digest = hmac.new(key, b"paperboy first account setup code", hashlib.sha256).digest()
    code = "".join(SETUP_ALPHABET[b % len(SETUP_ALPHABET)] for b in digest[:15])
    return "-".join(code[i : i + 5] for i in range(0, 15, 5))


def _setup_code_matches(expected: str, sent: str) -> bool:
    def norm(code: str) -> bytes:
        return "".join(c for c in code.upper() if c.isalnum()).encode("utf-8", "surrogatepass")

    return hmac.compare_digest(norm(expected), norm(sent))


def needs_setup_code(conn: Connection, setup_code: str | None) -> bool:
    """Whether a sign-up now must carry the setup code: the hub has one and no member yet."""
    return setup_code is not None and store.count_users(conn) == 0


def register(
    conn: Connection,
    account: NewAccount,
    now: datetime,
    *,
    setup_code: str | None = None,
    sent_code: str = "",
    code_checked: bool = False,
) -> User:
    """A sign-up's account, in the caller's transaction. The first account of a hub is its admin; when the
    hub has a `setup_code` that first account needs it (`sent_code`, or `code_checked`: it was checked when
    the sign-up link was made), else SetupCodeWrong and nothing is stored. Later accounts never need it."""
    first = store.count_users(conn) == 0
    if first and setup_code is not None and not code_checked:
        check_setup_code(setup_code, sent_code)
    return add_account(conn, account, now, admin=first)


def check_setup_code(setup_code: str, sent: str) -> None:
    """SetupCodeWrong unless `sent` is `setup_code` (case, spaces and dashes aside)."""
    if not sent.strip():
        raise SetupCodeWrong("setup_code", SETUP_CODE_MISSING)
    if not _setup_code_matches(setup_code, sent):
        raise SetupCodeWrong("setup_code", "That is not the setup code `paperboy serve` printed.")


SETUP_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a terminal and typed
SETUP_CODE_MISSING = (
    "This hub has no members yet: its first account becomes the admin and needs the setup code that "
    "`paperboy serve` printed when it started."
)


def add_account(conn: Connection, account: NewAccount, now: datetime, admin: bool | None = None) -> User:
    """Store a new member; FieldInvalid naming the field when the username or the email is taken (also when
    another sign-up took it a moment ago: the constraint decides, not the check)."""
    username, email = account.username, account.email
    if store.username_taken(conn, username):
        raise FieldInvalid("username", f"The username {username!r} is taken.")
    if store.email_taken(conn, email):
        raise FieldInvalid("email", "An account with that email address exists; sign in instead.")
    is_admin = store.count_users(conn) == 0 if admin is None else admin
    made = store.insert_user(
        conn, username=username, email=email, password_hash=account.password_hash, is_admin=is_admin, now=now
    )
    if made is None:  # taken between the checks above and the insert (a sign-up sent twice at once)
        if store.username_taken(conn, username):
            raise FieldInvalid("username", f"The username {username!r} is taken.")
        raise FieldInvalid("email", "An account with that email address exists; sign in instead.")
    return made


def _verify(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Login:
    """The account a sign-in form names, if any, and the key its failed sign-ins count under: the account's
    id (so its username and its email share one count), or for a name no account has, what was typed,
    normalised (so that a guesser sees the same answers either way)."""

    key: str
    user: User | None = None
    password_hash: str | None = None


def find_login(conn: Connection, login: str) -> Login:
    typed = login.strip()
    found = store.credentials(conn, typed) if typed and len(typed) <= 254 else None
    if found is None:
        return Login("login:" + typed.lower()[:254])
    user, stored = found
    return Login(f"user:{user.id}", user, stored)


def check_login(conn: Connection, hasher: PasswordHasher, login: Login, password: str) -> User | None:
    """The member `login` names when `password` is theirs, or None (no such account, wrong password,
    disabled account). No account costs one argon2 verification too, so timing does not tell which names
    exist. A hash made with weaker parameters than today's is upgraded on the way (the caller's
    transaction)."""
    if login.user is None or login.password_hash is None or len(password) > MAX_PASSWORD:
        _verify(hasher, _dummy_hash(hasher), password[:MAX_PASSWORD])
        return None
    if not _verify(hasher, login.password_hash, password) or login.user.disabled:
        return None
    if hasher.check_needs_rehash(login.password_hash):
        store.set_password_hash(conn, login.user.id, hasher.hash(password))
    return login.user


def authenticate(conn: Connection, hasher: PasswordHasher, login: str, password: str) -> User | None:
    """The member these credentials belong to, or None (see check_login)."""
    return check_login(conn, hasher, find_login(conn, login), password)


_DUMMY: dict[tuple[int, int, int], str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if key not in _DUMMY:
        _DUMMY[key] = hasher.hash(secrets.token_urlsafe(16))
    return _DUMMY[key]


def change_password(
    conn: Connection, hasher: PasswordHasher, user: User, current: str, new: str, keep_session: str | None
) -> None:
    """Set a new password after checking the current one; every other session of the member ends."""
    stored = store.password_hash(conn, user.id)
    if stored is None or not _verify(hasher, stored, current):
        raise FieldInvalid("current_password", "That is not your current password.")
    check_password(new, user.username, "password", user.email)
    store.set_password_hash(conn, user.id, hasher.hash(new))
    store.delete_sessions(conn, user.id, keep=digest(keep_session) if keep_session else None)


def delete_account(
    conn: Connection, hasher: PasswordHasher, user: User, password: str, now: datetime
) -> None:
    stored = store.password_hash(conn, user.id)
    if stored is None or not _verify(hasher, stored, password):
        raise FieldInvalid("password", "That is not your password.")
    store.delete_user(conn, user.id, now)


# --- sessions -----------------------------------------------------------------------------------------------


def start_session(conn: Connection, user: User, now: datetime) -> str:
    """A new session for `user`; the secret goes into the cookie, its digest into the database."""
    token = secrets.token_urlsafe(32)
    store.insert_session(conn, digest(token), user.id, now, now + timedelta(days=SESSION_DAYS))
    return token


def session_user(conn: Connection, token: str | None, now: datetime) -> User | None:
    if not token or len(token) > 200:
        return None
    return store.session_user(conn, digest(token), now)


def end_session(conn: Connection, token: str | None) -> None:
    if token:
        store.delete_session(conn, digest(token))


# --- API tokens ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once; only its digest is stored


def clean_token_name(value: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise FieldInvalid("name", "Give the token a name, e.g. the script that will use it.")
    if len(name) > 100:
        raise FieldInvalid("name", "A token name has at most 100 characters.")
    return name


def create_token(conn: Connection, user: User, name: str, now: datetime) -> NewToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = store.insert_token(
        conn,
        user_id=user.id,
        name=clean_token_name(name),
        token_hash=digest(secret),
        prefix=secret[:10],
        now=now,
    )
    return NewToken(token, secret)


def revoke_token(conn: Connection, user: User, token_id: int) -> None:
    if not store.delete_token(conn, user.id, token_id):
        raise NotFound(f"no token {token_id} of yours")


def token_user(conn: Connection, secret: str) -> tuple[User, int] | None:
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    return store.token_user(conn, digest(secret))


def user_named(conn: Connection, username: str) -> User:
    user = store.get_user_by_name(conn, username)
    if user is None:
        raise NotFound(f"no member named {username!r}")
    return user
