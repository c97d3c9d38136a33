"""The arXiv Atom API (`export.arxiv.org/api/query`): papers by id, with dates, comments, journal ref and DOI.

Both serializations arXiv has served are read: the classic one (namespaces declared on each element, `http://`
ids, `<arxiv:primary_category scheme=…>`) and the 2026 one (namespaces declared once on `<feed>`, `https://`
links, `<published>` after the categories). They differ only in ways an XML parser does not see, plus
element order, which nothing here depends on.

arXiv reports a bad request as a feed with one entry whose id is `http(s)://arxiv.org/api/errors#…`; that is
a SourceError naming arXiv's message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from paperboy.errors import SourceError
from paperboy.models import Paper, parse_arxiv_id
from paperboy.sources.http import PoliteClient
from paperboy.sources.text import clean_abstract, clean_title, looks_withdrawn, parse_datetime
from paperboy.sources.xml import NS, Element, child_text, parse_xml

BATCH_SIZE = 100  # ids per request; arXiv answers up to 2000 per page but asks for moderate pages


@dataclass(frozen=True)
class Feed:
    papers: list[Paper]
    total: int | None  # opensearch:totalResults


def _error(entry: Element) -> str | None:
    entry_id = child_text(entry, "atom:id") or ""
    if "arxiv.org/api/errors" not in entry_id:
        return None
    return child_text(entry, "atom:summary") or entry_id.rsplit("#", 1)[-1].replace("_", " ")


def parse_entry(entry: Element, where: str) -> Paper | None:
    """One `<entry>` as a Paper; None for an empty placeholder entry (arXiv's answer for an unknown id)."""
    entry_id = child_text(entry, "atom:id") or ""
    title = child_text(entry, "atom:title")
    if not entry_id and not title:
        return None
    parsed = parse_arxiv_id(entry_id)
    if parsed is None:
        raise SourceError(f"{where}: entry id {entry_id!r} is not an arXiv abs URL")
    arxiv_id, version = parsed
    if not title:
        return None
    summary = child_text(entry, "atom:summary") or ""
    comment = child_text(entry, "arxiv:comment")
    primary_el = entry.find("arxiv:primary_category", NS)
    primary = primary_el.get("term") if primary_el is not None else None
    categories: list[str] = []
    for el in entry.findall("atom:category", NS):
        term = (el.get("term") or "").strip()
        if term and term not in categories:
            categories.append(term)
    if primary and primary not in categories:
        categories.insert(0, primary)
    elif primary:  # keep the primary first, as the snapshot and OAI records do
        categories.remove(primary)
        categories.insert(0, primary)
    try:
        published = parse_datetime(child_text(entry, "atom:published"))
        updated = parse_datetime(child_text(entry, "atom:updated"))
    except ValueError as exc:
        raise SourceError(f"{where}: entry {arxiv_id}: {exc}") from exc
    return Paper(
        arxiv_id=arxiv_id,
        version=version,
        title=clean_title(title),
        abstract=clean_abstract(summary),
        authors=tuple(
            clean_title(name)
            for name in (child_text(a, "atom:name") for a in entry.findall("atom:author", NS))
            if name
        ),
        categories=tuple(categories),
        primary_category=primary or (categories[0] if categories else None),
        published_at=published,
        updated_at=updated,
        comments=clean_title(comment) if comment else None,
        journal_ref=clean_title(j) if (j := child_text(entry, "arxiv:journal_ref")) else None,
        doi=child_text(entry, "arxiv:doi"),
        withdrawn=looks_withdrawn(comment, summary),
    )


def parse_feed(body: bytes | str, where: str = "arXiv API") -> Feed:
    """An API response as its papers; SourceError for an error entry or a body that is not an Atom feed."""
    root = parse_xml(body, where)
    if root.tag != f"{{{NS['atom']}}}feed":
        raise SourceError(f"{where}: not an Atom feed (root element {root.tag!r})")
    papers: list[Paper] = []
    for i, entry in enumerate(root.findall("atom:entry", NS)):
        message = _error(entry)
        if message is not None:
            raise SourceError(f"{where}: arXiv API error: {message}")
        paper = parse_entry(entry, f"{where}, entry {i}")
        if paper is not None:
            papers.append(paper)
    total_text = child_text(root, "opensearch:totalResults")
    total = int(total_text) if total_text and total_text.isdigit() else None
    return Feed(papers, total)


def fetch_by_ids(
    client: PoliteClient, api_url: str, ids: Iterable[str], batch_size: int = BATCH_SIZE
) -> Iterator[list[Paper]]:
    """The newest version of each paper (or the version a versioned id asks for), `batch_size` per request.

    Ids arXiv does not know are simply missing from the batch they were in.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), batch_size):
        batch = unique[start : start + batch_size]
        response = client.get(api_url, params={"id_list": ",".join(batch), "max_results": len(batch)})
        yield parse_feed(response.content, f"GET {response.url}").papers
