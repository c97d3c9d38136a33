"""A composed digest as a mail: subject, plain text and HTML from templates/email/ (the site's Jinja
environment and filters), and the headers bulk senders must carry (RFC 8058 one-click unsubscribe, List-Id).
Pure: links and names come in as arguments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr
from urllib.parse import urlsplit

from jinja2 import Environment

from paperboy.digest.compose import Digest, Section
from paperboy.digest.schedule import Due
from paperboy.mailer import ascii_host, ascii_url, mailto_uri

SNIPPET_CHARS = 200  # about two lines of a mail client's width


@dataclass(frozen=True)
class Links:
    site_name: str
    public_url: str
    unsubscribe: str
    manage: str
    feed: str
    sender_address: str  # the bare address of From, for the mailto: unsubscribe


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    html: str
    headers: dict[str, str]


def host_of(url: str) -> str:
    """The URL's host, in ASCII (IDNA) form: for Message-IDs and List-Id."""
    return ascii_host(urlsplit(url).hostname or "localhost")


def _authors_line(authors: Sequence[str]) -> str:
    if len(authors) <= 3:
        return ", ".join(authors)
    return f"{', '.join(authors[:3])} and {len(authors) - 3} more"


def _section_title(section: Section) -> str:
    if section.kind == "trending":
        return "Trending"
    if section.kind == "for_you":
        return "For you"
    if section.kind == "author":
        return f"New from {section.title}"
    if section.kind == "member":
        return f"Upvoted or submitted by @{section.title}"
    if section.kind == "org":
        return f"Featured by {section.title}"
    return f"In your topics: {section.title}"


def subject(digest: Digest, due: Due, site_name: str) -> str:
    n = digest.total
    when = (
        f"week {due.local_day.isocalendar()[1]}"
        if due.cadence == "weekly"
        else f"{due.local_day:%a, %b} {due.local_day.day}"
    )
    return f"{site_name}: {n} paper{'s' if n != 1 else ''} for {when}"


def list_id(site_name: str, list_host: str) -> str:
    """`List-Id` (RFC 2919): the site's name as the phrase (quoted when it needs it, RFC 2047-encoded when it
    is not ASCII) and `<digest.HOST>`, the list's plain ASCII identifier."""
    phrase = " ".join(f"{site_name} digest".split())
    if not phrase.isascii():
        phrase = " ".join(Header(phrase, "utf-8").encode().split())  # encoded-words, on one line
    return formataddr((phrase, f"digest.{ascii_host(list_host)}"))


def headers(links: Links, list_host: str) -> dict[str, str]:
    """The bulk-mail headers of a digest, every one plain ASCII as it must be on the wire: a mail client
    reads the List-Unsubscribe URLs only as written (RFC 2369, 8058), never RFC 2047-encoded."""
    by_mail = mailto_uri(links.sender_address, "unsubscribe")
    return {
        "List-Unsubscribe": f"<{ascii_url(links.unsubscribe)}>, <{by_mail}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": list_id(links.site_name, list_host),
        "Auto-Submitted": "auto-generated",
        "Precedence": "bulk",
    }


def render(env: Environment, digest: Digest, due: Due, links: Links) -> Mail:
    base = links.public_url.rstrip("/")
    title = subject(digest, due, links.site_name)
    context = {
        "digest": digest,
        "site": {"name": links.site_name},
        "subject": title,
        "heading": f"What is new for you, {due.label}"
        if due.cadence == "daily"
        else f"Your week in papers, {due.label}",
        "intro": f"{digest.total} paper{'s' if digest.total != 1 else ''}: what is trending on "
        f"{links.site_name}, then what is new in your topics.",
        "email": digest.subscription.email,
        "cadence_word": "weekly" if due.cadence == "weekly" else "daily",
        "manage_url": links.manage,
        "unsubscribe_url": links.unsubscribe,
        "feed_url": links.feed,
        "paper_url": lambda arxiv_id: f"{base}/papers/{arxiv_id}",
        "authors_line": _authors_line,
        "section_title": _section_title,
        "snippet_chars": SNIPPET_CHARS,
    }
    html = env.get_template("email/digest.html").render(**context)
    text = env.get_template("email/digest.txt").render(**context)
    return Mail(title, text, html, headers(links, host_of(base)))
