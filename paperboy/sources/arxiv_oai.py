"""arXiv OAI-PMH: `ListRecords` in the `arXivRaw` or `arXiv` metadata format, following resumption tokens.

This is how a hub backfills: everything changed in a set since a date. Each response page becomes one
`models.Page` whose cursor says how to go on:

    {"from": "2024-01-01", "resumption_token": "726959|1001", "set": "cs", "prefix": "arXivRaw"}

and, once the list is complete, `{"from": <date of the first responseDate>, "resumption_token": None, …}` so
that the next run asks only for what changed since this one started.

- `arXivRaw` carries every version (number, date, size): version = newest, published_at = first date,
  updated_at = newest date. A paper whose newest version has size `0kb`, or whose comments say it was
  withdrawn, is kept and marked withdrawn.
- `arXiv` carries authors split into keyname / forenames / suffix, and `created` / `updated` days, but no
  version number: such records fill gaps and never overwrite a versioned source (see store/merge.py).
- OAI errors: `noRecordsMatch` is an empty list, not a failure; every other code is an OaiError (a
  SourceError) with the code and arXiv's message.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from paperboy.errors import SourceError
from paperboy.models import Page, Paper, Record, parse_arxiv_id
from paperboy.sources.http import PoliteClient
from paperboy.sources.text import (
    clean_abstract,
    clean_title,
    day_start,
    looks_withdrawn,
    parse_datetime,
    split_authors,
)
from paperboy.sources.xml import NS, Element, child_text, local_name, parse_xml

PREFIXES = ("arXivRaw", "arXiv")
NO_RECORDS = "noRecordsMatch"


class OaiError(SourceError):
    """An OAI-PMH `<error code=…>` answer (other than noRecordsMatch)."""

    def __init__(self, code: str, message: str, where: str) -> None:
        super().__init__(f"{where}: OAI-PMH error {code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class OaiRecord:
    """A parsed record with what the OAI header and arXivRaw add beyond a Paper."""

    paper: Paper
    datestamp: date | None = None
    submitter: str | None = None  # arXivRaw only; Paper has no field for it yet


@dataclass(frozen=True)
class OaiResponse:
    records: list[OaiRecord]
    response_date: datetime | None
    resumption_token: str | None  # None when the list is complete
    complete_list_size: int | None = None
    deleted: int = 0  # records with status="deleted" (no metadata), skipped


def _raw_paper(meta: Element, where: str) -> tuple[Paper, str | None]:
    arxiv_id_text = child_text(meta, "raw:id") or ""
    parsed = parse_arxiv_id(arxiv_id_text)
    if parsed is None:
        raise SourceError(f"{where}: <id> {arxiv_id_text!r} is not an arXiv id")
    arxiv_id = parsed[0]
    versions = []
    for v in meta.findall("raw:version", NS):
        number = (v.get("version") or "").strip().lstrip("v")
        if not number.isdigit():
            raise SourceError(f"{where}: {arxiv_id} has a version without a number")
        versions.append((int(number), child_text(v, "raw:date"), (child_text(v, "raw:size") or "").lower()))
    versions.sort(key=lambda t: t[0])
    title = child_text(meta, "raw:title")
    if not title:
        raise SourceError(f"{where}: {arxiv_id} has no title")
    try:
        published = parse_datetime(versions[0][1]) if versions else None
        updated = parse_datetime(versions[-1][1]) if versions else None
    except ValueError as exc:
        raise SourceError(f"{where}: {arxiv_id}: {exc}") from exc
    comments = child_text(meta, "raw:comments")
    abstract = child_text(meta, "raw:abstract") or ""
    categories = tuple(dict.fromkeys((child_text(meta, "raw:categories") or "").split()))
    withdrawn = bool(versions and versions[-1][2] == "0kb") or looks_withdrawn(comments, abstract)
    paper = Paper(
        arxiv_id=arxiv_id,
        version=versions[-1][0] if versions else None,
        title=clean_title(title),
        abstract=clean_abstract(abstract),
        authors=split_authors(child_text(meta, "raw:authors")),
        categories=categories,
        primary_category=categories[0] if categories else None,
        published_at=published,
        updated_at=updated,
        comments=clean_title(comments) if comments else None,
        journal_ref=clean_title(j) if (j := child_text(meta, "raw:journal-ref")) else None,
        doi=child_text(meta, "raw:doi"),
        license=child_text(meta, "raw:license"),
        withdrawn=withdrawn,
    )
    submitter = child_text(meta, "raw:submitter")
    return paper, clean_title(submitter) if submitter else None


def _author_name(el: Element) -> str:
    parts = (child_text(el, "ax:forenames"), child_text(el, "ax:keyname"), child_text(el, "ax:suffix"))
    return clean_title(" ".join(p for p in parts if p))


def _arxiv_paper(meta: Element, where: str) -> Paper:
    arxiv_id_text = child_text(meta, "ax:id") or ""
    parsed = parse_arxiv_id(arxiv_id_text)
    if parsed is None:
        raise SourceError(f"{where}: <id> {arxiv_id_text!r} is not an arXiv id")
    arxiv_id = parsed[0]
    title = child_text(meta, "ax:title")
    if not title:
        raise SourceError(f"{where}: {arxiv_id} has no title")
    try:
        created = child_text(meta, "ax:created")
        updated = child_text(meta, "ax:updated")
        published_at = day_start(date.fromisoformat(created)) if created else None
        updated_at = day_start(date.fromisoformat(updated)) if updated else published_at
    except ValueError as exc:
        raise SourceError(f"{where}: {arxiv_id}: bad created/updated date ({exc})") from exc
    comments = child_text(meta, "ax:comments")
    abstract = child_text(meta, "ax:abstract") or ""
    categories = tuple(dict.fromkeys((child_text(meta, "ax:categories") or "").split()))
    return Paper(
        arxiv_id=arxiv_id,
        version=None,
        title=clean_title(title),
        abstract=clean_abstract(abstract),
        authors=tuple(n for n in (_author_name(a) for a in meta.findall("ax:authors/ax:author", NS)) if n),
        categories=categories,
        primary_category=categories[0] if categories else None,
        published_at=published_at,
        updated_at=updated_at,
        comments=clean_title(comments) if comments else None,
        journal_ref=clean_title(j) if (j := child_text(meta, "ax:journal-ref")) else None,
        doi=child_text(meta, "ax:doi"),
        license=child_text(meta, "ax:license"),
        withdrawn=looks_withdrawn(comments, abstract),
    )


def _record(el: Element, where: str) -> OaiRecord | None:
    header = el.find("oai:header", NS)
    if header is not None and header.get("status") == "deleted":
        return None
    stamp = child_text(header, "oai:datestamp") if header is not None else None
    try:
        datestamp = date.fromisoformat(stamp[:10]) if stamp else None
    except ValueError:
        datestamp = None
    metadata = el.find("oai:metadata", NS)
    meta = next(iter(metadata), None) if metadata is not None else None
    if meta is None:
        raise SourceError(f"{where}: a record without metadata")
    kind = meta.tag
    if kind == f"{{{NS['raw']}}}arXivRaw":
        paper, submitter = _raw_paper(meta, where)
        return OaiRecord(paper, datestamp, submitter)
    if kind == f"{{{NS['ax']}}}arXiv":
        return OaiRecord(_arxiv_paper(meta, where), datestamp)
    raise SourceError(f"{where}: unsupported metadata format <{local_name(meta)}> (use arXivRaw or arXiv)")


def parse_response(body: bytes | str, where: str = "OAI-PMH") -> OaiResponse:
    """A ListRecords (or GetRecord) response; OaiError for an OAI error other than noRecordsMatch."""
    root = parse_xml(body, where)
    if root.tag != f"{{{NS['oai']}}}OAI-PMH":
        raise SourceError(f"{where}: not an OAI-PMH response (root element {root.tag!r})")
    try:
        response_date = parse_datetime(child_text(root, "oai:responseDate"))
    except ValueError as exc:
        raise SourceError(f"{where}: bad responseDate ({exc})") from exc
    errors = root.findall("oai:error", NS)
    if errors:
        codes = [(e.get("code") or "unknown", (e.text or "").strip()) for e in errors]
        if all(code == NO_RECORDS for code, _ in codes):
            return OaiResponse([], response_date, None)
        code, message = next((c, m) for c, m in codes if c != NO_RECORDS)
        raise OaiError(code, message, where)
    container = root.find("oai:ListRecords", NS)
    if container is None:
        container = root.find("oai:GetRecord", NS)
    if container is None:
        raise SourceError(f"{where}: neither ListRecords nor GetRecord in the response")
    records: list[OaiRecord] = []
    deleted = 0
    for i, el in enumerate(container.findall("oai:record", NS)):
        rec = _record(el, f"{where}, record {i}")
        if rec is None:
            deleted += 1
        else:
            records.append(rec)
    token_el = container.find("oai:resumptionToken", NS)
    token = (token_el.text or "").strip() if token_el is not None else ""
    size = token_el.get("completeListSize") if token_el is not None else None
    return OaiResponse(
        records,
        response_date,
        token or None,  # an empty token ends the list (OAI-PMH 2.0, 3.5)
        int(size) if size and size.isdigit() else None,
        deleted,
    )


def _cursor(
    from_date: str | None, token: str | None, set_spec: str | None, prefix: str, **extra: Any
) -> dict[str, Any]:
    return {"from": from_date, "resumption_token": token, "set": set_spec, "prefix": prefix, **extra}


def list_records(
    client: PoliteClient,
    oai_url: str,
    *,
    metadata_prefix: str = "arXivRaw",
    set_spec: str | None = None,
    from_date: date | None = None,
    resumption_token: str | None = None,
    list_date: date | None = None,
) -> Iterator[Page]:
    """One Page per response page. With `resumption_token`, continue an interrupted list instead of starting.

    `list_date` is the date of the first response of the list being continued (kept in the cursor as
    `list_date`), so that a resumed list still ends with `from` = the day the list started.
    """
    if metadata_prefix not in PREFIXES:
        raise ValueError(f"metadata_prefix must be one of {PREFIXES}")
    from_text = from_date.isoformat() if from_date else None
    token = resumption_token
    page_size = 0
    while True:
        if token:
            params: dict[str, str] = {"verb": "ListRecords", "resumptionToken": token}
        else:
            params = {"verb": "ListRecords", "metadataPrefix": metadata_prefix}
            if from_text:
                params["from"] = from_text
            if set_spec:
                params["set"] = set_spec
        response = client.get(oai_url, params=params)
        parsed = parse_response(response.content, f"GET {response.url}")
        if list_date is None and parsed.response_date is not None:
            list_date = parsed.response_date.date()
        records = [Record(r.paper) for r in parsed.records]
        page_size = page_size or len(records)
        # Page.total counts pages (progress bars advance one per page): estimated from the list size.
        total = (
            -(-parsed.complete_list_size // page_size) if parsed.complete_list_size and page_size else None
        )
        if parsed.resumption_token:
            cursor = _cursor(
                from_text,
                parsed.resumption_token,
                set_spec,
                metadata_prefix,
                list_date=list_date.isoformat() if list_date else None,
            )
            yield Page(records, cursor, total)
            token = parsed.resumption_token
            continue
        done_from = list_date.isoformat() if list_date else from_text
        yield Page(records, _cursor(done_from, None, set_spec, metadata_prefix), total)
        return
