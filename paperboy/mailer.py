"""Mail transport: the `Mailer` interface and an SMTP implementation with a small pool of connections.

A failure is classified so that the sender knows what to do with the message:

- `TemporaryFailure`: try this message again later (4xx replies, a connection dropped or timed out mid-way);
- `ServerUnavailable` (a `TemporaryFailure`): the server cannot be reached or will not take mail from us
  at all (refused connection, TLS or login failure): stop sending for now, the message was not tried;
- `PermanentFailure`: this message will never be accepted (5xx); `recipient` is True when the refusal is
  about the address (a hard bounce), so that the address can be suppressed.

Headers on the wire: `new_message()` makes a message whose structured headers (From, To, Subject) Python
folds and RFC 2047-encodes as it should, while `set_ascii_header` writes a header exactly as given (plain
ASCII, folded at commas when long). Python's folder would otherwise turn a long `List-Unsubscribe` URL into
encoded-words (`=?utf-8?q?=3Chttps=3A//...`), which no mail client reads as a URL.
"""

from __future__ import annotations

import contextlib
import email.policy
import ipaddress
import smtplib
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal, Protocol
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

from paperboy.errors import InvalidInput, PaperboyError

TlsMode = Literal["implicit", "starttls", "opportunistic", "none"]

# Headers set with `set_raw` (a plain string) go out as written; header objects (msg["Subject"] = ...) are
# still folded and encoded by Python. With the default "long", a raw header longer than 78 characters would
# be re-parsed and re-folded, and a long URL in it RFC 2047-encoded.
WIRE_POLICY = email.policy.default.clone(refold_source="none")
FOLD_AT = 78  # RFC 5322: lines SHOULD be at most 78 characters ...
MAX_LINE = 998  # ... and MUST be at most 998


_LOCAL_SAFE = "!$'*+-.^_`{|}~"  # atext that needs no escaping in a mailto: URI (RFC 6068)
_URL_SAFE = "".join(chr(c) for c in range(33, 127))  # printable ASCII stays; existing %XX escapes too


def ascii_host(host: str) -> str:
    """An internationalised host name in its ASCII (IDNA, `xn--`) form; an ASCII one as it is."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:  # not a valid IDN: still never raw UTF-8 in a header
        return quote(host, safe="")


def ascii_url(url: str) -> str:
    """`url` in plain ASCII, as headers need it: the host in IDNA form, anything else that is not ASCII
    percent-encoded as UTF-8 (what a browser sends for the same link)."""
    if url.isascii():
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.hostname and not parts.hostname.isascii():
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = (quote(userinfo, safe=_URL_SAFE) + "@" if userinfo else "") + ascii_host(parts.hostname)
        netloc += f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            quote(parts.path, safe=_URL_SAFE),
            quote(parts.query, safe=_URL_SAFE),
            quote(parts.fragment, safe=_URL_SAFE),
        )
    )


def mailto_uri(address: str, subject: str) -> str:
    """A `mailto:` URI in plain ASCII (RFC 6068): the domain in IDNA form, a UTF-8 local part %-encoded."""
    local, _, domain = address.rpartition("@")
    if not local:
        return f"mailto:{quote(address, safe='')}?subject={quote(subject)}"
    return f"mailto:{quote(local, safe=_LOCAL_SAFE)}@{ascii_host(domain)}?subject={quote(subject)}"


def new_message() -> EmailMessage:
    """An empty message that keeps the headers set with `set_ascii_header` as they are on the wire."""
    return EmailMessage(policy=WIRE_POLICY)


def _top_level_commas(value: str) -> list[str]:
    """`value` split after each comma outside <...> and "..." (commas kept): `<a>, <b>` -> `<a>,`, ` <b>`."""
    parts, start, angle, quoted = [], 0, 0, False
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "<":
            angle += 1
        elif not quoted and ch == ">":
            angle = max(angle - 1, 0)
        elif ch == "," and not quoted and angle == 0:
            parts.append(value[start : i + 1])
            start = i + 1
    parts.append(value[start:])
    return [p for p in parts if p.strip()]


def fold_ascii_header(name: str, value: str) -> str:
    """`value` as it goes on the wire after `name: `: plain ASCII, folded after commas when the line would
    pass 78 characters (a URL is never cut). InvalidInput for anything else: non-ASCII text (encode it
    first), a line break (header injection), or a piece longer than SMTP's 998-character line."""
    if not name or not name.isascii() or not all(33 <= ord(c) <= 126 and c != ":" for c in name):
        raise InvalidInput(f"{name!r} is not a header name")
    if not value.isascii():
        raise InvalidInput(f"the {name} header must be plain ASCII (encode it first): {value[:80]!r}")
    if any(c in value for c in "\r\n\0"):
        raise InvalidInput(f"the {name} header contains a line break")
    lines: list[str] = []
    line = f"{name}:"
    for n, piece in enumerate(_top_level_commas(" ".join(value.split()))):
        if n and len(line) + len(piece) > FOLD_AT:  # piece starts with its space
            lines.append(line)
            line = ""
        line += " " + piece.strip()
    lines.append(line)
    if any(len(x) > MAX_LINE for x in lines):
        raise InvalidInput(f"the {name} header has a line longer than {MAX_LINE} characters")
    return "\n".join(lines)[len(name) + 2 :]


