"""The Jinja environment shared by pages, feeds and (later) emails, with its filters. Pure helpers."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

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
    )
    return env
