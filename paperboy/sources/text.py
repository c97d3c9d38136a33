"""Text and date normalisation shared by all sources (pure functions)."""

from __future__ import annotations

import dataclasses
import email.utils
import re
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar

from paperboy.models import Record
from paperboy.textcheck import scrub

T = TypeVar("T")

_PARAGRAPH = re.compile(r"\n[ \t]{2,}|\n\s*\n")
_SPACE = re.compile(r"\s+")


def clean_title(text: str) -> str:
    """Collapse arXiv's hard line breaks and runs of spaces (scrubbed as `scrub_record` does)."""
    return _SPACE.sub(" ", scrub(text)).strip()


def clean_abstract(text: str) -> str:
    """Join hard-wrapped lines; keep arXiv's paragraph breaks (a newline then indentation) as blank lines."""
    paragraphs = (_SPACE.sub(" ", p).strip() for p in _PARAGRAPH.split(scrub(text).strip("\n")))
    return "\n\n".join(p for p in paragraphs if p)


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, tuple):
        return tuple(_scrubbed(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return scrub_fields(value)
    return value


def scrub_fields(item: T) -> T:
    """A frozen dataclass with every string in it (nested dataclasses and tuples too) through
    `paperboy.textcheck.scrub`; the same object when nothing changed."""
    changes = {}
    for f in dataclasses.fields(item):  # type: ignore[arg-type]
        old = getattr(item, f.name)
        new = _scrubbed(old)
        if new is not old and new != old:
            changes[f.name] = new
    return dataclasses.replace(item, **changes) if changes else item  # type: ignore[type-var]


def scrub_record(record: Record) -> Record:
    """What upstream sent, made storable rather than refused: lone surrogates (JSON's `"\\ud800"`, which no
    database can encode) become U+FFFD, NUL (which PostgreSQL cannot store) and the other C0 controls but
    tab, line feed and carriage return are dropped, in every field. An upstream's odd byte must not stop an
    import (ingest.run_ingest applies this to every record)."""
    return scrub_fields(record)


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


_AND = re.compile(r"\s+and\s+|\s*&\s*", re.I)


def _strip_parentheses(text: str) -> str:
    """Drop every parenthesised group (affiliations like `(MIT)` or `((1) MIT, (2) CMU)`), nested or not."""
    out, depth = [], 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def split_authors(text: str | None) -> tuple[str, ...]:
    """arXiv's author string ("A. One, B. Two, and C. Three", affiliations in parentheses) as names."""
    if not text:
        return ()
    text = _strip_parentheses(text)
    names: list[str] = []
    for part in text.split(","):
        for name in _AND.split(part):
            name = clean_title(name)
            if name.lower().startswith("and "):
                name = name[4:].strip()
            if name and name.lower() not in ("and", "et al", "et al."):
                names.append(name)
    return tuple(names)
