"""Hugging Face daily papers: the `/api/daily_papers` API and saved dumps of it.

Every schema seen since 2023 loads: the 2024 items (`mediaUrl`, no AI fields), the 2025-2026 items (AI summary
and keywords, GitHub, organization), items saved as Python `repr` strings, the `{status, date, count, data}`
wrapper, JSON lines of `{"date", "response"}` days, and the scraped `{arxiv_id: {...}}` dictionary.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from paperboy.errors import SourceError
from paperboy.models import Featuring, Page, Paper, Record, Submitter, parse_arxiv_id
from paperboy.sources.files import UNREADABLE, open_text
from paperboy.sources.http import PoliteClient
from paperboy.sources.text import clean_abstract, clean_title, parse_datetime

SOURCE = "huggingface"
PAGE_LIMIT = 100


def _as_dict(item: Any, where: str) -> dict[str, Any]:
    if isinstance(item, str):  # some archives hold each item as a Python repr
        try:
            item = ast.literal_eval(item)
        except (ValueError, SyntaxError) as exc:
            raise SourceError(f"{where}: item is neither an object nor a readable repr") from exc
    if not isinstance(item, dict):
        raise SourceError(f"{where}: expected an object, got {type(item).__name__}")
    return item


def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _submitter(value: Any) -> Submitter | None:
    if not isinstance(value, dict):
        return None
    name = value.get("name") or value.get("user")
    if not name:
        return None
    return Submitter(str(name), value.get("fullname"), value.get("avatarUrl"))


def _organization(*candidates: Any) -> tuple[str | None, str | None]:
    """(full name, slug) of the first organization object given: `{"name": "google", "fullname": "Google"}`
    is ("Google", "google"); either falls back on the other."""
    for c in candidates:
        if isinstance(c, dict) and (c.get("fullname") or c.get("name")):
            slug = str(c["name"])[:200] if c.get("name") else None
            return str(c.get("fullname") or c.get("name"))[:200], slug
    return None, None


def _discussion_id(value: Any) -> str | None:
    """Hugging Face's `discussionId` (24 hex digits); anything else is dropped."""
    if isinstance(value, str) and 0 < len(value) <= 64 and value.isalnum():
        return value
    return None


def parse_item(raw: Any, day: date | None = None, where: str = "item") -> Record:
    """One API item as a Record. `day` is the daily list it came from, when the caller knows it."""
    item = _as_dict(raw, where)
    paper = item.get("paper")
    if not isinstance(paper, dict):
        raise SourceError(f"{where}: no `paper` object")
    parsed = parse_arxiv_id(str(paper.get("id") or ""))
    title = paper.get("title") or item.get("title")
    abstract = paper.get("summary") or item.get("summary") or ""
    if parsed is None or not title:
        raise SourceError(f"{where}: `paper.id` is not an arXiv id or the title is missing")
    arxiv_id, _ = parsed
    authors = tuple(
        clean_title(str(a["name"]))
        for a in paper.get("authors") or []
        if isinstance(a, dict) and a.get("name")
    )
    keywords = paper.get("ai_keywords")
    try:
        published = parse_datetime(paper.get("publishedAt"))
        submitted = parse_datetime(paper.get("submittedOnDailyAt") or item.get("publishedAt"))
    except ValueError as exc:
        raise SourceError(f"{where}: {exc}") from exc
    feature_day = day or (submitted.date() if submitted else None)
    stars = paper.get("githubStars")
    p = Paper(
        arxiv_id=arxiv_id,
        title=clean_title(str(title)),
        abstract=clean_abstract(str(abstract)),
        authors=authors,
        published_at=published,
        github_repo=paper.get("githubRepo") or None,
        github_stars=_int(stars) if stars is not None else None,
        project_page=paper.get("projectPage") or None,
        ai_summary=paper.get("ai_summary") or None,
        ai_keywords=tuple(str(k) for k in keywords) if isinstance(keywords, list) and keywords else None,
    )
    featuring = None
    if feature_day is not None:
        org_fullname, org_name = _organization(item.get("organization"), paper.get("organization"))
        featuring = Featuring(
            arxiv_id=arxiv_id,
            day=feature_day,
            source=SOURCE,
            submitted_at=submitted,
            submitter=_submitter(item.get("submittedBy")) or _submitter(paper.get("submittedOnDailyBy")),
            upvotes=_int(paper.get("upvotes")),
            num_comments=_int(item.get("numComments")),
            thumbnail=item.get("thumbnail") or None,
            organization=org_fullname,
            organization_name=org_name,
            discussion_id=_discussion_id(paper.get("discussionId")),
        )
    return Record(p, featuring)


def parse_day(body: Any, day: date | None, where: str) -> list[Record]:
    """A daily_papers response (a list, or the `{status, date, count, data}` wrapper) as Records."""
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        if day is None and body.get("date"):
            day = _parse_day_str(str(body["date"]), where)
        body = body["data"]
    if not isinstance(body, list):
        raise SourceError(f"{where}: expected a JSON list of daily papers, got {type(body).__name__}")
    return [parse_item(item, day, f"{where}, item {i}") for i, item in enumerate(body)]


def _parse_day_str(value: str, where: str) -> date:
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise SourceError(f"{where}: bad date {value!r}") from exc


