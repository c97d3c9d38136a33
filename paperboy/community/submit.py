"""Submitting a paper to the daily list by arXiv id or URL, as members do on huggingface.co/papers.

What a member types is parsed as an arXiv id (bare, versioned, `arXiv:`, an arxiv.org abs/pdf URL or a
huggingface.co/papers URL) or refused: no other URL is ever fetched. A paper already on the daily list is
not listed twice (AlreadySubmitted names it). A paper the hub does not have is looked up through the arXiv
Atom API. Members may submit papers up to SUBMIT_WINDOW after their first version appeared; admins any.
The paper is featured on today's list with the member as its submitter.

The web layer does the steps in two transactions so that no database transaction stays open while arXiv is
asked (see `paperboy.web.submit`); `submit_paper` is the whole operation in one, for callers that do not mind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from paperboy.errors import AlreadySubmitted, FieldInvalid, NotFound, SourceError
from paperboy.models import Featuring, Paper, Record, StoredPaper, Submitter, User, parse_arxiv_id
from paperboy.sources.arxiv_api import fetch_by_ids
from paperboy.sources.http import PoliteClient
from paperboy.store import papers
from paperboy.store.submissions import MEMBER_SOURCE

SUBMIT_WINDOW = timedelta(days=14)
FIELD = "arxiv"
MAX_TEXT = 300  # longer than any arXiv or Hugging Face paper URL
UNREACHABLE = "arXiv could not be reached; try again in a few minutes."

Fetch = Callable[[str], Paper | None]


@dataclass(frozen=True)
class SubmitResult:
    item: StoredPaper  # the paper as stored, with its new featuring
    fetched: bool  # looked up on arXiv (False: the hub had it already)

    @property
    def arxiv_id(self) -> str:
        return self.item.paper.arxiv_id


# --- the steps ----------------------------------------------------------------------------------------------


def parse_submission(text: str) -> str:
    """The arXiv id (without version) in what was typed, or FieldInvalid("arxiv", …). Fetches nothing."""
    text = (text or "").strip()
    if not text:
        raise FieldInvalid(FIELD, "Enter an arXiv id (e.g. 2501.01234) or the paper's arXiv URL.")
    shown = text if len(text) <= 80 else text[:80] + "…"
    parsed = parse_arxiv_id(text) if len(text) <= MAX_TEXT else None
    if parsed is None:
        raise FieldInvalid(
            FIELD,
            f"{shown!r} is not an arXiv id or arXiv URL: enter an id like 2501.01234 (or hep-th/9901001), "
            "an arxiv.org/abs or arxiv.org/pdf URL, or a huggingface.co/papers URL.",
        )
    return parsed[0]


def check_submittable(conn: Connection, arxiv_id: str) -> StoredPaper | None:
    """The stored paper (None when the hub does not have it); AlreadySubmitted when it was ever featured."""
    item = papers.get_paper(conn, arxiv_id)
    if item is not None and item.featuring is not None:
        f = item.featuring
        raise AlreadySubmitted(
            f"{arxiv_id} is already on the daily list (featured {f.day:%b} {f.day.day}, {f.day.year}).",
            arxiv_id,
        )
    return item


def fetch_submission(fetch: Fetch | None, arxiv_id: str) -> Paper:
    """The paper from arXiv. SourceError (502) when arXiv cannot be reached, NotFound for an unknown id."""
    if fetch is None:
        raise FieldInvalid(
            FIELD,
            f"This hub does not have {arxiv_id} and does not look papers up on arXiv: "
            "it cannot be submitted.",
        )
    try:
        paper = fetch(arxiv_id)
    except (SourceError, OSError) as exc:  # OSError: a timeout or refused connection a fetcher let through
        raise SourceError(UNREACHABLE) from exc
    if paper is None or paper.arxiv_id != arxiv_id:
        raise NotFound(f"arXiv has no paper {arxiv_id}: check the id.")
    return paper


def check_window(paper: Paper, user: User, now: datetime) -> None:
    """Members submit papers up to SUBMIT_WINDOW after their first version appeared; admins any paper."""
    if user.is_admin:
        return
    days = SUBMIT_WINDOW.days
    published = paper.published_at
    if published is None:
        raise FieldInvalid(
            FIELD, f"When {paper.arxiv_id} appeared on arXiv is unknown, so only an admin can submit it."
        )
    if published < now - SUBMIT_WINDOW:
        raise FieldInvalid(
            FIELD,
            f"{paper.arxiv_id} appeared on arXiv on {published:%b} {published.day}, {published.year}, more "
            f"than {days} days ago: members can submit papers within {days} days of their first version.",
        )


def feature(conn: Connection, user: User, paper: Paper, now: datetime) -> StoredPaper:
    """Store the paper (merge rules) and put it on today's list with the member as its submitter."""
    featuring = Featuring(
        arxiv_id=paper.arxiv_id,
        day=now.date(),
        source=MEMBER_SOURCE,
        submitted_at=now,
        submitter=Submitter(user.username, user.fullname, user_id=user.id),
        upvotes=0,
    )
    papers.upsert_records(conn, [Record(paper, featuring)], now)
    item = papers.get_paper(conn, paper.arxiv_id)
    assert item is not None  # noqa: S101 - narrows a row read back in this transaction (under -O: the same 500)
    return item


