"""arXiv's per-category RSS listings (the 2024+ format at `rss.arxiv.org/rss/<category>`).

A feed holds one announcement day: every paper announced in the category that day, each item tagged with its
announce type — `new`, `cross` (cross-listed from another category), `replace` or `replace-cross` (a new
version). The feed says nothing of dates, comments or DOIs; the ingest job fills those in from the Atom API.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import date

from paperboy import categories
from paperboy.errors import InvalidInput, SourceError
from paperboy.models import Paper, parse_arxiv_id
from paperboy.sources.http import PoliteClient
from paperboy.sources.text import clean_abstract, clean_title, looks_withdrawn, split_authors
from paperboy.sources.xml import Element, child_text, children_text, parse_xml

ANNOUNCE_TYPES = ("new", "cross", "replace", "replace-cross")
CROSS_TYPES = frozenset({"cross", "replace-cross"})

# `cs.CL`, `math.AG`, `hep-th`, and arXiv's `cs.AI+cs.CL` unions.
_HEADER = re.compile(
    r"^\s*arXiv:(?P<id>\S+?)\s+Announce Type:\s*(?P<type>[\w\-]+)\s*(?:Abstract:\s*)?", re.IGNORECASE
)
_OLD_TITLE_SUFFIX = re.compile(r"\s*\(arXiv:[^)]*\)\s*$")  # the pre-2024 feeds appended "(arXiv:…v1 [cs.CL])"


@dataclass(frozen=True)
class ListingItem:
    paper: Paper
    announce_type: str

    @property
    def arxiv_id(self) -> str:
        return self.paper.arxiv_id

    @property
    def is_cross(self) -> bool:
        return self.announce_type in CROSS_TYPES


@dataclass(frozen=True)
class Listing:
    """One category's announcement: its day (None for an empty feed without a date) and its items."""

    category: str
    day: date | None
    items: list[ListingItem]


def check_category(category: str) -> str:
    """A listing to follow: a category or archive, or several joined by `+` (cs.CL+cs.LG), as arXiv spells
    them (paperboy/categories.py)."""
    if len(category) > 10 * categories.MAX_CHARS:
        raise InvalidInput(f"{category[:40]!r}… is not {categories.EXAMPLE}")
    try:
        return "+".join(categories.check_category(part) for part in category.strip().split("+"))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _day(value: str | None, where: str) -> date | None:
    """The announcement day from arXiv's `Mon, 27 Apr 2026 00:00:00 -0400`: the date in its own zone."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value.strip()).date()
    except (TypeError, ValueError) as exc:
        raise SourceError(f"{where}: bad pubDate {value!r}") from exc


def _item(el: Element, where: str) -> ListingItem:
    description = child_text(el, "description") or ""
    header = _HEADER.match(description)
    guid = (child_text(el, "guid") or "").removeprefix("oai:arXiv.org:")
    link = child_text(el, "link") or ""
    parsed = (
        parse_arxiv_id(guid)
        or (parse_arxiv_id(header.group("id")) if header else None)
        or parse_arxiv_id(link)
    )
    if parsed is None:
        raise SourceError(f"{where}: no arXiv id in guid {guid!r} or link {link!r}")
    arxiv_id, version = parsed
    if version is None and header:  # the guid lost its version; the description still has it
        from_header = parse_arxiv_id(header.group("id"))
        if from_header and from_header[0] == arxiv_id:
            version = from_header[1]
    announce_type = (
        child_text(el, "arxiv:announce_type") or (header.group("type") if header else "new")
    ).lower()
    if announce_type not in ANNOUNCE_TYPES:
        raise SourceError(f"{where}: unknown announce type {announce_type!r}")
    abstract_text = description[header.end() :] if header else description
    if "Abstract:" in abstract_text:
        abstract_text = abstract_text.split("Abstract:", 1)[1]
    title = _OLD_TITLE_SUFFIX.sub("", clean_title(child_text(el, "title") or ""))
    if not title:
        raise SourceError(f"{where}: item {arxiv_id} has no title")
    abstract = clean_abstract(abstract_text)
    categories = tuple(dict.fromkeys(c.strip() for c in children_text(el, "category")))
    paper = Paper(
        arxiv_id=arxiv_id,
        version=version,
        title=title,
        abstract=abstract,
        authors=split_authors(", ".join(children_text(el, "dc:creator"))),
        categories=categories,
        license=child_text(el, "dc:rights"),
        withdrawn=looks_withdrawn(None, abstract),
    )
    return ListingItem(paper, announce_type)


def parse_listing(body: bytes | str, category: str, where: str = "arXiv RSS") -> Listing:
    """A category feed as a Listing; SourceError when it is not an RSS feed or an item is unreadable."""
    root = parse_xml(body, where)
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise SourceError(f"{where}: not an RSS feed (root element <{root.tag}>)")
    items = channel.findall("item")
    day = _day(child_text(channel, "pubDate"), where)
    if day is None and items:
        day = _day(child_text(items[0], "pubDate"), where)
    out = [_item(el, f"{where}, item {i}") for i, el in enumerate(items)]
    return Listing(category, day, out)


def fetch_listing(client: PoliteClient, rss_base_url: str, category: str) -> Listing:
    """GET `<rss_base_url>/<category>` and parse it."""
    category = check_category(category)
    url = f"{rss_base_url.rstrip('/')}/{category}"
    response = client.get(url)
    return parse_listing(response.content, category, f"GET {response.url}")
