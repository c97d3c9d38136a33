"""The ingest jobs behind `paperboy ingest …` and the serve-time scheduler: where each source resumes from.

Each job reads its cursor, asks its source for pages from there, and hands them to run_ingest. Days and
ranges are computed by pure functions so that the resume rules are tested without a network.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from paperboy.errors import InvalidInput
from paperboy.ingest import IngestResult, Progress, run_ingest
from paperboy.models import Featuring, Page, Record
from paperboy.sources import arxiv_api, arxiv_oai, arxiv_rss, huggingface, snapshot
from paperboy.sources.http import PoliteClient
from paperboy.store import ingest_state
from paperboy.store.merge import merge_paper

Clock = Callable[[], datetime]

HF_CURSOR = "huggingface:api"


def hf_days(
    *, today: date, cursor_day: date | None, day: date | None, since: date | None, default_days: int
) -> list[date]:
    """Which days an HF run fetches.

    `--date D` fetches D alone. `--since D` fetches D..today, but resumes from the stored cursor when it is
    later than D (the cursor's own day is fetched again: its list may have grown since). With neither, the
    run resumes from the cursor, or starts `default_days` back on an empty database. Weekends are skipped:
    Hugging Face publishes no daily list on Saturdays and Sundays.
    """
    if day is not None:
        if day > today:
            raise InvalidInput(f"--date {day} is in the future")
        return [day]
    start = since if since is not None else today - timedelta(days=default_days - 1)
    if cursor_day is not None and (cursor_day > start or since is None):
        # Without --since the cursor is the resume point even when it is older than the default window:
        # starting at the window would silently skip the days between the last run and the window.
        start = cursor_day
    if start > today:
        raise InvalidInput(f"--since {start} is in the future")
    days = []
    d = start
    while d <= today:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


def ingest_hf_api(
    engine: Engine,
    client: PoliteClient,
    endpoint: str,
    now: Clock,
    *,
    day: date | None = None,
    since: date | None = None,
    default_days: int = 3,
    progress: Progress | None = None,
) -> IngestResult:
    with engine.connect() as conn:
        cursor = ingest_state.get_cursor(conn, HF_CURSOR)
    cursor_day = date.fromisoformat(cursor["day"]) if cursor and cursor.get("day") else None
    days = hf_days(
        today=now().date(),
        cursor_day=cursor_day if day is None else None,
        day=day,
        since=since,
        default_days=default_days,
    )
    pages = huggingface.fetch_days(client, endpoint, days)
    # An explicit --date must not move the resume point of the regular sync backwards.
    cursor_name = HF_CURSOR if day is None else f"{HF_CURSOR}:{day.isoformat()}"
    return run_ingest(engine, "huggingface", pages, now, cursor_name=cursor_name, progress=progress)


def _file_cursor_name(kind: str, path: Path) -> str:
    stat = path.stat()
    # a file name's bytes that are not UTF-8 written as \xNN: a name the database can store (unchanged for
    # every UTF-8 name, and two different names never meet)
    shown = os.fsencode(path.resolve()).decode("utf-8", "backslashreplace")
    return f"{kind}:{shown}:{stat.st_size}:{int(stat.st_mtime)}"


def ingest_hf_file(engine: Engine, path: Path, now: Clock, progress: Progress | None = None) -> IngestResult:
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    name = _file_cursor_name("huggingface-file", path)
    with engine.connect() as conn:
        cursor = ingest_state.get_cursor(conn, name) or {}
    pages = huggingface.read_file(path, skip_units=int(cursor.get("units", 0)))
    return run_ingest(engine, "huggingface-file", pages, now, cursor_name=name, progress=progress)


def ingest_snapshot(
    engine: Engine,
    path: Path,
    now: Clock,
    progress: Progress | None = None,
    page_size: int = snapshot.PAGE_SIZE,
) -> IngestResult:
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    name = _file_cursor_name("snapshot", path)
    with engine.connect() as conn:
        cursor = ingest_state.get_cursor(conn, name) or {}
    pages = snapshot.read_snapshot(path, skip_lines=int(cursor.get("line", 0)), page_size=page_size)
    return run_ingest(engine, "snapshot", pages, now, cursor_name=name, progress=progress)


DEMO_FILE = Path(__file__).resolve().parent / "demo" / "seed_papers.json"
DEMO_CURSOR = "demo"


def load_demo(engine: Engine, now: Clock, path: Path = DEMO_FILE) -> IngestResult:
    """Load the bundled demo papers (the seed page's papers), featured on today's list as source "demo".

    Used by `paperboy serve` on an empty database when Hugging Face cannot be reached (or with --no-sync).
    """
    from dataclasses import replace

    from paperboy.models import Page, Record

    loaded_at = now()
    today = loaded_at.date()
    records = [
        Record(r.paper, replace(r.featuring, source="demo", submitted_at=loaded_at) if r.featuring else None)
        for r in huggingface.read_records(path, day=today)
    ]
    pages = [Page(records, {"loaded": today.isoformat()})]
    return run_ingest(engine, "demo", pages, now, cursor_name=DEMO_CURSOR)


# --- arXiv: the category RSS listing enriched through the Atom API, and OAI-PMH backfills -----------------

ARXIV_SOURCE = "arxiv"


def arxiv_cursor_name(category: str) -> str:
    return f"arxiv:{category}"


def oai_cursor_name(set_spec: str | None, metadata_prefix: str) -> str:
    return f"oai:{set_spec or '*'}:{metadata_prefix}"


def _arxiv_pages(
    client: PoliteClient,
    rss_base_url: str,
    api_url: str,
    category: str,
    *,
    stored_day: date | None,
    cross_lists: bool,
    feature_new: bool,
    since: date | None,
    force: bool,
    batch_size: int,
) -> Iterator[Page]:
    listing = arxiv_rss.fetch_listing(client, rss_base_url, category)
    day = listing.day
    if day is None:
        return  # an empty feed without a date: nothing announced, nothing to remember
    if not force and stored_day is not None and stored_day >= day:
        return  # this announcement is stored already
    if since is not None and day < since:
        return  # the feed's day is older than what was asked for
    items: dict[str, arxiv_rss.ListingItem] = {}
    for item in listing.items:
        if cross_lists or not item.is_cross:
            items.setdefault(item.arxiv_id, item)
    cursor = {"day": day.isoformat()}
    if not items:
        yield Page([], cursor, 1)
        return
    ids = list(items)
    batches = [ids[i : i + batch_size] for i in range(0, len(ids), batch_size)]
    fetched = arxiv_api.fetch_by_ids(client, api_url, ids, batch_size=batch_size)
    for n, (batch, api_papers) in enumerate(zip(batches, fetched, strict=True), 1):
        from_api = {p.arxiv_id: p for p in api_papers}
        records = []
        for arxiv_id in batch:
            item = items[arxiv_id]
            api = from_api.get(arxiv_id)
            # The API adds dates, comments, journal ref, DOI and the primary category; the feed adds the
            # license. The newer version of the two wins field by field, as in the store.
            paper = merge_paper(item.paper, api) if api is not None else item.paper
            featuring = None
            if feature_new and item.announce_type == "new":
                featuring = Featuring(arxiv_id=arxiv_id, day=day, source=ARXIV_SOURCE)
            records.append(Record(paper, featuring))
        # Only the last page marks the day done: an interrupted run does the whole day again.
        yield Page(records, cursor if n == len(batches) else None, len(batches))


def ingest_arxiv(
    engine: Engine,
    client: PoliteClient,
    rss_base_url: str,
    api_url: str,
    category: str,
    now: Clock,
    *,
    cross_lists: bool = True,
    feature_new: bool = True,
    since: date | None = None,
    progress: Progress | None = None,
    force: bool = False,
    batch_size: int = arxiv_api.BATCH_SIZE,
) -> IngestResult:
    """Today's announcement of one category: the RSS listing, enriched in id batches through the Atom API.

    The feed holds only the latest announcement day, so a run whose cursor (`arxiv:<category>`, `{"day"}`)
    already holds that day does nothing unless `force`; `since` later than the feed's day also does nothing.
    Older days come from OAI-PMH (`ingest_oai`). New announcements (not cross-lists or replacements) are
    featured on their announcement day when `feature_new`.
    """
    category = arxiv_rss.check_category(category)
    name = arxiv_cursor_name(category)
    with engine.connect() as conn:
        cursor = ingest_state.get_cursor(conn, name)
    stored_day = date.fromisoformat(cursor["day"]) if cursor and cursor.get("day") else None
    pages = _arxiv_pages(
        client,
        rss_base_url,
        api_url,
        category,
        stored_day=stored_day,
        cross_lists=cross_lists,
        feature_new=feature_new,
        since=since,
        force=force,
        batch_size=batch_size,
    )
    return run_ingest(engine, ARXIV_SOURCE, pages, now, cursor_name=name, progress=progress)


def _oai_pages(
    client: PoliteClient,
    oai_url: str,
    set_spec: str | None,
    metadata_prefix: str,
    *,
    from_date: date | None,
    token: str | None,
    list_date: date | None,
) -> Iterator[Page]:
    if token:
        yielded = False
        try:
            for page in arxiv_oai.list_records(
                client,
                oai_url,
                metadata_prefix=metadata_prefix,
                set_spec=set_spec,
                from_date=from_date,
                resumption_token=token,
                list_date=list_date,
            ):
                yielded = True
                yield page
            return
        except arxiv_oai.OaiError as exc:
            # Tokens expire; a stale stored one means: start the same list again from its `from` date.
            if exc.code != "badResumptionToken" or yielded:
                raise
    yield from arxiv_oai.list_records(
        client, oai_url, metadata_prefix=metadata_prefix, set_spec=set_spec, from_date=from_date
    )


def ingest_oai(
    engine: Engine,
    client: PoliteClient,
    oai_url: str,
    set_spec: str | None,
    now: Clock,
    *,
    from_date: date | None = None,
    metadata_prefix: str = "arXivRaw",
    progress: Progress | None = None,
) -> IngestResult:
    """OAI-PMH ListRecords of a set, resumable page by page through the cursor `oai:<set>:<prefix>`.

    Without `from_date`, a run continues the stored list (its resumption token) when the last run stopped
    mid-list, or else asks for what changed since the stored `from` date (everything, on the first run).
    An explicit `from_date` starts a new list from that day.
    """
    if metadata_prefix not in arxiv_oai.PREFIXES:
        raise InvalidInput(f"metadata prefix must be one of {', '.join(arxiv_oai.PREFIXES)}")
    name = oai_cursor_name(set_spec, metadata_prefix)
    with engine.connect() as conn:
        cursor = ingest_state.get_cursor(conn, name) or {}
    token: str | None = None
    list_date: date | None = None
    if from_date is None:
        token = cursor.get("resumption_token") or None
        from_date = date.fromisoformat(cursor["from"]) if cursor.get("from") else None
        list_date = date.fromisoformat(cursor["list_date"]) if token and cursor.get("list_date") else None
    pages = _oai_pages(
        client, oai_url, set_spec, metadata_prefix, from_date=from_date, token=token, list_date=list_date
    )
    return run_ingest(engine, f"oai:{metadata_prefix}", pages, now, cursor_name=name, progress=progress)
