"""The Jinja environment shared by pages, feeds and (later) emails, with its filters. Pure helpers."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def short_date(value: date | datetime | None, today: date | None = None) -> str:
    """`Dec 9` within the current year, `Apr 3, 2024` otherwise (as the seed page shows dates)."""
    if value is None:
        return ""
    d = value.date() if isinstance(value, datetime) else value
    if today is not None and d.year == today.year:
        return f"{d:%b} {d.day}"
    return f"{d:%b} {d.day}, {d.year}"


def long_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    d = value.date() if isinstance(value, datetime) else value
    return f"{d:%A}, {d:%B} {d.day}, {d.year}"


def snippet(text: str | None, length: int = 320) -> str:
    """The first `length` characters of an abstract, cut at a word boundary."""
    if not text:
        return ""
    text = " ".join(text.split())
    if len(text) <= length:
        return text
    cut = text[:length].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def arxiv_abs_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/abs/{arxiv_id}"


def arxiv_pdf_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/pdf/{arxiv_id}"


def safe_url(url: str | None) -> str:
    """`url` when it is an absolute http(s) URL, else "": links from upstream data never run script."""
    if not url:
        return ""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return url if parts.scheme in ("http", "https") and parts.netloc else ""


def avatar_url(url: str | None) -> str:
    """Hugging Face gives some avatars as site-relative paths (`/avatars/…`); make them absolute."""
    if not url:
        return ""
    if url.startswith("/") and not url.startswith("//"):
        return "https://huggingface.co" + url
    return safe_url(url)


def github_label(url: str | None) -> str:
    """`owner/repo` for a GitHub URL, the host and path for anything else."""
    parts = urlsplit(url or "")
    path = parts.path.strip("/").removesuffix(".git")
    if parts.netloc.lower() in ("github.com", "www.github.com") and path:
        return "/".join(path.split("/")[:2])
    return (parts.netloc + parts.path).rstrip("/")


def compact_number(n: int | None) -> str:
    """`950`, `1.2k`, `12k`, `3.4M`: how star counts are shown on cards."""
    if n is None:
        return ""
    if n < 1000:
        return str(n)
    for divisor, suffix in ((1_000_000, "M"), (1000, "k")):
        if n >= divisor:
            value = n / divisor
            text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
            return text.removesuffix(".0") + suffix
    return str(n)  # pragma: no cover


def rfc3339(value: date | datetime | None) -> str:
    """A UTC timestamp as Atom wants it: `2026-08-12T09:30:00Z` (dates count as midnight UTC)."""
    if value is None:
        return ""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Characters XML 1.0 forbids even when escaped (C0 controls other than tab, newline, carriage return).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: str | None) -> str:
    """Text with the characters XML cannot carry removed (autoescaping still applies afterwards)."""
    return _XML_ILLEGAL.sub("", value or "")


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "xml"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        short_date=short_date,
        long_date=long_date,
        snippet=snippet,
        arxiv_abs_url=arxiv_abs_url,
        arxiv_pdf_url=arxiv_pdf_url,
        safe_url=safe_url,
        avatar_url=avatar_url,
        github_label=github_label,
        compact_number=compact_number,
        rfc3339=rfc3339,
        xml_text=xml_text,
    )
    return env