def _scraped(records: dict[str, Any], where: str) -> list[Record]:
    """The `{arxiv_id: {title, authors, abstract, publication_date, upvotes}}` scrape of hf.co/papers."""
    out = []
    for key, raw in records.items():
        if not isinstance(raw, dict) or parse_arxiv_id(key) is None:
            raise SourceError(f"{where}: entry {key!r} is not a paper")
        authors = raw.get("authors") or []
        if isinstance(authors, str):
            try:
                authors = ast.literal_eval(authors) if authors.startswith("[") else authors.split(", ")
            except (ValueError, SyntaxError):
                authors = [authors]
        item = {
            "paper": {
                "id": key,
                "title": raw.get("title"),
                "summary": raw.get("abstract") or "",
                "authors": [{"name": a} for a in authors],
                "upvotes": raw.get("upvotes"),
                "submittedOnDailyAt": raw.get("publication_date"),
            }
        }
        out.append(parse_item(item, None, f"{where}, {key}"))
    return out


def _read_whole(path: Path) -> str:
    try:
        with open_text(path) as f:
            return f.read()
    except UNREADABLE as exc:
        raise SourceError(f"{path}: cannot read ({exc})") from exc


def _unit_to_records(obj: Any, where: str) -> list[Record]:
    if isinstance(obj, list) or (isinstance(obj, dict) and "data" in obj):
        return parse_day(obj, None, where)
    if isinstance(obj, dict) and "response" in obj:
        day = _parse_day_str(str(obj["date"]), where) if obj.get("date") else None
        return parse_day(obj["response"], day, where)
    if isinstance(obj, dict) and "paper" in obj:
        return [parse_item(obj, None, where)]
    if isinstance(obj, dict) and obj and all(parse_arxiv_id(k) for k in list(obj)[:5]):
        return _scraped(obj, where)
    raise SourceError(f"{where}: not a shape of Hugging Face daily papers")


def _is_json_lines(path: Path) -> tuple[bool, int | None]:
    """Whether the file is JSON lines (its first line is a JSON value by itself), and how many lines it has.

    The count is for progress bars only: None when the file cannot be read to its end (a truncated file still
    gives up its good pages before the error).
    """
    first: str | None = None
    count = 0
    try:
        with open_text(path) as f:
            for line in f:
                if not line.strip():
                    continue
                count += 1
                if first is None:
                    first = line
                    try:
                        json.loads(first)
                    except json.JSONDecodeError:
                        return False, 1
    except UNREADABLE:
        return first is not None, None
    return first is not None, count


def _units(path: Path, skip_units: int, lines: bool) -> Iterator[tuple[int, str, Any]]:
    """(index, where, parsed JSON) for each unit after the first `skip_units`; JSON lines are streamed."""
    if not lines:
        text = _read_whole(path)
        try:
            whole = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{path}: not JSON ({exc.msg}); the file may be truncated") from exc
        if skip_units < 1:
            yield 0, str(path), whole
        return
    i = -1
    n = 0
    with open_text(path) as f:
        try:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                i += 1
                if i < skip_units:
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SourceError(f"{path}:{n}: not JSON ({exc.msg}); the file may be truncated") from exc
                yield i, f"{path}:{n}", obj
        except UNREADABLE as exc:
            raise SourceError(
                f"{path}: unreadable after line {n} ({exc}); the file may be truncated"
            ) from exc


def read_file(path: Path, skip_units: int = 0) -> Iterator[Page]:
    """Pages from a saved file (gzipped or not): one page per day line, or one page for a single document.

    The cursor of each page is `{"units": n}`: how many lines (or documents) are done, for resuming. JSON
    lines are streamed: a large dump is never held in memory whole, and a truncated one keeps the pages
    before the damage.
    """
    lines, total = _is_json_lines(path)
    # Single items per line are grouped so each transaction carries a useful amount of work.
    batch: list[Record] = []
    last = -1
    for i, where, obj in _units(path, skip_units, lines):
        batch.extend(_unit_to_records(obj, where))
        last = i
        if len(batch) >= 200 or not (isinstance(obj, dict) and "paper" in obj):
            yield Page(batch, {"units": i + 1}, total)
            batch = []
    if batch:
        yield Page(batch, {"units": last + 1}, total)


def read_records(path: Path, day: date) -> list[Record]:
    """Every item of a saved daily-papers list (a JSON array), featured on `day`."""
    try:
        body = json.loads(_read_whole(path))
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}: not JSON ({exc.msg})") from exc
    return parse_day(body, day, str(path))


def fetch_day(client: PoliteClient, endpoint: str, day: date) -> list[Record]:
    """Every daily paper of `day` from the API (it pages at PAGE_LIMIT)."""
    records: list[Record] = []
    url = f"{endpoint.rstrip('/')}/api/daily_papers"
    for p in range(50):
        response = client.get(url, params={"date": day.isoformat(), "limit": PAGE_LIMIT, "p": p})
        where = f"GET {response.url}"
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SourceError(f"{where}: response is not JSON (truncated?): {exc}") from exc
        page = parse_day(body, day, where)
        records.extend(page)
        if len(page) < PAGE_LIMIT:
            break
    return records


def fetch_days(client: PoliteClient, endpoint: str, days: Iterable[date]) -> Iterator[Page]:
    """One page per day; the cursor is the day, so a later run resumes there."""
    days = list(days)
    for d in days:
        yield Page(fetch_day(client, endpoint, d), {"day": d.isoformat()}, len(days))