# --- the operation ------------------------------------------------------------------------------------------


def submit_paper(conn: Connection, user: User, text: str, now: datetime, fetch: Fetch | None) -> SubmitResult:
    """Put the paper `text` names on today's daily list, submitted by `user`.

    Raises FieldInvalid("arxiv") for text that is not an arXiv id or URL (nothing fetched), for a paper
    too old for a member and when the hub cannot look papers up; AlreadySubmitted (a Conflict) when the
    paper was ever featured; NotFound when arXiv does not know it; SourceError when arXiv is unreachable.
    """
    arxiv_id = parse_submission(text)
    stored = check_submittable(conn, arxiv_id)
    paper = stored.paper if stored is not None else fetch_submission(fetch, arxiv_id)
    check_window(paper, user, now)
    return SubmitResult(feature(conn, user, paper, now), fetched=stored is None)


# --- looking papers up on arXiv -----------------------------------------------------------------------------


class ArxivFetcher:
    """`fetcher(arxiv_id)`: the paper's newest version from the arXiv Atom API, or None when arXiv does not
    know it; SourceError when arXiv cannot be reached. One request at a time across threads (arXiv asks
    for one connection), paced by `min_interval`. The HTTP client is made on first use."""

    def __init__(
        self,
        api_url: str,
        *,
        min_interval: float,
        timeout: float,
        retries: int,
        max_wait: float = 10.0,
        pacer: Callable[[], None] | None = None,
    ) -> None:
        self._pacer = pacer  # arXiv's pacing shared with the deployment's other processes
        self.api_url = api_url
        self._min_interval, self._timeout, self._retries = min_interval, timeout, retries
        self._max_wait = max_wait  # a member is waiting: a longer Retry-After is "try again later"
        self._lock = threading.Lock()
        self._client: PoliteClient | None = None

    def __call__(self, arxiv_id: str) -> Paper | None:
        with self._lock:
            if self._client is None:
                self._client = PoliteClient(
                    min_interval=self._min_interval,
                    timeout=self._timeout,
                    retries=self._retries,
                    max_wait=self._max_wait,
                    pacer=self._pacer,
                )
            try:
                for batch in fetch_by_ids(self._client, self.api_url, [arxiv_id]):
                    for paper in batch:
                        if paper.arxiv_id == arxiv_id:
                            return paper
            except SourceError as exc:
                # arXiv answers an id it cannot use ("incorrect id format for …") with an error entry.
                if "arXiv API error" in str(exc):
                    return None
                raise
            return None

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> ArxivFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def arxiv_fetcher(
    api_url: str,
    *,
    min_interval: float,
    timeout: float,
    retries: int,
    pacer: Callable[[], None] | None = None,
) -> ArxivFetcher:
    """What `create_app(fetch_paper=…)` takes: looks submitted papers up on the arXiv Atom API at `api_url`
    (a `Callable[[str], Paper | None]`; `close()` it, or use it as a context manager, when done); `pacer`
    paces it together with the deployment's other arXiv clients (sources/pacing.py)."""
    return ArxivFetcher(api_url, min_interval=min_interval, timeout=timeout, retries=retries, pacer=pacer)
