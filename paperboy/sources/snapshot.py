"""Bulk JSON lines: the Kaggle arXiv snapshot, and the daily-listing format (`listing_date`, list fields).

Gzipped or not (told by the magic bytes). Pages of PAGE_SIZE lines; each page's cursor is the number of lines
done, so an interrupted import resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from paperboy.errors import SourceError
from paperboy.models import Page, Paper, Record, parse_arxiv_id
from paperboy.sources.files import UNREADABLE, count_lines, open_text
from paperboy.sources.text import (
    clean_abstract,
    clean_title,
    day_start,
    looks_withdrawn,
    parse_datetime,
    split_authors,
)

PAGE_SIZE = 2000


def _names(raw: dict[str, Any]) -> tuple[str, ...]:
    parsed = raw.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        names = []
        for parts in parsed:
            last, first, suffix = [*list(parts), "", "", ""][:3]
            names.append(clean_title(" ".join(p for p in (first, last, suffix) if p)))
        return tuple(n for n in names if n)
    authors = raw.get("authors")
    if isinstance(authors, list):
        return tuple(clean_title(str(a)) for a in authors if str(a).strip())
    if isinstance(authors, str):  # commas inside "(affiliation, city)" would split a name in two
        return split_authors(authors)
    return ()


def parse_line(raw: Any, where: str) -> Paper:
    """One snapshot or listing record as a Paper; SourceError when a required field is missing."""
    if not isinstance(raw, dict):
        raise SourceError(f"{where}: expected a JSON object")
    parsed = parse_arxiv_id(str(raw.get("id") or ""))
    title = raw.get("title")
    abstract = raw.get("abstract", raw.get("summary"))
    if parsed is None or not title or abstract is None:
        raise SourceError(f"{where}: a record needs an arXiv `id`, a `title` and an abstract")
    arxiv_id, version = parsed
    cats = raw.get("categories") or []
    categories = tuple(cats.split() if isinstance(cats, str) else (str(c) for c in cats))
    comments = raw.get("comments", raw.get("comment"))
    versions = raw.get("versions") or []
    try:
        published = updated = None
        if versions:
            published = parse_datetime(versions[0].get("created"))
            updated = parse_datetime(versions[-1].get("created"))
            version = int(str(versions[-1].get("version", "v1")).lstrip("v"))
        elif raw.get("listing_date"):
            published = day_start(date.fromisoformat(str(raw["listing_date"])))
        if raw.get("update_date") and updated is None:
            updated = day_start(date.fromisoformat(str(raw["update_date"])))
    except (ValueError, AttributeError, TypeError) as exc:
        raise SourceError(f"{where}: bad date or version ({exc})") from exc
    return Paper(
        arxiv_id=arxiv_id,
        version=version,
        title=clean_title(str(title)),
        abstract=clean_abstract(str(abstract)),
        authors=_names(raw),
        categories=categories,
        primary_category=categories[0] if categories else None,
        published_at=published,
        updated_at=updated,
        comments=clean_title(comments) if comments else None,
        journal_ref=raw.get("journal-ref") or None,
        doi=raw.get("doi") or None,
        license=raw.get("license") or None,
        withdrawn=looks_withdrawn(comments, str(abstract)),
    )


def read_snapshot(path: Path, skip_lines: int = 0, page_size: int = PAGE_SIZE) -> Iterator[Page]:
    """Pages of Records; the cursor `{"line": n}` says n lines are stored, `total` how many the file has
    (counted first, for the progress bar's share done and time left)."""
    total = count_lines(path)
    batch = []
    n = 0
    done = skip_lines  # the line the last cursor handed out (or the resume point) covers
    with open_text(path) as f:
        try:
            for n, line in enumerate(f, 1):
                if n <= skip_lines:
                    continue
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SourceError(f"{path}:{n}: not JSON ({exc.msg}); the file may be truncated") from exc
                batch.append(Record(parse_line(raw, f"{path}:{n}")))
                if len(batch) >= page_size:
                    yield Page(batch, {"line": n}, total)
                    batch = []
                    done = n
        except UNREADABLE as exc:
            raise SourceError(
                f"{path}: unreadable after line {n} ({exc}); the file may be truncated"
            ) from exc
    if batch or n > done:  # no empty trailing page when the file ends on a page boundary
        yield Page(batch, {"line": n}, total)
