"""Text and date normalisation shared by all sources (pure functions)."""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, date, datetime, time

_PARAGRAPH = re.compile(r"\n[ \t]{2,}|\n\s*\n")
_SPACE = re.compile(r"\s+")


def clean_title(text: str) -> str:
    """Collapse arXiv's hard line breaks and runs of spaces."""
    return _SPACE.sub(" ", text).strip()


def clean_abstract(text: str) -> str:
    """Join hard-wrapped lines; keep arXiv's paragraph breaks (a newline then indentation) as blank lines."""
    paragraphs = (_SPACE.sub(" ", p).strip() for p in _PARAGRAPH.split(text.strip("\n")))
    return "\n\n".join(p for p in paragraphs if p)


def parse_datetime(value: str | None) -> datetime | None:
    """ISO 8601 (with Z) or RFC 2822 dates, as aware UTC datetimes; None when empty."""
    if not value:
        return None
    value = value.strip()
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        try:
            dt = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a date: {value!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def day_start(d: date) -> datetime:
    return datetime.combine(d, time(0, 0), tzinfo=UTC)


_WITHDRAWN = re.compile(r"\b(this (paper|article|submission) (has been|is) withdrawn|withdrawn by)\b", re.I)


def looks_withdrawn(comments: str | None, abstract: str | None = None) -> bool:
    """arXiv marks a withdrawal in the comments (and often the abstract) of the withdrawing version."""
    return any(t and _WITHDRAWN.search(t) for t in (comments, abstract))