def set_ascii_header(msg: EmailMessage, name: str, value: str) -> None:
    """Add the header `name` to `msg` (made by `new_message`) exactly as `fold_ascii_header` writes it."""
    msg.set_raw(name, fold_ascii_header(name, value))


class MailError(PaperboyError):
    """A message could not be handed to the mail server; `code` and `reply` are the server's, when it said."""

    def __init__(self, message: str, *, code: int | None = None, reply: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reply = reply


class TemporaryFailure(MailError):
    """Try this message again later: a 4xx reply, or the connection broke while it was being sent."""


class ServerUnavailable(TemporaryFailure):
    """The mail server cannot be reached or refuses us (connection refused, TLS, login): the message was not
    tried, and the next ones would fail the same way."""


class PermanentFailure(MailError):
    """A 5xx reply: this message will not be accepted. `recipient`: the address itself was refused."""

    def __init__(self, message: str, *, code: int | None = None, reply: str = "", recipient: bool) -> None:
        super().__init__(message, code=code, reply=reply)
        self.recipient = recipient


class Mailer(Protocol):
    """What the sender needs from a transport: SMTP here; an HTTP mail API or a test double can stand in."""

    def send(self, msg: EmailMessage) -> None:
        """Hand `msg` over for delivery to its To addresses, or raise a `MailError`."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SmtpUrl:
    """A parsed PAPERBOY_SMTP_URL. `tls`: implicit (smtps), starttls (required), opportunistic (STARTTLS when
    the server offers it) or none (?starttls=never, for a local relay)."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: TlsMode

    def __repr__(self) -> str:  # never show the password
        user = f"{self.username}@" if self.username else ""
        return f"SmtpUrl({user}{self.host}:{self.port}, tls={self.tls})"


_STARTTLS: dict[str, TlsMode] = {"require": "starttls", "auto": "opportunistic", "never": "none"}


def parse_smtp_url(url: str) -> SmtpUrl:
    """smtp://[user[:password]@]host[:port][?starttls=auto|require|never] or smtps://…[:465].

    User and password are percent-decoded (write an @ in a password as %40). Raises InvalidInput saying
    what is wrong; the message never contains the password.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"the SMTP URL is malformed: {_without_password(exc)}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise InvalidInput(
            f"the SMTP URL must start with smtp:// or smtps://, not {scheme + '://' if scheme else 'nothing'}"
        )
    host = parts.hostname
    if not host:
        raise InvalidInput("the SMTP URL names no host, e.g. smtp://user:pass@mail.example:587")
    if parts.path not in ("", "/"):
        raise InvalidInput("the SMTP URL has a path; it takes only host, port, user, password and ?starttls=")
    if port == 0:
        raise InvalidInput("the SMTP URL's port must be between 1 and 65535")
    tls: TlsMode = "implicit" if scheme == "smtps" else "opportunistic"
    for key, values in parse_qs(parts.query, keep_blank_values=True).items():
        if key != "starttls":
            raise InvalidInput(f"the SMTP URL has an unknown parameter {key!r} (only starttls=)")
        if scheme == "smtps":
            raise InvalidInput("starttls= is for smtp:// URLs; smtps:// is TLS from the start")
        mode = _STARTTLS.get(values[-1].lower())
        if mode is None:
            raise InvalidInput(f"starttls={values[-1]!r} in the SMTP URL: use auto, require or never")
        tls = mode
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise InvalidInput("the SMTP URL has a password but no user")
    return SmtpUrl(
        host=host,
        port=port or (465 if scheme == "smtps" else 25),
        username=username,
        password=password,
        tls=tls,
    )


def _without_password(exc: Exception) -> str:
    # urlsplit's messages quote the bad port, never the userinfo; keep it that way if that ever changes
    text = str(exc)
    return text if "@" not in text else "invalid port or host"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


class SmtpMailer:
    """Sends through one SMTP server, keeping up to `connections` connections open for reuse.

    Thread-safe: each send borrows a connection (checked with NOOP before reuse, replaced once when the
    server has dropped it) and returns it afterwards. Certificates are verified unless `ssl_context` says
    otherwise. Credentials are only sent over TLS, except to a loopback address.
    """

    def __init__(
        self,
        url: str | SmtpUrl,
        *,
        connections: int = 2,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        self.url = url if isinstance(url, SmtpUrl) else parse_smtp_url(url)
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.local_hostname = local_hostname
        self._slots = threading.BoundedSemaphore(connections)
        self._idle: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> SmtpMailer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def send(self, msg: EmailMessage) -> None:
        with self._slots:
            if self._closed:
                raise RuntimeError("this SmtpMailer is closed")
            client = self._borrow()
            reusable = False
            try:
                self._transact(client, msg)
                reusable = True
            except (PermanentFailure, TemporaryFailure) as exc:
                # a refusal leaves the session usable (smtplib sent RSET); a broken connection does not
                reusable = exc.code is not None and exc.code != 421
                raise
            finally:
                if reusable and not self._closed:
                    with self._lock:
                        self._idle.append(client)
                else:
                    _quietly_close(client)

    def close(self) -> None:
        """Say QUIT on every idle connection. Sends in progress finish and then close their connection."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            _quietly_close(client)

    def _borrow(self) -> smtplib.SMTP:
        while True:
            with self._lock:
                client = self._idle.pop() if self._idle else None
            if client is None:
                return self._connect()
            try:
                code, _ = client.noop()
            except (smtplib.SMTPException, OSError):
                code = 0
            if code == 250:
                return client
            _quietly_close(client)  # dropped while idle (the server's timeout): try the next, else reconnect

    def _connect(self) -> smtplib.SMTP:
        u = self.url
        where = f"{u.host}:{u.port}"
        client: smtplib.SMTP | None = None
        try:
            if u.tls == "implicit":
                client = smtplib.SMTP_SSL(
                    u.host,
                    u.port,
                    local_hostname=self.local_hostname,
                    timeout=self.timeout,
                    context=self.ssl_context,
                )
            else:
                client = smtplib.SMTP(
                    u.host, u.port, local_hostname=self.local_hostname, timeout=self.timeout
                )
            client.ehlo()
            secure = u.tls == "implicit"
            if u.tls in ("starttls", "opportunistic") and client.has_extn("starttls"):
                client.starttls(context=self.ssl_context)
                client.ehlo()
                secure = True
            elif u.tls == "starttls":
                raise ServerUnavailable(f"{where} does not offer STARTTLS, and the SMTP URL requires it")
            if u.username:
                if not secure and not _is_loopback(u.host):
                    raise ServerUnavailable(
                        f"{where} offers no TLS: refusing to send the SMTP password in clear text "
                        "(use smtps:// or a server with STARTTLS)"
                    )
                client.login(u.username, u.password or "")
            return client
        except ServerUnavailable:
            if client is not None:
                _quietly_close(client)
            raise
        except smtplib.SMTPResponseException as exc:
            if client is not None:
                _quietly_close(client)
            what = "login" if isinstance(exc, smtplib.SMTPAuthenticationError) else "greeting"
            raise ServerUnavailable(
                f"{where} refused the {what}: {exc.smtp_code} {_text(exc.smtp_error)}",
                code=exc.smtp_code,
                reply=_text(exc.smtp_error),
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, unreachable, timeout, TLS, no AUTH offered
            if client is not None:
                _quietly_close(client)
            raise ServerUnavailable(f"cannot reach the mail server {where}: {exc!r}") from exc

    def _transact(self, client: smtplib.SMTP, msg: EmailMessage) -> None:
        try:
            client.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            # one recipient per message here: report the first
            addr, (code, reply) = next(iter(exc.recipients.items()))
            raise _classify(
                code, _text(reply), f"the server refused the recipient {addr}", recipient=True
            ) from exc
        except smtplib.SMTPSenderRefused as exc:
            text = _text(exc.smtp_error)
            if 400 <= exc.smtp_code < 500:
                raise TemporaryFailure(
                    f"the server deferred the message (MAIL FROM): {exc.smtp_code} {text}",
                    code=exc.smtp_code,
                    reply=text,
                ) from exc
            if exc.smtp_code == 552:  # too big: this message, not the sender
                raise PermanentFailure(
                    f"the server refused the message: {exc.smtp_code} {text}",
                    code=exc.smtp_code,
                    reply=text,
                    recipient=False,
                ) from exc
            raise ServerUnavailable(
                f"the server refused our sender address {exc.sender!r}: {exc.smtp_code} {text}",
                code=exc.smtp_code,
                reply=text,
            ) from exc
        except smtplib.SMTPDataError as exc:
            code, text = exc.smtp_code, _text(exc.smtp_error)
            # 550/551/553 after DATA are about the mailbox (single-recipient messages); 552/554 the content
            raise _classify(
                code, text, "the server refused the message", recipient=code in (550, 551, 553)
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:  # e.g. an internationalised address, no SMTPUTF8
            raise PermanentFailure(f"the server cannot take this message: {exc}", recipient=False) from exc
        except smtplib.SMTPResponseException as exc:
            raise _classify(
                exc.smtp_code, _text(exc.smtp_error), "the server refused the message", recipient=False
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:  # disconnected, reset, timed out mid-way
            raise TemporaryFailure(f"the connection to the mail server broke: {exc!r}") from exc


def _classify(code: int, reply: str, what: str, *, recipient: bool) -> MailError:
    if 500 <= code < 600:
        return PermanentFailure(f"{what}: {code} {reply}", code=code, reply=reply, recipient=recipient)
    return TemporaryFailure(f"{what}: {code} {reply}", code=code, reply=reply)


def _quietly_close(client: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        client.close()
