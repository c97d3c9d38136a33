"""A composed digest as a mail: subject, plain text and HTML from templates/email/ (the site's Jinja
environment and filters), and the headers bulk senders must carry (RFC 8058 one-click unsubscribe, List-Id).
Pure: links and names come in as arguments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from jinja2 import Environment

from paperboy.digest.compose import Digest, Section
from paperboy.digest.schedule import Due

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
    return urlsplit(url).hostname or "localhost"


def _authors_line(authors: Sequence[str]) -> str:
    if len(authors) <= 3:
        return ", ".join(authors)
    return f"{', '.join(authors[:3])} and {len(authors) - 3} more"


def _section_title(section: Section) -> str:
    if section.kind == "trending":
        return "Trending"
    if section.kind == "author":
        return f"New from {section.title}"
    return f"In your topics: {section.title}"


def subject(digest: Digest, due: Due, site_name: str) -> str:
    n = digest.total
    when = (
        f"week {due.local_day.isocalendar()[1]}"
        if due.cadence == "weekly"
        else f"{due.local_day:%a, %b} {due.local_day.day}"
    )
    return f"{site_name}: {n} paper{'s' if n != 1 else ''} for {when}"


def headers(links: Links, list_host: str) -> dict[str, str]:
    mailto = f"mailto:{links.sender_address}?subject={quote('unsubscribe')}"
    return {
        "List-Unsubscribe": f"<{links.unsubscribe}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"{links.site_name} digest <digest.{list_host}>",
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
